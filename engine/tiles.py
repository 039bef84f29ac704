"""Tiling: losses and gradients of a large image computed window by window, so memory follows the tile size.

Two ways, one for each kind of objective:

- `moving_windows` (DeepDream): each window is scored on its own, on a grid that moves randomly every
  step (like jitter), so tile borders never stay in one place and leave no seams.
- `exact_tiles` (style transfer, any objective made of sums over positions): every tile is a crop
  with a halo as wide as the network's receptive margin, and accounts only for the positions it owns,
  so the tiles' sums add up to the whole image's. Whole-image statistics (Gram matrices, means and
  covariances) come from a no-grad pass over the tiles; the loss's gradient with respect to them is
  taken once; then each tile runs forward and backward with the surrogate ⟨∂loss/∂sums, its sums⟩,
  whose gradient is exactly the whole image's gradient restricted to the tile. Identical to the untiled
  run up to floating-point order, with no seams by construction. (Optionally `lagged`: one pass per step,
  the gradient taken at statistics extrapolated from the previous steps'.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import torch

from .half import ScaledHalf
from .objectives import Features, Objective, Region, Sums

if TYPE_CHECKING:
    from .features import FeatureNet

Window = tuple[slice, slice]
LossFn = Callable[[torch.Tensor], torch.Tensor]
Evaluate = Callable[[torch.Tensor], torch.Tensor]
"""image -> loss per image, with the gradient of their sum accumulated into image.grad."""


@dataclass
class Tiling:
    """The moving grid of `moving_windows`: windows of about `tile` pixels, between a quarter and one and
    a half tiles wide."""

    tile: int
    generator: torch.Generator

    def windows(self, height: int, width: int) -> list[Window]:
        """This step's windows covering a `height`×`width` image, rows then columns."""
        return [(rows, cols) for rows in self._split(height) for cols in self._split(width)]

    def _split(self, length: int) -> list[slice]:
        if length <= self.tile:
            return [slice(0, length)]
        count = math.ceil(length / self.tile)
        base = length / count
        shift = (torch.rand((), generator=self.generator).item() - 0.5) * base
        cuts = [0, *(round(k * base + shift) for k in range(1, count)), length]
        return [slice(a, b) for a, b in zip(cuts, cuts[1:])]


def moving_windows(loss_fn: LossFn, tiling: Tiling) -> Evaluate:
    """Scores and backpropagates each window of this step's grid on its own; returns the summed losses. Each
    window is a leaf of its own, so a backward pass fills a window-sized gradient, not one the size of the image."""
    def evaluate(image: torch.Tensor) -> torch.Tensor:
        total = 0
        if image.grad is None:
            image.grad = torch.zeros_like(image)
        for rows, cols in tiling.windows(*image.shape[-2:]):
            window = image[..., rows, cols].detach().requires_grad_(True)
            losses = loss_fn(window)
            losses.sum().backward()
            image.grad[..., rows, cols] += window.grad
            total = total + losses.detach()
        return total
    return evaluate


@dataclass(frozen=True)
class Tile:
    """`own`: the pixels whose positions this tile accounts for; `crop`: what it reads (own + halo)."""

    crop: Window
    own: Window

    @property
    def read(self) -> int:
        """Pixels the tile reads: its crop's area."""
        rows, cols = self.crop
        return (rows.stop - rows.start) * (cols.stop - cols.start)


@dataclass(frozen=True)
class TileGrid:
    """Tiles owning about `tile` pixels a side, cut at multiples of `step`, read with a halo of `halo`."""

    tile: int
    halo: int
    step: int

    def fits(self, height: int, width: int) -> bool:
        """Whether the image is one tile (then there is nothing to tile)."""
        return max(height, width) <= self.tile

    def tiles(self, height: int, width: int) -> list[Tile]:
        return [Tile((rc, cc), (ro, co)) for rc, ro in self._split(height) for cc, co in self._split(width)]

    def _split(self, length: int) -> list[tuple[slice, slice]]:
        """(crop, own) along one axis. Crops start at multiples of `step` and their lengths equal the image's
        modulo `step`, so that padding which depends on the input's length (TensorFlow's 'SAME') falls as
        it does on the whole image."""
        count = math.ceil(length / self.tile)
        cuts = sorted({0, length, *(round(k * length / count / self.step) * self.step for k in range(1, count))})
        extra = length % self.step
        return [(slice(max(a - self.halo, 0), min(b + self.halo + extra, length)), slice(a, b))
                for a, b in zip(cuts, cuts[1:])]


def tile_grid(net: FeatureNet, tile: int, halo: int | None = None) -> TileGrid:
    """The exact-tiling grid for `net`'s layers: `halo` defaults to their receptive margin, the least that
    keeps the tiles' features equal to the whole image's."""
    geometry = net.geometry
    margin = geometry.margin
    halo = margin if halo is None else halo
    if halo < margin:
        raise ValueError(f"A halo of {halo} px is too small for these layers of {net.cnn.spec.title}: their "
                         f"receptive fields reach {margin} px beyond a tile, so the halo must be at least {margin}.")
    step = geometry.stride
    halo = -(-halo // step) * step
    if tile < 2 * halo:
        raise ValueError(f"The tile size {tile} is too small for these layers of {net.cnn.spec.title}: each tile "
                         f"reads a halo of {halo} px on every side, so tiles must be at least {2 * halo} px "
                         f"(or 0 to switch tiling off).")
    return TileGrid(max(tile // step, 1) * step, halo, step)


class TileRegion(Region):
    """A tile's own positions, at every layer of the net (see `Region`)."""

    def __init__(self, tile: Tile, net: FeatureNet, image_size: tuple[int, int]):
        self.tile, self.image_size = tile, image_size
        self.layers, self.sizes = net.geometry.layers, net.geometry.sizes(*image_size)

    def _slices(self, layer: str, axis: int) -> tuple[slice, slice]:
        """The layer's own rows (axis 0) or columns (axis 1): in the whole map and in the crop's map."""
        s, own, crop = self.layers[layer].stride, self.tile.own[axis], self.tile.crop[axis]
        start = own.start // s
        stop = own.stop // s if own.stop < self.image_size[axis] else self.sizes[layer][axis]
        shift = crop.start // s
        return slice(start, stop), slice(start - shift, stop - shift)

    def own(self, layer: str, act: torch.Tensor) -> torch.Tensor:
        """The tile's own part of a feature map computed on its crop."""
        return act[..., self._slices(layer, 0)[1], self._slices(layer, 1)[1]]

    def crop(self, layer: str, full: torch.Tensor) -> torch.Tensor:
        return full[..., self._slices(layer, 0)[0], self._slices(layer, 1)[0]]

    def size(self, layer: str, act: torch.Tensor) -> tuple[int, int]:
        return self.sizes[layer]

    def _in_crop(self) -> tuple[int, int, int, int]:
        """The own pixels' rows and columns in the crop's coordinates."""
        (rc, cc), (ro, co) = self.tile.crop, self.tile.own
        return ro.start - rc.start, ro.stop - rc.start, co.start - cc.start, co.stop - cc.start

    def pixels(self, image: torch.Tensor) -> torch.Tensor:
        r0, r1, c0, c1 = self._in_crop()
        return image[..., r0:r1, c0:c1]

    def pixel_crop(self, full: torch.Tensor) -> torch.Tensor:
        return full[..., self.tile.own[0], self.tile.own[1]]

    def neighbours(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r0, r1, c0, c1 = self._in_crop()
        right = image[..., r0:r1, c0:c1 + 1]  # one column more where the crop has it (not at the image's edge)
        below = image[..., r0:r1 + 1, c0:c1]
        return right[..., :, 1:] - right[..., :, :-1], below[..., 1:, :] - below[..., :-1, :]


def own_features(net: FeatureNet, image: torch.Tensor, grid: TileGrid,
                 leaves: bool = False) -> Iterator[tuple[Features, torch.Tensor, TileRegion]]:
    """For each tile of `image`: its own features, its crop of the image (on the net's device, wherever the
    image is) and its region. With `leaves`, each crop is a leaf of its own, so a backward pass fills the
    crop's gradient, not one the size of the image."""
    size = tuple(image.shape[-2:])
    for tile in grid.tiles(*size):
        crop = image[..., tile.crop[0], tile.crop[1]].to(net.cnn.device)
        if leaves:
            crop = crop.detach().requires_grad_(True)
        region = TileRegion(tile, net, size)
        yield {layer: region.own(layer, f) for layer, f in net(crop).items()}, crop, region


def add(total: Sums | None, part: Sums) -> Sums:
    return dict(part) if total is None else {key: total[key] + value for key, value in part.items()}


def tiled_features(net: FeatureNet, image: torch.Tensor, grid: TileGrid,
                   layers: Iterable[str]) -> dict[str, ScaledHalf]:
    """The net's whole-image features at `layers` of a large image, assembled tile by tile (no gradient) in
    float16 where the image is: no float32 copy of a whole layer exists at any time."""
    sizes = net.geometry.sizes(*image.shape[-2:])
    full: dict[str, ScaledHalf] = {}
    with torch.no_grad():
        for feats, _, region in own_features(net, image, grid):
            for layer in layers:
                f = feats[layer]
                if layer not in full:
                    full[layer] = ScaledHalf.empty((*f.shape[:2], *sizes[layer]), image.device,
                                                   f"The content image's features at {layer!r}")
                full[layer].put(partial(region.crop, layer), f)
    return full


def tiled_sums(net: FeatureNet, image: torch.Tensor, grid: TileGrid,
               sums: Callable[[Features, torch.Tensor, Region], Sums]) -> Sums:
    """`sums` of every tile of `image`, added up (no gradient)."""
    total = None
    with torch.no_grad():
        for feats, crop, region in own_features(net, image, grid):
            total = add(total, sums(feats, crop, region))
    return total


def _loss_and_gradient(objective: Objective, sums: Sums) -> tuple[torch.Tensor, Sums]:
    """The loss per image from whole-image sums, and its gradient with respect to each sum."""
    leaves = {key: value.detach().requires_grad_(True) for key, value in sums.items()}
    with torch.enable_grad():
        loss = objective.total(leaves)
        grads = torch.autograd.grad(loss.sum(), list(leaves.values()), allow_unused=True)
    return loss.detach(), {key: g for key, g in zip(leaves, grads) if g is not None}


def exact_tiles(net: FeatureNet, objective: Objective, grid: TileGrid, lagged: bool = False) -> Evaluate:
    """The whole image's loss and gradient, tile by tile (see the module's docstring).

    A linear objective (content, TV, DeepDream power) has a gradient with respect to its sums that does not
    depend on them, so after the first step it skips the statistics pass and reuses that gradient. With
    `lagged`, nonlinear objectives skip it too: each step takes the gradient at the whole-image statistics
    each term extrapolates from the previous two steps' (`Objective.extrapolate`: along a line, which keeps Adam
    from overshooting Gram losses; mean and covariance take the last step's), gathered by the tiles' own
    forward (the previous step's alone on the second step): one pass per step instead of two. Not exact, but
    the statistics move smoothly. The reported loss is exact.
    """
    reuse: Sums | None = None
    history: list[Sums] = []

    def evaluate(image: torch.Tensor) -> torch.Tensor:
        nonlocal reuse
        if reuse is None or not (objective.linear or lagged):
            _, reuse = _loss_and_gradient(objective, tiled_sums(net, image, grid, objective.sums))
        elif lagged and not objective.linear and len(history) == 2:  # extrapolate the last two steps
            last, before = history[-1], history[-2]
            _, reuse = _loss_and_gradient(objective, objective.extrapolate(last, before))
        seen = None
        if image.grad is None:
            image.grad = torch.zeros_like(image)
        for feats, crop, region in own_features(net, image, grid, leaves=True):
            part = objective.sums(feats, crop, region)
            sum(((reuse[key] * value).sum() for key, value in part.items() if key in reuse)).backward()
            image.grad[..., region.tile.crop[0], region.tile.crop[1]] += crop.grad.to(image.device)
            seen = add(seen, {key: value.detach() for key, value in part.items()})
        loss, reuse = _loss_and_gradient(objective, seen)
        if lagged:
            history[:] = [*history[-1:], seen]
        return loss
    return evaluate
