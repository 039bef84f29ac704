"""Random views of the image that the network scores; gradients flow back through them."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

Transform = Callable[[torch.Tensor], torch.Tensor]


def jitter(max_shift: int, generator: torch.Generator) -> Transform:
    """Rolls the image by up to `max_shift` pixels each call, so no pixel grid is favoured."""
    def roll(x: torch.Tensor) -> torch.Tensor:
        if max_shift <= 0:
            return x
        dy, dx = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
        return torch.roll(x, (dy, dx), (-2, -1))
    return roll


def pad(width: int, value: float = 0.5) -> Transform:
    """Surrounds the image with `width` pixels of one grey, so the transforms after it move no content
    across the border (Lucid's first transform)."""
    def apply(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (width,) * 4, value=value)
    return apply


def random_scale(scales: Sequence[float], generator: torch.Generator) -> Transform:
    """Resizes the image by a factor drawn from `scales` each call (bilinear)."""
    def apply(x: torch.Tensor) -> torch.Tensor:
        s = scales[int(torch.randint(len(scales), (), generator=generator))]
        size = [max(1, round(n * s)) for n in x.shape[-2:]]
        return x if s == 1 else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return apply


def random_rotate(degrees: Sequence[float], generator: torch.Generator) -> Transform:
    """Rotates the image about its centre by an angle drawn from `degrees` each call (bilinear, the
    corners filled from the border)."""
    def apply(x: torch.Tensor) -> torch.Tensor:
        angle = math.radians(degrees[int(torch.randint(len(degrees), (), generator=generator))])
        if angle == 0:
            return x
        c, s = math.cos(angle), math.sin(angle)
        theta = x.new_tensor([[c, -s, 0.0], [s, c, 0.0]]).expand(x.shape[0], 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return apply


def lucid_transforms(generator: torch.Generator) -> list[Transform]:
    """Lucid's standard transforms for feature visualisation: pad 12, jitter 8, scale by 0.9 ... 1.1,
    rotate by -10° ... 10° (0° six times as likely as any other angle), jitter 4."""
    return [pad(12), jitter(8, generator), random_scale([1 + (i - 5) / 50 for i in range(11)], generator),
            random_rotate(list(range(-10, 11)) + 5 * [0], generator), jitter(4, generator)]


def compose(transforms: Sequence[Transform]) -> Transform:
    def apply(x: torch.Tensor) -> torch.Tensor:
        for t in transforms:
            x = t(x)
        return x
    return apply
