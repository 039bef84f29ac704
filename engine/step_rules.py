"""Step rules beside torch.optim's: DeepDream's normalised gradient step."""
from __future__ import annotations

from typing import Callable, Iterable, Literal

import torch

Normalize = Literal["mean_abs", "std"]
NORMALIZERS = ("mean_abs", "std")


class NormalizedDescent(torch.optim.Optimizer):
    """x -= step_size * g / scale(g), with scale the mean |g| or the std of g of each image.

    Dividing by the gradient's own size makes the step size a pixel distance (a fraction of the
    0..1 range), independent of the layer or model, as in the DeepDream notebook.
    """

    def __init__(self, params: Iterable[torch.Tensor], step_size: float, normalize: Normalize = "mean_abs",
                 eps: float = 1e-8):
        if step_size <= 0:
            raise ValueError(f"step_size must be > 0; got {step_size}.")
        if normalize not in NORMALIZERS:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZERS)}; got {normalize!r}.")
        super().__init__(params, dict(step_size=step_size, normalize=normalize, eps=eps))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.flatten(1)
                scale = g.abs().mean(1) if group["normalize"] == "mean_abs" else g.std(1)
                shape = (-1,) + (1,) * (p.dim() - 1)
                p.sub_(group["step_size"] * p.grad / (scale.view(shape) + group["eps"]))
        return loss
