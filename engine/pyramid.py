"""Octave pyramids: the sizes an image is processed at, smallest first."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Pyramid:
    """`octaves` sizes, each `scale` times the previous one, ending at the full size; `coarse_steps` steps at
    each size below the full one (0: as many as at the full size)."""

    octaves: int = 4
    scale: float = 1.4
    coarse_steps: int = 0

    def __post_init__(self):
        if self.octaves < 1:
            raise ValueError(f"octaves must be at least 1; got {self.octaves}.")
        if self.scale <= 1.0:
            raise ValueError(f"scale must be greater than 1; got {self.scale}.")
        if self.coarse_steps < 0:
            raise ValueError(f"coarse_steps must be 0 (as many as at the full size) or more; got {self.coarse_steps}.")

    def sizes(self, height: int, width: int, min_size: int = 1) -> list[tuple[int, int]]:
        """Octave sizes smallest first; octaves whose shorter side would be under `min_size` are left out."""
        sizes = []
        for i in reversed(range(self.octaves)):
            f = self.scale ** -i
            size = (max(round(height * f), 1), max(round(width * f), 1))
            if min(size) >= min_size or i == 0:
                sizes.append(size)
        return sizes

    def steps(self, steps: int, levels: int) -> list[int]:
        """The steps at each of `levels` sizes, smallest first, for `steps` at the full size."""
        return [self.coarse_steps or steps] * (levels - 1) + [steps]


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a BCHW batch (antialiased when shrinking)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrinking = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def analysis_size(x: torch.Tensor, min_size: int, longest: int = 512) -> torch.Tensor:
    """`x` scaled so its longer side is at most `longest` and its shorter side at least `min_size`: the size
    at which an image's features are read once (a guide's, the channels an input responds to most)."""
    h, w = x.shape[-2:]
    scale = max(min(longest / max(h, w), 1.0), min_size / min(h, w))
    return resize(x, (round(h * scale), round(w * scale)))
