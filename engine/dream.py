"""DeepDream: normalised gradient ascent on layer activations, over octaves that keep their detail."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .features import FeatureNet
from .objectives import Objective
from .optimize import Callback, Diverged, feature_loss, optimize, spans, whole_image
from .pyramid import Pyramid, resize
from .step_rules import Normalize, NormalizedDescent
from .style import check_image
from .tiles import Tiling, moving_windows
from .transforms import jitter


@dataclass(frozen=True)
class DreamSettings:
    steps: int = 10
    step_size: float = 0.01
    jitter: int = 32
    normalize: Normalize = "mean_abs"
    smoothing: float = 0.0  # sigma in pixels of the gradient's blur cascade; 0: off
    seed: int = 0
    tile: int = 0  # 0: the whole image at once; else windows of about this size (bounded memory)


def dream(net: FeatureNet, objective: Objective, image: torch.Tensor, settings: DreamSettings,
          pyramid: Pyramid | None = None, callback: Callback | None = None) -> torch.Tensor:
    """Dreams on a BCHW batch in [0, 1] and returns a new batch of the same size.

    At each octave the detail dreamed so far (dream minus the octave's own downscaled image) is
    upscaled and added to the next octave's image, so the original keeps its full-resolution
    detail instead of being replaced by an upscaled low-resolution dream.

    A dream that diverges (a step size far too large: see optimize.Watch) raises `Diverged` carrying the
    full-size image from before it went wrong.
    """
    height, width = check_image(image, "image").shape[-2:]
    if min(height, width) < net.min_size:
        raise ValueError(f"The image is {width}×{height}; {net.cnn.spec.title} needs at least "
                         f"{net.min_size}×{net.min_size} pixels. Upscale it first.")
    if 0 < settings.tile < 4 * net.min_size:
        raise ValueError(f"tile must be 0 (off) or at least {4 * net.min_size} pixels for {net.cnn.spec.title} "
                         f"(four times its smallest input); got {settings.tile}.")
    generator = torch.Generator().manual_seed(settings.seed)  # draws jitter offsets and tile grids only
    loss_fn = feature_loss(net, objective, jitter(settings.jitter, generator))
    evaluate = moving_windows(loss_fn, Tiling(settings.tile, generator)) if settings.tile else whole_image(loss_fn)
    pyramid = pyramid or Pyramid(1)
    sizes = pyramid.sizes(height, width, net.min_size)
    steps = pyramid.steps(settings.steps, len(sizes))
    shares = spans(steps)
    detail = torch.zeros_like(resize(image, sizes[0]))
    for level, size in enumerate(sizes):
        base = resize(image, size)
        x = (base + resize(detail, size)).clamp(0, 1).requires_grad_(True)
        optimizer = NormalizedDescent([x], settings.step_size, settings.normalize, settings.smoothing)
        try:
            x = optimize(x, evaluate, optimizer, steps[level], callback, level, len(sizes), span=shares[level])
        except Diverged as e:
            if e.image is not None and level < len(sizes) - 1:  # the full-size image with the detail so far
                e.image = (image + resize(e.image - base, (height, width))).clamp(0, 1)
            raise
        detail = x - base
    return x
