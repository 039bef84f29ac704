"""The browser side: the frontend registers the nodes and the Reverie.Layers extension, converts every
example exactly as scripts/run_workflow.py does, and runs the basic one (headless Chromium + playwright-core)."""
import json
import os
import shutil
import subprocess

import pytest

from graphs import HERE, REQUIRED_NODES, ROOT, WORKFLOWS
from run_workflow import to_api

BROWSER_DIR = ROOT / ".browser"
WORKFLOW = ROOT / "example_workflows" / "deepdream_basic.json"


@pytest.fixture(scope="module")
def ui(host, make_image, tmp_path_factory):
    """Run ui_check.mjs once; its JSON report, plus where the screenshot went."""
    chrome = os.environ.get("CHROME") or shutil.which("chromium")
    if not chrome or not shutil.which("node"):
        pytest.skip("no chromium or node on PATH: .ci/run installs them (apt-get install chromium)")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.skip(f"no playwright-core in {BROWSER_DIR}: .ci/run installs it (npm install playwright-core)")
    if not WORKFLOW.is_file():
        pytest.fail(f"{WORKFLOW.relative_to(ROOT)} is missing")
    out = tmp_path_factory.mktemp("ui")
    files = [str(WORKFLOW)] + [str(p) for p in WORKFLOWS if p != WORKFLOW]
    env = {**os.environ, "COMFY_URL": host.url, "WORKFLOWS": json.dumps(files), "SMALL_IMAGE": make_image(96, 96),
           "SHOT": str(out / "ui.png"), "RESULT": str(out / "result.json"), "BROWSER_DIR": str(BROWSER_DIR),
           "CHROME": chrome}
    run = subprocess.run(["node", str(HERE / "ui_check.mjs")], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads((out / "result.json").read_text()), out / "ui.png"


def test_nodes_and_extension_registered(ui):
    report, shot = ui
    assert REQUIRED_NODES <= set(report["registered"]), report["registered"]
    assert {"Reverie.Layers", "Reverie.Warnings"} <= set(report["extensions"])
    assert shot.stat().st_size > 10_000
    assert not report["console"], report["console"]


def test_converter_matches_graph_to_prompt(ui, object_info):
    """scripts/run_workflow.py's UI -> API conversion equals the frontend's graphToPrompt(), for every example."""
    prompts = ui[0]["prompts"]
    assert set(prompts) == {p.name for p in WORKFLOWS}
    for path in WORKFLOWS:
        assert to_api(json.loads(path.read_text()), object_info) == prompts[path.name], path.name


def test_add_layer_list(ui):
    """Select Layers lists the model's layers; picking one appends "name: 1.0" to the text."""
    layers = ui[0]["layers"]
    assert layers and "add layer" in layers["widgets"], layers
    assert len(layers["values"]) > 3, layers["values"]
    assert f"{layers['picked']}: 1.0" in layers["after"], layers


def test_queued_from_the_browser(ui):
    assert ui[0]["queued"] == "execution_success"


def test_run_warnings_are_shown_on_the_node(ui):
    """Optimize's ui["reverie_warnings"] appear in a text box on the node, which goes when a run has none."""
    assert ui[0]["warnings"] == {"shown": "Style image 1 is enlarged 4.0×", "removed": True}
