"""Feature visualisation: each rendered image drives its own channel, on real weights; channel requests."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.features import FeatureNet
from reverie.engine.models import load_cnn
from reverie.engine.objectives import ChannelPerImage
from reverie.engine.redirection import RedirectedReLU
from reverie.engine.visualise import VisualiseSettings, channel_entry, chosen_channels, render, visualise
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


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_cnn(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("text, channels, top", [
    ("3, 7, 10-12", (3, 7, 10, 11, 12), 0),
    ("5", (5,), 0),
    (" 4 - 6 ", (4, 5, 6), 0),
    ("top8", (), 8),
    ("TOP 3", (), 3),
])
def test_channels_are_read_in_select_layers_grammar(tiny, text, channels, top):
    entry = channel_entry(tiny, "b2/relu", text)
    assert entry.layer == "b2/relu" and entry.channels == ((channels,) if channels else ()) and entry.top == top


@pytest.mark.parametrize("text, message", [
    ("top0", "K of topK must be at least 1"),
    ("3, x", "'x' is not a channel number"),
    ("9-2", "runs backwards"),
    ("", "channels is empty"),
    ("0-20", r"b2/relu#0-20 is out of range: 'b2/relu' has 16 channels \(0..15\)"),
    ("top17", "asks for more channels than there are: 'b2/relu' has 16"),
    ("3, b3/pool#2", r"names other layers \(b3/pool\)"),
])
def test_bad_channels_are_clear_errors(tiny, text, message):
    with pytest.raises(ValueError, match=message):
        channel_entry(tiny, "b2/relu", text)


def test_top_channels_are_the_most_active_on_each_image(tiny):
    """topK ranks on every image of the batch and renders the union: without an image it is an error."""
    net = FeatureNet(tiny, ["b2/relu"])
    image = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        means = net(image)["b2/relu"].mean((2, 3))
    expected = {c for row in means.topk(4, dim=1).indices.tolist() for c in row}
    chosen = chosen_channels(tiny, channel_entry(tiny, "b2/relu", "top4"), image)
    assert set(chosen) == expected and len(chosen) == len(expected)
    with pytest.raises(ValueError, match="connect one"):
        chosen_channels(tiny, channel_entry(tiny, "b2/relu", "top3"), None)


def test_classes_are_labelled_by_name():
    """On GoogLeNet's classifier the channels are classes: labels are ImageNet names; elsewhere layer#channel."""
    cnn = load_cnn("googlenet_caffe", shared_file("weights/googlenet_caffe.safetensors"))
    net = FeatureNet(cnn, ["loss3/classifier"])
    rendering = render(net, channel_entry(cnn, "class", "207, tabby"), VisualiseSettings(size=64, steps=1))
    assert rendering.labels == ["golden retriever (207)", "tabby (281)"]
    inner = render(FeatureNet(cnn, ["inception_3a/output"]), channel_entry(cnn, "inception_3a/output", "top2"),
                   VisualiseSettings(size=64, steps=1), photo("chelsea.png", (96, 64)))
    assert inner.labels == [f"inception_3a/output#{c}" for c in inner.channels] and len(set(inner.channels)) == 2
