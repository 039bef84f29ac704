"""A prompt or an HTTP request cannot run code, read files or learn their contents through the pack: pickles in
models/cnn that would create a file are refused and create none, a link out of models/cnn to a file that is no
weights file reveals none of its bytes or its target, and the layer route and the pack's static files serve
nothing outside the pack. Links in models/cnn to real weights still load, as ComfyUI's own loaders allow."""
from __future__ import annotations

import urllib.error
import uuid

import pytest

from graphs import PromptKit, failure
from tests.helpers import pickle_payload, shared_file

SECRET = "reverie-secret-7f3a"


@pytest.fixture
def cnn_folder(host):
    """models/cnn of the server; the test's files there are removed afterwards."""
    folder = host.base / "models" / "cnn"
    before = set(folder.iterdir())
    yield folder
    for path in set(folder.iterdir()) - before:
        path.unlink()


def load_prompt(object_info, default_layers, image, prefix, make_image, weights: str) -> dict:
    kit = PromptKit(object_info, image, default_layers, prefix, make_image)
    return kit.dream(layers=kit.layers(cnn={"weights": weights}))


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".ckpt"])
def test_pickled_payloads_are_refused_and_create_no_file(suffix, comfy, object_info, default_layers, make_image,
                                                         prefix, cnn_folder, tmp_path):
    marker = tmp_path / "created_by_unpickling"
    name = f"reverie_test_{uuid.uuid4().hex[:8]}{suffix}"
    pickle_payload(cnn_folder / name, marker, "zip")
    message = failure(comfy, load_prompt(object_info, default_layers, make_image(64, 64), prefix, make_image, name))
    assert f"{name} could not be read as plain tensors with torch.load(weights_only=True)" in message, message
    assert not marker.exists()
    assert comfy.get("/system_stats")["system"]["comfyui_version"]


def test_a_link_out_of_models_cnn_reveals_nothing(comfy, object_info, default_layers, make_image, prefix,
                                                  cnn_folder, tmp_path):
    """A .safetensors link to a file outside whose header holds a secret: refused, neither the secret nor the
    target's path in the message."""
    target = tmp_path / "outside.bin"
    header = f'{{"{SECRET}": {{"dtype": "F32", "shape": [1], "data_offsets": "{SECRET}"}}}}'.encode()
    target.write_bytes(len(header).to_bytes(8, "little") + header)
    name = f"reverie_test_{uuid.uuid4().hex[:8]}.safetensors"
    (cnn_folder / name).symlink_to(target)
    message = failure(comfy, load_prompt(object_info, default_layers, make_image(64, 64), prefix, make_image, name))
    assert f"{name} is not a readable .safetensors file" in message, message
    assert SECRET not in message and str(tmp_path) not in message, message


@pytest.mark.parametrize("query", ["../../../../etc/passwd", "/etc/passwd", "..%2F..%2Fetc%2Fpasswd",
                                   "efficientnet_lite0/../../../etc/passwd"])
@pytest.mark.parametrize("route", ["/reverie/layers", "/api/reverie/layers"])
def test_the_layer_route_reads_no_file(route, query, comfy):
    with pytest.raises(urllib.error.HTTPError) as error:
        comfy.get(route, architecture=query)
    body = error.value.read().decode()
    assert error.value.code == 404 and "unknown architecture" in body and "root:" not in body


@pytest.mark.parametrize("path", ["/extensions/reverie/../../../../etc/passwd",
                                  "/extensions/reverie/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                                  "/extensions/reverie/..%2f..%2f..%2f..%2fetc%2fpasswd",
                                  "/extensions/reverie/../__init__.py"])
def test_the_pack_static_files_serve_nothing_outside_web(path, comfy):
    try:
        body = comfy.request(path).decode(errors="replace")
    except urllib.error.HTTPError as e:
        assert e.code in (403, 404), e.code
        return
    assert "root:" not in body and "comfy_entrypoint" not in body  # the frontend's index page, say


def test_a_link_to_real_weights_loads(comfy, object_info, make_image, prefix, cnn_folder):
    """Linking weights into models/cnn (as ComfyUI users link model folders) is no attack: it still loads."""
    from run_workflow import execution_error

    name = f"reverie_test_{uuid.uuid4().hex[:8]}.safetensors"
    (cnn_folder / name).symlink_to(shared_file("weights/googlenet_caffe.safetensors"))
    kit = PromptKit(object_info, make_image(64, 64), "inception_3a/output", prefix, make_image)
    prompt = kit.dream(layers=kit.layers(cnn={"architecture": "googlenet_caffe", "weights": name}))
    assert execution_error(comfy.run(prompt, timeout=300)) is None
