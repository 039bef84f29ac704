"""Style-family nodes as the host calls them: objectives chain, Optimize runs under inference mode."""
from __future__ import annotations

import pytest
import torch


def call(node, *args, **kwargs):
    with torch.inference_mode():
        return node.execute(*args, **kwargs)[0]


@pytest.fixture(scope="module")
def vgg_layers(nodes):
    cnn = call(nodes.LoadCNN, "vgg19", "vgg19_partial_conv1_1-conv3_4.safetensors", "auto", "max", "replicate", "auto")
    return lambda text: call(nodes.SelectLayers, cnn, text)


def optimize(nodes, objective, **kw):
    args = dict(init="content", size=64, optimizer="adam", learning_rate=0.0, steps=5, tv_weight=0.0,
                ema=0.0, colour="none", seed=0, tile_size=0, tile_statistics="exact") | kw
    return call(nodes.Optimize, objective, **args)


def test_style_transfer_chain_runs_and_changes_the_content(nodes, vgg_layers):
    """Content + style (+ mask, second style) through Optimize: an image of the requested size."""
    content, style, style_b = torch.rand(1, 48, 64, 3), torch.rand(1, 40, 40, 3), torch.rand(1, 50, 30, 3)
    mask = torch.zeros(1, 48, 64)
    mask[:, :, :32] = 1
    objective = call(nodes.ContentLoss, vgg_layers("relu2_2"), content, 1.0)
    objective = call(nodes.StyleLoss, vgg_layers("relu1_1, relu2_1, relu3_1"), style, 10.0, "mean_cov", 1.0,
                     0.3, style_b=style_b, mask=mask, objective=objective)
    out = optimize(nodes, objective)
    assert out.shape == (1, 48, 64, 3)
    assert (out - content).abs().mean() > 1e-3


def test_dream_objective_joins_the_chain(nodes, vgg_layers):
    content = torch.rand(2, 40, 40, 3)
    objective = call(nodes.ContentLoss, vgg_layers("relu2_1"), content, 1.0)
    objective = call(nodes.DreamObjective, vgg_layers("relu3_1#5: 1"), 0.5, objective=objective)
    out = optimize(nodes, objective, size=0, optimizer="lbfgs", octaves=call(nodes.OctavePyramid, 2, 1.5, 0))
    assert out.shape == (2, 40, 40, 3)


def test_chained_objectives_must_share_one_network(nodes, vgg_layers):
    googlenet = call(nodes.LoadCNN, "googlenet_caffe", "googlenet_caffe.safetensors", "auto", "max", "zeros", "fp32")
    first = call(nodes.ContentLoss, vgg_layers("relu2_1"), torch.rand(1, 40, 40, 3), 1.0)
    with pytest.raises(ValueError, match="same network"):
        call(nodes.ContentLoss, call(nodes.SelectLayers, googlenet, "inception_3a/output"),
             torch.rand(1, 40, 40, 3), 1.0, objective=first)


def test_channels_are_refused_by_whole_layer_losses(nodes, vgg_layers):
    with pytest.raises(ValueError, match="#channel"):
        call(nodes.StyleLoss, vgg_layers("relu1_1#3"), torch.rand(1, 40, 40, 3), 1.0, "gram", 1.0, 0.5)


def test_dream_objective_refuses_top_channels(nodes, vgg_layers):
    """Optimize has no input image to choose topK channels on: the message says what to write instead."""
    with pytest.raises(ValueError, match="name the channels"):
        call(nodes.DreamObjective, vgg_layers("relu3_1#top4"), 1.0)


def test_noise_init_is_reproducible_by_seed(nodes, vgg_layers):
    objective = call(nodes.StyleLoss, vgg_layers("relu1_1"), torch.rand(1, 40, 40, 3), 1.0, "gram", 1.0, 0.5)
    a, b = (optimize(nodes, objective, init="noise", size=40, seed=7, steps=2) for _ in range(2))
    assert torch.equal(a, b)


def test_tiled_optimize_equals_untiled_and_checks_the_tile(nodes, vgg_layers):
    """A tile size makes Optimize run tile by tile (a masked style, a batch of 2) with the untiled result;
    a tile under twice the halo is refused with the minimum."""
    content, style = torch.rand(2, 72, 96, 3), torch.rand(1, 60, 60, 3)
    mask = torch.zeros(1, 72, 96)
    mask[:, :, 40:] = 1
    objective = call(nodes.ContentLoss, vgg_layers("relu2_1"), content, 1.0)
    objective = call(nodes.StyleLoss, vgg_layers("relu1_1, relu2_1, relu3_1"), style, 10.0, "gram", 1.0, 0.5,
                     mask=mask, objective=objective)
    whole = optimize(nodes, objective, size=96, steps=3)
    tiled = optimize(nodes, objective, size=96, steps=3, tile_size=48)
    assert tiled.shape == whole.shape == (2, 72, 96, 3)
    assert (tiled - whole).abs().max() < 1e-3
    with pytest.raises(ValueError, match="tiles must be at least 32 px"):
        optimize(nodes, objective, size=96, steps=1, tile_size=16)
