"""The classic recipes, re-written here in plain PyTorch as baselines for bench/time_to_loss.py.

Each module cites the recipe's settings and runs its loop step by step (a generator), so a benchmark
can interleave it with Reverie's engine. Only the network definitions come from the engine (the same
weights either way); the loops, losses and preprocessing are the recipes' own.
"""
from __future__ import annotations

import torch

from engine.models import CNN


def to_net(cnn: CNN, image: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] to the network's input space (for Caffe nets: BGR, 0..255, minus the mean)."""
    return cnn.preprocess(image)


def from_net(cnn: CNN, x: torch.Tensor) -> torch.Tensor:
    """The network's input space back to RGB in [0, 1] (not clamped)."""
    p = cnn.preprocess
    mean = x.new_tensor(p.mean).view(1, 3, 1, 1)
    std = x.new_tensor(p.std).view(1, 3, 1, 1)
    image = (x * std + mean) / p.scale
    return image.flip(1) if p.bgr else image


def delivered(image: torch.Tensor) -> torch.Tensor:
    """What a user gets from an image: clamped to [0, 1] and quantised to 8 bits (as uint8)."""
    return image.detach().clamp(0, 1).mul(255).round().to(torch.uint8)
