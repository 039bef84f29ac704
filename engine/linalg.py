"""Square roots of symmetric positive semi-definite matrices, by eigendecomposition in float64."""
from __future__ import annotations

import torch


def float64_device(device: torch.device) -> torch.device:
    """Where float64 maths for tensors on `device` runs: there, except on MPS, which has no float64
    (the CPU then; only small matrices and one-off colour statistics go there)."""
    return torch.device("cpu") if device.type == "mps" else device


def to_float64(t: torch.Tensor) -> torch.Tensor:
    return t.to(float64_device(t.device), torch.float64)


def psd_power(a: torch.Tensor, power: float) -> torch.Tensor:
    """`a ** power` for symmetric PSD matrices `[..., n, n]` (0.5: square root, -0.5: inverse root).

    Eigenvalues below a tiny fraction of the largest are raised to the power as if they were that
    fraction, so inverse roots of rank-deficient matrices stay finite. No gradient (targets only).
    """
    vals, vecs = torch.linalg.eigh(to_float64(_symmetric(a.detach())))
    vals = vals.clamp_min(_floor(vals))
    return ((vecs * vals.pow(power).unsqueeze(-2)) @ vecs.mT).to(a.device, a.dtype)


def _symmetric(a: torch.Tensor) -> torch.Tensor:
    return (a + a.mT) / 2


def _floor(vals: torch.Tensor) -> torch.Tensor:
    return vals[..., -1:].abs().clamp_min(1e-30) * 1e-12


class _TraceSqrtm(torch.autograd.Function):
    """tr(√M) of symmetric PSD `M`, with the spectral gradient ½ M^(-½).

    The gradient of a trace of a matrix function needs the eigenvectors only, never the differences
    of eigenvalues that make `eigh`'s own backward blow up on the (near-)repeated eigenvalues that
    covariances of ReLU features always have; crowsonkb's StyleLossW2 uses Newton-Schulz iterations
    for the same reason.
    """

    @staticmethod
    def forward(ctx, m: torch.Tensor) -> torch.Tensor:
        vals, vecs = torch.linalg.eigh(to_float64(_symmetric(m)))
        ctx.save_for_backward(vals, vecs)
        ctx.dtype, ctx.device = m.dtype, m.device
        return vals.clamp_min(0).sqrt().sum(-1).to(m.device, m.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        vals, vecs = ctx.saved_tensors
        inv_sqrt = vals.clamp_min(_floor(vals)).rsqrt() / 2
        g = (vecs * inv_sqrt.unsqueeze(-2)) @ vecs.mT
        return (g * to_float64(grad)[..., None, None]).to(ctx.device, ctx.dtype)


def trace_sqrtm(m: torch.Tensor) -> torch.Tensor:
    """tr(√M) for a batch of symmetric PSD matrices `[..., n, n]`, differentiable and stable."""
    return _TraceSqrtm.apply(m)
