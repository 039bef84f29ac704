"""Zoom sequences: dream, zoom into the centre, dream again: the frames of a DeepDream zoom video."""
from __future__ import annotations

import dataclasses
from typing import Iterator

import torch

from .dream import DreamSettings, dream
from .features import FeatureNet
from .objectives import Objective
from .optimize import Callback, frame_progress
from .pyramid import Pyramid, resize


def zoom_in(x: torch.Tensor, factor: float) -> torch.Tensor:
    """The centre 1/`factor` of each image, scaled back up to the full size."""
    if factor < 1:
        raise ValueError(f"zoom must be at least 1 (1 = no zoom); got {factor}.")
    height, width = x.shape[-2:]
    crop_h, crop_w = max(round(height / factor), 1), max(round(width / factor), 1)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return resize(x[..., top:top + crop_h, left:left + crop_w], (height, width))


def dream_zoom(net: FeatureNet, objective: Objective, image: torch.Tensor, settings: DreamSettings, frames: int,
               zoom: float, pyramid: Pyramid | None = None, callback: Callback | None = None) -> Iterator[torch.Tensor]:
    """Yields `frames` dreamed batches: the first dreams on `image`, each next one on the previous
    frame zoomed in by `zoom`. Frame f is seeded with `settings.seed + f`; progress counts all frames."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1; got {frames}.")
    x = image
    for frame in range(frames):
        if frame:
            x = zoom_in(x, zoom)
        x = dream(net, objective, x, dataclasses.replace(settings, seed=settings.seed + frame), pyramid,
                  frame_progress(callback, frame, frames))
        yield x
