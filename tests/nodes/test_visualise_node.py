"""Visualise Features as the host calls it: under inference mode, on a Load CNN output."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def googlenet(nodes):
    with torch.inference_mode():
        return nodes.LoadCNN.execute("googlenet_caffe", "googlenet_caffe.safetensors", "auto", "max", "zeros",
                                     "fp32")[0]


def run(nodes, cnn, **kw):
    args = dict(layer="inception_3a/output", channels="0-2", size=64, steps=2, learning_rate=0.05, batch_size=2,
                seed=0, parameterisation="fourier", columns=0) | kw
    with torch.inference_mode():
        return nodes.Visualise.execute(cnn, **args)


def test_node_returns_atlas_images_and_labels(nodes, googlenet):
    """Three channels in batches of two: three 64 px images, a 2×2 atlas, three labels."""
    atlas, images, labels = run(nodes, googlenet)
    assert images.shape == (3, 64, 64, 3) and images.dtype == torch.float32
    assert labels.splitlines() == ["inception_3a/output#0", "inception_3a/output#1", "inception_3a/output#2"]
    assert atlas.dim() == 4 and atlas.shape[0] == 1 and atlas.shape[-1] == 3
    assert 2 * 64 < atlas.shape[1] < 3 * 64 and 2 * 64 < atlas.shape[2] < 3 * 64
    assert (images.flatten(1).std(1) > 0.01).all()  # not the grey start


def test_node_top_k_on_an_image_and_default_layer(nodes, googlenet):
    """'top2' ranks the default layer's channels on the given image; the labels name them."""
    _, images, labels = run(nodes, googlenet, layer="", channels="top2", image=torch.rand(1, 80, 96, 3))
    assert images.shape[0] == 2 and all(l.startswith("inception_4c/output#") for l in labels.splitlines())


@pytest.mark.parametrize("kw, message", [
    (dict(channels="250-260"), r"250-260 is out of range: 'inception_3a/output' has 256 channels \(0..255\)"),
    (dict(channels="3, seven"), "'seven' is not a channel number"),
    (dict(channels="top3"), "connect one"),
    (dict(layer="inception_3a/outptu"), "inception_3a/output"),
])
def test_node_bad_input(nodes, googlenet, kw, message):
    with pytest.raises(ValueError, match=message):
        run(nodes, googlenet, **kw)
