"""The published GoogLeNet ports load as they are (neural-dream, pytorch-caffe-models, MMdnn key layouts,
auxiliary heads, Places widths), and a loaded CNN's class names."""
from __future__ import annotations

import re
from collections import OrderedDict

import pytest
import torch
from safetensors.torch import load_file, save_file

from reverie.engine.features import FeatureNet
from reverie.engine.models import load_cnn
from reverie.engine.spec import CAFFE_GOOGLENET, CAFFE_PLACES205, CAFFE_PLACES365
from tests.helpers import shared_file

LAYERS = ["conv1/7x7_s2", "conv2/norm2", "inception_3a/output", "inception_4c/3x3", "inception_4e/pool_proj",
          "inception_5b/output", "pool5/7x7_s1"]
AUX = {"conv": (128, None, 1, 1), "fc_1": (1024, 2048), "classifier_1": (None, 1024)}  # None: in channels / classes
AUX_IN = {"loss1": 512, "loss2": 528}


@pytest.fixture(scope="module")
def shared_state():
    return load_file(shared_file("weights/googlenet_caffe.safetensors"))


@pytest.fixture(scope="module")
def reference(shared_state):
    """Our loader's features of a small photo-like input from the shared safetensors file."""
    cnn = load_cnn("googlenet_caffe", shared_file("weights/googlenet_caffe.safetensors"))
    return _features(cnn, LAYERS + ["loss3/classifier"])


def _image() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.nn.functional.interpolate(torch.rand(1, 3, 12, 16, generator=g), size=(72, 96), mode="bilinear")


def _features(cnn, layers) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return FeatureNet(cnn, layers)(_image())


def _aux_heads(classes: int, seed: int = 1) -> dict[str, torch.Tensor]:
    """neural-dream's auxiliary classifiers (loss1/*, loss2/*), random."""
    g, heads = torch.Generator().manual_seed(seed), {}
    for head, c_in in AUX_IN.items():
        for part, shape in AUX.items():
            shape = tuple(c_in if s is None and i == 1 else classes if s is None else s for i, s in enumerate(shape))
            heads[f"{head}_{part}.weight"] = torch.randn(shape, generator=g) * 0.01
            heads[f"{head}_{part}.bias"] = torch.zeros(shape[0])
    return heads


def neural_dream_layout(state: dict[str, torch.Tensor], classes: int = 1000) -> OrderedDict:
    """neural-dream's bvlc_googlenet.pth / googlenet_places365.pth: Caffe names, aux heads, no loss3."""
    body = {k: v for k, v in state.items() if not k.startswith("loss3_")}
    return OrderedDict({**body, **_aux_heads(classes)})


def caffe_models_layout(state: dict[str, torch.Tensor]) -> OrderedDict:
    """pytorch-caffe-models' GoogLeNet: conv1, conv2_reduce, conv2, inception_4c.conv_3x3, loss3_classifier."""
    stem = {"conv1_7x7_s2": "conv1", "conv2_3x3_reduce": "conv2_reduce", "conv2_3x3": "conv2"}
    out = OrderedDict()
    for key, value in state.items():
        module, param = key.rsplit(".", 1)
        if module in stem:
            module = stem[module]
        elif m := re.match(r"^(inception_\d[a-e])_(.+)$", module):
            module = f"{m[1]}.{m[2] if m[2] == 'pool_proj' else 'conv_' + m[2]}"
        out[f"{module}.{param}"] = value
    return out


def places_classifier(state: dict[str, torch.Tensor], key: str, classes: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return {**state, f"{key}.weight": torch.randn(classes, 1024, generator=g) * 0.01,
            f"{key}.bias": torch.zeros(classes)}


def test_neural_dream_file_loads_with_aux_heads_and_same_features(shared_state, reference, tmp_path):
    """A .pth in neural-dream's layout (aux heads present, no final classifier) loads through weights_only
    and gives our loader's features exactly; loss3/classifier is reported as missing from the file."""
    path = tmp_path / "bvlc_googlenet.pth"
    torch.save(neural_dream_layout(shared_state), path)
    cnn = load_cnn("googlenet_caffe", path)
    assert cnn.preprocess == CAFFE_GOOGLENET
    got = _features(cnn, LAYERS)
    for layer in LAYERS:
        assert torch.equal(got[layer], reference[layer]), layer
    with pytest.raises(ValueError, match=r"bvlc_googlenet\.pth does not contain"):
        cnn.layer("loss3/classifier")


@pytest.mark.parametrize("layout", ["pytorch-caffe-models", "mmdnn"])
def test_port_layouts_give_identical_features_and_logits(layout, shared_state, reference, tmp_path):
    """pytorch-caffe-models' module paths and MMdnn's `loss3_classifier_1` load to the same net."""
    if layout == "mmdnn":
        state = {k.replace("loss3_classifier", "loss3_classifier_1"): v for k, v in shared_state.items()}
    else:
        state = caffe_models_layout(shared_state)
    path = tmp_path / f"{layout}.pth"
    torch.save(state, path)
    cnn = load_cnn("googlenet_caffe", path)
    assert cnn.depth == len(cnn.spec.stages)
    got = _features(cnn, LAYERS + ["loss3/classifier"])
    for layer in LAYERS + ["loss3/classifier"]:
        assert torch.equal(got[layer], reference[layer]), layer


@pytest.mark.parametrize("classes, preprocess", [(365, CAFFE_PLACES365), (205, CAFFE_PLACES205)])
def test_places_width_classifier_and_mean(classes, preprocess, shared_state, reference, tmp_path):
    """A 365- or 205-way classifier is built at the file's width and picks the Places mean; with the
    BVLC mean forced, the shared trunk's features are unchanged."""
    state = places_classifier(caffe_models_layout(shared_state), "loss3_classifier", classes)
    path = tmp_path / f"googlenet_places{classes}.pth"
    torch.save(state, path)
    cnn = load_cnn("googlenet_caffe", path)
    assert cnn.preprocess == preprocess
    logits = _features(cnn, ["loss3/classifier"])["loss3/classifier"]
    assert logits.shape == (1, classes)
    expected = _image().mul(255).flip(1).sub(torch.tensor(preprocess.mean).view(1, 3, 1, 1))
    assert torch.allclose(cnn.preprocess(_image()), expected)
    forced = load_cnn("googlenet_caffe", path, preprocessing="caffe")
    assert torch.equal(_features(forced, ["pool5/7x7_s1"])["pool5/7x7_s1"], reference["pool5/7x7_s1"])


def test_places_neural_dream_file_is_recognised_by_its_aux_heads(shared_state, tmp_path):
    """neural-dream's Places365 file has no final classifier; its 365-way aux heads pick the mean."""
    path = tmp_path / "googlenet_places365.pth"
    torch.save(neural_dream_layout(shared_state, classes=365), path)
    assert load_cnn("googlenet_caffe", path).preprocess == CAFFE_PLACES365


def test_wrong_width_elsewhere_is_still_refused(shared_state, tmp_path):
    """Only the classifier's outputs adapt: a trunk tensor of another shape is still a clear error."""
    state = dict(shared_state, **{"inception_4c_3x3.weight": torch.zeros(256, 100, 3, 3)})
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(ValueError, match=r"inception_4c\.3x3\.weight \(256, 100, 3, 3\)"):
        load_cnn("googlenet_caffe", path)


# --- class names (finding classes by name: tests/engine/test_layers.py) ------------------------------


def test_imagenet_names_for_a_1000_way_classifier():
    """BVLC GoogLeNet's names are torchvision's ImageNet categories, the shared list's order."""
    cnn = load_cnn("googlenet_caffe", shared_file("weights/googlenet_caffe.safetensors"))
    names = list(cnn.class_names.names)
    assert names == shared_file("weights/imagenet_classes.txt").read_text().splitlines() and names[281] == "tabby"


def test_places_classifier_width_is_the_files(shared_state, tmp_path):
    path = tmp_path / "googlenet_places365.safetensors"
    save_file(places_classifier(shared_state, "loss3_classifier", 365), str(path))
    cnn = load_cnn("googlenet_caffe", path)
    assert cnn.classes == 365 and cnn.class_names is None
