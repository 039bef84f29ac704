"""The one optimisation loop behind Dream and Optimize."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch

from .features import FeatureNet
from .objectives import Objective
from .tiles import Evaluate, LossFn
from .transforms import Transform


@dataclass
class Progress:
    """Where a run is: reported after every step. A callback may raise to stop the run."""

    level: int
    levels: int
    step: int
    steps: int
    loss: torch.Tensor
    image: torch.Tensor

    @property
    def done(self) -> float:
        """Fraction of all steps finished, assuming equal steps per level."""
        return (self.level + self.step / self.steps) / self.levels


class NonFiniteLoss(ValueError):
    """The loss became NaN or infinite. `image` is the last iterate whose loss was finite, clamped to
    [0, 1] (None when the first evaluation already failed); `step` is the step that failed."""

    def __init__(self, message: str, image: torch.Tensor | None, step: int):
        super().__init__(message)
        self.image, self.step = image, step


Callback = Callable[[Progress], None]


def frame_progress(callback: Callback | None, frame: int, frames: int) -> Callback | None:
    """Reports the levels of one frame of a sequence (a zoom, a clip) as part of the whole sequence."""
    if callback is None:
        return None

    def report(p: Progress) -> None:
        callback(dataclasses.replace(p, level=frame * p.levels + p.level, levels=frames * p.levels))
    return report


def feature_loss(net: FeatureNet, objective: Objective, transform: Transform | None = None) -> LossFn:
    """image -> loss per image: the objective of the net's features of a (transformed) view."""
    def loss(image: torch.Tensor) -> torch.Tensor:
        view = transform(image) if transform is not None else image
        return objective(net(view), view)
    return loss


def whole_image(loss_fn: LossFn) -> Evaluate:
    """The loss and gradient of the whole image in one forward and backward pass."""
    def evaluate(image: torch.Tensor) -> torch.Tensor:
        losses = loss_fn(image)
        losses.sum().backward()
        return losses.detach()
    return evaluate


def optimize(image: torch.Tensor, evaluate: Evaluate, optimizer: torch.optim.Optimizer, steps: int,
             callback: Callback | None = None, level: int = 0, levels: int = 1,
             pixels: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Runs `steps` optimiser steps on the leaf tensor `image`, kept in [0, 1]; returns it detached.

    With `pixels`, `image` is a parameterisation's tensor instead (a spectrum, see parameterise.py):
    `pixels(image)` is the image that is scored, reported and returned, and `image` is not clamped.

    `evaluate` computes the loss per image and accumulates its gradient: `whole_image`, or tile by tile
    (`tiles.moving_windows`, `tiles.exact_tiles`) so that memory follows the tile size.

    A NaN or infinite loss (or image) stops the run with `NonFiniteLoss`, which carries the last
    image whose loss was finite. Must run with autograd enabled (outside `torch.inference_mode()`).
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}.")
    if not torch.is_grad_enabled() or torch.is_inference_mode_enabled():
        raise RuntimeError("optimize needs autograd: run it under torch.inference_mode(False) and torch.enable_grad().")
    per_image = torch.zeros(image.shape[0], device=image.device)
    last_good: torch.Tensor | None = None
    step = 0

    def stop(what: str) -> NonFiniteLoss:
        where = f" (level {level + 1} of {levels})" if levels > 1 else ""
        return NonFiniteLoss(f"The {what} became NaN or infinite at step {step + 1} of {steps}{where}: the "
                             f"learning rate or step size is probably too large for this objective.",
                             last_good, step + 1)

    def view() -> torch.Tensor:
        return image if pixels is None else pixels(image)

    def closure() -> torch.Tensor:
        nonlocal per_image, last_good
        optimizer.zero_grad(set_to_none=True)
        scored = view()
        per_image = evaluate(scored)
        if not torch.isfinite(per_image).all():
            raise stop("loss")
        last_good = scored.detach().clamp(0, 1)  # a copy: the optimiser updates `image` in place
        return per_image.sum()

    for step in range(steps):
        optimizer.step(closure)
        with torch.no_grad():
            if pixels is None:
                image.clamp_(0, 1)
            shown = view().detach()
        if callback is not None:
            callback(Progress(level, levels, step + 1, steps, per_image, shown))
    if not torch.isfinite(shown).all():
        raise stop("image")
    return shown
