"""BVLC GoogLeNet against genuine Caffe blobs (../shared/testdata/reference)."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from reverie.engine.features import FeatureNet
from reverie.engine.models import load_cnn
from tests.helpers import shared_file

BLOBS = {
    "inception_3a/output": "inception_3a__output",
    "inception_4c/output": "inception_4c__output",
    "inception_5b/output": "inception_5b__output",
    "pool5/7x7_s1": "pool5__7x7_s1",
    "loss3/classifier": "loss3__classifier",
}


@pytest.fixture(scope="module")
def googlenet():
    return load_cnn("googlenet_caffe", shared_file("weights/googlenet_caffe.safetensors"))


def test_forward_reproduces_caffe_blobs(googlenet):
    """Every reference blob within 1e-4 of its range; logits within 1e-4; top-5 as Caffe's."""
    ref = load_file(shared_file("testdata/reference/googlenet_caffe_ref.safetensors"))
    net = FeatureNet(googlenet, BLOBS)
    identity = type(googlenet.preprocess)("raw", (0.0, 0.0, 0.0))  # the blob is already preprocessed
    googlenet.preprocess, saved = identity, googlenet.preprocess
    try:
        with torch.no_grad():
            feats = net(ref["data"])
    finally:
        googlenet.preprocess = saved
    for layer, blob in BLOBS.items():
        got, want = feats[layer].reshape(ref[blob].shape), ref[blob]
        assert (got - want).abs().max() <= 1e-4 * want.abs().max(), layer
    assert torch.allclose(feats["loss3/classifier"], ref["loss3__classifier"], atol=1e-4)
    top5 = feats["loss3/classifier"].softmax(1).topk(5).indices[0].tolist()
    assert top5 == [967, 968, 504, 969, 925]


def test_preprocessing_is_caffe_bgr_0_255(googlenet):
    """RGB 0..1 in, BGR 0..255 minus the BVLC mean out."""
    x = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)
    out = googlenet.preprocess(x).flatten().tolist()
    assert out == pytest.approx([0 - 104.0, 127.5 - 117.0, 255 - 123.0])
