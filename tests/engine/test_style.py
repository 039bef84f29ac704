"""Style-transfer losses and the content/style objectives, on the tiny random net."""
from __future__ import annotations

import copy

import pytest
import torch

from reverie.engine.losses import (ContentLoss, GramLoss, MeanCovLoss, Moments, TVLoss, blend_moments,
                                   moments)
from reverie.engine.objectives import ActivationL2
from reverie.engine.style import ContentObjective, StyleObjective, style_size, style_targets
from tests.engine.style_support import LAYERS, cnn, net  # noqa: F401  (fixtures)


def images(seed: int, batch: int = 1, size: tuple[int, int] = (32, 32)) -> torch.Tensor:
    return torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


def test_loss_algebra_matches_the_sum_of_its_terms(net):
    """(2a + b)(f) == 2a(f) + b(f) for content, Gram, mean/cov and TV terms, per batch element."""
    target = net(images(1))
    a = ContentLoss("b2/relu", target["b2/relu"])
    b = GramLoss("b1/relu", moments(target["b1/relu"]))
    c = MeanCovLoss("b3/relu", moments(target["b3/relu"]))
    x = images(2, batch=3)
    f = net(x)
    combined = 2 * a + b - 0.5 * c + 3 * TVLoss()
    expected = 2 * a(f, x) + b(f, x) - 0.5 * c(f, x) + 3 * TVLoss()(f, x)
    assert combined(f, x).shape == (3,)
    assert torch.allclose(combined(f, x), expected)
    assert combined.layers() == {"b1/relu", "b2/relu", "b3/relu"}


def test_losses_vanish_at_their_target_and_are_per_image(net):
    """Each loss is ~0 for the image that made its target, and one image's loss ignores the others."""
    x = images(3)
    f = net(x)
    terms = [ContentLoss("b2/relu", f["b2/relu"]), GramLoss("b1/relu", moments(f["b1/relu"])),
             MeanCovLoss("b2/relu", moments(f["b2/relu"]))]
    batch = torch.cat([x, images(4)])
    fb = net(batch)
    for term in terms:
        loss = term(fb, batch)
        assert abs(loss[0]) < 1e-5 and loss[1] > 1e-3, (term, loss)
        alone = term(net(batch[1:]), batch[1:])
        assert torch.allclose(alone, loss[1:], rtol=1e-4)


def test_mean_cov_gradient_is_finite_for_rank_deficient_covariances(net):
    """A flat image has (near-)zero, repeated covariance eigenvalues: the W2 gradient stays finite."""
    term = MeanCovLoss("b3/relu", moments(net(images(5))["b3/relu"]))
    x = torch.full((1, 3, 32, 32), 0.5, requires_grad=True)
    term(net(x), x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_mean_cov_loss_matches_the_closed_form_for_diagonal_gaussians():
    """For commuting (diagonal) covariances W2² is |Δμ|² + Σ(√a - √b)²; the loss is that over tr E[xxᵀ]."""
    mean_t, var_t = torch.tensor([[1.0, 2.0]]), torch.tensor([4.0, 9.0])
    target = Moments(mean_t, torch.diag(var_t)[None] + mean_t[:, :, None] * mean_t[:, None, :])
    term = MeanCovLoss("x", target, eps=0.0)
    act = torch.tensor([[0.0, 2, 0, 2], [0, 0, 2, 2]]).reshape(1, 2, 2, 2)  # mean (1, 1), covariance I
    expected = ((1 - 1) ** 2 + (1 - 2) ** 2 + (1 - 2) ** 2 + (1 - 3) ** 2) / (4 + 9 + 1 + 4)
    assert torch.allclose(term({"x": act}, act), torch.tensor([expected]), atol=1e-5)


def test_mask_restricts_the_statistics_to_its_region(net):
    """A left-half mask gives the moments of the left half only; a full mask of any size changes nothing."""
    x = images(6, size=(32, 32))
    act = net(x)["b1/conv"]
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :16] = 1
    left, masked = moments(act[..., :16]), moments(act, mask)
    assert torch.allclose(masked.mean, left.mean, atol=1e-5) and torch.allclose(masked.srm, left.srm, atol=1e-4)
    full = moments(act, torch.ones(1, 1, 48, 20))
    assert torch.allclose(full.srm, moments(act).srm, atol=1e-4)


def test_blend_averages_raw_moments(net):
    """Blending (1, 0) gives the first style's moments; (1, 3) the 1:3 weighted average."""
    a, b = moments(net(images(7))["b2/relu"]), moments(net(images(8))["b2/relu"])
    assert torch.allclose(blend_moments([a, b], [1, 0]).srm, a.srm)
    mixed = blend_moments([a, b], [1, 3])
    assert torch.allclose(mixed.mean, 0.25 * a.mean + 0.75 * b.mean)
    assert torch.allclose(mixed.srm, 0.25 * a.srm + 0.75 * b.srm)


def test_style_images_are_sized_relative_to_the_output(net):
    """style_scale 1: the style's longer side equals the output's; a much smaller style is enlarged
    with a warning; a style already large enough gets none."""
    assert style_size((50, 100), (64, 48), 1.0, 8) == ((32, 64), 0.64)
    assert style_size((50, 100), (64, 48), 2.0, 8)[0] == (64, 128)
    small, large = images(9, size=(12, 16)), images(10, size=(96, 128))
    targets, warnings = style_targets(net, [small, large], [1, 1], (48, 64), layers=["b2/relu"])
    assert set(targets) == {"b2/relu"} and targets["b2/relu"].srm.shape == (1, 16, 16)
    assert len(warnings) == 1 and "Style image 1 (16×12) is enlarged 4.0×" in warnings[0]


def test_objectives_build_their_targets_for_each_size_and_compose_with_dream_terms(net):
    """Content and style objectives retarget to any size; `content + style + dream` is one objective."""
    content, style = images(11, batch=2), images(12, size=(40, 40))
    objective = (ContentObjective(content, ["b2/relu"]) + StyleObjective([style], LAYERS, weight=10)
                 + 0.1 * ActivationL2("b3/relu"))
    x = images(13, batch=2)
    with pytest.raises(RuntimeError, match="retarget"):
        objective(net(x), x)
    for size in ((32, 32), (24, 40)):
        for term in (objective.terms[0], objective.terms[1]):
            term.retarget(net, size)
        y = torch.nn.functional.interpolate(x, size)
        assert objective(net(y), y).shape == (2,)
    assert "statistic=gram" in repr(objective) and "weight=0.1" in repr(objective)


def test_buffers_move_with_to(net):
    """Images, targets, masks and cached square roots are buffers: .to() moves and casts them all."""
    style = StyleObjective([images(14)], LAYERS, statistic="mean_cov", mask=torch.ones(1, 32, 32))
    objective = ContentObjective(images(15), ["b2/relu"]) + style
    for term in objective.terms:
        term.retarget(net, (32, 32))
    buffers = dict(objective.named_buffers())
    assert {"terms.1.style_0", "terms.1.mask", "terms.0.image"} <= set(buffers)
    assert any(name.endswith("cov_sqrt") for name in buffers)
    moved = copy.deepcopy(objective).to(torch.float64)
    assert all(b.dtype == torch.float64 for b in moved.buffers())
    meta = copy.deepcopy(objective).to("meta")
    assert all(b.device.type == "meta" for b in meta.buffers())


@pytest.mark.parametrize("make, message", [
    (lambda: ContentObjective(None, ["b2/relu"]), "content image is missing"),
    (lambda: ContentObjective(torch.rand(1, 1, 8, 8), ["b2/relu"]), r"RGB batch \[B, 3, H, W\]"),
    (lambda: ContentObjective(torch.rand(3, 8, 8), ["b2/relu"]), "got shape"),
    (lambda: StyleObjective([torch.rand(1, 4, 8, 8)], ["b2/relu"]), "style image 1 must be an RGB"),
    (lambda: StyleObjective([], ["b2/relu"]), "no style image"),
    (lambda: StyleObjective([torch.rand(1, 3, 8, 8)], ["b2/relu"], weight=-1), "weight must be ≥ 0"),
    (lambda: StyleObjective([torch.rand(1, 3, 8, 8)], {"b2/relu": -1.0, "b1/relu": 2.0}), "layer weights must be ≥ 0"),
    (lambda: StyleObjective([torch.rand(1, 3, 8, 8)], {"b2/relu": 0.0}), "every layer weight is 0"),
    (lambda: StyleObjective([torch.rand(1, 3, 8, 8)] * 2, ["b2/relu"], blend=[0, 0]), "Every blend weight is 0"),
    (lambda: StyleObjective([torch.rand(1, 3, 8, 8)] * 2, ["b2/relu"], blend=[1, -1]), "Blend weights must be ≥ 0"),
    (lambda: StyleObjective([torch.rand(1, 3, 8, 8)] * 2, ["b2/relu"], blend=[1]), "one weight per image"),
    (lambda: StyleObjective([torch.rand(1, 3, 8, 8)], ["b2/relu"], statistic="lap"), "gram, mean_cov"),
    (lambda: StyleObjective([torch.rand(1, 3, 8, 8)], ["b2/relu"], style_scale=0), "style_scale must be > 0"),
    (lambda: StyleObjective([torch.rand(1, 3, 8, 8)], ["b2/relu"], mask=torch.zeros(1, 8, 8)), "empty"),
    (lambda: StyleObjective([torch.rand(1, 3, 8, 8)], ["b2/relu"], mask=torch.full((8, 8), 2.0)), r"\[0, 1\]"),
    (lambda: StyleObjective([torch.rand(1, 3, 8, 8)], [], weight=1), "no layers given"),
    (lambda: StyleObjective([torch.rand(1, 3, 8, 8)], ["b2/relu"], mask=torch.ones(1, 1, 1, 8, 8)),
     r"mask must be \[B, H, W\] \(or \[H, W\]\); got shape \(1, 1, 1, 8, 8\)"),
    (lambda: StyleObjective([torch.rand(1, 3, 8, 8)], ["b2/relu"], mask=torch.full((1, 8, 8), float("nan"))),
     "The mask has 64 NaN values, in 64 of 64 pixels"),
])
def test_bad_inputs_raise_clear_value_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_mismatched_batches_and_sizes_are_explained(net):
    """A content batch of 3 cannot pair with 2 outputs; a target made at another size says so."""
    term = ContentObjective(images(16, batch=3), ["b2/relu"])
    term.retarget(net, (32, 32))
    x = images(17, batch=2)
    with pytest.raises(ValueError, match="holds 3 images but the batch being optimised has 2"):
        term(net(x), x)
    x = images(17, batch=3, size=(24, 24))
    with pytest.raises(ValueError, match="another image size"):
        term(net(x), x)
