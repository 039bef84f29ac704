"""Random views of the image that the network scores; gradients flow back through them."""
from __future__ import annotations

from typing import Callable, Sequence

import torch

Transform = Callable[[torch.Tensor], torch.Tensor]


def jitter(max_shift: int, generator: torch.Generator) -> Transform:
    """Rolls the image by up to `max_shift` pixels each call, so no pixel grid is favoured."""
    def roll(x: torch.Tensor) -> torch.Tensor:
        if max_shift <= 0:
            return x
        dy, dx = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
        return torch.roll(x, (dy, dx), (-2, -1))
    return roll


def compose(transforms: Sequence[Transform]) -> Transform:
    def apply(x: torch.Tensor) -> torch.Tensor:
        for t in transforms:
            x = t(x)
        return x
    return apply
