"""How much memory a run needs: the one estimate behind the memory guard, the automatic tile size and
what the host's model manager is asked to make room for.

A run holds image-sized buffers for its whole length (the iterate, its gradient, the optimiser's state,
the best image so far, full-size content targets) and, for the window it evaluates (the whole image or
one tile), the activations a forward pass keeps for the backward pass. That second part is measured for
each network and choice of layers on a small probe, by counting what autograd saves: every architecture,
precision and depth gets its own figure, not a table. When the image-sized buffers crowd the device, they can
live in host memory instead, the device holding one tile's work at a time (`plan`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable
from weakref import WeakKeyDictionary

import torch
from torch import nn

from .tiles import tile_grid

if TYPE_CHECKING:
    from .features import FeatureNet

PROBE = 128  # side of the probe image (at least twice the net's smallest input)
TILE_STEP = 64  # automatic tiles are multiples of this
RGB_FLOAT = 3 * 4  # bytes per pixel of one float32 RGB image
CROSSING = 3  # float32 RGB windows a tile of an offloaded run moves to the device: crop, gradient, view
READS_LIMIT = 2.0  # automatic exact tiles reading more pixels than this per pixel they own prefer offloading
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
# what a frame of a clip holds beside its own run: the frame, the previous frame, its result, that result (or
# its detail) warped into this frame, and the flow with its consistency mask (the clip stays in host memory)
CLIP_IMAGES = 5


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
        return max(t.read for t in tile_grid(net, tile).tiles(height, width))
    side = [min(n, math.ceil(1.5 * n / math.ceil(n / tile))) for n in size]  # tiles.Tiling: up to 1.5 cells
    return side[0] * side[1]


def estimate(net: FeatureNet, size: tuple[int, int], batch: int, tile: int, footprint: Footprint) -> int:
    """Bytes a run at `size` (height, width) on `batch` images needs besides the network's weights."""
    buffers, activations = parts(net, size, batch, tile, footprint)
    return int(buffers + activations)


def parts(net: FeatureNet, size: tuple[int, int], batch: int, tile: int, footprint: Footprint) -> tuple[float, float]:
    """(bytes of the image-sized buffers, bytes of the largest window's activations)."""
    activations, features = per_pixel(net)
    per_image = footprint.images * RGB_FLOAT + _targets(features, footprint)
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
    least = smallest_tile(net, footprint)
    fitting = _largest_tile(size, least, lambda t: estimate(net, size, batch, t, footprint) <= budget)
    if tile == 0 and fitting is not None:
        return fitting
    head = f"{_what(size, batch, tile, footprint)} needs about {need / GB:.1f} GB, but {budget / GB:.1f} GB of the " \
           f"device's memory is available."
    if fitting is not None:
        raise OverBudget(f"{head} Use a tile size of {fitting} px or less (or 0 to choose tiles automatically).")
    raise OverBudget(f"{head} Even tiles of {least} px need {estimate(net, size, batch, least, footprint) / GB:.1f} "
                     f"GB: the image-sized buffers alone are too large. {_smaller(net, size, batch, footprint, budget)}")


@dataclass(frozen=True)
class Plan:
    """How a run fits: the `tile` it evaluates (0: the whole image at once) and whether it keeps its
    image-sized buffers in host memory (`offload`), the device holding one tile's work at a time."""

    tile: int
    offload: bool = False


def plan(net: FeatureNet, size: tuple[int, int], batch: int, tile: int, footprint: Footprint, budget: float,
         host_budget: float | None = None) -> Plan:
    """How to run in `budget` bytes of the device's memory, given `host_budget` bytes of host memory (None: the
    device is the host). On the device, with `fit`'s tile, when some tile fits there, unless `tile` is 0 and
    the exact tiles that fit read more than `READS_LIMIT` pixels per pixel they own (their halo making the
    network do that much more work) where tiles of an offloaded run would read fewer. Else offloaded: the
    image-sized buffers in host memory and `tile` (0: the largest tile whose work fits the device), each tile
    moved there and back. So a print larger than the device's memory runs. Raises `OverBudget` with what was
    needed, what was available and a fix."""
    least = smallest_tile(net, footprint)
    fits_device = estimate(net, size, batch, least, footprint) <= budget
    buffers, _ = parts(net, size, batch, tile, footprint)
    if host_budget is None or (fits_device and (tile or buffers > host_budget)):
        return Plan(fit(net, size, batch, tile, footprint, budget))
    if buffers > host_budget:
        raise OverBudget(f"{_what(size, batch, 0, footprint)} keeps image-sized buffers of about {buffers / GB:.1f} "
                         f"GB: neither the device ({budget / GB:.1f} GB available) nor host memory "
                         f"({host_budget / GB:.1f} GB free) can hold them. "
                         f"{_smaller(net, size, batch, footprint, max(budget, host_budget))}")
    fitting = _largest_tile(size, least, lambda t: offloaded(net, size, batch, t, footprint) <= budget)
    if fits_device:  # tile 0
        chosen = fit(net, size, batch, 0, footprint, budget)
        wasteful = footprint.exact and reads(net, size, chosen) > READS_LIMIT
        better = fitting is not None and reads(net, size, fitting) < reads(net, size, chosen)
        return Plan(fitting, offload=True) if wasteful and better else Plan(chosen)
    if tile and offloaded(net, size, batch, tile, footprint) <= budget:
        return Plan(tile, offload=True)
    if not tile and fitting is not None:
        return Plan(fitting, offload=True)
    need = offloaded(net, size, batch, tile or least, footprint)
    fix = f"Use a tile size of {fitting} px or less (or 0 to choose tiles automatically)." if fitting is not None \
        else "Free memory on the device first."
    raise OverBudget(f"{_what(size, batch, tile or least, footprint)} needs about {need / GB:.1f} GB of the "
                     f"device's memory even with its image-sized buffers in host memory, but {budget / GB:.1f} GB "
                     f"is available. {fix}")


def reads(net: FeatureNet, size: tuple[int, int], tile: int) -> float:
    """Pixels exact tiles of `tile` px read (crops with their halo) per pixel of the image; 1 untiled."""
    if not tile or max(size) <= tile:
        return 1.0
    return sum(t.read for t in tile_grid(net, tile).tiles(*size)) / (size[0] * size[1])


def offloaded(net: FeatureNet, size: tuple[int, int], batch: int, tile: int, footprint: Footprint) -> int:
    """Bytes of device memory a run whose image-sized buffers are in host memory needs: the largest window's
    activations and what crosses over for it (its crop, the crop's gradient and view, its part of the content
    targets); the optimiser's state never does."""
    activations, features = per_pixel(net)
    pixels = batch * window(net, size, tile, footprint.exact)
    return int(pixels * (activations + CROSSING * RGB_FLOAT + _targets(features, footprint)))


def _targets(features: dict[str, float], footprint: Footprint) -> float:
    """Bytes per input pixel of the run's content targets, kept in float16 (half of `features`' float32)."""
    return sum(features[layer] for layer in footprint.targets) / 2


def _largest_tile(size: tuple[int, int], least: int, fits: Callable[[int], bool]) -> int | None:
    """The largest multiple of `TILE_STEP` from the image's longer side down to `least` that `fits`."""
    return next((t for t in range(max(size) // TILE_STEP * TILE_STEP, least - 1, -TILE_STEP) if fits(t)), None)


def _what(size: tuple[int, int], batch: int, tile: int, footprint: Footprint) -> str:
    return f"{footprint.name} at {size[1]}×{size[0]}" + (f" × {batch} images" if batch > 1 else "") + \
           (f" in tiles of {tile} px" if tile else "")


def _smaller(net: FeatureNet, size: tuple[int, int], batch: int, footprint: Footprint, budget: float) -> str:
    """How to shrink a run whose image-sized buffers do not fit: the longer side that would, and other ways."""
    buffers, activations = parts(net, size, batch, smallest_tile(net, footprint), footprint)
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
