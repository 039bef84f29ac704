"""Nets and images for the style-transfer tests: the tiny random net, the shared partial VGG19, photos."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from reverie.engine.architectures import ARCHITECTURES
from reverie.engine.features import FeatureNet
from reverie.engine.models import CNN, load_cnn
from reverie.engine.spec import CAFFE_VGG, ModelSpec
from tests.helpers import shared_file, tiny_cnn

LAYERS = ["b1/relu", "b2/relu", "b3/relu"]


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> CNN:
    """The tiny random-init net (import this fixture into a test module to use it)."""
    return tiny_cnn(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def net(cnn) -> FeatureNet:
    """The tiny net computing `b1/conv` and LAYERS."""
    return FeatureNet(cnn, ["b1/conv", *LAYERS])

VGG19_PARTIAL = "weights/vgg19_partial_conv1_1-conv3_4.safetensors"
NAMES = ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
         "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4")


def _vgg19_head() -> nn.Module:
    """vgg19().features up to relu3_4, under the same state-dict keys (`features.N.weight`)."""
    layers, c_in = [], 3
    for c_out in (64, 64, "M", 128, 128, "M", 256, 256, 256, 256):
        if c_out == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]
            c_in = c_out
    return nn.Sequential(OrderedDict(features=nn.Sequential(*layers)))


def _head_spec() -> ModelSpec:
    stages = tuple(f"features.{i}" for i in range(len(NAMES)))
    return ModelSpec(name="vgg19_head_test", title="VGG19 up to relu3_4 (test)", build=_vgg19_head, stages=stages,
                     layers=dict(zip(NAMES, stages)), preprocess=(CAFFE_VGG,), min_size=16,
                     default_layers={"relu2_1": 1.0})


def vgg19_partial() -> CNN:
    """The shared partial VGG19 (Caffe preprocessing): through the registered `vgg19` spec once it
    exists, else through a spec of its first 18 modules; skips when ../shared is absent."""
    path = shared_file(VGG19_PARTIAL)
    if "vgg19" in ARCHITECTURES and all(n in ARCHITECTURES["vgg19"].layers for n in NAMES):
        return load_cnn("vgg19", path, "caffe")
    return load_cnn(_head_spec(), path)


def photo(name: str, size: tuple[int, int]) -> torch.Tensor:
    """A shared test photo as a [1, 3, H, W] batch in [0, 1]; `size` is (width, height)."""
    image = Image.open(shared_file(f"testdata/images/{name}")).convert("RGB").resize(size, Image.BICUBIC)
    return torch.from_numpy(np.array(image)).float().div(255).permute(2, 0, 1)[None].contiguous()
