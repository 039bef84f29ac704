"""Parameterisations and the feature-visualisation transforms: shapes, ranges, 1/f spectra, seeded draws."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.parameterise import DECORRELATED_TO_RGB, FourierImage, PixelImage, parameterisation
from reverie.engine.pyramid import resize
from reverie.engine.transforms import compose, lucid_transforms, pad, random_rotate, random_scale


def high_frequency_share(x: torch.Tensor) -> float:
    """The share of the image's variance above a quarter of its resolution."""
    smooth = resize(resize(x, (x.shape[-2] // 4, x.shape[-1] // 4)), tuple(x.shape[-2:]))
    return float((x - smooth).var() / x.var())


@pytest.mark.parametrize("height, width", [(32, 32), (33, 50)])
def test_images_have_the_size_asked_and_stay_in_range(height, width):
    g = torch.Generator().manual_seed(0)
    for param in (FourierImage(height, width), PixelImage(height, width)):
        x = param.noise(2, g, torch.device("cpu")) * 300  # far from the start: the sigmoid still bounds it
        image = param(x)
        assert image.shape == (2, 3, height, width) and 0 <= image.min() and image.max() <= 1


def test_fourier_noise_is_mostly_low_frequency_and_pixel_noise_is_not():
    """1/f amplitudes: white noise in the spectrum puts less than half its variance in the top three quarters
    of the frequencies (white noise in pixels: 15/16)."""
    g = torch.Generator().manual_seed(1)
    fourier, pixels = FourierImage(64, 64), PixelImage(64, 64)
    smooth = fourier(fourier.noise(4, g, torch.device("cpu")) * 100).logit()
    rough = pixels(pixels.noise(4, g, torch.device("cpu")) * 100).logit()
    assert high_frequency_share(smooth) < 0.55 < 0.85 < high_frequency_share(rough)  # ≈ 0.44 and 0.94


def test_gradients_reach_the_spectrum():
    param = FourierImage(24, 24)
    x = param.noise(1, torch.Generator().manual_seed(0), torch.device("cpu")).requires_grad_(True)
    param(x)[:, 0].mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_colour_matrix_is_lucids_cholesky_factor_normalised():
    """Lower triangular with Lucid's proportions; the longest column has norm 1."""
    assert torch.equal(DECORRELATED_TO_RGB.triu(1), torch.zeros(3, 3))
    assert torch.isclose(DECORRELATED_TO_RGB.norm(dim=0).max(), torch.tensor(1.0))
    assert torch.allclose(DECORRELATED_TO_RGB[:, 0] / DECORRELATED_TO_RGB[0, 0], torch.tensor([1, 0.25 / 0.28, 0.23 / 0.28]))


def test_unknown_parameterisation_is_refused():
    with pytest.raises(ValueError, match="fourier, pixels"):
        parameterisation("wavelet", 8, 8)


def test_transforms_change_the_view_as_lucid_does_and_follow_the_seed():
    x = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    assert pad(12)(x).shape == (2, 3, 64, 64) and (pad(12)(x)[..., :12, :] == 0.5).all()
    g = torch.Generator().manual_seed(0)
    assert random_scale([1.1], g)(x).shape == (2, 3, 44, 44)
    assert torch.equal(random_rotate([0], g)(x), x)
    turned = random_rotate([90], g)(x)
    assert torch.allclose(turned[..., 5:35, 5:35], x.rot90(1, (-2, -1))[..., 5:35, 5:35], atol=1e-5) or \
        torch.allclose(turned[..., 5:35, 5:35], x.rot90(-1, (-2, -1))[..., 5:35, 5:35], atol=1e-5)
    views = [compose(lucid_transforms(torch.Generator().manual_seed(s)))(x) for s in (3, 3, 4)]
    assert torch.equal(views[0], views[1]) and not (views[0].shape == views[2].shape and torch.equal(views[0], views[2]))
