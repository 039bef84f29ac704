"""Lucid's redirected ReLU gradient: a channel that is zero everywhere on the starting grey still learns.

A ReLU passes no gradient where its input is negative, so a channel silent on the first image never
moves. While `RedirectedReLU` is active, every ReLU and ReLU6 of any architecture (intercepted as
torch functions, whatever module calls them) computes the same outputs, and for each image on which
its ordinary gradient is zero everywhere, passes the incoming gradient through instead, except where
that would push an input further outside the range (Lucid's `redirected_relu_grad`, used for its first
16 steps).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

RELUS = {torch.relu, F.relu, torch.Tensor.relu}


def _relu_range(func, args: tuple, kwargs: dict) -> tuple[float, float] | None:
    """The clamp range of a (non-in-place) ReLU-like call, or None for anything else."""
    if func in RELUS and not kwargs.get("inplace", False):
        return 0.0, math.inf
    if func is F.relu6 and not kwargs.get("inplace", args[1] if len(args) > 1 else False):
        return 0.0, 6.0
    if func is F.hardtanh:  # nn.ReLU6 calls hardtanh(x, 0, 6, inplace)
        given = args[1:4]
        low, high, inplace = (*given, *(-1.0, 1.0, False)[len(given):])
        low, high = kwargs.get("min_val", low), kwargs.get("max_val", high)
        if low == 0 and not kwargs.get("inplace", inplace):
            return 0.0, float(high)
    return None


class _Redirected(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, low: float, high: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return x.clamp(low, high)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        below, above = x < ctx.low, x > ctx.high
        ordinary = grad.masked_fill(below | above, 0)
        # the loss is minimised: a positive gradient lowers the input, a negative one raises it
        redirected = grad.masked_fill(below & (grad > 0) | above & (grad < 0), 0)
        silent = ordinary.reshape(x.shape[0], -1).abs().amax(1) == 0  # per image: nothing gets through
        silent = silent.view(-1, *(1,) * (x.dim() - 1))
        return torch.where(silent, redirected, ordinary), None, None


class RedirectedReLU(TorchFunctionMode):
    """Within `with RedirectedReLU():`, ReLU and ReLU6 (hardtanh 0..6) calls record the redirected gradient."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        bounds = _relu_range(func, args, kwargs)
        if bounds is None:
            return func(*args, **kwargs)
        return _Redirected.apply(args[0], *bounds)
