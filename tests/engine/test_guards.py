"""Runtime guards: the memory estimate and its tiles or refusal, interrupts inside a step (between tiles and
layers), divergence ending a run with the last good image, and a CNN left clean by any stop."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.dream import DreamSettings, dream
from reverie.engine.features import FeatureNet
from reverie.engine.flow import estimate_flow
from reverie.engine import memory
from reverie.engine.memory import (DREAM, OverBudget, Plan, estimate, fit, offloaded, per_pixel, plan, reads,
                                   smallest_tile, transfer_footprint)
from reverie.engine.objectives import ActivationL2
from reverie.engine.optimize import Diverged, feature_loss, pinned
from reverie.engine.style import ContentObjective, StyleObjective
from reverie.engine.tiles import Tiling, exact_tiles, moving_windows, tile_grid
from reverie.engine.transfer import LBFGS_HISTORY, TransferSettings, transfer
from reverie.engine.video import dream_video, stylise_video
from tests.engine.style_support import LAYERS, cnn, net, vgg19_partial  # noqa: F401  (fixtures)
from tests.helpers import photo, tiny_cnn

ADAM = transfer_footprint("adam", False, LBFGS_HISTORY)
LBFGS = transfer_footprint("lbfgs", False, LBFGS_HISTORY)
GB = 1024 ** 3


class Stop(Exception):
    """What the test's interrupt raises."""


class Interrupt:
    """A `check` that raises on its `at`-th call and counts every call."""

    def __init__(self, at: int):
        self.at, self.calls = at, 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == self.at:
            raise Stop


def test_estimate_grows_with_pixels_batch_and_tile_and_measures_the_layers(net):
    """More pixels, a larger batch, a larger tile or L-BFGS's history need more; deeper layers keep more
    activations per pixel than shallow ones."""
    size = (512, 512)
    base = estimate(net, size, 1, 0, ADAM)
    assert estimate(net, (1024, 1024), 1, 0, ADAM) > 3.9 * base
    assert estimate(net, size, 2, 0, ADAM) == pytest.approx(2 * base, rel=1e-6)
    assert estimate(net, size, 1, 128, ADAM) < estimate(net, size, 1, 256, ADAM) < base
    assert estimate(net, size, 1, 0, LBFGS) > estimate(net, size, 1, 0, ADAM) + 40 * 12 * 512 * 512
    shallow = FeatureNet(net.cnn, ["b1/relu"])
    assert per_pixel(shallow)[0] < per_pixel(net)[0]


def test_fit_keeps_the_whole_image_chooses_tiles_or_refuses_with_the_fix(net):
    """Untiled when it fits; for tile 0 the largest tile that fits; an explicit tile that does not fit, or a
    run whose image-sized buffers alone do not fit, is refused with the estimate, the budget and the fix."""
    size = (2048, 2048)
    whole = estimate(net, size, 1, 0, DREAM)
    assert fit(net, size, 1, 0, DREAM, whole) == 0
    budget = estimate(net, size, 1, 512, DREAM) + 1
    tile = fit(net, size, 1, 0, DREAM, budget)
    assert 512 <= tile < 2048 and tile % 64 == 0 and estimate(net, size, 1, tile, DREAM) <= budget
    with pytest.raises(OverBudget, match=rf"needs about .* GB, .* available\. Use a tile size of {tile} px or less"):
        fit(net, size, 1, 2048, DREAM, budget)
    with pytest.raises(OverBudget, match=r"L-BFGS .* 8192×8192 needs about \d+\.\d GB, but 2\.0 GB .* image-sized "
                                         r"buffers alone .* at most about \d+ px on the longer side or Adam"):
        fit(net, (8192, 8192), 1, 0, LBFGS, 2 * GB)


def test_plan_offloads_buffers_the_device_cannot_hold_beside_any_tile_or_an_efficient_one(net, monkeypatch):
    """On the device whenever a tile fits there (tiled as fit chooses), unless automatic tiles would read more
    than READS_LIMIT pixels per pixel they own and offloaded ones fewer; when no tile fits, with host memory for
    them, the image-sized buffers go there and the device gets the largest tile whose work fits, or the tile
    asked for; refused, saying which memory is short, when host memory cannot hold the buffers or the device not
    even one tile's work."""
    size = (8192, 8192)
    least = smallest_tile(net, ADAM)
    tight = estimate(net, size, 1, least, ADAM) + 1
    assert reads(net, size, least) > 1.5
    assert plan(net, size, 1, 0, ADAM, tight, 64 * GB) == Plan(least)  # reads below READS_LIMIT: on the device
    monkeypatch.setattr(memory, "READS_LIMIT", 1.5)
    wasteful = plan(net, size, 1, 0, ADAM, tight, 64 * GB)
    assert wasteful.offload and reads(net, size, wasteful.tile) < reads(net, size, least)
    assert plan(net, size, 1, 0, ADAM, tight, 1 * GB) == Plan(least)  # host memory cannot hold the buffers
    assert plan(net, size, 1, least, ADAM, tight, 64 * GB) == Plan(least)  # a tile asked for that fits
    budget = 0.5 * GB
    with pytest.raises(OverBudget, match="image-sized buffers alone"):
        plan(net, size, 1, 0, ADAM, budget)  # no host memory to offload to: as fit
    chosen = plan(net, size, 1, 0, ADAM, budget, 64 * GB)
    assert chosen.offload and least <= chosen.tile < 8192 and offloaded(net, size, 1, chosen.tile, ADAM) <= budget
    assert offloaded(net, size, 1, chosen.tile + 64, ADAM) > budget
    assert plan(net, size, 1, least, ADAM, budget, 64 * GB) == Plan(least, offload=True)
    with pytest.raises(OverBudget, match=r"neither the device \(0\.5 GB available\) nor host memory \(2\.0 GB free\)"):
        plan(net, size, 1, 0, ADAM, budget, 2 * GB)
    with pytest.raises(OverBudget, match=rf"in tiles of {chosen.tile + 64} px needs about .* even with its image-sized "
                                         rf"buffers in host memory.* Use a tile size of {chosen.tile} px or less"):
        plan(net, size, 1, chosen.tile + 64, ADAM, budget, 64 * GB)
    with pytest.raises(OverBudget, match="even with its image-sized buffers in host memory.* Free memory on the device"):
        plan(net, size, 1, 0, ADAM, offloaded(net, size, 1, least, ADAM) - 1, 64 * GB)


def test_the_check_stops_a_step_at_the_tile_and_the_layer_it_is_in(cnn):
    """An interrupt raised before tile k's forward (moving windows, exact tiles) or inside one forward stops
    there: nothing runs after it. A tile's forward and backward passes check before each of the 3 stages."""
    objective = ActivationL2("b3/relu")
    x = torch.rand(1, 3, 96, 96)
    stages = 3
    for k in (1, 3):
        stop = Interrupt((k - 1) * 2 * stages + 1)
        net = FeatureNet(cnn, ["b3/relu"], check=stop)
        windows = Tiling(32, torch.Generator().manual_seed(0)).windows(96, 96)
        assert len(windows) >= k + 2
        evaluate = moving_windows(feature_loss(net, objective), Tiling(32, torch.Generator().manual_seed(0)))
        with pytest.raises(Stop):
            evaluate(x.clone().requires_grad_(True))
        assert stop.calls == stop.at
        grid = tile_grid(FeatureNet(cnn, ["b3/relu"]), 48)
        style = StyleObjective([torch.rand(1, 3, 40, 40)], ["b3/relu"])
        style.retarget(FeatureNet(cnn, ["b3/relu"]), (96, 96), grid)
        # the statistics pass only runs forward
        stop = Interrupt(len(grid.tiles(96, 96)) * stages + (k - 1) * 2 * stages + 1)
        evaluate = exact_tiles(FeatureNet(cnn, ["b3/relu"], check=stop), style, grid)
        with pytest.raises(Stop):
            evaluate(x.clone().requires_grad_(True))
        assert stop.calls == stop.at
    inside = Interrupt(2)  # before the second layer of the first forward
    with pytest.raises(Stop):
        FeatureNet(cnn, ["b3/relu"], check=inside)(x)
    assert inside.calls == 2


def test_the_check_stops_a_backward_pass_within_one_layer(cnn):
    """The backward pass checks where it reaches each stage's input: an interrupt there leaves no gradient."""
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    stop = Interrupt(3 + 2)  # after the forward's 3 checks, the second stage the backward pass reaches
    loss = FeatureNet(cnn, ["b3/relu"], check=stop)(x)["b3/relu"].square().mean()
    assert stop.calls == 3
    with pytest.raises(Stop):
        loss.backward()
    assert stop.calls == 5 and x.grad is None


def test_the_check_stops_a_clip_inside_the_optical_flow(cnn):
    """Dream Video and Stylise Video pass the net's check into the flow estimate: an interrupt while frame 2's
    flow is estimated stops the clip there, after frame 1 and before any of frame 2's steps."""
    frames = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    in_flow = []

    def flow(source, target, *, check=None):
        in_flow.append(True)
        try:
            return estimate_flow(source, target, check=check)
        finally:
            in_flow.pop()

    def check():
        if in_flow:
            raise Stop

    net = FeatureNet(cnn, ["b2/relu"], check=check)
    made = []
    with pytest.raises(Stop):
        for out in dream_video(net, ActivationL2("b2/relu"), frames, DreamSettings(steps=2, jitter=0), 0.9, 1, flow):
            made.append(out)
    assert len(made) == 1
    made.clear()
    style = StyleObjective([torch.rand(1, 3, 40, 40)], ["b2/relu"])
    with pytest.raises(Stop):
        for out, _ in stylise_video(net, style, frames, TransferSettings(steps=2), 1.0, 2, flow):
            made.append(out)
    assert len(made) == 1


def state(cnn) -> list:
    return [(name, p.device, p.requires_grad, p.is_inference()) for name, p in cnn.module.named_parameters()]


def hooks(cnn) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in cnn.module.modules())


@pytest.mark.parametrize("at", [1, 2, 7, 20])
def test_a_stop_at_any_point_leaves_the_cnn_clean_and_the_next_run_identical(tmp_path, at):
    """An interrupt or an exception anywhere (first layer, mid-forward, later steps, tiles) leaves no hooks,
    the parameters' device and requires_grad as they were, and the next run gives the bytes of a fresh CNN."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    cnn, fresh = tiny_cnn(tmp_path / "a"), tiny_cnn(tmp_path / "b")
    before = state(cnn)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    settings = DreamSettings(steps=6, jitter=4, seed=9, tile=32)
    objective = ActivationL2("b2/relu")
    with pytest.raises(Stop):
        dream(FeatureNet(cnn, ["b2/relu"], check=Interrupt(at)), objective, x, settings)
    assert hooks(cnn) == 0 and state(cnn) == before
    style = StyleObjective([torch.rand(1, 3, 40, 40)], ["b2/relu"])
    with pytest.raises(Stop):
        transfer(FeatureNet(cnn, ["b2/relu"], check=Interrupt(at)), style, x, TransferSettings(steps=5, tile=32))
    assert hooks(cnn) == 0 and state(cnn) == before
    again = dream(FeatureNet(cnn, ["b2/relu"]), objective, x, settings)
    assert torch.equal(again, dream(FeatureNet(fresh, ["b2/relu"]), objective, x, settings))


@pytest.fixture(scope="module")
def vgg():
    return vgg19_partial()


def test_a_huge_learning_rate_ends_the_run_with_the_last_good_image(vgg):
    """Adam at learning rate 10 saturates the image; the run stops, says why, and returns an image from before;
    the default learning rate runs to the end with no warning. L-BFGS at 10 backtracks (step_rules.BoundedLBFGS
    never lets the loss rise), so it neither diverges nor saturates."""
    content, style = photo("chelsea.png", (64, 48)), photo("starry_night.jpg", (64, 50))
    objective = ContentObjective(content, ["relu3_1"]) + StyleObjective([style], ["relu1_1", "relu2_1"], weight=10)
    net = FeatureNet(vgg, objective.layers())
    out, report = transfer(net, objective, content, TransferSettings(optimizer="adam", lr=10.0, steps=40))
    assert report.stopped is not None and report.stopped in report.warnings and report.steps < 40
    assert "diverged" in report.stopped and "learning rate" in report.stopped
    assert pinned(out) < 0.25
    out, report = transfer(net, objective, content, TransferSettings(optimizer="adam", steps=24))
    assert report.stopped is None and report.steps == 24
    out, report = transfer(net, objective, content, TransferSettings(optimizer="lbfgs", lr=10.0, steps=40))
    assert report.stopped is None and report.steps == 40 and pinned(out) < 0.25


def test_a_dream_that_turns_to_noise_raises_with_the_full_size_image_from_before(tmp_path):
    """Dream at a step size of 1 on the tiny net: `Diverged` carries a full-size image in [0, 1]."""
    net = FeatureNet(tiny_cnn(tmp_path), ["b2/relu"])
    x = photo("chelsea.png", (64, 48))
    with pytest.raises(Diverged) as stopped:
        from reverie.engine.pyramid import Pyramid
        dream(net, ActivationL2("b2/relu"), x, DreamSettings(steps=16, step_size=1.0, jitter=0), Pyramid(2, 1.5))
    assert stopped.value.image.shape == x.shape and pinned(stopped.value.image) < 0.5


def test_a_loss_not_finite_from_the_start_blames_the_network_not_the_step_size(tmp_path):
    """A network that overflows on the starting image (weights × 1e20 here; float16 does it for real) gives a
    NaN or infinite loss before any step: the message says no step size is to blame and names the precision,
    for Dream and for style transfer (whose content target is then not finite either)."""
    cnn = tiny_cnn(tmp_path)
    with torch.no_grad():
        for p in cnn.module.parameters():
            p.mul_(1e20)
    net = FeatureNet(cnn, ["b2/relu"])
    x = photo("chelsea.png", (64, 48))
    blame = r"loss of the starting image is NaN or infinite\. No step size is to blame: .* float32 or bfloat16"
    with pytest.raises(Diverged, match=blame):
        dream(net, ActivationL2("b2/relu"), x, DreamSettings(steps=3, jitter=0))
    with pytest.raises(Diverged, match=blame):
        transfer(net, ContentObjective(x, ["b2/relu"]), x, TransferSettings(steps=3))
