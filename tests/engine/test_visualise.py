"""Feature visualisation: each rendered image drives its own channel, on real weights; channel requests."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.features import FeatureNet
from reverie.engine.models import load_cnn
from reverie.engine.objectives import ChannelPerImage
from reverie.engine.redirection import RedirectedReLU
from reverie.engine.visualise import (ChannelRequest, VisualiseSettings, choose_channels, parse_channels, render,
                                      top_channels, visualise)
from tests.helpers import photo, shared_file, tiny_cnn


def channel_means(net: FeatureNet, layer: str, images: torch.Tensor, channels: list[int]) -> torch.Tensor:
    """A[i, j]: the mean of channel `channels[i]` on image j."""
    with torch.no_grad():
        act = net(images)[layer]
    means = act.flatten(2).mean(2) if act.dim() > 2 else act
    return means[:, channels].T


def assert_each_image_drives_its_channel(net: FeatureNet, layer: str, channels: list[int], images: torch.Tensor):
    """Diagonal dominance of the activation matrix, and far above what noise gives."""
    a = channel_means(net, layer, images, channels)
    noise = torch.rand(4, 3, *images.shape[-2:], generator=torch.Generator().manual_seed(1))
    on_noise = channel_means(net, layer, noise, channels).mean(1)
    own = a.diagonal()
    others = a.masked_fill(torch.eye(len(channels), dtype=torch.bool), -torch.inf).amax(1)
    assert (own > others).all(), a
    assert (own - on_noise > 4 * on_noise.abs().mean()).all(), (own, on_noise)


@pytest.mark.slow
def test_googlenet_channels_render_images_that_drive_them():
    """BVLC GoogLeNet inception_4c: 32 steps at 96 px; channel 2 is silent on grey (only the redirected
    ReLU gradient wakes it)."""
    cnn = load_cnn("googlenet_caffe", shared_file("weights/googlenet_caffe.safetensors"))
    layer, channels = "inception_4c/output", [0, 1, 2, 3]
    net = FeatureNet(cnn, [layer])
    images = visualise(net, layer, channels, VisualiseSettings(size=96, steps=32, batch=4))
    assert images.shape == (4, 3, 96, 96) and 0 <= images.min() and images.max() <= 1
    assert_each_image_drives_its_channel(net, layer, channels, images)


@pytest.mark.slow
def test_default_model_channels_render_images_that_drive_them():
    """EfficientNet-Lite0 (the default model) stage4, in two batches of two."""
    cnn = load_cnn("efficientnet_lite0")
    layer, channels = "stage4", [0, 1, 2, 3]
    net = FeatureNet(cnn, [layer])
    images = visualise(net, layer, channels, VisualiseSettings(size=96, steps=32, batch=2))
    assert_each_image_drives_its_channel(net, layer, channels, images)


def test_same_seed_same_images_and_batching_renders_in_order(tmp_path):
    """A seed fixes the run; channels come back in the order asked, whatever the batch size."""
    net = FeatureNet(tiny_cnn(tmp_path), ["b2/relu"])
    run = lambda seed, batch: visualise(net, "b2/relu", [5, 1, 9], VisualiseSettings(size=32, steps=3, batch=batch,
                                                                                      seed=seed))
    assert torch.equal(run(0, 2), run(0, 2)) and not torch.equal(run(0, 2), run(1, 2))
    assert run(0, 3).shape == (3, 3, 32, 32)


def test_channel_per_image_reads_each_images_own_channel():
    feats = {"l": torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 2, 2)}
    loss = ChannelPerImage("l", [2, 0])(feats, torch.zeros(2, 3, 8, 8))
    assert torch.equal(loss, -torch.stack([feats["l"][0, 2].mean(), feats["l"][1, 0].mean()]))
    with pytest.raises(ValueError, match="has 3 channels"):
        ChannelPerImage("l", [3, 0])(feats, torch.zeros(2, 3, 8, 8))


def test_redirected_relu_wakes_a_silent_channel_and_changes_no_output():
    """A ReLU whose input is negative everywhere passes no gradient; redirected, it passes the part that
    raises the input, for torch.relu and nn.ReLU6 alike."""
    x = torch.full((2, 1, 4, 4), -1.0, requires_grad=True)
    for relu in (torch.relu, torch.nn.ReLU6()):
        plain = relu(x)
        (plain_grad,) = torch.autograd.grad(-plain.mean(), x)
        with RedirectedReLU():
            redirected = relu(x)
        (redirected_grad,) = torch.autograd.grad(-redirected.mean(), x)
        assert torch.equal(plain, redirected) and (plain_grad == 0).all()
        assert (redirected_grad < 0).all()  # descent raises the input towards the range
    with RedirectedReLU():
        out = torch.relu(x)
    (pushing_down,) = torch.autograd.grad(out.mean(), x)
    assert (pushing_down == 0).all()  # never pushes an input further below zero


@pytest.mark.parametrize("text, expected", [
    ("3, 7, 10-12", ChannelRequest((3, 7, 10, 11, 12))),
    ("5", ChannelRequest((5,))),
    (" 4 - 6 ", ChannelRequest((4, 5, 6))),
    ("top8", ChannelRequest(top=8)),
    ("#TOP 3", ChannelRequest(top=3)),
])
def test_parse_channels(text, expected):
    assert parse_channels(text) == expected


@pytest.mark.parametrize("text, message", [
    ("top0", "k ≥ 1"),
    ("3, x", "cannot read 'x'"),
    ("9-2", "runs backwards"),
    ("", "No channels given"),
    ("3,,4", "cannot read ''"),
])
def test_parse_channels_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_channels(text)


def test_more_channels_than_the_layer_has_is_a_clear_error(tmp_path):
    """b2/relu of the tiny net has 16 channels."""
    net = FeatureNet(tiny_cnn(tmp_path), ["b2/relu"])
    with pytest.raises(ValueError, match=r"channel 20; layer 'b2/relu' has only 16 channels \(0..15\)"):
        choose_channels(net, "b2/relu", parse_channels("0-20"))
    with pytest.raises(ValueError, match="asks for 17 channels; layer 'b2/relu' has only 16"):
        choose_channels(net, "b2/relu", parse_channels("top17"), torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="connect one"):
        choose_channels(net, "b2/relu", parse_channels("top3"))


def test_top_channels_are_the_most_active_on_the_image(tmp_path):
    net = FeatureNet(tiny_cnn(tmp_path), ["b2/relu"])
    image = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        means = net(image)["b2/relu"].mean((0, 2, 3))
    top = top_channels(net, "b2/relu", image, 4)
    assert top == means.argsort(descending=True)[:4].tolist()


def test_classes_are_labelled_by_name():
    """On GoogLeNet's classifier the channels are classes: labels are ImageNet names; elsewhere layer#channel."""
    cnn = load_cnn("googlenet_caffe", shared_file("weights/googlenet_caffe.safetensors"))
    net = FeatureNet(cnn, ["loss3/classifier"])
    rendering = render(net, "loss3/classifier", parse_channels("207, 281"), VisualiseSettings(size=64, steps=1))
    assert rendering.labels == ["golden retriever (207)", "tabby (281)"]
    inner = render(FeatureNet(cnn, ["inception_3a/output"]), "inception_3a/output", parse_channels("top2"),
                   VisualiseSettings(size=64, steps=1), photo("chelsea.png", (96, 64)))
    assert inner.labels == [f"inception_3a/output#{c}" for c in inner.channels] and len(set(inner.channels)) == 2
