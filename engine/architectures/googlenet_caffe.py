"""BVLC GoogLeNet exactly as Caffe's deploy.prototxt computes it (LRN, ceil-mode pools, BGR 0..255).

Layer names are Caffe's blob names (`inception_4c/output`); weight files use Caffe's layer names
with `/` written as `_` (`inception_4c_3x3.weight`), which `convert_keys` maps onto this module.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..spec import CAFFE_GOOGLENET, ModelSpec

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


def convert_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Maps Caffe-style keys (`inception_4c_3x3.weight`) onto this module (`inception_4c.3x3.weight`)."""
    out = {}
    for key, value in state.items():
        for stage in sorted(STAGES, key=len, reverse=True):
            if key.startswith(stage + "_"):
                key = stage + "." + key[len(stage) + 1:]
                break
        out[key] = value
    return out


SPEC = ModelSpec(
    name="googlenet_caffe",
    title="BVLC GoogLeNet (Caffe)",
    build=build,
    stages=STAGES,
    layers=_layers(),
    preprocess=(CAFFE_GOOGLENET,),
    min_size=32,
    default_layers={"inception_4c/output": 1.0},
    classifier="loss3/classifier",
    convert_keys=convert_keys,
    weights_hint="googlenet_caffe.safetensors (BVLC GoogLeNet converted from Caffe, keys like "
                 "'inception_4c_3x3.weight')",
)
