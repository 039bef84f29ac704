"""Image filters for gradients: a Gaussian blur cascade and a Laplacian pyramid, on the tensor's own device.

Both work on BCHW batches of any channel count, each image and channel on its own.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CASCADE = (0.5, 1.0, 2.0)  # pytorch-deepdream's sigma multipliers
BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # the TF DeepDream tutorial's 5-tap pyramid kernel, before /16


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur (3 sigma wide each side), borders replicated."""
    radius = max(math.ceil(3 * sigma), 1)
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def blur_cascade(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The mean of three Gaussian blurs at sigma × 0.5, 1 and 2 (pytorch-deepdream's gradient smoothing):
    smooths strongly while keeping more of the fine structure than one wide blur."""
    return sum(gaussian_blur(x, sigma * k) for k in CASCADE) / len(CASCADE)


def _kernel(x: torch.Tensor) -> torch.Tensor:
    k = x.new_tensor(BINOMIAL)
    k = torch.outer(k, k) / k.sum() ** 2
    return k.expand(x.shape[1], 1, 5, 5)


def _down(x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, _kernel(x), stride=2, padding=2, groups=x.shape[1])


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    extra = [s - (2 * n - 1) for s, n in zip(size, x.shape[-2:])]  # 0 for odd sizes, 1 for even ones
    return F.conv_transpose2d(x, 4 * _kernel(x), stride=2, padding=2, output_padding=extra, groups=x.shape[1])


def laplacian_split(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass images, finest first, then the low-pass rest; `laplacian_merge` inverts it exactly.
    Fewer levels are made where the image gets too small to halve."""
    bands = []
    for _ in range(levels):
        if min(x.shape[-2:]) < 4:
            break
        low = _down(x)
        bands.append(x - _up(low, tuple(x.shape[-2:])))
        x = low
    return bands + [x]


def laplacian_merge(bands: list[torch.Tensor]) -> torch.Tensor:
    x = bands[-1]
    for band in reversed(bands[:-1]):
        x = _up(x, tuple(band.shape[-2:])) + band
    return x


def laplacian_normalize(g: torch.Tensor, levels: int = 4, eps: float = 1e-8) -> torch.Tensor:
    """The TF DeepDream tutorial's lap_normalize: every band of g's Laplacian pyramid divided by its own root
    mean square (per image), then recombined, so coarse structure gets as much of the step as fine detail."""
    def unit(band: torch.Tensor) -> torch.Tensor:
        rms = band.pow(2).flatten(1).mean(1).sqrt().view(-1, 1, 1, 1)
        return band / (rms + eps)
    return laplacian_merge([unit(b) for b in laplacian_split(g, levels)])
