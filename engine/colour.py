"""Keeping the content's colours (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer").

`luminance_only` recombines the stylised image's luminance with the content's chroma (YIQ) after the
run; `match_histogram` gives a style image the content's colour mean and covariance before its
targets are made. Images are BCHW RGB in [0, 1].
"""
from __future__ import annotations

import torch

from .linalg import psd_power, to_float64
from .pyramid import resize

# NTSC RGB -> YIQ; the inverse is computed, so the round trip is exact to float precision.
RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                           [0.596, -0.274, -0.322],
                           [0.211, -0.523, 0.312]], dtype=torch.float64)
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)
COLOUR_MODES = ("none", "luminance", "histogram")


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("dc,bchw->bdhw", matrix.to(x), x)


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    return _mix(RGB_TO_YIQ, x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    return _mix(YIQ_TO_RGB, x)


def luminance_only(output: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """`output`'s luminance (Y) with `content`'s chroma (I, Q), resized to `output`'s size, clamped to
    [0, 1]. A content batch of one serves every output image."""
    chroma = rgb_to_yiq(resize(content, tuple(output.shape[-2:])))[:, 1:]
    y = rgb_to_yiq(output)[:, :1]
    return yiq_to_rgb(torch.cat([y, chroma.expand(y.shape[0], -1, -1, -1)], 1)).clamp(0, 1)


def colour_stats(x: torch.Tensor, eps: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean `[3]` and covariance `[3, 3]` (plus a ridge of `eps`) of the pixels of a whole batch."""
    pixels = to_float64(x.movedim(1, -1).reshape(-1, 3))
    mean = pixels.mean(0)
    centred = pixels - mean
    cov = centred.T @ centred / pixels.shape[0]
    return mean, cov + eps * torch.eye(3, dtype=cov.dtype, device=cov.device)


def match_histogram(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """`source` recoloured so that its pixels' mean and covariance are the `reference` batch's,
    each source image on its own, by the linear map that moves colours least (the Monge-Kantorovich
    map between Gaussians: T = Σs^-½ (Σs^½ Σr Σs^½)^½ Σs^-½). Clamped to [0, 1]."""
    mean_r, cov_r = colour_stats(reference)
    out = []
    for image in source.split(1):
        mean_s, cov_s = colour_stats(image)
        root, inv_root = psd_power(cov_s, 0.5), psd_power(cov_s, -0.5)
        t = inv_root @ psd_power(root @ cov_r @ root, 0.5) @ inv_root
        pixels = to_float64(image.movedim(1, -1)) - mean_s
        out.append((pixels @ t.T + mean_r).movedim(-1, 1).to(source.device, source.dtype).clamp(0, 1))
    return torch.cat(out)
