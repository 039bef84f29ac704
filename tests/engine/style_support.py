"""Nets for the style-transfer tests: the tiny random net and the shared partial VGG19."""
from __future__ import annotations

import pytest

from reverie.engine.features import FeatureNet
from reverie.engine.models import CNN, load_cnn
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

def vgg19_partial() -> CNN:
    """The shared partial VGG19 (conv1_1 ... relu3_4; Caffe preprocessing, detected); skips when ../shared is absent."""
    return load_cnn("vgg19", shared_file("weights/vgg19_partial_conv1_1-conv3_4.safetensors"))
