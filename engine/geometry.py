"""Where a layer's features sit in the image: stride, receptive margins and feature-map sizes, measured.

Tiled optimisation needs, for each layer, how many pixels one feature step covers (its stride) and
how far a feature's receptive field reaches before and after the pixels it stands for, so that a
tile's own features can be computed exactly from a crop with a halo. Both are measured on thin
strips of random pixels (a forward pass for sizes, a backward pass for the receptive field), so
every architecture, padding and pooling variant gets its true numbers, not a table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import torch
from torch import nn

if TYPE_CHECKING:
    from .features import FeatureNet

STRIDE_PROBE = 256  # two strip lengths this far apart give the stride (any power of two up to it)
LONGEST_PROBE = 8192
_MEASURED: WeakKeyDictionary[nn.Module, dict[str, LayerGeometry]] = WeakKeyDictionary()  # per loaded CNN


@dataclass(frozen=True)
class LayerGeometry:
    """`stride` pixels per feature; a feature owned by pixels [a, a + stride) reads pixels
    [a - before, a + stride + after) of the image (its theoretical receptive field)."""

    stride: int
    before: int
    after: int


class Geometry:
    """The layers' geometry for one feature net, measured once; feature-map sizes per image size."""

    def __init__(self, net: FeatureNet):
        self.net = net
        self.strip = net.min_size
        known = _MEASURED.setdefault(net.cnn.module, {})
        missing = [layer for layer in net.layers if layer not in known]
        if missing:
            known.update(_measure(net, missing, self.strip))
        self.layers = {layer: known[layer] for layer in net.layers}
        self._sizes: dict[tuple[int, int], dict[str, tuple[int, int]]] = {}

    @property
    def stride(self) -> int:
        """The step every tile boundary must be a multiple of: the largest layer stride."""
        return max(g.stride for g in self.layers.values())

    @property
    def margin(self) -> int:
        """The smallest halo (a multiple of `stride`) with which every layer's owned features are exact."""
        need = max(max(g.before, g.after) for g in self.layers.values())
        return -(-need // self.stride) * self.stride

    def sizes(self, height: int, width: int) -> dict[str, tuple[int, int]]:
        """Each layer's feature-map size (height, width) for a `height`×`width` input."""
        key = (height, width)
        if key not in self._sizes:
            rows, cols = _lengths(self.net, height, self.strip, axis=-2), _lengths(self.net, width, self.strip)
            self._sizes[key] = {layer: (rows[layer], cols[layer]) for layer in self.layers}
        return self._sizes[key]


def _strip(net: FeatureNet, length: int, thickness: int, axis: int = -1, grad: bool = False) -> torch.Tensor:
    shape = (1, 3, thickness, length) if axis == -1 else (1, 3, length, thickness)
    g = torch.Generator().manual_seed(length)
    x = torch.rand(shape, generator=g).to(net.cnn.device)
    return x.requires_grad_(grad)


def _lengths(net: FeatureNet, length: int, thickness: int, axis: int = -1) -> dict[str, int]:
    """Each layer's feature count along `axis` for an input `length` pixels long."""
    with torch.no_grad():
        feats = net(_strip(net, length, thickness, axis))
    return {layer: f.shape[axis] for layer, f in feats.items()}


def _measure(net: FeatureNet, layers: list[str], thickness: int) -> dict[str, LayerGeometry]:
    short = max(4 * thickness, 2 * STRIDE_PROBE)
    a, b = _lengths(net, short, thickness), _lengths(net, short + STRIDE_PROBE, thickness)
    strides = {}
    for layer in layers:
        steps = b[layer] - a[layer]
        if steps <= 0 or STRIDE_PROBE % steps:
            raise ValueError(f"Layer {layer!r} does not grow by a whole stride with its input "
                             f"({a[layer]} -> {b[layer]} features for +{STRIDE_PROBE} pixels); it cannot be tiled.")
        strides[layer] = STRIDE_PROBE // steps
    geometry, pending, length = {}, set(layers), short
    while pending:
        x = _strip(net, length, thickness, grad=True)
        with torch.enable_grad():
            feats = net(x)
        for layer in sorted(pending):
            f, s = feats[layer], strides[layer]
            centre = f.shape[-1] // 2
            (grad,) = torch.autograd.grad(f[..., centre].sum(), x, retain_graph=True)
            reads = grad.abs().sum((0, 1, 2)).nonzero().flatten()
            first, last = int(reads[0]), int(reads[-1])
            if first == 0 or last == length - 1:
                if length >= LONGEST_PROBE:
                    raise ValueError(f"Layer {layer!r} reads more than {LONGEST_PROBE // 2} px on each side: "
                                     f"too far to tile; use an earlier layer or no tiling.")
                continue  # the field reaches the strip's ends: measure again on a longer strip
            offset = first - centre * s  # where feature 0's field would start
            # one stride of slack on each side: a max-pool's gradient may miss its field's outermost pixels
            geometry[layer] = LayerGeometry(s, max(0, -offset) + s, max(0, offset + last - first + 1 - s) + s)
            pending.discard(layer)
        length *= 2
    return geometry
