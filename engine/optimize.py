"""The one optimisation loop behind Dream and Optimize."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch

from .features import FeatureNet
from .objectives import Objective
from .tiles import Evaluate, LossFn
from .transforms import Transform


Span = tuple[float, float]  # (share of a run done before a level, share the level takes)


@dataclass
class Progress:
    """Where a run is: reported after every step. A callback may raise to stop the run. `span` is the share
    of the whole run done before this level and the share this level takes (None: equal shares per level)."""

    level: int
    levels: int
    step: int
    steps: int
    loss: torch.Tensor
    image: torch.Tensor
    span: Span | None = None

    def __post_init__(self):
        if self.span is None:
            self.span = (self.level / self.levels, 1 / self.levels)

    @property
    def done(self) -> float:
        """Fraction of the whole run finished."""
        before, share = self.span
        return before + share * self.step / self.steps


def spans(steps: Sequence[int]) -> list[Span]:
    """Each level's `Progress.span` in a run of levels with these steps."""
    total = sum(steps)
    return [(sum(steps[:i]) / total, n / total) for i, n in enumerate(steps)]


class Diverged(ValueError):
    """The run went wrong (see `Watch`). `image` is the best image (lowest loss) as of the last check that
    found the run healthy, in [0, 1]; None when no evaluation had a finite loss. `step` is where it was noticed."""

    def __init__(self, message: str, image: torch.Tensor | None, step: int):
        super().__init__(message)
        self.image, self.step = image, step


class NonFiniteLoss(Diverged):
    """The loss or the image became NaN or infinite."""


Callback = Callable[[Progress], None]


def frame_progress(callback: Callback | None, frame: int, frames: int) -> Callback | None:
    """Reports the levels of one frame of a sequence (a zoom, a clip) as part of the whole sequence."""
    if callback is None:
        return None

    def report(p: Progress) -> None:
        before, share = p.span
        callback(dataclasses.replace(p, level=frame * p.levels + p.level, levels=frames * p.levels,
                                     span=((frame + before) / frames, share / frames)))
    return report


def kept_frames(frames: Iterator[torch.Tensor], total: int, warnings: list[str]) -> Iterator[torch.Tensor]:
    """The frames of a sequence until one diverges: its last good image ends the sequence, and `warnings` says
    so. A frame that diverged with no good image raises its `Diverged`."""
    made = 0
    try:
        for frame in frames:
            made += 1
            yield frame
    except Diverged as e:
        if e.image is None:
            raise
        warnings.append(f"Stopped at frame {made + 1} of {total}: {e}" if total > 1 else str(e))
        yield e.image


def feature_loss(net: FeatureNet, objective: Objective, transform: Transform | None = None) -> LossFn:
    """image -> loss per image: the objective of the net's features of a (transformed) view, on the net's
    device (an image kept in host memory gets its gradient back there)."""
    def loss(image: torch.Tensor) -> torch.Tensor:
        image = image.to(net.cnn.device)
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


COPY_DTYPE = torch.float16  # of the images Watch keeps
CHECK_EVERY = 8  # steps between reads of the run's health by the host (one sync each; L-BFGS syncs every step)
SATURATED = 0.5  # diverged: more than this share of the pixel values pinned at 0 or 1 ...
SATURATION_RISE = 0.25  # ... and at least this much more of them than at the start
NOISY = 0.25  # diverged: neighbouring pixels differ by more than this on average, and twice as much as at the start
RISE = 0.5  # a step is worse when its loss gave back more than this share of the progress from the first loss
PATIENCE = 20  # diverged: this many worse steps in a row
TOO_LARGE = "The learning rate or step size is probably too large for this objective"
START_NOT_FINITE = ("No step size is to blame: the network or the objective gives NaN or infinity on it (a network in "
                    "float16 overflows beyond 65504: Load CNN's precision float32 or bfloat16 avoids that)")


def pinned(x: torch.Tensor) -> torch.Tensor:
    """Per image: the share of its values at 0 or 1 (clamped)."""
    return ((x <= 0) | (x >= 1)).flatten(1).float().mean(1)


def roughness(x: torch.Tensor) -> torch.Tensor:
    """Per image: the mean absolute difference between neighbouring pixels (about 0.03 to 0.1 for photographs
    and paintings, 1/3 for uniform noise, 1/2 for saturated noise)."""
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
    return (dx + dy) / 2


class Watch:
    """Follows a run on the device, without a host sync per step, and tells when it has diverged: a NaN or
    infinite loss or image, the pixels saturating (pinned at 0 or 1), the image turning to noise, or the loss
    rising for `PATIENCE` steps in a row.

    It keeps the best image so far (lowest finite loss, per image), which a run stopped by a NaN or a rising
    loss returns, and at each check that finds the run healthy a copy of it (at first the starting image),
    which a saturated or noisy run returns (its best loss may belong to an image already going wrong). Both
    copies are float16 (pixels in [0, 1] to within 2⁻¹², finer than the 8 bits an image is saved with): at
    print sizes they would otherwise be two of the run's largest buffers. (An image kept in host memory while
    the network runs on a GPU waits for the device anyway: its tiles cross over every step.)
    """

    def __init__(self, image: torch.Tensor):
        x = image.detach()
        self.dtype = x.dtype
        self.start_pinned, self.start_rough = pinned(x), roughness(x)
        self.best, self.kept, self.kept_step = x.to(COPY_DTYPE, copy=True), x.to(COPY_DTYPE, copy=True), 0
        self.best_loss = torch.full((x.shape[0],), torch.inf, device=x.device)
        self.first: torch.Tensor | None = None
        self.evaluations = 0
        self.non_finite_at = torch.zeros((), dtype=torch.long, device=x.device)  # first evaluation with NaN/inf
        self.streak = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)

    def record(self, loss: torch.Tensor, image: torch.Tensor) -> None:
        """One evaluation: `loss` per image of `image` (before the step that follows it)."""
        loss = loss.detach()
        self.evaluations += 1
        finite = torch.isfinite(loss)
        self.non_finite_at = torch.where((self.non_finite_at == 0) & ~finite.all(), self.evaluations,
                                         self.non_finite_at)
        improved = finite & (loss < self.best_loss)
        self.best_loss = torch.where(improved, loss, self.best_loss)
        torch.where(improved.view(-1, *[1] * (image.dim() - 1)), image.detach().to(COPY_DTYPE), self.best,
                    out=self.best)
        if self.first is None:
            self.first = loss.clone()
        worse = loss > self.best_loss + RISE * (self.first - self.best_loss)  # False for NaN
        self.streak = torch.where(worse, self.streak + 1, 0)

    def check(self, image: torch.Tensor, step: int, steps: int, where: str) -> Diverged | None:
        """The divergence noticed by `step` (of `steps`; `where` names the level), or None: then the best image
        so far is kept. One host sync."""
        x = image.detach()
        now_pinned, now_rough = pinned(x), roughness(x)
        saturated = (now_pinned > SATURATED) & (now_pinned > self.start_pinned + SATURATION_RISE)
        noisy = (now_rough > NOISY) & (now_rough > 2 * self.start_rough)
        image_bad = torch.where(torch.isfinite(x).all(), 0, step)
        flags = torch.stack([self.non_finite_at, image_bad, saturated.any(), noisy.any(),
                             (self.streak >= PATIENCE).any(), torch.isfinite(self.best_loss).all()])
        non_finite_at, image_bad, is_saturated, is_noisy, is_rising, any_finite = flags.tolist()
        if non_finite_at == 1:  # before any step: the objective or the network, not the step size
            return self._stop(NonFiniteLoss, "the loss of the starting image is NaN or infinite", self.best if
                              any_finite else None, steps, where, cause=START_NOT_FINITE)
        if non_finite_at or image_bad:
            what = f"the loss became NaN or infinite at step {non_finite_at} of {steps}" if non_finite_at else \
                f"the image became NaN or infinite by step {image_bad} of {steps}"
            return self._stop(NonFiniteLoss, what, self.best if any_finite else None, steps, where)
        if is_saturated:
            i = int((now_pinned - self.start_pinned).argmax())
            return self._stop(Diverged, f"by step {step} of {steps}, {now_pinned[i]:.0%} of the pixel values were pinned at "
                              f"0 or 1 ({self.start_pinned[i]:.0%} at the start)", self.kept, steps, where)
        if is_noisy:
            i = int((now_rough / self.start_rough.clamp_min(1e-6)).argmax())
            return self._stop(Diverged, f"by step {step} of {steps}, the image had turned to noise (neighbouring pixels "
                              f"differed by {now_rough[i]:.2f} on average, {self.start_rough[i]:.2f} at the start)",
                              self.kept, steps, where)
        if is_rising:
            i = int(self.streak.argmax())
            return self._stop(Diverged, f"by step {step} of {steps}, the loss had risen for {int(self.streak[i])} steps in a "
                              f"row (from its best, {self.best_loss[i]:.4g})", self.best, steps, where)
        self.kept.copy_(self.best)
        self.kept_step = step
        return None

    def _stop(self, kind: type[Diverged], what: str, image: torch.Tensor | None, steps: int, where: str,
              cause: str = TOO_LARGE) -> Diverged:
        returned = "no step had a finite loss" if image is None else \
            "the starting image is returned" if image is self.kept and self.kept_step == 0 else \
            f"the best image up to step {self.kept_step} is returned" if image is self.kept else \
            "the image with the lowest finite loss is returned"
        return kind(f"The run diverged{where}: {what}. {cause}; {returned}.",
                    None if image is None else image.to(self.dtype), self.evaluations)


def optimize(image: torch.Tensor, evaluate: Evaluate, optimizer: torch.optim.Optimizer, steps: int,
             callback: Callback | None = None, level: int = 0, levels: int = 1,
             pixels: Callable[[torch.Tensor], torch.Tensor] | None = None, span: Span | None = None) -> torch.Tensor:
    """Runs `steps` optimiser steps on the leaf tensor `image`, kept in [0, 1]; returns it detached.

    `level` of `levels` and `span` (see `Progress`) say where these steps lie in a longer run.

    With `pixels`, `image` is a parameterisation's tensor instead (a spectrum, see parameterise.py):
    `pixels(image)` is the image that is scored, reported and returned, and `image` is not clamped.

    `evaluate` computes the loss per image and accumulates its gradient: `whole_image`, or tile by tile
    (`tiles.moving_windows`, `tiles.exact_tiles`) so that memory follows the tile size.

    Every `CHECK_EVERY` steps and after the last, a `Watch` looks for divergence (NaN, saturation, noise, a
    rising loss); a diverged run stops with `Diverged` (`NonFiniteLoss` for NaN), which carries the image to
    return (see `Watch`). Between checks nothing waits for the device. Must run with autograd enabled
    (outside `torch.inference_mode()`).
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}.")
    if not torch.is_grad_enabled() or torch.is_inference_mode_enabled():
        raise RuntimeError("optimize needs autograd: run it under torch.inference_mode(False) and torch.enable_grad().")
    per_image = torch.zeros(image.shape[0], device=image.device)
    with torch.no_grad():
        watch = Watch(image if pixels is None else pixels(image))
    where = f" at level {level + 1} of {levels}" if levels > 1 else ""

    def view() -> torch.Tensor:
        return image if pixels is None else pixels(image)

    def closure() -> torch.Tensor:
        nonlocal per_image
        optimizer.zero_grad(set_to_none=True)
        scored = view()
        per_image = evaluate(scored).to(scored.device)  # the net's device may be another (see transfer)
        watch.record(per_image, scored)
        return per_image.sum()

    for step in range(1, steps + 1):
        optimizer.step(closure)
        with torch.no_grad():
            if pixels is None:
                image.clamp_(0, 1)
            shown = view().detach()
        if step % CHECK_EVERY == 0 or step == steps:
            stop = watch.check(shown, step, steps, where)
            if stop is not None:
                raise stop
        if callback is not None:
            callback(Progress(level, levels, step, steps, per_image, shown, span))
    return shown
