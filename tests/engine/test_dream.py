"""DeepDream: the objective rises, octaves keep detail, runs are reproducible."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.dream import DreamSettings, dream
from reverie.engine.features import FeatureNet
from reverie.engine.models import load_cnn
from reverie.engine.objectives import ActivationL2
from reverie.engine.optimize import frame_progress
from reverie.engine.pyramid import Pyramid, resize
from reverie.engine.step_rules import NormalizedDescent
from tests.helpers import photo, shared_file, tiny_cnn


@pytest.fixture(scope="module")
def googlenet():
    return load_cnn("googlenet_caffe", shared_file("weights/googlenet_caffe.safetensors"))


def score(net, objective, x):
    with torch.no_grad():
        return -objective(net(x), x)


def test_dream_raises_its_objective_on_a_photo(googlenet):
    """Ten steps at 0.01 at least triple inception_4c's activation power and visibly change the image."""
    x = photo("chelsea.png", (160, 112))
    objective = ActivationL2("inception_4c/output")
    net = FeatureNet(googlenet, objective.layers())
    out = dream(net, objective, x, DreamSettings(steps=10, step_size=0.01, jitter=16))
    assert score(net, objective, out) > 3 * score(net, objective, x)
    assert (out - x).abs().mean() > 0.01
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1


def high_pass(x: torch.Tensor) -> torch.Tensor:
    return x - resize(resize(x, (x.shape[-2] // 4, x.shape[-1] // 4)), tuple(x.shape[-2:]))


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float(a @ b / (a.norm() * b.norm()))


def reupscale_baseline(net, objective, x, settings, pyramid):
    """What octaves must not do: dream small, then upscale the dream itself to the next size."""
    sizes = pyramid.sizes(*x.shape[-2:], net.min_size)
    current = resize(x, sizes[0])
    gen = torch.Generator().manual_seed(settings.seed)
    from reverie.engine.optimize import feature_loss, optimize, whole_image
    from reverie.engine.transforms import jitter
    loss = feature_loss(net, objective, jitter(settings.jitter, gen))
    for size in sizes:
        leaf = resize(current, size).clamp(0, 1).requires_grad_(True)
        current = optimize(leaf, whole_image(loss), NormalizedDescent([leaf], settings.step_size), settings.steps)
    return current


@pytest.mark.slow
def test_octaves_carry_detail_instead_of_upscaling_the_dream(googlenet):
    """The full-resolution photo's fine detail survives octaves (it is lost by re-upscaling the dream)."""
    x = photo("chelsea.png", (224, 160))
    objective = ActivationL2("inception_3b/output")
    net = FeatureNet(googlenet, objective.layers())
    settings, pyramid = DreamSettings(steps=4, step_size=0.01, jitter=8), Pyramid(3, 1.6)
    ours = dream(net, objective, x, settings, pyramid)
    baseline = reupscale_baseline(net, objective, x, settings, pyramid)
    kept, lost = correlation(high_pass(ours), high_pass(x)), correlation(high_pass(baseline), high_pass(x))
    assert kept > 0.5 and kept > lost + 0.2, (kept, lost)
    assert score(net, objective, ours) > 1.5 * score(net, objective, x)


def test_coarse_steps_run_below_the_full_size_and_progress_reaches_one(tmp_path):
    """3 octaves with 1 coarse step each and 3 at the full size, dreamed as frame 2 of 2 of a sequence: the
    steps each level takes, and a fraction done that rises by equal shares from one half to one."""
    cnn = tiny_cnn(tmp_path)
    net = FeatureNet(cnn, ["b2/relu"])
    seen = []
    dream(net, ActivationL2("b2/relu"), torch.rand(1, 3, 40, 40), DreamSettings(steps=3), Pyramid(3, 1.2, coarse_steps=1),
          frame_progress(seen.append, 1, 2))
    assert [(p.level, p.steps) for p in seen] == [(3, 1), (4, 1), (5, 3), (5, 3), (5, 3)]
    assert [p.done for p in seen] == pytest.approx([0.5 + k / 10 for k in range(1, 6)])


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    """Jitter is the only randomness and the seed fixes it."""
    cnn = tiny_cnn(tmp_path)
    objective = ActivationL2("b2/relu")
    net = FeatureNet(cnn, objective.layers())
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    run = lambda seed: dream(net, objective, x, DreamSettings(steps=3, jitter=6, seed=seed), Pyramid(2, 1.5))
    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_batch_elements_are_dreamed_independently(tmp_path):
    """Each image of a batch gets the result it would get alone (per-image gradient normalisation)."""
    cnn = tiny_cnn(tmp_path)
    objective = ActivationL2("b3/relu")
    net = FeatureNet(cnn, objective.layers())
    batch = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    settings = DreamSettings(steps=3, jitter=4)
    together = dream(net, objective, batch, settings)
    alone = torch.cat([dream(net, objective, batch[i:i + 1], settings) for i in range(2)])
    assert torch.allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("normalize", ["mean_abs", "std"])
def test_normalised_step_moves_pixels_by_the_step_size(normalize):
    """The step size is a pixel distance whatever the gradient's scale."""
    x = torch.full((2, 3, 8, 8), 0.5, requires_grad=True)
    x.grad = torch.randn(2, 3, 8, 8) * torch.tensor([1e-3, 1e3]).view(2, 1, 1, 1)
    before = x.detach().clone()
    NormalizedDescent([x], 0.01, normalize).step()
    moved = (x.detach() - before).flatten(1)
    measure = moved.abs().mean(1) if normalize == "mean_abs" else moved.std(1)
    assert torch.allclose(measure, torch.full((2,), 0.01), rtol=1e-3)


def test_image_smaller_than_the_net_accepts_is_rejected(tmp_path):
    cnn = tiny_cnn(tmp_path)
    net = FeatureNet(cnn, ["b1/relu"])
    with pytest.raises(ValueError, match="at least 8×8"):
        dream(net, ActivationL2("b1/relu"), torch.rand(1, 3, 4, 4), DreamSettings(steps=1))


def test_tiled_dream_bounds_the_net_input_and_still_dreams(tmp_path):
    """With tile=32 the net never sees more than 1.5 tiles a side, the grid moves every step, and the
    objective rises about as much as without tiles."""
    cnn = tiny_cnn(tmp_path)
    objective = ActivationL2("b2/relu")
    net = FeatureNet(cnn, objective.layers())
    seen = []
    cnn.module.b1.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape[-2:])))
    x = torch.rand(2, 3, 100, 90, generator=torch.Generator().manual_seed(5))
    tiled = dream(net, objective, x, DreamSettings(steps=4, step_size=0.02, jitter=4, tile=32))
    assert max(max(s) for s in seen) <= 48 and min(min(s) for s in seen) >= 8
    assert len(set(seen)) > 4  # windows of varying sizes: the grid moved
    whole = dream(net, objective, x, DreamSettings(steps=4, step_size=0.02, jitter=4))
    gain_tiled = score(net, objective, tiled) / score(net, objective, x)
    gain_whole = score(net, objective, whole) / score(net, objective, x)
    assert (gain_tiled > 1.5).all() and (gain_tiled > 0.7 * gain_whole).all(), (gain_tiled, gain_whole)
    with pytest.raises(ValueError, match="at least 32"):
        dream(net, objective, x, DreamSettings(steps=1, tile=16))


def test_zoom_in_keeps_the_centre_and_enlarges_it():
    """A dot at the centre stays there; a ring at a quarter of the width moves out by the zoom factor."""
    from reverie.engine.zoom import zoom_in
    x = torch.zeros(1, 3, 101, 101)
    x[..., 50, 50] = 1
    x[..., 50, 75] = 1
    out = zoom_in(x, 1.25)
    assert out.shape == x.shape and out[0, 0, 50, 50] > 0.5
    assert out[0, 0, 50, 75:].argmax().item() + 75 in (80, 81, 82)
    with pytest.raises(ValueError, match="at least 1"):
        zoom_in(x, 0.5)


def test_dream_zoom_yields_distinct_reproducible_frames_and_counts_progress(tmp_path):
    from reverie.engine.zoom import dream_zoom
    cnn = tiny_cnn(tmp_path)
    objective = ActivationL2("b2/relu")
    net = FeatureNet(cnn, objective.layers())
    x = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(3))
    seen = []
    run = lambda cb=None: list(dream_zoom(net, objective, x, DreamSettings(steps=2, jitter=4), 3, 1.1, callback=cb))
    frames = run(lambda p: seen.append((p.level, p.levels, p.step)))
    assert len(frames) == 3 and all(f.shape == x.shape for f in frames)
    assert not torch.equal(frames[0], frames[1]) and not torch.equal(frames[1], frames[2])
    assert all(torch.equal(a, b) for a, b in zip(frames, run()))
    assert seen == [(f, 3, s) for f in range(3) for s in (1, 2)]
