"""Device-agnostic by construction: every tensor op of a step runs on the `meta` device, so nothing in
the engine creates a CPU tensor beside the caller's (which would break on CUDA or MPS)."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.features import FeatureNet
from reverie.engine.losses import ContentLoss, GramLoss, MeanCovLoss, TemporalLoss, TVLoss, moments
from reverie.engine.objectives import ActivationL2, ChannelMean
from reverie.engine.pyramid import resize
from reverie.engine.step_rules import NormalizedDescent
from reverie.engine.tiles import own_features, tile_grid
from reverie.engine.transforms import jitter
from reverie.engine.zoom import zoom_in
from tests.helpers import tiny_cnn

META = torch.device("meta")


@pytest.fixture
def net(tmp_path):
    cnn = tiny_cnn(tmp_path)
    cnn.module.to(META)
    return FeatureNet(cnn, ["b1/relu", "b2/relu", "b3/relu"])


def terms(net):
    with torch.no_grad():
        target = net(torch.empty(1, 3, 40, 36, device=META))  # the size the test resizes to
    mask = torch.empty(1, 1, 16, 16, device=META)
    return [ActivationL2("b3/relu"), ChannelMean("b2/relu", 3), ContentLoss("b2/relu", target["b2/relu"]),
            GramLoss("b1/relu", moments(target["b1/relu"])), GramLoss("b2/relu", moments(target["b2/relu"]), mask),
            MeanCovLoss("b3/relu", moments(target["b3/relu"])), TVLoss()]


def test_a_step_of_every_term_stays_on_the_device(net):
    """Preprocessing, the truncated net, every loss, backward and the DeepDream step: all on `meta`."""
    generator = torch.Generator().manual_seed(0)
    shift = jitter(4, generator)
    x = torch.empty(2, 3, 32, 32, device=META, requires_grad=True)
    for term in terms(net):
        view = resize(shift(x), (40, 36))
        loss = term(net(view), view)
        assert loss.device == META and loss.shape == (2,), type(term).__name__
        loss.sum().backward()
    assert x.grad.device == META
    NormalizedDescent([x], 0.01).step()
    assert zoom_in(x.detach(), 1.2).device == META


def test_float64_maths_leaves_mps_only():
    """MPS has no float64: eigendecompositions and colour statistics of its tensors run on the CPU;
    every other device keeps its own."""
    from reverie.engine.linalg import float64_device
    assert float64_device(torch.device("mps")) == torch.device("cpu")
    for name in ("cuda", "cuda:1", "cpu", "meta"):
        assert float64_device(torch.device(name)) == torch.device(name)


def test_colour_preservation_stays_on_the_device():
    from reverie.engine.colour import luminance_only, match_histogram
    x, ref = torch.empty(2, 3, 8, 8, device=META), torch.empty(1, 3, 6, 6, device=META)
    assert luminance_only(x, ref).device == META and match_histogram(x, ref).device == META


def test_cudnn_times_repeated_shapes_on_cuda_only():
    """transfer's levels let cuDNN pick the fastest algorithms on CUDA and leave every setting as it was;
    other devices see no change. (The flags are plain settings: this needs no GPU.)"""
    from reverie.engine.backends import repeated_shapes
    cudnn = torch.backends.cudnn
    before = (cudnn.benchmark, cudnn.deterministic, cudnn.enabled)
    for name in ("cpu", "mps", "meta"):
        with repeated_shapes(torch.device(name)):
            assert (cudnn.benchmark, cudnn.deterministic, cudnn.enabled) == before
    with repeated_shapes(torch.device("cuda:0")):
        assert cudnn.benchmark and (cudnn.deterministic, cudnn.enabled) == before[1:]
    assert (cudnn.benchmark, cudnn.deterministic, cudnn.enabled) == before


def test_an_image_in_host_memory_is_worked_on_tile_by_tile_on_the_nets_device(net, tmp_path):
    """`place` keeps the image-sized buffers (content target, style mask, the temporal loss's warped frame and
    weights) with the image in host memory and the rest with the net; every tile's crop, features, sums, loss
    and gradient are then on the net's device, and so is a whole-image evaluation's."""
    host = torch.device("cpu")
    net.geometry = FeatureNet(tiny_cnn(tmp_path), net.layers).geometry  # measured by a real pass: on the CPU
    grid = tile_grid(net, 32)
    image = torch.rand(1, 3, 64, 72)
    with torch.no_grad():
        whole = net(torch.empty(1, 3, 64, 72, device=META))
    content = ContentLoss("b2/relu", torch.rand(whole["b2/relu"].shape))
    style = GramLoss("b1/relu", moments(whole["b1/relu"]), torch.ones(1, 1, 64, 72))
    temporal = TemporalLoss(torch.rand(1, 3, 64, 72), torch.rand(1, 1, 64, 72))
    objective = (content + style + TVLoss() + temporal).place(META, host)
    assert content.target.device == style.mask.device == temporal.warped.device == temporal.weights.device == host
    assert content.norm.device == content.scale.device == style.gram.device == META
    for feats, crop, region in own_features(net, image, grid, leaves=True):
        part = objective.sums(feats, crop, region)
        assert crop.device == META and {v.device for v in part.values()} == {META}
        objective.total(part).sum().backward()
        assert crop.grad.device == META
    view = image.to(META)
    assert objective(net(view), view).device == META
