"""The engine on the device under test ($REVERIE_TEST_DEVICE, cpu when unset; scripts/gpu_check.sh runs
these on cuda): every architecture in float32, bfloat16 and float16, Dream, exact tiles, style transfer
with each optimiser, and both video runs. Everything stays on the device and comes back finite."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.architectures import ARCHITECTURES
from reverie.engine.dream import DreamSettings, dream
from reverie.engine.features import FeatureNet
from reverie.engine.flow import flow_estimator
from reverie.engine.models import load_cnn
from reverie.engine.objectives import ActivationL2
from reverie.engine.pyramid import Pyramid
from reverie.engine.style import ContentObjective, StyleObjective
from reverie.engine.transfer import TransferSettings, transfer
from reverie.engine.video import dream_video, stylise_video
from tests.engine.test_architectures import random_state, saved
from tests.helpers import device_under_test, tiny_cnn

LAYERS = ["b1/relu", "b2/relu", "b3/relu"]
DTYPES = [torch.float32, torch.bfloat16, torch.float16]


@pytest.fixture(scope="module")
def device() -> torch.device:
    return device_under_test()


@pytest.fixture(scope="module")
def tiny(device, tmp_path_factory) -> FeatureNet:
    cnn = tiny_cnn(tmp_path_factory.mktemp("tiny"))
    cnn.module.to(device)
    return FeatureNet(cnn, ["b1/conv", *LAYERS])


def rand(device, *shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)).to(device)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_dreams_on_the_device(name, dtype, device, tmp_path):
    """Random weights in `dtype`: features at the last layer are float32 on the device, and two Dream steps
    give a finite image there."""
    if dtype != torch.float32 and device.type == "cpu":
        pytest.skip("on the CPU, test_architectures runs every net in bfloat16; float16 is a GPU precision")
    cnn = load_cnn(name, saved(tmp_path, random_state(name)), dtype=dtype)
    cnn.module.to(device)
    last = cnn.available_layers()[-1].name
    net = FeatureNet(cnn, [last])
    side = max(net.min_size, 64)
    x = rand(device, 1, 3, side, side)
    feats = net(x)[last]
    assert feats.dtype == torch.float32 and feats.device.type == device.type
    out = dream(net, ActivationL2(last), x, DreamSettings(steps=2, jitter=4))
    assert out.device.type == device.type and out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_style_transfer_runs_on_the_device(tiny, device, optimizer):
    """Content and style (Gram and mean/covariance), TV, EMA and a pyramid: the loss falls and the image stays
    on the device in [0, 1]."""
    content, style = rand(device, 1, 3, 40, 48, seed=1), rand(device, 1, 3, 32, 32, seed=2) * 0.5
    objective = (ContentObjective(content, ["b2/relu"]) + StyleObjective([style], LAYERS, weight=10)
                 + StyleObjective([style], ["b3/relu"], statistic="mean_cov"))
    losses = []
    out, report = transfer(tiny, objective, content, TransferSettings(optimizer=optimizer, steps=10, tv_weight=0.1,
                                                                      ema=0.5), Pyramid(2, 1.5),
                           callback=lambda p: losses.append(p.loss.sum().item()))
    assert out.device.type == device.type and 0 <= out.min() and out.max() <= 1
    assert report.loss[0] < losses[0] and report.stopped is None


def test_exact_tiles_match_the_untiled_run_on_the_device(tiny, device):
    """Three Adam steps tile by tile give the untiled image (float tolerance), on the device."""
    content, style = rand(device, 1, 3, 64, 72, seed=3), rand(device, 1, 3, 48, 48, seed=4)
    objective = ContentObjective(content, ["b2/relu"]) + StyleObjective([style], LAYERS, weight=10)
    untiled, _ = transfer(tiny, objective, content, TransferSettings(steps=3))
    tiled, _ = transfer(tiny, objective, content, TransferSettings(steps=3, tile=32))
    assert tiled.device.type == device.type
    assert (tiled - untiled).abs().max() < 1e-3


def test_video_runs_on_the_device(tiny, device):
    """Dream Video and Stylise Video over three frames with the built-in flow: every frame on the device, finite."""
    frames = rand(device, 3, 3, 32, 40, seed=5)
    estimate, _ = flow_estimator("builtin")
    dreamt = list(dream_video(tiny, ActivationL2("b3/relu"), frames, DreamSettings(steps=2, jitter=2), 0.9, 1,
                              estimate))
    objective = ContentObjective(frames[:1], ["b2/relu"]) + StyleObjective([rand(device, 1, 3, 32, 32)], LAYERS)
    styled = [out for out, _ in stylise_video(tiny, objective, frames, TransferSettings(steps=3), 1.0, 2, estimate)]
    for out in dreamt + styled:
        assert out.device.type == device.type and out.shape == (1, 3, 32, 40) and torch.isfinite(out).all()


HOST = torch.device("cpu")


def peak(device: torch.device, run):
    """`run()`'s result and, on CUDA, the most device memory it held beyond what was allocated before (else 0)."""
    if device.type != "cuda":
        return run(), 0
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
    result = run()
    torch.cuda.synchronize()
    return result, torch.cuda.max_memory_allocated() - start


def test_a_print_kept_in_host_memory_matches_one_kept_on_the_device(tiny, device):
    """The image (with a masked style, a content target and TV) in host memory, the net on the device, tiled and
    untiled: the same image as the run kept on the device, returned in host memory; on CUDA the device holds
    less by at least the iterate, its gradient and Adam's two moments (both measured after a warm-up run, so
    cuDNN's first-call workspaces count in neither)."""
    content, style = rand(HOST, 1, 3, 384, 448, seed=6), rand(HOST, 1, 3, 48, 48, seed=7)
    mask = (torch.arange(448) < 300).float().expand(1, 384, 448)
    objective = (ContentObjective(content, ["b2/relu"]) + StyleObjective([style], LAYERS, weight=10, mask=mask)
                 + StyleObjective([style], ["b3/relu"], statistic="mean_cov"))
    settings = TransferSettings(steps=3, tv_weight=0.1, tile=96)
    transfer(tiny, objective, content.to(device), settings, Pyramid(2, 1.5))
    (kept, _), on_device = peak(device, lambda: transfer(tiny, objective, content.to(device), settings, Pyramid(2, 1.5)))
    (offloaded, report), in_host = peak(device, lambda: transfer(tiny, objective, content, settings, Pyramid(2, 1.5)))
    assert offloaded.device == HOST and report.stopped is None
    assert (offloaded - kept.cpu()).abs().max() < 1e-3
    if device.type == "cuda":
        assert in_host <= on_device - 4 * content.nbytes
    untiled, _ = transfer(tiny, objective, content[..., :96, :112], TransferSettings(steps=3, tv_weight=0.1))
    assert untiled.device == HOST and torch.isfinite(untiled).all()


def test_a_dream_kept_in_host_memory_matches_one_kept_on_the_device(tiny, device):
    """Dream in moving windows with the image in host memory and the net on the device: the device's result."""
    image = rand(HOST, 1, 3, 80, 96, seed=8)
    settings = DreamSettings(steps=3, jitter=4, tile=48)
    kept = dream(tiny, ActivationL2("b3/relu").to(device), image.to(device), settings, Pyramid(2, 1.4))
    offloaded = dream(tiny, ActivationL2("b3/relu").to(device), image, settings, Pyramid(2, 1.4))
    assert offloaded.device == HOST and (offloaded - kept.cpu()).abs().max() < 1e-3


def test_a_clip_in_host_memory_is_made_a_frame_at_a_time_on_the_device(tiny, device):
    """Dream Video and Stylise Video on a clip in host memory: every frame is made on the device, as from the
    clip kept there; on CUDA the device's peak does not grow with the clip's length."""
    frames = rand(HOST, 6, 40, 32, 4, seed=9)[..., :3].permute(0, 3, 2, 1)  # a view, as of an RGBA IMAGE
    estimate, _ = flow_estimator("builtin")
    style = rand(HOST, 1, 3, 32, 32, seed=10)

    def made(clip: torch.Tensor) -> torch.Tensor:
        dreamt = dream_video(tiny, ActivationL2("b3/relu").to(device), clip, DreamSettings(steps=2, jitter=2), 0.9, 1,
                             estimate)
        objective = ContentObjective(clip[:1], ["b2/relu"]) + StyleObjective([style], LAYERS)
        styled = (out for out, _ in stylise_video(tiny, objective, clip, TransferSettings(steps=3), 1.0, 2, estimate))
        outs = [(out.device.type, out.cpu()) for sequence in (dreamt, styled) for out in sequence]  # each leaves at once
        assert {made_on for made_on, _ in outs} == {device.type}
        return torch.cat([out for _, out in outs])

    kept = made(frames.to(device))
    in_host, long_peak = peak(device, lambda: made(frames))
    _, short_peak = peak(device, lambda: made(frames[:2]))
    assert (in_host - kept).abs().max() < 1e-4
    if device.type == "cuda":
        assert long_peak - short_peak < frames[:2].nbytes
