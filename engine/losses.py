"""Style-transfer losses: small objectives that own their targets as buffers.

Each returns one loss per batch element. Departure from Gatys et al. (2015): every loss is divided
by the size of its own target (the target's mean square, or its second moment), so a weight of 1
means "100 % relative error costs 1" whatever the layer, the net or its input scaling (Caffe
features are ~60× larger than torchvision ones). Layer and term weights stay comparable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .half import ScaledHalf
from .linalg import psd_power, trace_sqrtm
from .objectives import WHOLE, Features, LayerTerm, Objective, Region, Sums, count, per_image_sum
from .pyramid import resize

EPS = 1e-8


@dataclass(frozen=True)
class Moments:
    """First and second raw moments of a layer's activations over positions: mean `[B, C]` and
    `srm` `[B, C, C]` (the Gram matrix divided by the number of positions). Unlike covariances,
    raw moments of several images blend linearly."""

    mean: torch.Tensor
    srm: torch.Tensor

    @property
    def cov(self) -> torch.Tensor:
        return self.srm - self.mean.unsqueeze(-1) * self.mean.unsqueeze(-2)


def moment_sums(act: torch.Tensor, weights: torch.Tensor | None = None) -> Sums:
    """Sums over the positions of `act` `[B, C, H, W]`, each weighted by `weights` `[B|1, 1, H, W]` if
    given: `x` = Σ w·x `[B, C]`, `xx` = Σ w·x xᵀ `[B, C, C]` and `w` = Σ w `[B|1]`."""
    x = act.flatten(2)  # [B, C, N]
    if weights is None:
        return {"x": x.sum(2), "xx": _SecondMoment.apply(x, None), "w": x.new_full((1,), float(x.shape[2]))}
    w = weights.to(x).flatten(2)  # [B|1, 1, N], on x's device (a mask kept in host memory)
    return {"x": (x * w).sum(2), "xx": _SecondMoment.apply(x, w), "w": w.sum((1, 2))}


def moments_from(sums: Sums) -> Moments:
    """The weighted moments of the positions whose `moment_sums` were added up."""
    w = sums["w"].clamp_min(EPS)
    return Moments(sums["x"] / w[:, None], sums["xx"] / w[:, None, None])


def mask_weights(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A mask `[B|1, 1, h, w]` in [0, 1] as position weights at a layer's `size`."""
    return resize(mask.float(), size)


def moments(act: torch.Tensor, mask: torch.Tensor | None = None) -> Moments:
    """The moments of `act` `[B, C, H, W]`, weighted by `mask` `[B or 1, 1, h, w]` in [0, 1] if given
    (resized to the layer's `H×W`), so that only the masked region counts."""
    weights = None if mask is None else mask_weights(mask, tuple(act.shape[-2:]))
    return moments_from(moment_sums(act, weights))


class _SecondMoment(torch.autograd.Function):
    """x (w x)ᵀ for x `[B, C, N]` and position weights w `[B|1, 1, N]` (None: 1 each).

    The gradient is one product, (g + gᵀ) (w x), where autograd's matmul would take two and a sum:
    this is the bulk of a style loss's cost, so it matters (bench/style_step.py).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return x @ x.mT if w is None else (x * w) @ x.mT

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, w = ctx.saved_tensors
        sym = grad + grad.mT
        return (sym @ x if w is None else (sym @ x) * w), None


def blend_moments(parts: Sequence[Moments], weights: Sequence[float]) -> Moments:
    """The weighted average of moments (weights ≥ 0, normalised here), each part averaged over its batch."""
    total = float(sum(weights))
    mean = sum(w / total * m.mean.mean(0, keepdim=True) for m, w in zip(parts, weights))
    srm = sum(w / total * m.srm.mean(0, keepdim=True) for m, w in zip(parts, weights))
    return Moments(mean, srm)


def _per_image(x: torch.Tensor, dims: int) -> torch.Tensor:
    return x.flatten(-dims).mean(-1) if dims else x


def _check_batch(name: str, target_batch: int, batch: int) -> None:
    if target_batch not in (1, batch):
        raise ValueError(f"{name}: its target holds {target_batch} images but the batch being optimised has "
                         f"{batch}; give one target image or one per output image.")


class ContentLoss(LayerTerm):
    """Mean squared difference between a layer's activations and the target's, relative to the
    target's mean square. `target` is `[B or 1, C, H, W]` at the size being optimised.

    The target is kept in float16 (`ScaledHalf`: rounding ≤ 2⁻¹¹ of each value, a loss floor ~1e-7): at a
    print's size it is the run's largest buffer (relu3_1 of 4096²: 1 GiB in float32). Tiled runs assemble it
    in float16 directly (`tiles.tiled_features`), where the image is (`STORED`).
    """

    STORED = ("target",)

    def __init__(self, layer: str, target: torch.Tensor | ScaledHalf):
        super().__init__(layer)
        if not isinstance(target, ScaledHalf):
            target = ScaledHalf.of(target.detach(), f"The content image's features at {layer!r}")
        self.register_buffer("norm", target.mean_square().clamp_min(EPS))
        self.register_buffer("scale", target.scale)
        self.register_buffer("target", target.values)

    def sums(self, feats: Features, image: torch.Tensor, region: Region = WHOLE) -> Sums:
        act = feats[self.layer]
        target = region.crop(self.layer, self.target).to(act) * self.scale.to(act)
        _check_batch(f"Content loss at {self.layer!r}", target.shape[0], act.shape[0])
        if act.shape[1:] != target.shape[1:]:
            raise ValueError(f"Content loss at {self.layer!r}: the target's features are "
                             f"{tuple(target.shape[1:])} but the image's are {tuple(act.shape[1:])}; "
                             f"the content target was made at another image size.")
        return {"error": per_image_sum((act - target).pow(2)), "n": count(act)}

    def total(self, sums: Sums) -> torch.Tensor:
        return sums["error"] / sums["n"] / self.norm


class StatisticLoss(LayerTerm):
    """A style loss comparing statistics of a layer (optionally inside `mask`) with target moments."""

    STORED = ("mask",)

    def __init__(self, layer: str, mask: torch.Tensor | None = None):
        super().__init__(layer)
        self.register_buffer("mask", mask)
        self._weights: torch.Tensor | None = None

    @property
    def linear(self) -> bool:
        return False

    def sums(self, feats: Features, image: torch.Tensor, region: Region = WHOLE) -> Sums:
        act = feats[self.layer]
        if self.mask is None:
            return moment_sums(act)
        _check_batch(f"Style mask at {self.layer!r}", self.mask.shape[0], act.shape[0])
        size = region.size(self.layer, act)
        if self._weights is None or tuple(self._weights.shape[-2:]) != size:
            self._weights = mask_weights(self.mask, size)  # at the layer's whole-image size, once per size
        return moment_sums(act, region.crop(self.layer, self._weights))

    def extra_repr(self) -> str:
        return repr(self.layer) + (", masked" if self.mask is not None else "")


class GramLoss(StatisticLoss):
    """Mean squared difference of Gram matrices (normalised by the number of positions, as crowsonkb's,
    unlike Gatys et al.'s 1/(4N²M²)), relative to the target Gram matrix's mean square."""

    def __init__(self, layer: str, target: Moments, mask: torch.Tensor | None = None):
        super().__init__(layer, mask)
        gram = target.srm.detach()
        self.register_buffer("gram", gram)
        self.register_buffer("norm", _per_image(gram.pow(2), 2).clamp_min(EPS))

    def total(self, sums: Sums) -> torch.Tensor:
        return _per_image((moments_from(sums).srm - self.gram).pow(2), 2) / self.norm


class MeanCovLoss(StatisticLoss):
    """Squared 2-Wasserstein distance between Gaussians with the activations' and the target's mean and
    covariance (as crowsonkb's StyleLossW2), relative to the target's second moment tr(E[xxᵀ]):

        |μ - μₜ|² + tr(Σ + Σₜ - 2 (Σₜ^½ Σ Σₜ^½)^½)

    Both covariances get a ridge of `eps` times the target's mean second moment, which keeps the
    matrix square roots well conditioned. Σₜ^½ depends on the target only and is computed once.
    """

    def __init__(self, layer: str, target: Moments, mask: torch.Tensor | None = None, eps: float = 1e-5):
        super().__init__(layer, mask)
        srm = target.srm.detach()
        power = srm.diagonal(dim1=-2, dim2=-1).sum(-1)  # tr E[xxᵀ] = |μ|² + tr Σ
        self.register_buffer("ridge", eps * power / srm.shape[-1])
        cov = self._ridged(target.cov.detach())
        self.register_buffer("mean", target.mean.detach())
        self.register_buffer("cov", cov)
        self.register_buffer("cov_sqrt", psd_power(cov, 0.5))
        self.register_buffer("norm", power.clamp_min(EPS))

    def extrapolate(self, last: Sums, before: Sums) -> Sums:
        """The last step's moments: extrapolated ones overshoot this loss's gradient (lagged tiles ended at
        2-4× the loss of exact ones with a line through two steps, 6-10 % above them with the last step's)."""
        return dict(last)

    def _ridged(self, cov: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
        return cov + self.ridge[:, None, None] * eye

    def total(self, sums: Sums) -> torch.Tensor:
        m = moments_from(sums)
        cov = self._ridged(m.cov)
        mean_term = (m.mean - self.mean).pow(2).sum(-1)
        cross = trace_sqrtm(self.cov_sqrt @ cov @ self.cov_sqrt)
        cov_term = _trace(cov) + _trace(self.cov) - 2 * cross
        return (mean_term + cov_term) / self.norm


def _trace(m: torch.Tensor) -> torch.Tensor:
    return m.diagonal(dim1=-2, dim2=-1).sum(-1)


STATISTICS: dict[str, type[StatisticLoss]] = {"gram": GramLoss, "mean_cov": MeanCovLoss}


class TVLoss(Objective):
    """Total variation (L2, Mahendran & Vedaldi): mean squared difference of neighbouring pixels, per image."""

    def sums(self, feats: Features, image: torch.Tensor, region: Region = WHOLE) -> Sums:
        dx, dy = region.neighbours(image)
        return {"dx": per_image_sum(dx.pow(2)), "nx": count(dx), "dy": per_image_sum(dy.pow(2)), "ny": count(dy)}

    def total(self, sums: Sums) -> torch.Tensor:
        return sums["dx"] / sums["nx"] + sums["dy"] / sums["ny"]


class TemporalLoss(Objective):
    """Stay close to the previous frame's result warped into this frame, where the motion is reliable
    (Ruder et al. 2016, "Artistic style transfer for videos"): the mean over pixels of c·(x - w)², with
    `weights` c `[B|1, 1, H, W]` in [0, 1] (the flow's consistency mask) and `warped` w `[B|1, 3, H, W]`."""

    STORED = ("warped", "weights")

    def __init__(self, warped: torch.Tensor, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("warped", warped.detach())
        self.register_buffer("weights", weights.detach().to(warped.dtype))

    def sums(self, feats: Features, image: torch.Tensor, region: Region = WHOLE) -> Sums:
        x = region.pixels(image)
        if x.shape[-2:] != region.pixel_crop(self.warped).shape[-2:]:
            raise ValueError(f"Temporal loss: the previous frame is {tuple(self.warped.shape[-2:])} but the image "
                             f"is {tuple(image.shape[-2:])}; every frame must have the same size.")
        error = region.pixel_crop(self.weights).to(x) * (x - region.pixel_crop(self.warped).to(x)).pow(2)
        return {"error": per_image_sum(error), "n": count(x)}

    def total(self, sums: Sums) -> torch.Tensor:
        return sums["error"] / sums["n"]
