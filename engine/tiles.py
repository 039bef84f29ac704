"""Tiling: gradients of a large image computed window by window, so memory follows the tile size.

The grid moves randomly every step (like jitter), so tile borders never stay in one place and leave
no seams. Windows are about `tile` pixels wide: between a quarter and one and a half tiles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

Window = tuple[slice, slice]


@dataclass
class Tiling:
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
