"""Content and style objectives made from images: their targets are rebuilt for each size optimised.

`ContentObjective` and `StyleObjective` keep their images as buffers and hold no loss terms until
`retarget(net, size, grid)` builds them (`transfer` does this at every pyramid level, tile by tile
for sizes larger than a tile), so the same objective serves any output size. They compose with every
other objective:
`ContentObjective(photo, ["relu4_2"]) + StyleObjective([painting], ["relu1_1", "relu2_1"], weight=10)
+ 0.1 * ActivationL2("relu3_1")`.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import torch

from .features import FeatureNet
from .losses import STATISTICS, ContentLoss, Moments, blend_moments, moment_sums, moments_from
from .objectives import WHOLE, Features, Objective, Region, Sum, Sums
from .pyramid import resize
from .tiles import TileGrid, tiled_features, tiled_sums

LayerWeights = Mapping[str, float] | Sequence[str]
Size = tuple[int, int]

UPSCALE_WARNING = 2.0  # a style image enlarged more than this gets a warning: its texture blurs
ASPECT_TOLERANCE = 0.02


def non_finite(x: torch.Tensor, channel_dim: int | None = 1) -> str | None:
    """None if every value of `x` is finite, else how many are NaN or infinite and in how many pixels
    (positions over `channel_dim`; None: every value is a pixel, as in a mask)."""
    bad = ~torch.isfinite(x)
    if not bad.any():
        return None
    nan = int(torch.isnan(x).sum())
    counts = " and ".join(f"{n:,} {kind}" for n, kind in ((nan, "NaN"), (int(bad.sum()) - nan, "infinite")) if n)
    pixels = bad.any(channel_dim) if channel_dim is not None else bad
    return f"{counts} values, in {int(pixels.sum()):,} of {pixels.numel():,} pixels"


def check_finite(x: torch.Tensor, name: str, channel_dim: int | None = 1) -> torch.Tensor:
    """`x` if every value is finite; a ValueError saying how many values are NaN or infinite otherwise."""
    problem = non_finite(x, channel_dim)
    if problem:
        raise ValueError(f"The {name} has {problem}: every value must be a finite number in 0..1. "
                         f"Check the node or file that made it.")
    return x


def check_image(x: object, name: str) -> torch.Tensor:
    """`x` if it is an RGB float batch `[B, 3, H, W]` of finite values; a ValueError saying what it is otherwise."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"The {name} is missing: connect an image (got {type(x).__name__}).")
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[0] < 1 or min(x.shape[-2:]) < 1:
        raise ValueError(f"The {name} must be an RGB batch [B, 3, H, W]; got shape {tuple(x.shape)}. "
                         f"Convert greyscale or RGBA images to RGB first.")
    if not x.is_floating_point():
        raise ValueError(f"The {name} must hold floats in [0, 1]; got {x.dtype}.")
    return check_finite(x, name)


def check_mask(mask: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """A mask `[H, W]`, `[B, H, W]` or `[B, 1, H, W]` in [0, 1] as a float `[B, 1, H, W]`."""
    shape = tuple(mask.shape)
    if mask.dim() == 2:
        mask = mask[None]
    if mask.dim() == 3:
        mask = mask[:, None]
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"The {name} must be [B, H, W] (or [H, W]); got shape {shape}.")
    mask = check_finite(mask.float(), name, None)
    if mask.min() < 0 or mask.max() > 1:
        raise ValueError(f"The {name} must hold values in [0, 1]; got {mask.min():g}..{mask.max():g}.")
    if (mask.flatten(1).amax(1) == 0).any():
        raise ValueError(f"The {name} is empty (all 0), so the style would apply nowhere; paint the region to "
                         f"stylise.")
    return mask


def layer_weights(layers: LayerWeights, what: str) -> dict[str, float]:
    """Layer weights normalised to sum to 1 (so adding layers does not change the term's strength);
    a plain list of names weighs them equally. Zero-weight layers are dropped."""
    items = dict(layers) if isinstance(layers, Mapping) else {name: 1.0 for name in layers}
    if not items:
        raise ValueError(f"{what}: no layers given; name at least one layer.")
    negative = {k: v for k, v in items.items() if v < 0}
    if negative:
        raise ValueError(f"{what}: layer weights must be ≥ 0; got {negative}. A loss cannot be rewarded "
                         f"for moving away from its target.")
    total = sum(items.values())
    if total == 0:
        raise ValueError(f"{what}: every layer weight is 0; give at least one layer a positive weight.")
    return {k: v / total for k, v in items.items() if v > 0}


def _check_weight(weight: float, what: str) -> float:
    if not weight >= 0:
        raise ValueError(f"{what} weight must be ≥ 0 (0 switches the loss off); got {weight}.")
    return float(weight)


def _stretched(name: str, have: Size, size: Size) -> list[str]:
    ratio = (have[1] / have[0]) / (size[1] / size[0])
    if abs(ratio - 1) <= ASPECT_TOLERANCE:
        return []
    return [f"The {name} ({have[1]}×{have[0]}) has another aspect ratio than the output "
            f"({size[1]}×{size[0]}) and is stretched to fit."]


class ImageObjective(Objective):
    """An objective made from images whose loss terms `retarget(net, size, grid)` builds for one size."""

    def __init__(self, layers: LayerWeights, weight: float, what: str):
        super().__init__()
        self.weights = layer_weights(layers, what)
        self.weight = _check_weight(weight, what)
        self.register_module("loss", None)

    def layers(self) -> set[str]:
        return set(self.weights)

    def retarget(self, net: FeatureNet, size: Size, grid: TileGrid | None = None) -> list[str]:
        """(Re)builds the loss terms for output images of `size` (height, width), reading the images tile
        by tile on `grid` if given; returns warnings."""
        raise NotImplementedError

    def _terms(self) -> Objective:
        if self.loss is None:
            raise RuntimeError(f"{type(self).__name__} has no targets yet: call retarget(net, size) first "
                               f"(transfer does this for every size it optimises).")
        return self.loss

    @property
    def linear(self) -> bool:
        return self._terms().linear

    def sums(self, feats: Features, image: torch.Tensor, region: Region = WHOLE) -> Sums:
        return self._terms().sums(feats, image, region)

    def total(self, sums: Sums) -> torch.Tensor:
        return self._terms().total(sums)

    def extrapolate(self, last: Sums, before: Sums) -> Sums:
        return self._terms().extrapolate(last, before)

    def extra_repr(self) -> str:
        layers = ", ".join(f"{k}: {v:.3g}" for k, v in self.weights.items())
        return f"weight={self.weight:g}, layers={{{layers}}}"


class ContentObjective(ImageObjective):
    """Keep the content image's features (MSE at each layer). A batch of content images pairs with
    the batch being optimised, one content image per output image (or one for all)."""

    STORED = ("image",)

    def __init__(self, image: torch.Tensor | None, layers: LayerWeights, weight: float = 1.0):
        super().__init__(layers, weight, "Content loss")
        self.register_buffer("image", check_image(image, "content image"))

    def retarget(self, net: FeatureNet, size: Size, grid: TileGrid | None = None) -> list[str]:
        image = resize(self.image, size)
        with torch.no_grad():
            feats = net(image) if grid is None else tiled_features(net, image, grid, self.weights)
        self.loss = Sum(self.weight * w * ContentLoss(layer, feats[layer]) for layer, w in self.weights.items()
                        ).place(net.cnn.device, image.device)
        return _stretched("content image", tuple(self.image.shape[-2:]), size)


class StyleObjective(ImageObjective):
    """Match the style images' feature statistics (Gram matrices or mean and covariance) at each layer.

    Several style images blend by `blend` weights (a batch inside one style tensor shares its
    weight equally); `mask` confines the statistics of the output to a region; `style_scale` sizes
    each style image relative to the output (1: its longer side equals the output's longer side).
    """

    STORED = ("style_", "mask")

    def __init__(self, images: torch.Tensor | Sequence[torch.Tensor], layers: LayerWeights, weight: float = 1.0,
                 blend: Sequence[float] | None = None, statistic: str = "gram",
                 mask: torch.Tensor | None = None, style_scale: float = 1.0):
        super().__init__(layers, weight, "Style loss")
        images = [images] if isinstance(images, torch.Tensor) else list(images)
        if not images:
            raise ValueError("Style loss: no style image given; connect at least one.")
        self.blend = blend_weights(blend, len(images))
        if statistic not in STATISTICS:
            raise ValueError(f"Style statistic must be one of {', '.join(STATISTICS)}; got {statistic!r}.")
        if not style_scale > 0:
            raise ValueError(f"style_scale must be > 0 (1 = style image as large as the output); got {style_scale}.")
        self.statistic, self.style_scale, self.count = statistic, float(style_scale), len(images)
        for i, image in enumerate(images):
            self.register_buffer(f"style_{i}", check_image(image, f"style image {i + 1}"))
        self.register_buffer("mask", None if mask is None else check_mask(mask))

    @property
    def images(self) -> list[torch.Tensor]:
        return [getattr(self, f"style_{i}") for i in range(self.count)]

    def map_images(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Replaces every style image `s` by `fn(s)` (colour matching before targets are made)."""
        for i, image in enumerate(self.images):
            setattr(self, f"style_{i}", fn(image))

    def retarget(self, net: FeatureNet, size: Size, grid: TileGrid | None = None) -> list[str]:
        targets, warnings = style_targets(net, self.images, self.blend, size, self.style_scale, self.weights, grid)
        loss = STATISTICS[self.statistic]
        self.loss = Sum(self.weight * w * loss(layer, targets[layer], self.mask) for layer, w in self.weights.items())
        if self.mask is not None:
            warnings += _stretched("style mask", tuple(self.mask.shape[-2:]), size)
        return warnings

    def extra_repr(self) -> str:
        blend = ", ".join(f"{b:.3g}" for b in self.blend)
        return (f"{super().extra_repr()}, statistic={self.statistic}, images={self.count}, blend=[{blend}], "
                f"style_scale={self.style_scale:g}" + (", masked" if self.mask is not None else ""))


def blend_weights(blend: Sequence[float] | None, count: int) -> list[float]:
    """Blend weights for `count` style images, normalised to sum to 1 (equal when None)."""
    if blend is None:
        return [1.0 / count] * count
    blend = [float(b) for b in blend]
    if len(blend) != count:
        raise ValueError(f"Got {count} style images but {len(blend)} blend weights; give one weight per image.")
    if any(not b >= 0 for b in blend):
        raise ValueError(f"Blend weights must be ≥ 0; got {blend}.")
    total = sum(blend)
    if total == 0:
        raise ValueError("Every blend weight is 0: no style to match. Give at least one style image a positive weight.")
    return [b / total for b in blend]


def style_size(image_size: Size, size: Size, style_scale: float, min_size: int) -> tuple[Size, float]:
    """The size to give a style image so its longer side is `style_scale` × the output's longer side
    (and its shorter side at least the net's `min_size`), and the factor by which it is enlarged."""
    h, w = image_size
    factor = max(style_scale * max(size) / max(h, w), min_size / min(h, w))
    return (max(round(h * factor), min_size), max(round(w * factor), min_size)), factor


def style_targets(net: FeatureNet, images: Sequence[torch.Tensor], weights: Sequence[float], size: Size,
                  style_scale: float = 1.0, layers: Iterable[str] | None = None,
                  grid: TileGrid | None = None) -> tuple[dict[str, Moments], list[str]]:
    """The blended moments at each layer of `images` (weights normalised here) for an output of `size`,
    and warnings about style images that had to be enlarged a lot. Style images larger than a tile of
    `grid` are read tile by tile."""
    layers = list(layers if layers is not None else net.layers)
    weights = blend_weights(weights, len(images))
    parts: dict[str, list[Moments]] = {layer: [] for layer in layers}
    warnings = []
    with torch.no_grad():
        for i, image in enumerate(images):
            have = tuple(check_image(image, f"style image {i + 1}").shape[-2:])
            scaled, factor = style_size(have, size, style_scale, net.min_size)
            if factor > UPSCALE_WARNING:
                warnings.append(f"Style image {i + 1} ({have[1]}×{have[0]}) is enlarged {factor:.1f}× to "
                                f"{scaled[1]}×{scaled[0]} for this output and style scale: its texture will "
                                f"look blurred. Use a larger style image or a smaller style scale.")
            image = resize(image, scaled)
            if grid is None or grid.fits(*scaled):
                feats = net(image)
                sums = {layer: moment_sums(feats[layer]) for layer in layers}
            else:
                sums = tiled_moment_sums(net, image, grid, layers)
            for layer in layers:
                parts[layer].append(moments_from(sums[layer]))
    return {layer: blend_moments(parts[layer], weights) for layer in layers}, warnings


def tiled_moment_sums(net: FeatureNet, image: torch.Tensor, grid: TileGrid,
                      layers: Iterable[str]) -> dict[str, Sums]:
    """`moment_sums` of a large image's features at `layers`, added up tile by tile."""
    layers = list(layers)
    total = tiled_sums(net, image, grid, lambda feats, crop, region: {
        f"{layer}/{key}": value for layer in layers for key, value in moment_sums(feats[layer]).items()})
    return {layer: {key: total[f"{layer}/{key}"] for key in ("x", "xx", "w")} for layer in layers}


def image_objectives(objective: Objective) -> list[ImageObjective]:
    """The image-made terms inside `objective`, which need `retarget` before use."""
    return [m for m in objective.modules() if isinstance(m, ImageObjective)]
