"""Gradient filters and DeepDream's step rule: the Laplacian pyramid inverts, bands come out normalised,
the blur cascade smooths, every image of a batch on its own."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.filters import blur_cascade, laplacian_merge, laplacian_normalize, laplacian_split
from reverie.engine.step_rules import NormalizedDescent, normalized


def high_share(x: torch.Tensor) -> float:
    """Share of the energy of x's pixel-to-pixel differences in its total energy."""
    d = x[..., 1:, :] - x[..., :-1, :]
    return float(d.pow(2).sum() / x.pow(2).sum())


@pytest.mark.parametrize("size", [(37, 50), (64, 64), (5, 9)])
def test_laplacian_pyramid_inverts_exactly_at_any_size(size):
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    bands = laplacian_split(x, 4)
    assert torch.allclose(laplacian_merge(bands), x, atol=1e-12)
    assert bands[0].shape == x.shape and min(bands[-1].shape[-2:]) >= 1


def test_laplacian_normalize_balances_the_bands_per_image():
    """Noise, whose finest band is 30× its coarsest, comes out with bands within a factor of 2 (the pyramid is
    not orthogonal, so not exactly 1) and less fine detail; each image is normalised on its own (a second,
    larger image does not change the first's result)."""
    torch.manual_seed(0)
    coarse = torch.nn.functional.interpolate(torch.randn(1, 3, 4, 4), size=(64, 64), mode="bilinear")
    g = 0.01 * coarse + torch.randn(1, 3, 64, 64)
    out = laplacian_normalize(g)

    def spread(x: torch.Tensor) -> float:
        sizes = [b.pow(2).mean().sqrt().item() for b in laplacian_split(x, 4)]
        return max(sizes) / min(sizes)
    assert spread(g) > 20 and spread(out) < 2, (spread(g), spread(out))
    assert high_share(out) < 0.5 * high_share(g)
    batch = laplacian_normalize(torch.cat([g, 50 * torch.randn(1, 3, 64, 64)]))
    assert torch.allclose(batch[:1], out, atol=1e-5)


def test_blur_cascade_smooths_and_keeps_the_mean():
    torch.manual_seed(0)
    g = torch.randn(2, 3, 48, 40)
    out = blur_cascade(g, 2.0)
    assert out.shape == g.shape
    assert high_share(out) < 0.2 * high_share(g)
    assert torch.allclose(out.mean((1, 2, 3)), g.mean((1, 2, 3)), atol=0.02)


@pytest.mark.parametrize("normalize", ["mean_abs", "laplacian"])
@pytest.mark.parametrize("smoothing", [0.0, 1.5])
def test_steps_move_pixels_by_the_step_size_on_average(normalize, smoothing):
    """mean_abs and laplacian steps, smoothed or not, move each image's pixels by step_size on average,
    whatever the gradient's scale."""
    torch.manual_seed(0)
    g = torch.randn(2, 3, 32, 32) * torch.tensor([1e-3, 1e3]).view(2, 1, 1, 1)
    step = normalized(g, normalize, smoothing)
    assert torch.allclose(step.abs().mean((1, 2, 3)), torch.ones(2), rtol=1e-4)


def test_normalized_descent_rejects_bad_settings():
    x = torch.zeros(1, 3, 8, 8, requires_grad=True)
    with pytest.raises(ValueError, match="normalize must be one of mean_abs, std, laplacian"):
        NormalizedDescent([x], 0.01, "median")
    with pytest.raises(ValueError, match="smoothing must be 0"):
        NormalizedDescent([x], 0.01, smoothing=-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_filters_run_on_the_gradients_device():
    g = torch.randn(2, 3, 40, 30, device="cuda")
    for out in (normalized(g, "laplacian", 1.0), normalized(g, "std", 2.0)):
        assert out.device == g.device and torch.isfinite(out).all()
    cpu = normalized(g.cpu(), "laplacian", 1.0)
    assert torch.allclose(normalized(g, "laplacian", 1.0).cpu(), cpu, atol=1e-4)
