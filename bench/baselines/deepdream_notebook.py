"""The google/deepdream notebook's loop (dream.ipynb: `make_step` and `deepdream`), written here.

The notebook's settings: BVLC GoogLeNet, `end='inception_4c/output'`, the L2 objective (the end
blob's gradient is its own activation, i.e. ascent on ½Σa²), `octave_n=4`, `octave_scale=1.4`,
`iter_n=10` steps per octave, `step_size=1.5` in the net's input units (0..255) divided by the mean
|gradient|, `jitter=32` (the image is rolled by a random offset, stepped, and rolled back), clipped to
the valid pixel range after each step. Octave bases are made by zooming the previous one down by
1/1.4 (bilinear, as scipy's `nd.zoom(order=1)`); the detail (dream minus its octave base) is zoomed up
and added to the next octave's base. Each step runs the whole image forward to the end layer and back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from engine.models import CNN

from . import from_net, to_net


@dataclass(frozen=True)
class Recipe:
    end: str = "inception_4c/output"
    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 10
    step_size: float = 1.5
    jitter: int = 32


@dataclass
class Iterate:
    octave: int
    step: int
    dream: torch.Tensor  # net space, at the octave's size
    base: torch.Tensor  # the octave's base
    full: torch.Tensor  # the whole image, net space
    cnn: CNN

    def image(self) -> torch.Tensor:
        """The dream so far at full size: the whole image plus the detail zoomed up (RGB, not clamped);
        made on demand, outside the loop's own work."""
        with torch.no_grad():
            return from_net(self.cnn, self.full + zoom(self.dream - self.base, tuple(self.full.shape[-2:])))


def zoom(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear zoom with corners aligned, as scipy's nd.zoom(order=1)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class DeepDreamNotebook:
    def __init__(self, cnn: CNN, image: torch.Tensor, recipe: Recipe = Recipe()):
        self.cnn, self.image, self.recipe = cnn, image, recipe
        layer = cnn.layer(recipe.end)
        self.stages = [cnn.module.get_submodule(s) for s in cnn.spec.stages[:layer.stage + 1]]
        self.end = cnn.module.get_submodule(layer.module)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """The end layer's activation of a net-space input (the net run up to that layer's stage)."""
        out = []
        handle = self.end.register_forward_hook(lambda module, inputs, output: out.append(output))
        try:
            for stage in self.stages:
                x = stage(x)
        finally:
            handle.remove()
        return out[0]

    def objective(self, image: torch.Tensor) -> float:
        """The mean squared activation at the end layer of an RGB image in [0, 1] (a delivered result)."""
        with torch.no_grad():
            return self.activation(to_net(self.cnn, image.to(self.image))).pow(2).mean().item()

    def run(self, seed: int = 0) -> Iterator[Iterate]:
        r = self.recipe
        generator = torch.Generator().manual_seed(seed)
        full = to_net(self.cnn, self.image)
        low, high = to_net(self.cnn, torch.zeros_like(self.image[:, :, :1, :1])), \
            to_net(self.cnn, torch.ones_like(self.image[:, :, :1, :1]))
        bases = [full]
        for _ in range(r.octaves - 1):
            h, w = bases[-1].shape[-2:]
            bases.append(zoom(bases[-1], (round(h / r.octave_scale), round(w / r.octave_scale))))
        detail = torch.zeros_like(bases[-1])
        for octave, base in enumerate(reversed(bases)):
            x = base + zoom(detail, tuple(base.shape[-2:]))
            for step in range(1, r.steps + 1):
                dy, dx = torch.randint(-r.jitter, r.jitter + 1, (2,), generator=generator).tolist()
                rolled = torch.roll(x, (dy, dx), (-2, -1)).requires_grad_(True)
                (self.activation(rolled).pow(2).sum() / 2).backward()
                g = rolled.grad
                with torch.no_grad():
                    rolled += r.step_size / g.abs().mean() * g
                    x = torch.roll(rolled, (-dy, -dx), (-2, -1)).clamp(low, high)
                yield Iterate(octave, step, x, base, full, self.cnn)
            detail = x - base
