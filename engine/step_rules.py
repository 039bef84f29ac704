"""Step rules beside torch.optim's: DeepDream's normalised gradient step and L-BFGS inside bounds."""
from __future__ import annotations

import math
from typing import Callable, Iterable, Literal

import torch

from .filters import blur_cascade, laplacian_normalize

Normalize = Literal["mean_abs", "std", "laplacian"]
NORMALIZERS = ("mean_abs", "std", "laplacian")


class NormalizedDescent(torch.optim.Optimizer):
    """x -= step_size * g / scale(g), with g the gradient of each image, optionally smoothed first.

    `smoothing` > 0 blurs g with pytorch-deepdream's cascade of three Gaussians (sigma × 0.5, 1, 2, in
    pixels of the current octave). `normalize` then divides by the mean |g| (the DeepDream notebook) or
    the std of g; "laplacian" first divides each band of g's Laplacian pyramid by its own size (the TF
    tutorial's lap_normalize), which gives coarse structure more of the step, then by the mean |g|.
    Dividing by the gradient's own size makes the step size a pixel distance (a fraction of the 0..1
    range), independent of the layer or model.
    """

    def __init__(self, params: Iterable[torch.Tensor], step_size: float, normalize: Normalize = "mean_abs",
                 smoothing: float = 0.0, eps: float = 1e-8):
        if step_size <= 0:
            raise ValueError(f"step_size must be > 0; got {step_size}.")
        if normalize not in NORMALIZERS:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZERS)}; got {normalize!r}.")
        if smoothing < 0:
            raise ValueError(f"smoothing must be 0 (off) or a blur radius in pixels > 0; got {smoothing}.")
        super().__init__(params, dict(step_size=step_size, normalize=normalize, smoothing=smoothing, eps=eps))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(group["step_size"] * normalized(p.grad, group["normalize"], group["smoothing"],
                                                           group["eps"]))
        return loss


def normalized(g: torch.Tensor, normalize: Normalize, smoothing: float = 0.0, eps: float = 1e-8) -> torch.Tensor:
    """A BCHW gradient smoothed and normalised as `NormalizedDescent` steps along it."""
    if smoothing > 0:
        g = blur_cascade(g, smoothing)
    if normalize == "laplacian":
        g = laplacian_normalize(g, eps=eps)
    flat = g.flatten(1)
    scale = flat.std(1) if normalize == "std" else flat.abs().mean(1)
    return g / (scale.view((-1,) + (1,) * (g.dim() - 1)) + eps)


def shrink(loss: torch.Tensor, slope: torch.Tensor, trial: torch.Tensor) -> float:
    """The factor a rejected step is shortened by: to the minimum of the parabola through the loss, its slope
    along the step and the trial's loss, kept within [0.1, 0.5] (Nocedal & Wright's safeguarded quadratic
    backtracking); 0.1 for a NaN or infinite trial."""
    curvature = (trial - loss - slope).item()
    if not 0 < curvature < math.inf:  # NaN or infinite trials included
        return 0.1
    return min(max(-slope.item() / (2 * curvature), 0.1), 0.5)


class BoundedLBFGS(torch.optim.Optimizer):
    """L-BFGS on variables kept in [low, high] (pixels in [0, 1]) whose loss never rises from step to step.

    torch.optim.LBFGS knows no bounds: clamping after its step makes its curvature pairs describe steps
    it did not take, and the clamped image's loss rises again after ~100 steps. Here (a projected
    quasi-Newton step, as in Bertsekas' projected Newton methods and L-BFGS-B's active set):

    - a variable on a bound whose gradient points outwards is held: its gradient and step are zero;
    - the step is projected onto the bounds, and the curvature pair is the step actually taken;
    - a step whose loss does not fall enough (Armijo, `c1`) is shortened (`shrink`), up to `backtracks`
      times; if none helps, the variables go back and are evaluated there again, and the history restarts.

    So one step is usually one loss evaluation, every step ends with an evaluation at the point it
    accepted (a closure's bookkeeping always describes the current variables), and the loss never rises.
    The first step moves the variable that has the largest gradient by `first_step`. Each step reads the
    loss on the host (one synchronisation, as every L-BFGS). Nothing else may move the variables between
    steps (clamping them to the bounds is a no-op).
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1.0, history: int = 20, low: float = 0.0,
                 high: float = 1.0, first_step: float = 0.02, backtracks: int = 4, c1: float = 1e-4):
        if lr <= 0:
            raise ValueError(f"lr must be > 0; got {lr}.")
        if history < 1:
            raise ValueError(f"history must be at least 1; got {history}.")
        super().__init__(params, dict(lr=lr))
        self.history, self.low, self.high = history, low, high
        self.first_step, self.backtracks, self.c1 = first_step, backtracks, c1
        self.params = [p for group in self.param_groups for p in group["params"]]
        self._s: list[torch.Tensor] = []
        self._y: list[torch.Tensor] = []
        self._scale = 1.0
        self._loss: torch.Tensor | None = None
        self._grad: torch.Tensor | None = None

    def _flat(self, tensors: Iterable[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t.reshape(-1) for t in tensors])

    def _gradient(self) -> torch.Tensor:
        return self._flat(p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params)

    def _set(self, flat: torch.Tensor) -> None:
        offset = 0
        for p in self.params:
            p.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()

    def _evaluate(self, closure: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            loss = closure()
        return loss.detach(), self._gradient()

    def _direction(self, free_grad: torch.Tensor) -> torch.Tensor:
        """-H g by the two-loop recursion over the history."""
        q = -free_grad
        alphas = []
        for s, y in zip(reversed(self._s), reversed(self._y)):
            a = s.dot(q) / y.dot(s)
            q = q - a * y
            alphas.append(a)
        d = q * self._scale
        for (s, y), a in zip(zip(self._s, self._y), reversed(alphas)):
            d = d + (a - y.dot(d) / y.dot(s)) * s
        return d

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        if closure is None:
            raise ValueError("BoundedLBFGS needs a closure that evaluates the loss and its gradient.")
        x = self._flat(p.detach() for p in self.params)
        if self._loss is None:
            self._loss, self._grad = self._evaluate(closure)
        loss, g = self._loss, self._grad
        free = ~(((x <= self.low) & (g > 0)) | ((x >= self.high) & (g < 0)))
        free_grad = g * free
        if self._s:
            d = self._direction(free_grad) * free
            t = self.param_groups[0]["lr"]
            if not free_grad.dot(d) < 0:  # not a descent direction: start the history again
                self._s, self._y, self._scale = [], [], 1.0
        if not self._s:
            d = -free_grad
            t = self.first_step / d.abs().max().clamp_min(1e-30)
        for _ in range(self.backtracks + 1):
            self._set((x + t * d).clamp_(self.low, self.high))
            new_loss, new_grad = self._evaluate(closure)
            s = self._flat(p.detach() for p in self.params) - x
            slope = g.dot(s)
            if new_loss <= loss + self.c1 * slope:  # False for NaN
                break
            t *= shrink(loss, slope, new_loss)
        else:
            self._set(x)
            self._loss, self._grad = self._evaluate(closure)
            self._s, self._y, self._scale = [], [], 1.0
            return self._loss
        y = new_grad - g
        sy = s.dot(y)
        if sy > 1e-8 * s.norm() * y.norm():  # positive curvature along the step: keep the pair
            self._s, self._y = (self._s + [s])[-self.history:], (self._y + [y])[-self.history:]
            self._scale = (sy / y.dot(y)).item()
        self._loss, self._grad = new_loss, new_grad
        return new_loss
