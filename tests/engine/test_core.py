"""Objectives, feature extraction, pyramids and weight files on the tiny random net."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.dream import DreamSettings, dream
from reverie.engine.features import FeatureNet
from reverie.engine.layers import parse_layers
from reverie.engine.models import load_cnn
from reverie.engine.objectives import ActivationL2, ChannelMean, Sum
from reverie.engine.pyramid import Pyramid
from tests.helpers import tiny_cnn, tiny_spec


@pytest.fixture
def cnn(tmp_path):
    return tiny_cnn(tmp_path)


def test_objective_algebra(cnn):
    """(2a + b - c)(f) == 2a(f) + b(f) - c(f), and the recipe prints."""
    a, b, c = ActivationL2("b1/relu"), ChannelMean("b2/relu", 3), ActivationL2("b3/relu")
    combined = 2 * a + b - c
    x = torch.rand(2, 3, 32, 32)
    feats = FeatureNet(cnn, combined.layers())(x)
    assert torch.allclose(combined(feats, x), 2 * a(feats, x) + b(feats, x) - c(feats, x))
    assert isinstance(combined, Sum) and len(combined.terms) == 3
    assert "weight=2" in repr(combined) and "channel=3" in repr(combined)


def test_feature_net_runs_only_up_to_the_deepest_layer(cnn):
    """Stages after the deepest selected layer never run."""
    calls = []
    cnn.module.b3.register_forward_hook(lambda *_: calls.append(1))
    feats = FeatureNet(cnn, ["b1/conv", "b2/relu"])(torch.rand(1, 3, 16, 16))
    assert set(feats) == {"b1/conv", "b2/relu"} and not calls
    assert feats["b2/relu"].shape == (1, 16, 8, 8)


def test_feature_net_keeps_pre_activation_outputs(cnn):
    """In-place ReLUs are switched off, so a conv's captured output keeps its negative values."""
    feats = FeatureNet(cnn, ["b1/conv", "b1/relu"])(torch.rand(1, 3, 16, 16))
    assert (feats["b1/conv"] < 0).any() and torch.equal(feats["b1/relu"], feats["b1/conv"].clamp(min=0))


def test_channel_out_of_range_names_the_valid_range(cnn):
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="0..7"):
        ChannelMean("b1/relu", 8)(FeatureNet(cnn, ["b1/relu"])(x), x)


def test_parse_layers_reads_weights_and_channels(cnn):
    selection = parse_layers(cnn, "b1/relu: 0.5, b2/relu#3\nb3/pool:-1e-1")
    assert [str(e) for e in selection.entries] == ["b1/relu: 0.5", "b2/relu#3: 1", "b3/pool: -0.1"]
    assert selection.layers == ["b1/relu", "b2/relu", "b3/pool"]


@pytest.mark.parametrize("text, message", [
    ("b2/relu: 1e309", r"Weight '1e309' of layer 'b2/relu' is outside -1e\+06..1e\+06"),
    ("b2/relu: -2e6", r"outside -1e\+06..1e\+06"),
    ("b2/relu#16", r"b2/relu#16 is out of range: 'b2/relu' has 16 channels \(0..15\)"),
    ("b1/conv#3, b3/pool#99", r"b3/pool#99 is out of range: 'b3/pool' has 16 channels"),
])
def test_parse_layers_refuses_weights_out_of_range_and_missing_channels(cnn, text, message):
    with pytest.raises(ValueError, match=message):
        parse_layers(cnn, text)


def test_dream_reports_non_finite_pixels_before_any_step(cnn):
    image = torch.rand(1, 3, 16, 16)
    image[0, :, 2, 2] = float("nan")
    calls = []
    with pytest.raises(ValueError, match="The image has 3 NaN values, in 1 of 256 pixels"):
        dream(FeatureNet(cnn, ["b2/relu"]), ActivationL2("b2/relu"), image, DreamSettings(steps=2), None, calls.append)
    assert not calls


def test_pyramid_sizes_end_at_full_size_and_skip_too_small_octaves():
    assert Pyramid(3, 2.0).sizes(100, 60) == [(25, 15), (50, 30), (100, 60)]
    assert Pyramid(5, 2.0).sizes(100, 60, min_size=20) == [(50, 30), (100, 60)]
    with pytest.raises(ValueError, match="greater than 1"):
        Pyramid(3, 1.0)


def test_pyramid_steps_put_coarse_steps_below_the_full_size():
    assert Pyramid(3, 2.0, coarse_steps=5).steps(40, 3) == [5, 5, 40]
    assert Pyramid(3, 2.0).steps(40, 3) == [40, 40, 40]
    assert Pyramid(3, 2.0, coarse_steps=5).steps(40, 1) == [40]  # the coarse octaves left out as too small
    with pytest.raises(ValueError, match="coarse_steps must be 0"):
        Pyramid(3, 2.0, coarse_steps=-1)


def test_weight_files(tmp_path):
    """.pth state dicts load via weights_only; pickled modules, bad suffixes and missing files are refused."""
    spec = tiny_spec()
    state = spec.build().state_dict()
    torch.save({"state_dict": state}, tmp_path / "w.pth")
    assert load_cnn(spec, tmp_path / "w.pth").depth == 3
    torch.save(spec.build(), tmp_path / "module.pth")
    with pytest.raises(ValueError, match="weights_only"):
        load_cnn(spec, tmp_path / "module.pth")
    (tmp_path / "w.txt").write_text("x")
    with pytest.raises(ValueError, match=".safetensors"):
        load_cnn(spec, tmp_path / "w.txt")
    with pytest.raises(ValueError, match="does not exist"):
        load_cnn(spec, tmp_path / "absent.safetensors")


def test_partial_file_exposes_leading_layers_only(tmp_path):
    """A file with the first two stages loads; a layer of the third names what the file covers."""
    from safetensors.torch import save_file
    spec = tiny_spec()
    state = {k: v for k, v in spec.build().state_dict().items() if not k.startswith("b3.")}
    save_file(state, tmp_path / "partial.safetensors")
    cnn = load_cnn(spec, tmp_path / "partial.safetensors")
    assert cnn.depth == 2
    assert not list(cnn.module.b3.parameters())  # the uncovered stage is not allocated
    with pytest.raises(ValueError, match="partial"):
        cnn.layer("b3/relu")
    with pytest.raises(ValueError, match="Nearest valid names: b2/relu"):
        cnn.layer("b2/rleu")


def test_loading_under_inference_mode_is_refused(tmp_path):
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        tiny_cnn(tmp_path)


def test_average_pooling_and_border_padding_variants(tmp_path):
    """pooling='average' swaps every max pool; padding='replicate' changes only the image border."""
    from safetensors.torch import save_file
    from torch import nn
    spec = tiny_spec()
    save_file(spec.build().state_dict(), tmp_path / "w.safetensors")
    plain = load_cnn(spec, tmp_path / "w.safetensors")
    averaged = load_cnn(spec, tmp_path / "w.safetensors", pooling="average")
    padded = load_cnn(spec, tmp_path / "w.safetensors", padding="replicate")
    assert not any(isinstance(m, nn.MaxPool2d) for m in averaged.module.modules())
    x = torch.rand(1, 3, 16, 16)
    a, b, c = (FeatureNet(cnn, ["b1/conv", "b1/pool"])(x) for cnn in (plain, averaged, padded))
    assert torch.equal(a["b1/conv"], b["b1/conv"]) and not torch.equal(a["b1/pool"], b["b1/pool"])
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    assert torch.equal(a["b1/conv"][inner], c["b1/conv"][inner]) and not torch.equal(a["b1/conv"], c["b1/conv"])
    with pytest.raises(ValueError, match="pooling must be one of max, average"):
        load_cnn(spec, tmp_path / "w.safetensors", pooling="min")


def test_reduced_precision_net_gives_float32_features_and_gradients(tmp_path):
    """A bfloat16 net: activations come out float32, close to the float32 net's, and gradients reach the image."""
    from safetensors.torch import save_file
    spec = tiny_spec()
    save_file(spec.build().state_dict(), tmp_path / "w.safetensors")
    full, half = (load_cnn(spec, tmp_path / "w.safetensors", dtype=d) for d in (torch.float32, torch.bfloat16))
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    a, b = FeatureNet(full, ["b2/relu"])(x)["b2/relu"], FeatureNet(half, ["b2/relu"])(x)["b2/relu"]
    assert b.dtype == torch.float32 and torch.allclose(a, b, atol=0.05 * a.abs().max().item())
    b.pow(2).mean().backward()
    assert x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_log_activation_power_ignores_the_networks_scale():
    """Scaling a layer by 60 (Caffe vs torchvision input ranges) shifts the log term by a constant only,
    so its gradient, and with it the meaning of its weight, is unchanged; the plain term scales by 3600."""
    from reverie.engine.objectives import LogActivationL2
    f = torch.rand(2, 4, 5, 5)
    image = torch.rand(2, 3, 10, 10)
    log, plain = LogActivationL2("l"), ActivationL2("l")
    assert torch.allclose(log({"l": 60 * f}, image), log({"l": f}, image) - 2 * torch.log(torch.tensor(60.0)))
    assert torch.allclose(plain({"l": 60 * f}, image), 3600 * plain({"l": f}, image))
