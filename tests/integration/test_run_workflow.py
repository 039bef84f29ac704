"""scripts/run_workflow.py as the README documents it, against the real server: --input uploads a local
file into the Load Image node, --set names nodes by title, outputs are saved, failures exit 1 with the
server's message."""
from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from PIL import Image

from graphs import ROOT
from run_workflow import WorkflowError, image_loader, override

SCRIPT = ROOT / "scripts" / "run_workflow.py"
BASIC = ROOT / "example_workflows" / "deepdream_basic.json"


def run(host, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args), "--url", host.url],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def photo(tmp_path):
    """A local PNG the server has never seen (80×56, so the output's size shows it was the one used)."""
    path = tmp_path / f"reverie_test_upload_{uuid.uuid4().hex[:8]}.png"
    Image.linear_gradient("L").resize((80, 56)).convert("RGB").save(path)
    return path


def test_input_is_uploaded_and_dreamed_on(host, photo, prefix, tmp_path):
    out = tmp_path / "out"
    done = run(host, BASIC, "--input", photo, "--set", "Dream.steps=1", "--set", f"Save Image.filename_prefix={prefix}",
               "--out", out)
    assert done.returncode == 0, done.stderr
    saved = [out / line.rsplit("/", 1)[-1] for line in done.stdout.split()]
    assert saved and all(p.is_file() for p in saved), done.stdout
    with Image.open(saved[0]) as image:
        assert image.size == (80, 56)
    assert (host.base / "input" / photo.name).read_bytes() == photo.read_bytes()
    (host.base / "input" / photo.name).unlink()


def test_failure_exits_1_with_the_servers_message(host, photo, tmp_path):
    done = run(host, BASIC, "--input", f"Load Image={photo}", "--set", "Select Layers.layers=no_such_layer: 1.0",
               "--set", "Dream.steps=1", "--out", tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no_such_layer" in done.stderr, done.stderr
    (host.base / "input" / photo.name).unlink(missing_ok=True)


def test_missing_input_file_and_unknown_node_are_named(host, tmp_path):
    done = run(host, BASIC, "--input", tmp_path / "nowhere.png", "--out", tmp_path)
    assert done.returncode == 1 and "nowhere.png" in done.stderr, done.stderr
    done = run(host, BASIC, "--set", "Dreem.steps=1", "--out", tmp_path)
    assert done.returncode == 1 and "'Dreem'" in done.stderr and "Dream" in done.stderr, done.stderr


def test_input_needs_a_node_name_when_there_are_several_load_images():
    prompt = {"1": {"class_type": "LoadImage", "inputs": {}, "_meta": {"title": "photo"}},
              "2": {"class_type": "LoadImage", "inputs": {}, "_meta": {"title": "style"}},
              "3": {"class_type": "ReverieDream", "inputs": {}, "_meta": {"title": "Dream"}}}
    with pytest.raises(WorkflowError, match="2 Load Image nodes.*1 \\(photo\\), 2 \\(style\\)"):
        image_loader(prompt, None)
    assert image_loader(prompt, "style") == "2" and image_loader(prompt, "1") == "1"
    with pytest.raises(WorkflowError, match="Dream"):
        image_loader(prompt, "Dream")  # a node, but not a Load Image
    assert override(prompt, {"Dream.steps": 3})["3"]["inputs"] == {"steps": 3}
