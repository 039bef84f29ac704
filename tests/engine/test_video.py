"""Video: dreams and stylisations that follow the input's motion flicker less than frames made on their own,
and the detail moves with the content instead of ghosting in place."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.dream import DreamSettings, dream
from reverie.engine.features import FeatureNet
from reverie.engine.flow import estimate_flow
from reverie.engine.layers import parse_layers
from reverie.engine.models import load_cnn
from reverie.engine.style import ContentObjective, StyleObjective
from reverie.engine.transfer import TransferSettings
from reverie.engine.video import clip_motion, detail_drift, dream_video, flicker, stylise_video
from tests.engine.style_support import LAYERS, cnn, net  # noqa: F401  (fixtures)
from tests.helpers import photo, shared_file

FRAMES, SIDE, PAN = 5, 128, 3


def pan_clip() -> torch.Tensor:
    """A camera pan over a real photo: windows of one larger image, PAN px further right each frame."""
    big = photo("chelsea.png", (451, 300))
    return torch.cat([big[..., 70:70 + SIDE, 110 + PAN * t:110 + PAN * t + SIDE] for t in range(FRAMES)])


@pytest.fixture(scope="module")
def googlenet():
    cnn = load_cnn("googlenet_caffe", shared_file("weights/googlenet_caffe.safetensors"))
    selection = parse_layers(cnn, "inception_3b/output")
    return FeatureNet(cnn, selection.layers), selection.dream_objective()


@pytest.mark.slow
def test_dream_video_follows_the_motion(googlenet):
    """Against independent per-frame dreams, ≥ 3× less flicker; against blending the previous detail in place
    (flow 'none'), less drift of the detail relative to the moving content (ghosting)."""
    net, objective = googlenet
    frames = pan_clip()
    motions = clip_motion(frames, estimate_flow)
    settings = DreamSettings(steps=10, step_size=0.01, jitter=16)
    independent = torch.cat(list(dream_video(net, objective, frames, settings, 0.0, 1, estimate_flow)))
    in_place = torch.cat(list(dream_video(net, objective, frames, settings, 0.9, 1, None)))
    ours = torch.cat(list(dream_video(net, objective, frames, settings, 0.9, 1, estimate_flow)))  # the node defaults
    assert (ours - frames).abs().mean() > 0.03  # it does dream
    assert flicker(ours, frames, motions) * 3 <= flicker(independent, frames, motions)
    assert detail_drift(ours, frames, motions) < 0.8 * detail_drift(in_place, frames, motions)


def test_blend_zero_is_dreaming_each_frame_and_one_frame_needs_no_flow(net):
    frames = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    objective = parse_layers(net.cnn, "b2/relu").dream_objective()
    settings = DreamSettings(steps=2, step_size=0.02, jitter=2, seed=5)
    clip = list(dream_video(net, objective, frames, settings, 0.0, 1, estimate_flow))
    for t, out in enumerate(clip):
        alone = dream(net, objective, frames[t:t + 1], DreamSettings(steps=2, step_size=0.02, jitter=2, seed=5 + t))
        assert torch.equal(out, alone)

    def no_flow(*_):
        raise AssertionError("a single frame needs no flow")
    (single,) = dream_video(net, objective, frames[:1], settings, 0.9, 1, no_flow)
    assert single.shape == (1, 3, 40, 40)


@pytest.mark.parametrize("bad, message", [(dict(blend=1.5), "blend must be in"),
                                          (dict(refresh_steps=0), "refresh_steps")])
def test_dream_video_checks_its_settings(net, bad, message):
    args = dict(blend=0.5, refresh_steps=1) | bad
    objective = parse_layers(net.cnn, "b2/relu").dream_objective()
    with pytest.raises(ValueError, match=message):
        list(dream_video(net, objective, torch.rand(2, 3, 32, 32), DreamSettings(steps=1), flow=None, **args))


def test_frames_of_different_sizes_are_named(net):
    objective = parse_layers(net.cnn, "b2/relu").dream_objective()
    frames = [torch.rand(3, 32, 32), torch.rand(1, 3, 32, 32), torch.rand(3, 24, 40)]
    with pytest.raises(ValueError, match="Frame 3 is 40×24 but frame 1 is 32×32"):
        list(dream_video(net, objective, frames, DreamSettings(steps=1), 0.5, 1, None))
    clip = list(dream_video(net, objective, frames[:2], DreamSettings(steps=1), 0.5, 1, None))
    assert len(clip) == 2


@pytest.mark.slow
def test_stylise_video_flickers_less_with_the_temporal_loss(net):
    """Ruder et al.'s scheme on a panning clip (tiny net): each frame's content is its own frame, and the warped
    start plus the temporal loss flicker less than stylising every frame from scratch."""
    frames = torch.nn.functional.interpolate(pan_clip(), size=(64, 64), mode="area")
    motions = clip_motion(frames, estimate_flow)
    style = photo("starry_night.jpg", (64, 52))

    def run(temporal_weight, flow, refresh):
        objective = ContentObjective(frames[:1], LAYERS[-1:]) + StyleObjective([style], LAYERS, weight=10)
        clip = stylise_video(net, objective, frames, TransferSettings(steps=30), temporal_weight, refresh, flow)
        outs, reports = zip(*clip)
        assert all(r.stopped is None for r in reports)
        return torch.cat(outs)

    alone = []
    for t in range(FRAMES):
        objective = ContentObjective(frames[t:t + 1], LAYERS[-1:]) + StyleObjective([style], LAYERS, weight=10)
        (out, _), = stylise_video(net, objective, frames[t:t + 1], TransferSettings(steps=30), 0.0, 1, None)
        alone.append(out)
    ours = run(100.0, estimate_flow, 15)
    assert flicker(ours, frames, motions) * 2 <= flicker(torch.cat(alone), frames, motions)
