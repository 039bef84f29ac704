"""BoundedLBFGS: stays inside its bounds, never lets the loss rise, reaches the constrained optimum, and
ends every step evaluated at the point it accepted."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.step_rules import BoundedLBFGS, shrink
from reverie.engine.style import StyleObjective
from reverie.engine.transfer import TransferSettings, transfer
from tests.engine.style_support import LAYERS, cnn, net  # noqa: F401  (fixtures)


def quadratic(n: int = 40, seed: int = 0):
    """f(x) = ½ (x - c)ᵀ H (x - c) with a coupled, well-conditioned H and a centre c partly outside [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    h = q @ torch.diag(torch.linspace(1, 10, n, dtype=torch.float64)) @ q.T
    c = torch.rand(n, generator=g, dtype=torch.float64) * 3 - 1
    return h, c


def test_reaches_the_constrained_optimum_of_a_coupled_quadratic():
    """The projected gradient vanishes: free variables have no gradient, those on a bound push outwards."""
    h, c = quadratic()
    x = torch.full_like(c, 0.5).requires_grad_(True)
    opt = BoundedLBFGS([x], history=10)
    losses = []

    def closure():
        opt.zero_grad()
        loss = 0.5 * (x - c) @ h @ (x - c)
        loss.backward()
        return loss

    for _ in range(60):
        losses.append(opt.step(closure).item())
    x, g = x.detach(), h @ (x.detach() - c)
    assert x.min() >= 0 and x.max() <= 1
    assert ((x > 0) & (x < 1)).any() and ((x == 0) | (x == 1)).any()  # both kinds occur
    projected = torch.where(x <= 0, g.clamp(max=0), torch.where(x >= 1, g.clamp(min=0), g))
    assert projected.abs().max() < 1e-5, projected.abs().max()
    assert all(b <= a for a, b in zip(losses, losses[1:]))


def test_a_step_that_does_not_lower_the_loss_is_shortened_and_a_nan_trial_too():
    """A loss that is NaN above 0.6 and a first step that would cross it: the step is shortened until
    the loss is finite and lower; the variables and the last evaluation agree."""
    x = torch.full((4,), 0.5, requires_grad=True)
    evaluated = []
    opt = BoundedLBFGS([x], first_step=0.5)

    def closure():
        opt.zero_grad()
        evaluated.append(x.detach().clone())
        loss = (1 - x).pow(2).sum()
        loss = loss * float("nan") if (x > 0.6).any() else loss
        loss.backward()
        return loss

    before = (1 - x.detach()).pow(2).sum()
    after = opt.step(closure)
    assert torch.isfinite(after) and after < before
    assert len(evaluated) > 2 and torch.equal(evaluated[-1], x.detach())
    assert (x.detach() <= 0.6).all()


def test_a_far_overshoot_is_shortened_to_the_parabolas_minimum():
    """f = Σ (x - 0.52)² from 0.5 with a first step to 1: the safeguarded parabola lands on the minimum at the
    third trial (halving would take five to find a lower loss, and not the minimum)."""
    x = torch.full((3,), 0.5, dtype=torch.float64, requires_grad=True)
    opt = BoundedLBFGS([x], first_step=0.5)
    evaluated = []

    def closure():
        opt.zero_grad()
        evaluated.append(x.detach().clone())
        loss = (x - 0.52).pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert len(evaluated) == 1 + 3 and torch.allclose(x.detach(), torch.full((3,), 0.52, dtype=torch.float64))


def test_shrink_factors_stay_within_the_safeguards():
    loss, slope = torch.tensor(1.0), torch.tensor(-1.0)
    assert shrink(loss, slope, torch.tensor(2.0)) == pytest.approx(0.25)  # the parabola's minimum
    assert shrink(loss, slope, torch.tensor(100.0)) == 0.1 and shrink(loss, slope, torch.tensor(0.9999)) == 0.5
    assert shrink(loss, slope, torch.tensor(float("nan"))) == 0.1 == shrink(loss, slope, torch.tensor(float("inf")))


def test_nothing_helps_so_the_variables_go_back_and_are_evaluated_there():
    """A loss that rises in every direction the gradient allows (a wrong gradient): no trial is accepted,
    the variables return, and the last evaluation is at them again."""
    x = torch.full((3,), 0.5, requires_grad=True)
    opt = BoundedLBFGS([x], backtracks=2)
    evaluated = []

    def closure():
        opt.zero_grad()
        evaluated.append(x.detach().clone())
        loss = (x - 0.5).pow(2).sum()
        x.grad = -torch.ones_like(x)  # claims the loss falls as x grows; it rises
        return loss

    opt.step(closure)
    assert torch.equal(x.detach(), torch.full((3,), 0.5)) and torch.equal(evaluated[-1], x.detach())
    assert len(evaluated) == 1 + 3 + 1  # the start, three trials, the start again


def test_style_transfer_with_lbfgs_never_gets_worse(net):
    """On the tiny net from noise, 60 L-BFGS steps: every reported loss is at most the one before (the
    image inside [0, 1] is what is scored: nothing is clamped away afterwards), and the final loss is far
    below the first."""
    g = torch.Generator().manual_seed(0)
    style = torch.rand(1, 3, 32, 32, generator=g) * 0.5 + 0.25
    start = torch.rand(1, 3, 32, 32, generator=g)
    losses = []
    out, report = transfer(net, StyleObjective([style], LAYERS), start, TransferSettings(optimizer="lbfgs", steps=60),
                           callback=lambda p: losses.append(p.loss.item()))
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < losses[0] / 20 and report.loss[0] == pytest.approx(losses[-1], rel=1e-5)
    assert out.min() >= 0 and out.max() <= 1
