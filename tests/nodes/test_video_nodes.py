"""Dream Video and Stylise Video as the host calls them: a clip in, as many frames out, warnings on the node."""
from __future__ import annotations

import pytest
import torch


def call(node, *args, **kwargs):
    with torch.inference_mode():
        return node.execute(*args, **kwargs)


@pytest.fixture(scope="module")
def vgg_layers(nodes):
    (cnn,) = call(nodes.LoadCNN, "vgg19", "vgg19_partial_conv1_1-conv3_4.safetensors", "auto", "max", "replicate", "auto")
    return lambda text: call(nodes.SelectLayers, cnn, text)[0]


def pan(frames: int, alpha: bool = False) -> torch.Tensor:
    """An IMAGE clip [T, H, W, C]: a window moving 2 px per frame over a smooth random picture."""
    g = torch.Generator().manual_seed(0)
    big = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 20, generator=g), size=(48, 80), mode="bicubic")
    clip = torch.cat([big[..., :, 2 * t:2 * t + 48] for t in range(frames)]).clamp(0, 1).permute(0, 2, 3, 1)
    return torch.cat([clip, torch.ones_like(clip[..., :1])], -1) if alpha else clip


def dream_args(**kw):
    return dict(steps=2, step_size=0.02, jitter=4, normalize="mean_abs", smoothing=0.0, seed=0, tile_size=0, blend=0.9,
                refresh_steps=1, flow="builtin") | kw


def test_dream_video_returns_every_frame_and_keeps_alpha(nodes, vgg_layers):
    frames = pan(4, alpha=True)
    out = call(nodes.DreamVideo, frames, vgg_layers("relu2_1"), **dream_args())
    assert out[0].shape == frames.shape and torch.equal(out[0][..., 3], frames[..., 3])
    assert (out[0][..., :3] - frames[..., :3]).abs().mean() > 1e-3
    assert out.ui == {"reverie_warnings": []}


def test_a_single_frame_and_no_flow_work(nodes, vgg_layers):
    (one,) = call(nodes.DreamVideo, pan(1), vgg_layers("relu2_1"), **dream_args(flow="none"))
    assert one.shape == (1, 48, 48, 3)


def test_missing_raft_weights_fall_back_to_the_builtin_flow_with_a_warning(nodes, vgg_layers, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty torchvision cache
    out = call(nodes.DreamVideo, pan(2), vgg_layers("relu2_1"), **dream_args(flow="raft_small"))
    assert out[0].shape == (2, 48, 48, 3)
    (warning,) = out.ui["reverie_warnings"]
    assert "raft_small weights not found" in warning and "built-in flow" in warning


def test_stylise_video_reads_each_frame_as_its_content(nodes, vgg_layers):
    """The chain's content image is replaced by each frame: a clip whose frames differ gets outputs that differ
    like the frames do, not one stylised content image repeated."""
    frames = pan(3)
    objective = call(nodes.ContentLoss, vgg_layers("relu2_1"), torch.rand(1, 48, 48, 3), 1.0)[0]
    objective = call(nodes.StyleLoss, vgg_layers("relu1_1, relu2_1"), torch.rand(1, 40, 40, 3), 10.0, "gram",
                     1.0, 0.5, objective=objective)[0]
    (out,) = call(nodes.StyliseVideo, frames, objective, optimizer="adam", learning_rate=0.0, steps=4,
                  tv_weight=0.0, ema=0.0, colour="none", refresh_steps=2, temporal_weight=100.0, flow="builtin",
                  tile_size=0, tile_statistics="exact")
    assert out.shape == frames.shape
    assert (out - frames).abs().mean() < 0.2  # close to its own frame, not to the random content image
    assert (out[2] - out[0]).abs().mean() > 0.25 * (frames[2] - frames[0]).abs().mean()
