"""Style transfer runs: losses fall, seeds reproduce, blends, masks and colours do what they say,
coarse to fine pays off, Adam is carried across sizes, and a NaN loss keeps the last good image."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.colour import rgb_to_yiq
from reverie.engine.features import FeatureNet
from reverie.engine.losses import TVLoss
from reverie.engine.objectives import ActivationL2, Objective
from reverie.engine.pyramid import Pyramid, resize
from reverie.engine.style import ContentObjective, StyleObjective
from reverie.engine.transfer import TransferSettings, init_image, make_optimizer, transfer
from tests.engine.style_support import LAYERS, cnn, net, vgg19_partial  # noqa: F401  (fixtures)
from tests.helpers import photo

@pytest.fixture(scope="module")
def vgg():
    return vgg19_partial()


def pattern(seed: int, tint: tuple[float, float, float], size: tuple[int, int] = (32, 32), batch: int = 1) -> torch.Tensor:
    """A random texture around a colour."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(batch, 3, *size, generator=g) - 0.5
    return (torch.tensor(tint).view(1, 3, 1, 1) + 0.6 * noise).clamp(0, 1)


def evaluate(net: FeatureNet, objective: Objective, x: torch.Tensor) -> torch.Tensor:
    """The objective's loss per image of `x`, with its targets made for `x`'s size."""
    for term in (m for m in objective.modules() if hasattr(m, "retarget")):
        term.retarget(net, tuple(x.shape[-2:]))
    with torch.no_grad():
        return objective(net(x), x)


@pytest.mark.parametrize("statistic", ["gram", "mean_cov"])
def test_style_loss_falls_tenfold_from_the_content_image(vgg, statistic):
    """Shared VGG19: 30 Adam steps from the cat photo cut the Starry Night style loss at least 10×."""
    content, style = photo("chelsea.png", (96, 64)), photo("starry_night.jpg", (120, 96))
    objective = StyleObjective([style], ["relu1_1", "relu2_1", "relu3_1"], statistic=statistic)
    net = FeatureNet(vgg, objective.layers())
    before = evaluate(net, objective, content)
    out, report = transfer(net, objective, content, TransferSettings(steps=30))
    assert report.loss[0] < before.item() / 10, (before, report.loss)
    assert torch.allclose(evaluate(net, objective, out), torch.tensor(report.loss))


@pytest.mark.slow
def test_coarse_to_fine_beats_single_scale_at_equal_cost(vgg):
    """From noise, 2 sizes (48×36 then 96×72, 32 steps each) reach a lower full-size loss than 40 steps at
    full size. Equal cost: a step costs in proportion to its pixels (32·(¼ + 1) = 40 full-size steps),
    which holds for conv nets and, unlike wall time, does not depend on the machine's load (measured:
    2.5 s against 2.3 s, the extra being the targets made at the second size; the loss is about half)."""
    content, style = photo("chelsea.png", (96, 72)), photo("starry_night.jpg", (150, 120))
    objective = ContentObjective(content, ["relu3_2"]) + StyleObjective([style], ["relu1_1", "relu2_1", "relu3_1"],
                                                                        weight=10)
    net = FeatureNet(vgg, objective.layers())
    noise = init_image("noise", content, seed=0)
    pyramid = Pyramid(2, 2.0)
    sizes = pyramid.sizes(72, 96, net.min_size)
    steps = 40
    per_level = int(steps / sum(h * w for h, w in sizes) * 72 * 96)
    assert sizes == [(36, 48), (72, 96)] and per_level == 32
    _, single = transfer(net, objective, noise, TransferSettings(steps=steps))
    _, coarse_to_fine = transfer(net, objective, noise, TransferSettings(steps=per_level), pyramid)
    assert coarse_to_fine.loss[0] < 0.8 * single.loss[0], (coarse_to_fine.loss, single.loss)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_same_seed_gives_identical_bytes(net, optimizer):
    """Noise init from a seed, two sizes, EMA, TV, mean/cov style: two runs agree to the byte."""
    content = pattern(0, (0.6, 0.4, 0.3), (40, 48))
    objective = ContentObjective(content, ["b2/relu"]) + StyleObjective([pattern(1, (0.2, 0.3, 0.7))], LAYERS,
                                                                        weight=5, statistic="mean_cov")
    settings = TransferSettings(optimizer=optimizer, steps=8, tv_weight=1.0, ema=0.8)

    def run(seed: int) -> bytes:
        out, _ = transfer(net, objective, init_image("noise", content, seed=seed), settings, Pyramid(2, 1.5))
        return out.numpy().tobytes()

    first = run(3)
    assert run(3) == first and run(4) != first


def test_blend_weight_moves_the_two_style_losses_monotonically(net):
    """Sliding the blend from style A to style B: the loss against A rises, the loss against B falls."""
    a, b = pattern(2, (0.8, 0.3, 0.2)), pattern(3, (0.2, 0.4, 0.9), (24, 40))
    start = pattern(4, (0.5, 0.5, 0.5))
    only_a, only_b = StyleObjective([a], LAYERS), StyleObjective([b], LAYERS)
    losses_a, losses_b = [], []
    for w in (0.0, 0.25, 0.5, 0.75, 1.0):
        objective = StyleObjective([a, b], LAYERS, blend=[1 - w, w])
        out, _ = transfer(net, objective, start, TransferSettings(steps=40))
        losses_a.append(evaluate(net, only_a, out).item())
        losses_b.append(evaluate(net, only_b, out).item())
    assert all(x < y for x, y in zip(losses_a, losses_a[1:])), losses_a
    assert all(x > y for x, y in zip(losses_b, losses_b[1:])), losses_b


def test_mask_confines_the_style_to_its_region(net):
    """With the style masked to the left half, the left half's style loss falls far more than the right's.
    The mask has half the output's size: it is resized to each layer."""
    content, style = pattern(5, (0.5, 0.5, 0.5), (32, 48)), pattern(6, (0.9, 0.2, 0.1))
    left = torch.zeros(1, 32, 48)
    left[..., :24] = 1
    objective = (ContentObjective(content, ["b2/relu"])
                 + StyleObjective([style], LAYERS, weight=10, mask=resize(left[None], (16, 24))[0]))
    out, _ = transfer(net, objective, content, TransferSettings(steps=40))
    inside, outside = StyleObjective([style], LAYERS, mask=left), StyleObjective([style], LAYERS, mask=1 - left)
    fall_in = evaluate(net, inside, out) / evaluate(net, inside, content)
    fall_out = evaluate(net, outside, out) / evaluate(net, outside, content)
    assert fall_in < 0.2 and fall_out > 3 * fall_in, (fall_in, fall_out)
    change = (out - content).abs().mean(1)[0]
    assert change[:, :20].mean() > 3 * change[:, 28:].mean()


def test_luminance_only_transfer_keeps_the_contents_chroma(net):
    content, style = pattern(7, (0.7, 0.5, 0.3), (32, 40)), pattern(8, (0.1, 0.3, 0.9))
    objective = ContentObjective(content, ["b2/relu"]) + StyleObjective([style], LAYERS, weight=10)
    plain, _ = transfer(net, objective, content, TransferSettings(steps=20))
    kept, report = transfer(net, objective, content, TransferSettings(steps=20, colour="luminance"))
    chroma = rgb_to_yiq(content)[:, 1:]
    assert (rgb_to_yiq(kept)[:, 1:] - chroma).abs().mean() < 0.01 < (rgb_to_yiq(plain)[:, 1:] - chroma).abs().mean()
    assert (rgb_to_yiq(kept)[:, :1] - rgb_to_yiq(plain)[:, :1]).abs().mean() < 0.01  # up to clamping


def test_histogram_matching_keeps_the_contents_colours(net):
    """A blue style pulls a plain run's colours towards blue; matched to the content first, it does not."""
    content, style = pattern(9, (0.7, 0.5, 0.3), (32, 40)), pattern(10, (0.1, 0.3, 0.9))
    objective = ContentObjective(content, ["b2/relu"]) + StyleObjective([style], LAYERS, weight=10)
    drift = {}
    for colour in ("none", "histogram"):
        out, _ = transfer(net, objective, content, TransferSettings(steps=20, colour=colour))
        drift[colour] = (out.mean((0, 2, 3)) - content.mean((0, 2, 3))).abs().max().item()
    assert drift["histogram"] < drift["none"] / 3, drift


def test_whole_batch_is_optimised_and_objective_composes_with_dream_terms(net):
    """Two content images with one style both get stylised; adding a dream term raises its activation."""
    content, style = pattern(11, (0.5, 0.5, 0.5), (32, 32), batch=2), pattern(12, (0.9, 0.8, 0.1))
    transfer_only = ContentObjective(content, ["b2/relu"]) + StyleObjective([style], LAYERS, weight=10)
    dream = ActivationL2("b3/relu")
    out, report = transfer(net, transfer_only, content, TransferSettings(steps=20))
    dreamt, _ = transfer(net, transfer_only + 100 * dream, content, TransferSettings(steps=20))
    style_only = StyleObjective([style], LAYERS)
    assert out.shape == content.shape and len(report.loss) == 2
    assert (evaluate(net, style_only, out) < 0.5 * evaluate(net, style_only, content)).all()
    assert (evaluate(net, dream, dreamt) < 1.1 * evaluate(net, dream, out)).all()  # minus the power: 10 % up
    assert transfer_only.terms[0].loss is None  # the caller's objective is left as it was


def test_adam_state_is_resized_and_carried_to_the_next_size():
    """exp_avg/exp_avg_sq are resized to the new size (and rescaled for its pixel count); the step count carries."""
    small = torch.rand(1, 3, 8, 8, requires_grad=True)
    settings = TransferSettings(steps=1)
    first = make_optimizer(settings, small)
    for _ in range(3):
        first.zero_grad()
        small.pow(2).sum().backward()
        first.step()
    large = torch.rand(1, 3, 16, 16, requires_grad=True)
    carried = make_optimizer(settings, large, first).state[large]
    old = first.state[small]
    assert carried["step"].item() == 3 and carried["exp_avg"].shape == large.shape
    assert torch.allclose(carried["exp_avg"].mean() * 4, old["exp_avg"].mean(), rtol=1e-4)
    assert torch.allclose(carried["exp_avg_sq"].mean() * 16, old["exp_avg_sq"].mean(), rtol=0.05)
    assert not make_optimizer(TransferSettings(optimizer="lbfgs"), large, first).state


class NaNAfter(Objective):
    """A smooth loss that turns NaN after `calls` evaluations."""

    def __init__(self, calls: int):
        super().__init__()
        self.calls, self.seen = calls, 0

    def forward(self, feats, image):
        self.seen += 1
        loss = (image - 0.25).pow(2).flatten(1).mean(1)
        return loss if self.seen <= self.calls else loss * float("nan")


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_non_finite_loss_stops_and_keeps_the_last_good_image(net, optimizer):
    """The run stops at the next check after the NaN, returns the image with the lowest finite loss (the last
    one before the NaN here) at the output size, and the report names the evaluation; a loss that is NaN from
    the start is a ValueError. (L-BFGS's first step evaluates twice: at the start and where it moves.)"""
    start = pattern(13, (0.5, 0.5, 0.5), (32, 32))
    objective = StyleObjective([pattern(14, (0.2, 0.6, 0.2))], LAYERS) + NaNAfter(calls=5)
    seen = []
    out, report = transfer(net, objective, start, TransferSettings(optimizer=optimizer, steps=10), Pyramid(2, 2.0),
                           callback=lambda p: seen.append(p.image.clone()))
    assert report.stopped is not None and "at level 1 of 2: the loss became NaN or infinite at step 6 of 10" \
        in report.stopped
    assert "lowest finite loss is returned" in report.stopped and report.stopped in report.warnings
    assert out.shape == start.shape and torch.isfinite(out).all()
    # the image evaluated by the 5th (last finite) call, as Watch keeps it: in float16 (to within 2⁻¹²)
    assert torch.allclose(out, resize(seen[3], (32, 32)), rtol=0, atol=2 ** -12)
    assert report.steps == 7  # the previews of steps 6 and 7 were shown before the check at step 8 saw the NaN
    with pytest.raises(ValueError, match="loss of the starting image is NaN or infinite. No step size is to blame: "
                                         ".* no step had a finite loss"):
        transfer(net, NaNAfter(calls=0) + StyleObjective([start], LAYERS), start, TransferSettings(steps=3))


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_a_non_contiguous_image_is_optimised_like_its_contiguous_copy(net, optimizer):
    """A photo read channels-last and permuted (as engine/cli.py reads files) runs through init_image and
    L-BFGS, whose flat view of the gradient needs contiguous memory, and gives the contiguous copy's result (to
    float precision: convolutions sum in another order on another memory layout)."""
    photo_hwc = pattern(31, (0.5, 0.4, 0.3), (24, 32)).permute(0, 2, 3, 1).contiguous()
    permuted = photo_hwc.permute(0, 3, 1, 2)
    assert not permuted.is_contiguous()
    settings = TransferSettings(optimizer=optimizer, steps=3)
    runs = [transfer(net, ContentObjective(x, LAYERS) + StyleObjective([pattern(32, (0.2, 0.6, 0.2))], LAYERS),
                     init_image("content", x), settings)[0] for x in (permuted, permuted.contiguous())]
    assert torch.allclose(runs[0], runs[1], atol=1e-5)


@pytest.mark.parametrize("name, make", [
    ("content image", lambda x: init_image("content", x)),
    ("content image", lambda x: ContentObjective(x, LAYERS)),
    ("init image", lambda x: init_image("image", image=x)),
    ("style image 1", lambda x: StyleObjective([x], LAYERS)),
])
def test_non_finite_pixels_are_reported_before_any_step(net, name, make):
    """A NaN or infinite pixel is named as such (how many values, in how many pixels), not as a step size."""
    x = pattern(33, (0.5, 0.5, 0.5), (8, 8), batch=2)
    x[1, :, 0, 0] = float("nan")
    x[0, 0, 3, 3] = float("inf")
    with pytest.raises(ValueError, match=rf"The {name} has 3 NaN and 1 infinite values, in 2 of 128 pixels"):
        make(x)


def test_callback_sees_every_step_and_the_averaged_image(net):
    """levels × steps callbacks (the pyramid's coarse steps below the full size); with EMA on, the last
    preview is the returned image."""
    content = pattern(15, (0.4, 0.5, 0.6), (24, 24))
    objective = StyleObjective([pattern(16, (0.9, 0.1, 0.1))], LAYERS)
    seen = []
    out, report = transfer(net, objective, content, TransferSettings(steps=4, ema=0.5), Pyramid(2, 1.5),
                           callback=seen.append)
    assert [(p.level, p.step) for p in seen] == [(0, 1), (0, 2), (0, 3), (0, 4), (1, 1), (1, 2), (1, 3), (1, 4)]
    assert report.steps == 8 and report.sizes == [(16, 16), (24, 24)]
    assert torch.allclose(seen[-1].image, out)

    seen.clear()
    transfer(net, objective, content, TransferSettings(steps=4), Pyramid(2, 1.5, coarse_steps=2), callback=seen.append)
    assert [(p.level, p.step, p.steps) for p in seen] == [(0, 1, 2), (0, 2, 2), (1, 1, 4), (1, 2, 4), (1, 3, 4),
                                                          (1, 4, 4)]
    assert [p.done for p in seen] == pytest.approx([k / 6 for k in range(1, 7)])  # each step an equal share

    def interrupt(p):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        transfer(net, objective, content, TransferSettings(steps=4), callback=interrupt)


def test_report_warns_about_enlarged_styles_and_stretched_content(net):
    """A style image far smaller than the output is enlarged with a warning; so is a stretched content."""
    content = pattern(20, (0.5, 0.5, 0.5), (32, 32))
    objective = ContentObjective(content, ["b2/relu"]) + StyleObjective([pattern(21, (0.2, 0.2, 0.8), (8, 10))], LAYERS)
    out, report = transfer(net, objective, init_image("content", content, size=(32, 64)),
                           TransferSettings(steps=2), Pyramid(2, 2.0))
    assert out.shape == (1, 3, 32, 64) and report.stopped is None
    assert len(report.warnings) == 2, report.warnings
    assert "Style image 1 (10×8) is enlarged 6.4× to 64×51" in report.warnings[1]
    assert "content image (32×32) has another aspect ratio than the output (64×32)" in report.warnings[0]


def test_tv_weight_smooths_the_result(net):
    start = pattern(17, (0.5, 0.5, 0.5), (32, 32))
    objective = StyleObjective([pattern(18, (0.5, 0.5, 0.5))], LAYERS)
    rough, _ = transfer(net, objective, start, TransferSettings(steps=20))
    smooth, _ = transfer(net, objective, start, TransferSettings(steps=20, tv_weight=10.0))
    tv = TVLoss()
    assert tv({}, smooth) < 0.7 * tv({}, rough)


def test_init_image_kinds_and_sizes():
    content = torch.rand(2, 3, 30, 60)
    assert torch.equal(init_image("content", content), content)
    assert init_image("content", content, size=40).shape == (2, 3, 20, 40)
    assert init_image("image", content, size=(10, 12), image=torch.rand(1, 3, 5, 5)).shape == (1, 3, 10, 12)
    noise = init_image("noise", content, seed=1)
    assert noise.shape == content.shape and torch.equal(noise, init_image("noise", content, seed=1))
    assert init_image("noise", size=16).shape == (1, 3, 16, 16)
    for kwargs, message in [(dict(kind="content"), "needs a content image"), (dict(kind="image"), "needs an init image"),
                            (dict(kind="noise"), "needs an output size"), (dict(kind="blank"), "one of content")]:
        with pytest.raises(ValueError, match=message):
            init_image(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer="sgd"), "adam, lbfgs"), (dict(lr=0), "learning rate must be > 0"), (dict(steps=0), "at least 1"),
    (dict(tv_weight=-1), "tv_weight must be ≥ 0"), (dict(ema=1.0), r"ema must be in \[0, 1\)"),
    (dict(colour="sepia"), "none, luminance, histogram"),
])
def test_bad_settings_raise_clear_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransferSettings(**kwargs)


def test_bad_runs_raise_clear_value_errors(net, cnn):
    image = pattern(19, (0.5, 0.5, 0.5), (32, 32))
    style = StyleObjective([image], LAYERS)
    with pytest.raises(ValueError, match="no content image"):
        transfer(net, style, image, TransferSettings(colour="luminance"))
    with pytest.raises(ValueError, match="does not compute"):
        transfer(FeatureNet(cnn, ["b1/relu"]), style, image)
    with pytest.raises(ValueError, match="init image must be an RGB batch"):
        transfer(net, style, image[:, :1])
    with pytest.raises(ValueError, match="needs at least 8×8"):
        transfer(net, style, image[..., :4, :4])
