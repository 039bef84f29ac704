"""Step rules beside torch.optim's: DeepDream's normalised gradient step."""
from __future__ import annotations

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
