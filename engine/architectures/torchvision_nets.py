"""torchvision's GoogLeNet, Inception v3, VGG16/19, SqueezeNet 1.1 and ResNet-50.

Modules and state-dict keys are torchvision's own, so its checkpoints (and safetensors files with the
same keys) load unchanged. Layer names are torchvision's module paths plus the readable names papers
and DeepDream recipes use (`relu4_2`, `fire6`, Keras' `mixed3`). Every stage is one module that runs
once per forward; where torchvision's forward flattens before the classifier, `build` adds a
parameter-free `flatten` child, which leaves the keys as they are.

Input conventions. torchvision trains VGG, SqueezeNet and ResNet on ImageNet mean/std input. Its
GoogLeNet and Inception v3 weights were ported from TensorFlow: torchvision builds them with
`transform_input=True`, which turns mean/std input back into TF's `2x - 1`. Here they are built with
`transform_input=False`, so their default convention is TENSORFLOW (the TF-2015 Inception file needs
the same); TORCHVISION stays selectable for weights trained on mean/std input. VGG weights come in two
conventions, told apart by `detect_vgg_preprocess`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..spec import CAFFE_VGG, TENSORFLOW, TORCHVISION, ModelSpec, Preprocess

DOWNLOADS = "https://download.pytorch.org/models/"


def hub_weights(*files: str) -> Callable[[], str]:
    """`default_weights` for torchvision checkpoints: the first of `files` already in torch's hub
    cache (`torch.hub.get_dir()/checkpoints`), else `files[0]` downloaded there."""

    def find() -> str:
        folder = Path(torch.hub.get_dir()) / "checkpoints"
        for name in files:
            if (folder / name).is_file():
                return str(folder / name)
        return download(files[0], folder)

    return find


def download(name: str, folder: Path) -> str:
    """Fetches torchvision's checkpoint `name` into `folder` as torch.hub does (the hash in the name is
    checked); any failure becomes a ValueError saying which file to put where by hand.

    `download_url_to_file` is the step of `torch.hub.load_state_dict_from_url` that fetches; calling
    it directly avoids reading a checkpoint of up to 550 MB once here and again in `load_cnn`.
    """
    path = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(DOWNLOADS + name, str(path), hash_prefix=name.rsplit("-", 1)[1].split(".")[0],
                                       progress=False)
    except Exception as e:  # no network, a proxy, a full disk, a bad hash: all mean "fetch it yourself"
        raise ValueError(f"Could not download {name} ({type(e).__name__}: {e}). Download it by hand and put "
                         f"{name} into ComfyUI's models/cnn folder, then pick it as the weights file.") from e
    return str(path)


def torchvision_build(name: str, **options) -> Callable[[], nn.Module]:
    """A `build` for `torchvision.models.<name>(weights=None, **options)` with a `flatten` child added
    for the `torch.flatten` its forward does inline (no new state-dict keys)."""

    def build() -> nn.Module:
        from torchvision import models  # imported on first build: loading the registry stays light
        model = getattr(models, name)(weights=None, **options)
        model.add_module("flatten", nn.Flatten())
        return model

    return build


def paths(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}.{i}" for i in range(count))


# --- GoogLeNet ------------------------------------------------------------------------------------

GOOGLENET_INCEPTIONS = ("inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
                        "inception4d", "inception4e", "inception5a", "inception5b")
GOOGLENET_STAGES = ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
                    *GOOGLENET_INCEPTIONS[2:7], "maxpool4", "inception5a", "inception5b",
                    "avgpool", "flatten", "dropout", "fc")


def googlenet_layers() -> dict[str, str]:
    layers = {s: s for s in GOOGLENET_STAGES if s not in ("flatten", "dropout")}
    for name in GOOGLENET_INCEPTIONS:  # branch1 1x1, branch2 3x3, branch3 "5x5" (3x3 in torchvision), branch4 pool
        layers.update({f"{name}.branch{i}": f"{name}.branch{i}" for i in range(1, 5)})
    return layers


GOOGLENET = ModelSpec(
    name="googlenet",
    title="GoogLeNet (torchvision)",
    build=torchvision_build("googlenet", aux_logits=False, transform_input=False, init_weights=False),
    stages=GOOGLENET_STAGES,
    layers=googlenet_layers(),
    preprocess=(TENSORFLOW, TORCHVISION),
    min_size=32,
    default_layers={"inception4c": 1.0},
    classifier="fc",
    default_weights=hub_weights("googlenet-1378be20.pth"),
    weights_hint="googlenet-1378be20.pth (torchvision's GoogLeNet weights)",
)

# --- Inception v3 ---------------------------------------------------------------------------------

MIXED = ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
         "Mixed_7a", "Mixed_7b", "Mixed_7c")
INCEPTION_STAGES = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                    "Conv2d_4a_3x3", "maxpool2", *MIXED, "avgpool", "dropout", "flatten", "fc")


def inception_layers() -> dict[str, str]:
    layers = {s: s for s in INCEPTION_STAGES if s not in ("flatten", "dropout")}
    layers.update({f"mixed{i}": path for i, path in enumerate(MIXED)})  # Keras / TF2 DeepDream tutorial names
    return layers


INCEPTION_V3 = ModelSpec(
    name="inception_v3",
    title="Inception v3 (torchvision)",
    build=torchvision_build("inception_v3", aux_logits=False, transform_input=False,
                            init_weights=False),
    stages=INCEPTION_STAGES,
    layers=inception_layers(),
    preprocess=(TENSORFLOW, TORCHVISION),
    min_size=75,
    default_layers={"mixed3": 1.0, "mixed5": 1.0},  # the TF2 DeepDream tutorial's choice
    classifier="fc",
    default_weights=hub_weights("inception_v3_google-0cc3c7bd.pth"),
    weights_hint="inception_v3_google-0cc3c7bd.pth (torchvision's Inception v3 weights) or "
                 "inception_v3_tf2015_partial_to_mixed_7a.safetensors (TF 2015, up to Mixed_7a)",
)

# --- VGG ------------------------------------------------------------------------------------------

VGG_CONVS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}  # convolutions per block
VGG_CLASSIFIER = {"fc6": 0, "relu6": 1, "fc7": 3, "relu7": 4, "fc8": 6}


def vgg_layers(convs: tuple[int, ...]) -> dict[str, str]:
    """`convB_C`, `reluB_C`, `poolB` (Simonyan & Zisserman's names) and every `features.N`."""
    layers, i = {}, 0
    for block, n in enumerate(convs, 1):
        for conv in range(1, n + 1):
            layers[f"conv{block}_{conv}"], layers[f"relu{block}_{conv}"] = f"features.{i}", f"features.{i + 1}"
            i += 2
        layers[f"pool{block}"] = f"features.{i}"
        i += 1
    layers.update({f"features.{j}": f"features.{j}" for j in range(i)})
    layers["avgpool"] = "avgpool"
    layers.update({name: f"classifier.{j}" for name, j in VGG_CLASSIFIER.items()})
    return layers


def detect_vgg_preprocess(state: dict[str, torch.Tensor]) -> Preprocess | None:
    """Caffe/Keras-converted VGG (BGR, 0..255 minus the mean) or torchvision's own (mean/std), from conv1_1.

    The weight magnitudes don't tell: the input-scale factor of ~60 between the conventions is spread
    over 16-19 layers (about 1.25x each), and conv1_1's filters have a norm of about 1 in both (Keras
    VGG19 median 0.85; torchvision VGG16's published filters 0.5-2). The biases do. `t = b / |w|` is a
    bias in units of the pre-activation spread that unit-variance (mean/std-normalised) input gives.
    A net trained on such input uses conv1_1's biases as ReLU thresholds: torchvision VGG16 has 27 of
    64 biases negative, a third below -0.3, so many filters have t < -0.1. Trained on ±150 input the
    same bias is under 1 % of the spread, no threshold forms, and no t falls that low: Keras VGG19's
    lowest is -0.02 (its biases drifted positive, 63 of 64). A proxy, a small VGG-style net trained
    here both ways on crops of the test photos with each convention's init and solver settings,
    two seeds each, splits the same way: 47 % and 44 % of filters below -0.1 (lowest -1.0, -0.87)
    against none (lowest -0.08, -0.07).
    So: at least 10 % of filters with t < -0.1 → TORCHVISION; none, and biases that are not blank
    (some |t| > 0.01) → CAFFE_VGG; anything else (a few thresholds, untrained zero biases) → None.
    Files can also name their convention in safetensors metadata `{"reverie.preprocess": "caffe"}`,
    which wins over this guess.
    """
    weight, bias = state.get("features.0.weight"), state.get("features.0.bias")
    if weight is None or bias is None:
        return None
    t = bias.float() / weight.float().flatten(1).norm(dim=1).clamp_min(1e-12)
    below = (t < -0.1).float().mean()
    if below >= 0.1:
        return TORCHVISION
    if below == 0 and t.abs().max() > 0.01:
        return CAFFE_VGG
    return None


def vgg_spec(name: str, file: str) -> ModelSpec:
    convs = VGG_CONVS[name]
    layers = vgg_layers(convs)
    n_features = sum(convs) * 2 + len(convs)
    depth = name.removeprefix("vgg")
    return ModelSpec(
        name=name,
        title=f"VGG{depth}",
        build=torchvision_build(name),
        stages=(*paths("features", n_features), "avgpool", "flatten", *paths("classifier", 7)),
        layers=layers,
        preprocess=(TORCHVISION, CAFFE_VGG),
        min_size=32,
        # Block 3 keeps the shared partial VGG19 (conv1_1 ... conv3_4) usable with the defaults.
        default_layers={f"relu3_{convs[2]}": 1.0},
        classifier="fc8",
        default_weights=hub_weights(file),
        weights_hint=f"{file} (torchvision's VGG{depth}) or a Caffe/Keras VGG{depth} converted to "
                     f"torchvision key names (features.0.weight, ...)",
        detect_preprocess=detect_vgg_preprocess,
    )


# --- SqueezeNet 1.1 -------------------------------------------------------------------------------

SQUEEZENET_FIRES = {3: 2, 4: 3, 6: 4, 7: 5, 9: 6, 10: 7, 11: 8, 12: 9}  # features index: fire number
SQUEEZENET_STAGES = (*paths("features", 13), *paths("classifier", 4), "flatten")


def squeezenet_layers() -> dict[str, str]:
    """The SqueezeNet paper's names (`conv1`, `fire2` ... `fire9`, `conv10`) and every `features.N`."""
    layers = {"conv1": "features.0", "relu1": "features.1", "pool1": "features.2"}
    for i, fire in SQUEEZENET_FIRES.items():
        layers[f"fire{fire}"] = f"features.{i}"
        for part, module in (("squeeze1x1", "squeeze"), ("expand1x1", "expand1x1"), ("expand3x3", "expand3x3")):
            layers[f"fire{fire}/{part}"] = f"features.{i}.{module}_activation"
    layers.update({"pool3": "features.5", "pool5": "features.8",
                   "conv10": "classifier.1", "relu10": "classifier.2", "pool10": "classifier.3"})
    layers.update({f"features.{j}": f"features.{j}" for j in range(13)})
    return layers


SQUEEZENET1_1 = ModelSpec(
    name="squeezenet1_1",
    title="SqueezeNet 1.1",
    build=torchvision_build("squeezenet1_1"),
    stages=SQUEEZENET_STAGES,
    layers=squeezenet_layers(),
    preprocess=(TORCHVISION,),
    min_size=32,
    default_layers={"fire7": 1.0},
    classifier="conv10",  # the class maps before ReLU and pooling
    default_weights=hub_weights("squeezenet1_1-b8a52dc0.pth"),
    weights_hint="squeezenet1_1-b8a52dc0.pth (torchvision's SqueezeNet 1.1) or squeezenet1_1.safetensors",
)

# --- ResNet-50 ------------------------------------------------------------------------------------

RESNET50_BLOCKS = {"layer1": 3, "layer2": 4, "layer3": 6, "layer4": 3}
RESNET50_STAGES = ("conv1", "bn1", "relu", "maxpool",
                   *(f"{layer}.{i}" for layer, n in RESNET50_BLOCKS.items() for i in range(n)),
                   "avgpool", "flatten", "fc")


def resnet50_layers() -> dict[str, str]:
    """torchvision's paths; `layerN` is its last block's output. A block's inner ReLU runs three times
    per forward, so it is not a layer."""
    layers = {s: s for s in RESNET50_STAGES if s != "flatten"}
    layers.update({layer: f"{layer}.{n - 1}" for layer, n in RESNET50_BLOCKS.items()})
    return layers


RESNET50 = ModelSpec(
    name="resnet50",
    title="ResNet-50 (torchvision)",
    build=torchvision_build("resnet50"),
    stages=RESNET50_STAGES,
    layers=resnet50_layers(),
    preprocess=(TORCHVISION,),
    min_size=32,
    default_layers={"layer3": 1.0},
    classifier="fc",
    default_weights=hub_weights("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth"),
    weights_hint="resnet50-0676ba61.pth (torchvision's ResNet-50 IMAGENET1K_V1; V2's resnet50-11ad3fa6.pth "
                 "works too)",
)

SPECS = (GOOGLENET, INCEPTION_V3, vgg_spec("vgg16", "vgg16-397923af.pth"), vgg_spec("vgg19", "vgg19-dcbb9e9d.pth"),
         SQUEEZENET1_1, RESNET50)
