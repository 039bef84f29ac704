"""BVLC GoogLeNet exactly as Caffe's deploy.prototxt computes it (LRN, ceil-mode pools, BGR 0..255).

Layer names are Caffe's blob names (`inception_4c/output`). `convert_keys` reads the published PyTorch
ports as they are:
- Caffe layer names with `/` written as `_` (`inception_4c_3x3.weight`): the shared file, and
  neural-dream's `bvlc_googlenet.pth` / `googlenet_places365.pth`, which add the auxiliary heads
  (`loss1_conv`, `loss1_fc_1`, `loss1_classifier_1`, `loss2_*`; ignored) and carry no final classifier
  (`loss3/classifier` is then unavailable, as in any partial file); MMdnn writes it `loss3_classifier_1`;
- pytorch-caffe-models' module paths (`conv1`, `conv2_reduce`, `conv2`, `inception_4c.conv_3x3`,
  `inception_4c.pool_proj`, `loss3_classifier`).
The classifier takes the file's width (Places365: 365 classes, Places205: 205), and the width picks
the Places mean when the file names no input convention.
"""
from __future__ import annotations

import re
from collections import OrderedDict

import torch
from torch import nn

from ..download import Download
from ..spec import CAFFE_GOOGLENET, CAFFE_PLACES205, CAFFE_PLACES365, ModelSpec, Preprocess

# name: (in, 1x1, 3x3_reduce, 3x3, 5x5_reduce, 5x5, pool_proj)
INCEPTIONS = OrderedDict(
    inception_3a=(192, 64, 96, 128, 16, 32, 32),
    inception_3b=(256, 128, 128, 192, 32, 96, 64),
    inception_4a=(480, 192, 96, 208, 16, 48, 64),
    inception_4b=(512, 160, 112, 224, 24, 64, 64),
    inception_4c=(512, 128, 128, 256, 24, 64, 64),
    inception_4d=(512, 112, 144, 288, 32, 64, 64),
    inception_4e=(528, 256, 160, 320, 32, 128, 128),
    inception_5a=(832, 256, 160, 320, 32, 128, 128),
    inception_5b=(832, 384, 192, 384, 48, 128, 128),
)
BRANCHES = ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool", "pool_proj")


class ConvReLU(nn.Conv2d):
    """A convolution followed by ReLU, as Caffe's in-place ReLU leaves the blob."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(super().forward(x))


def ceil_pool(kernel: int, stride: int, padding: int = 0) -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)


class LRN(nn.LocalResponseNorm):
    """Caffe's LRN, computed in float32 (torch has no reduced-precision LRN on the CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


def lrn() -> LRN:
    # torch divides alpha by the window size, as Caffe does: pass Caffe's alpha unchanged.
    return LRN(5, alpha=1e-4, beta=0.75, k=1.0)


class Inception(nn.Module):
    """Four branches concatenated in Caffe's order: 1x1, 3x3, 5x5, pool_proj."""

    def __init__(self, c_in: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, cp: int):
        super().__init__()
        for name, module in zip(BRANCHES, (
                ConvReLU(c_in, c1, 1), ConvReLU(c_in, c3r, 1), ConvReLU(c3r, c3, 3, padding=1),
                ConvReLU(c_in, c5r, 1), ConvReLU(c5r, c5, 5, padding=2), ceil_pool(3, 1, 1),
                ConvReLU(c_in, cp, 1))):
            self.add_module(name, module)

    def branch(self, name: str) -> nn.Module:
        return getattr(self, name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.branch
        return torch.cat([
            b("1x1")(x),
            b("3x3")(b("3x3_reduce")(x)),
            b("5x5")(b("5x5_reduce")(x)),
            b("pool_proj")(b("pool")(x)),
        ], 1)


def build() -> nn.Module:
    def seq(**modules: nn.Module) -> nn.Sequential:
        return nn.Sequential(OrderedDict(modules))

    stages: OrderedDict[str, nn.Module] = OrderedDict(
        conv1=seq(**{"7x7_s2": ConvReLU(3, 64, 7, 2, 3)}),
        pool1=seq(**{"3x3_s2": ceil_pool(3, 2), "norm1": lrn()}),
        conv2=seq(**{"3x3_reduce": ConvReLU(64, 64, 1), "3x3": ConvReLU(64, 192, 3, padding=1), "norm2": lrn()}),
        pool2=seq(**{"3x3_s2": ceil_pool(3, 2)}),
    )
    for name, channels in INCEPTIONS.items():
        if name == "inception_4a":
            stages["pool3"] = seq(**{"3x3_s2": ceil_pool(3, 2)})
        if name == "inception_5a":
            stages["pool4"] = seq(**{"3x3_s2": ceil_pool(3, 2)})
        stages[name] = Inception(*channels)
    # Caffe's pool5 is a 7x7 average over pool4's 7x7 map at 224 px; averaging whatever map
    # arrives is the same there and lets the classifier run at any size.
    stages["pool5"] = seq(**{"7x7_s1": nn.AdaptiveAvgPool2d(1)})
    stages["flatten"] = nn.Flatten()
    stages["loss3"] = seq(classifier=nn.Linear(1024, 1000))
    return nn.Sequential(stages)


def _layers() -> dict[str, str]:
    layers = {
        "conv1/7x7_s2": "conv1.7x7_s2", "pool1/3x3_s2": "pool1.3x3_s2", "pool1/norm1": "pool1.norm1",
        "conv2/3x3_reduce": "conv2.3x3_reduce", "conv2/3x3": "conv2.3x3", "conv2/norm2": "conv2.norm2",
        "pool2/3x3_s2": "pool2.3x3_s2",
    }
    for name in INCEPTIONS:
        if name == "inception_4a":
            layers["pool3/3x3_s2"] = "pool3.3x3_s2"
        if name == "inception_5a":
            layers["pool4/3x3_s2"] = "pool4.3x3_s2"
        layers.update({f"{name}/{b}": f"{name}.{b}" for b in BRANCHES})
        layers[f"{name}/output"] = name
    layers["pool5/7x7_s1"] = "pool5.7x7_s1"
    layers["loss3/classifier"] = "loss3.classifier"
    return layers


STAGES = ("conv1", "pool1", "conv2", "pool2", "inception_3a", "inception_3b", "pool3",
          *(f"inception_4{c}" for c in "abcde"), "pool4", "inception_5a", "inception_5b",
          "pool5", "flatten", "loss3")


PORT_NAMES = {"conv1": "conv1_7x7_s2", "conv2_reduce": "conv2_3x3_reduce", "conv2": "conv2_3x3",
              "loss3_classifier_1": "loss3_classifier"}  # pytorch-caffe-models' stem, MMdnn's classifier
PORT_INCEPTION = re.compile(r"^(inception_\d[a-e])\.(?:conv_)?(.+)$")  # inception_4c.conv_3x3 -> inception_4c_3x3


def caffe_name(module: str) -> str:
    """A port's module path as the Caffe layer name with `/` written `_` (`inception_4c_3x3`)."""
    if module in PORT_NAMES:
        return PORT_NAMES[module]
    inception = PORT_INCEPTION.match(module)
    return f"{inception[1]}_{inception[2]}" if inception else module


def convert_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Maps the ports' keys (see the module docstring) onto this module (`inception_4c.3x3.weight`)."""
    out = {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        name = caffe_name(module)
        for stage in sorted(STAGES, key=len, reverse=True):
            if name.startswith(stage + "_"):
                name = stage + "." + name[len(stage) + 1:]
                break
        out[f"{name}.{param}" if module else key] = value
    return out


CLASSIFIERS = re.compile(r"^loss[123][._]classifier(?:_1)?\.weight$")  # the final one or an auxiliary one
PLACES = {365: CAFFE_PLACES365, 205: CAFFE_PLACES205}


def detect_preprocess(state: dict[str, torch.Tensor]) -> Preprocess | None:
    """The Places mean for a 365- or 205-way classifier (final or auxiliary); None (BVLC's) otherwise."""
    widths = {v.shape[0] for k, v in state.items() if CLASSIFIERS.match(k)}
    return next((PLACES[w] for w in widths if w in PLACES), None)


# Class names, one per line: MIT CSAIL's own list for Places365 (`/a/airfield 0` lines, MIT licence) and
# neural-dream's for Places205 (MIT licence), at fixed commits; the hashes are those of these files' bytes.
PLACES365_NAMES = Download(
    "googlenet_places365-da1e6512eb7d2613.classes.txt",
    "https://raw.githubusercontent.com/CSAILVision/places365/5260c7f668d6c4d5bb7a0588b90405aed3a8eec1/"
    "categories_places365.txt",
    "2affba635eb657e7ca95f4e6cc69bd9fac29ef4c32aeb83cafdfcd06ec6a1ea6", 6_833, "Places365 class names",
    "CSAILVision/places365 categories_places365.txt")
PLACES205_NAMES = Download(
    "googlenet_places205-b57a3fc7a34557585.classes.txt",
    "https://raw.githubusercontent.com/ProGamerGov/neural-dream/2b09596e491003f339f0407b4890c7875a2951ac/"
    "categories/places205_categories.txt",
    "47fd812c60d3f7e2b2c8de8067eebee556485eb340146d4d171d16b63044ff06", 2_483, "Places205 class names",
    "ProGamerGov/neural-dream categories/places205_categories.txt")

# pytorch-caffe-models (Katherine Crowson, MIT) publishes the ports as GitHub release assets whose names
# carry the leading 16-17 digits of their SHA-256 (torch.hub's check_hash); no full digest is published.
RELEASES = "https://github.com/crowsonkb/pytorch-caffe-models/releases/download/models-2/"
DOWNLOADS = (
    Download("bvlc_googlenet-1f25f8c8778a8802.pth", RELEASES + "bvlc_googlenet-1f25f8c8778a8802.pth",
             "1f25f8c8778a8802", 28_000_000, "BVLC GoogLeNet (ImageNet, 1000 classes)",
             "BVLC's bvlc_googlenet (unrestricted use), ported by pytorch-caffe-models"),
    Download("googlenet_places365-da1e6512eb7d2613.pth", RELEASES + "googlenet_places365-da1e6512eb7d2613.pth",
             "da1e6512eb7d2613", 25_400_000, "GoogLeNet Places365 (scenes, 365 classes)",
             "MIT CSAIL's Places365-GoogLeNet (CC BY, as the Places365 project releases its CNNs), ported by "
             "pytorch-caffe-models", classes=PLACES365_NAMES),
    Download("googlenet_places205-b57a3fc7a34557585.pth", RELEASES + "googlenet_places205-b57a3fc7a34557585.pth",
             "b57a3fc7a34557585", 24_700_000, "GoogLeNet Places205 (scenes, 205 classes)",
             "MIT CSAIL's Places205-GoogLeNet, ported by pytorch-caffe-models", classes=PLACES205_NAMES),
)


SPEC = ModelSpec(
    name="googlenet_caffe",
    title="BVLC GoogLeNet (Caffe)",
    build=build,
    stages=STAGES,
    layers=_layers(),
    preprocess=(CAFFE_GOOGLENET, CAFFE_PLACES365, CAFFE_PLACES205),
    min_size=32,
    default_layers={"inception_4c/output": 1.0},
    classifier="loss3/classifier",
    convert_keys=convert_keys,
    weights_hint="googlenet_caffe.safetensors (BVLC GoogLeNet converted from Caffe, keys like "
                 "'inception_4c_3x3.weight'), or neural-dream's / pytorch-caffe-models' bvlc_googlenet .pth",
    detect_preprocess=detect_preprocess,
    downloads=DOWNLOADS,
)
