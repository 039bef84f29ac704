"""How much memory a run needs: the one estimate behind the memory guard, the automatic tile size and
what the host's model manager is asked to make room for.

A run holds image-sized buffers for its whole length (the iterate, its gradient, the optimiser's state,
the best image so far, full-size content targets) and, for the window it evaluates (the whole image or
one tile), the activations a forward pass keeps for the backward pass. That second part is measured for
each network and choice of layers on a small probe, by counting what autograd saves: every architecture,
precision and depth gets its own figure, not a table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import torch
from torch import nn

from .tiles import tile_grid

if TYPE_CHECKING:
    from .features import FeatureNet

PROBE = 128  # side of the probe image (at least twice the net's smallest input)
TILE_STEP = 64  # automatic tiles are multiples of this
RGB_FLOAT = 3 * 4  # bytes per pixel of one float32 RGB image
GB = 1024 ** 3
_MEASURED: WeakKeyDictionary[nn.Module, dict[tuple[str, ...], tuple[float, dict[str, float]]]] = WeakKeyDictionary()


@dataclass(frozen=True)
class Footprint:
    """What a kind of run holds besides its window's activations: `images` float32 RGB image-sized buffers
    per batch element for the whole run, the full-size features at the `targets` layers (content losses keep
    them in float16), and how it tiles: `exact` tiles (crops with the layers' halo, style transfer) or moving
    windows of up to 1.5 tiles (Dream). `name` says which run it is in messages."""

    images: float
    targets: tuple[str, ...]
    exact: bool
    name: str


# iterate, gradient, best and last checked images, the octave's base and detail, the jittered view, the input
DREAM = Footprint(8, (), False, "Dream")


def transfer_footprint(optimizer: str, ema: bool, history: int, targets: tuple[str, ...] = ()) -> Footprint:
    """Style transfer with Adam (two moments) or L-BFGS (`history` pairs of image-sized differences and a
    few working vectors); `ema` adds the averaged image; `targets` are the content losses' layers."""
    state = 2 if optimizer == "adam" else 2 * history + 4
    name = "Adam" if optimizer == "adam" else f"L-BFGS (a history of {history} steps)"
    return Footprint(6 + state + int(ema), targets, True, name)


class OverBudget(ValueError):
    """The run would not fit in the memory available; the message gives the estimate, the budget and a fix."""


def per_pixel(net: FeatureNet) -> tuple[float, dict[str, float]]:
    """(bytes per input pixel that a forward and backward pass of `net` keeps, bytes per input pixel of each
    layer's float32 features), measured once per network and layers."""
    known = _MEASURED.setdefault(net.cnn.module, {})
    key = tuple(sorted(net.layers))
    if key not in known:
        known[key] = _measure(net)
    return known[key]


def _measure(net: FeatureNet) -> tuple[float, dict[str, float]]:
    side = max(PROBE, 2 * net.min_size)
    weights = {p.untyped_storage().data_ptr() for p in net.cnn.module.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.inference_mode(False), torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0)).to(net.cnn.device)
        feats = net(x.requires_grad_(True))
    features = {layer: f.numel() * 4 / side ** 2 for layer, f in feats.items()}
    largest = max(saved.values(), default=0)
    # the saved activations, the gradients of the largest one in flight, the losses' temporaries at the layers
    return (sum(saved.values()) + 2 * largest) / side ** 2 + 2 * sum(features.values()), features


def window(net: FeatureNet, size: tuple[int, int], tile: int, exact: bool) -> int:
    """Pixels of the largest window a run evaluates at once: the image, or its largest tile (with the halo)."""
    height, width = size
    if not tile or max(height, width) <= tile:
        return height * width
    if exact:
        return max((t.crop[0].stop - t.crop[0].start) * (t.crop[1].stop - t.crop[1].start)
                   for t in tile_grid(net, tile).tiles(height, width))
    side = [min(n, math.ceil(1.5 * n / math.ceil(n / tile))) for n in size]  # tiles.Tiling: up to 1.5 cells
    return side[0] * side[1]


def estimate(net: FeatureNet, size: tuple[int, int], batch: int, tile: int, footprint: Footprint) -> int:
    """Bytes a run at `size` (height, width) on `batch` images needs besides the network's weights."""
    buffers, activations = _parts(net, size, batch, tile, footprint)
    return int(buffers + activations)


def _parts(net: FeatureNet, size: tuple[int, int], batch: int, tile: int, footprint: Footprint) -> tuple[float, float]:
    """(bytes of the image-sized buffers, bytes of the largest window's activations)."""
    activations, features = per_pixel(net)
    per_image = footprint.images * RGB_FLOAT + sum(features[layer] for layer in footprint.targets) / 2  # float16
    return batch * per_image * size[0] * size[1], batch * activations * window(net, size, tile, footprint.exact)


def smallest_tile(net: FeatureNet, footprint: Footprint) -> int:
    """The smallest tile the run's tiling accepts, rounded up to `TILE_STEP`."""
    least = 2 * net.geometry.margin if footprint.exact else 4 * net.min_size
    return max(-(-least // TILE_STEP) * TILE_STEP, TILE_STEP)


def fit(net: FeatureNet, size: tuple[int, int], batch: int, tile: int, footprint: Footprint, budget: float) -> int:
    """The tile to run with in `budget` bytes: `tile` itself when it fits; for 0, none (0) when the whole
    image fits, else the largest tile that does. Raises `OverBudget` with the estimate, the budget and a fix."""
    need = estimate(net, size, batch, tile, footprint)
    if need <= budget:
        return tile
    longest = max(size)
    least = smallest_tile(net, footprint)
    fitting = next((t for t in range(longest // TILE_STEP * TILE_STEP, least - 1, -TILE_STEP)
                    if estimate(net, size, batch, t, footprint) <= budget), None)
    if tile == 0 and fitting is not None:
        return fitting
    what = f"{footprint.name} at {size[1]}×{size[0]}" + (f" × {batch} images" if batch > 1 else "") + \
           (f" in tiles of {tile} px" if tile else "")
    head = f"{what} needs about {need / GB:.1f} GB, but {budget / GB:.1f} GB of the device's memory is available."
    if fitting is not None:
        raise OverBudget(f"{head} Use a tile size of {fitting} px or less (or 0 to choose tiles automatically).")
    raise OverBudget(f"{head} Even tiles of {least} px need {estimate(net, size, batch, least, footprint) / GB:.1f} "
                     f"GB: the image-sized buffers alone are too large. {_smaller(net, size, batch, footprint, budget)}")


def _smaller(net: FeatureNet, size: tuple[int, int], batch: int, footprint: Footprint, budget: float) -> str:
    """How to shrink a run whose image-sized buffers do not fit: the longer side that would, and other ways."""
    buffers, activations = _parts(net, size, batch, smallest_tile(net, footprint), footprint)
    pixels = size[0] * size[1] * (budget - activations) / buffers  # buffers grow with the pixels, a tile does not
    fix = []
    if pixels >= 1:
        fix.append(f"an output of at most about {int(max(size) * math.sqrt(pixels / (size[0] * size[1])))} px on "
                   f"the longer side")
    if batch > 1:
        fix.append("fewer images per batch")
    if footprint.name.startswith("L-BFGS"):
        fix.append("Adam, which keeps 2 image-sized buffers where L-BFGS keeps its history")
    return f"Use {' or '.join(fix)}." if fix else "Free memory on the device first."
