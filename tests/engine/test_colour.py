"""Colour preservation: luminance-only recombination and mean/covariance colour matching."""
from __future__ import annotations

import torch

from reverie.engine.colour import colour_stats, luminance_only, match_histogram, rgb_to_yiq, yiq_to_rgb
from reverie.engine.pyramid import resize


def smooth(seed: int, tint: tuple[float, float, float], size: tuple[int, int] = (40, 48)) -> torch.Tensor:
    """A smooth random image around `tint`, well inside [0, 1], with correlated channels."""
    g = torch.Generator().manual_seed(seed)
    base = resize(torch.rand(1, 3, 5, 6, generator=g), size)
    mixed = torch.einsum("dc,bchw->bdhw", torch.rand(3, 3, generator=g), base)
    return (torch.tensor(tint).view(1, 3, 1, 1) + 0.25 * (mixed - mixed.mean())).clamp(0, 1)


def test_yiq_round_trip_is_exact():
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(x)), x, atol=1e-6)


def test_luminance_only_keeps_the_contents_chroma_and_the_outputs_luminance():
    """Chroma (I, Q) equals the content's (resized to the output), luminance is the output's."""
    content = smooth(0, (0.6, 0.4, 0.3), size=(80, 96))
    output = smooth(1, (0.3, 0.4, 0.7))
    out = luminance_only(output, content)
    want = rgb_to_yiq(resize(content, (40, 48)))
    got = rgb_to_yiq(out)
    assert (got[:, 1:] - want[:, 1:]).abs().max() < 1e-4
    assert (got[:, :1] - rgb_to_yiq(output)[:, :1]).abs().max() < 1e-4


def test_match_histogram_gives_the_style_the_contents_colour_mean_and_covariance():
    content = smooth(2, (0.6, 0.45, 0.3))
    style = smooth(3, (0.25, 0.35, 0.6), size=(50, 30))
    matched = match_histogram(style, content)
    assert matched.shape == style.shape
    (mean_c, cov_c), (mean_m, cov_m), (mean_s, _) = colour_stats(content), colour_stats(matched), colour_stats(style)
    assert (mean_m - mean_c).abs().max() < 0.01 < (mean_s - mean_c).abs().max()
    assert (cov_m - cov_c).abs().max() < 0.05 * cov_c.abs().max()


def test_match_histogram_of_a_grey_style_stays_finite():
    """A greyscale style has a rank-1 colour covariance: matching still gives finite colours."""
    grey = smooth(4, (0.5, 0.5, 0.5)).mean(1, keepdim=True).expand(1, 3, 40, 48)
    matched = match_histogram(grey, smooth(5, (0.6, 0.4, 0.3)))
    assert torch.isfinite(matched).all() and 0 <= matched.min() and matched.max() <= 1
