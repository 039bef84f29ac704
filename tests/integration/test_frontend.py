"""The browser side, on the host's frontend (1.32.9) and on the newest one scripts/setup_browser.sh unpacks
into HOST/frontends/ (a second server with --front-end-root): the frontend registers the nodes and both
extensions, converts every example exactly as scripts/run_workflow.py does, finds every example's thumbnail,
lays no node over another, fills the *add layer* list (canvas, Vue "Nodes 2.0" renderer, subgraphs), keeps
the warnings box out of the prompt, runs the basic example and serves an unchanged style graph from the cache;
and nothing of ours writes a console warning or error (headless Chromium + playwright-core)."""
import json
import os
import shutil
import subprocess

import pytest

from graphs import HERE, REQUIRED_NODES, ROOT, WORKFLOWS
from host import Host, default_root
from run_workflow import to_api

BROWSER_DIR = ROOT / ".browser"
WORKFLOW = ROOT / "example_workflows" / "deepdream_basic.json"
STYLE_WORKFLOW = ROOT / "example_workflows" / "style_transfer_basic.json"
HOST_FRONTEND = "host"  # the frontend package installed in the host's venv


STATIC = "comfyui_frontend_package/static"  # inside an unpacked comfyui-frontend-package wheel


def frontends() -> list[str]:
    """"host", then every frontend version unpacked in HOST/frontends/."""
    folder = default_root() / "frontends"
    return [HOST_FRONTEND, *sorted(p.name for p in folder.glob("*") if (p / STATIC).is_dir())]


def missing(message: str) -> None:
    """A part of the browser setup is absent: a failure in CI (.ci/run installs it), elsewhere a skip."""
    pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


@pytest.fixture(scope="module", params=frontends())
def ui(request, host, make_image, tmp_path_factory):
    """Run ui_check.mjs once per frontend; its JSON report, plus where the screenshot went."""
    chrome = os.environ.get("CHROME") or shutil.which("chromium")
    if not chrome or not shutil.which("node"):
        missing("no chromium or node on PATH: .ci/run installs them (apt-get install chromium)")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        missing(f"no playwright-core in {BROWSER_DIR}: .ci/run installs it (scripts/setup_browser.sh)")
    out = tmp_path_factory.mktemp("ui")
    server = host
    if request.param != HOST_FRONTEND:
        static = default_root() / "frontends" / request.param / STATIC
        server = Host(host.root, host.base).start(out / "server.log", "--front-end-root", str(static))
    files = [str(WORKFLOW)] + [str(p) for p in WORKFLOWS if p != WORKFLOW]
    env = {**os.environ, "COMFY_URL": server.url, "WORKFLOWS": json.dumps(files), "STYLE_WORKFLOW": str(STYLE_WORKFLOW),
           "SMALL_IMAGE": make_image(96, 96), "SHOT": str(out / "ui.png"), "RESULT": str(out / "result.json"),
           "BROWSER_DIR": str(BROWSER_DIR), "CHROME": chrome}
    try:
        run = subprocess.run(["node", str(HERE / "ui_check.mjs")], env=env, capture_output=True, text=True, timeout=900)
    finally:
        if server is not host:
            server.stop()
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads((out / "result.json").read_text()), out / "ui.png"


def test_a_newer_frontend_is_installed():
    """CI tests the newest frontend too."""
    if len(frontends()) == 1:
        missing(f"no frontend in {default_root() / 'frontends'}: scripts/setup_browser.sh unpacks the newest one")


def test_nodes_and_extension_registered(ui):
    report, shot = ui
    assert REQUIRED_NODES <= set(report["registered"]), report["registered"]
    assert {"Reverie.Layers", "Reverie.Warnings"} <= set(report["extensions"])
    assert shot.stat().st_size > 10_000


def test_no_console_errors_or_warnings_of_ours(ui):
    """No console error at all (past the known noise of an offline 0.3.75 boot), and no warning or error that our
    files caused (their stack passes through /extensions/reverie/, or it names an internal module we import)."""
    report = ui[0]
    assert not report["ours"], report["ours"]
    assert not report["console"], report["console"]


def test_converter_matches_graph_to_prompt(ui, object_info):
    """scripts/run_workflow.py's UI -> API conversion equals the frontend's graphToPrompt(), for every example."""
    prompts = ui[0]["prompts"]
    assert set(prompts) == {p.name for p in WORKFLOWS}
    for path in WORKFLOWS:
        assert to_api(json.loads(path.read_text()), object_info) == prompts[path.name], path.name


def test_no_node_overlaps_another(ui):
    """Every example as the frontend lays it out: no two nodes (title bars included) overlap."""
    overlaps = {name: pairs for name, pairs in ui[0]["overlaps"].items() if pairs}
    assert not overlaps, overlaps


def test_no_node_overlaps_another_in_the_vue_renderer(ui):
    """Every example with Nodes 2.0 on, whose nodes are taller than the canvas's: no two overlap on the page."""
    report = ui[0]
    if report["version"].startswith("1.32."):
        pytest.skip("frontend 1.32's Vue renderer is an early preview with other node sizes")
    overlaps = {name: pairs for name, pairs in report["vueOverlaps"].items() if pairs}
    assert not overlaps, overlaps


def test_every_example_has_a_thumbnail_in_the_template_browser(ui):
    """The template browser lists every example and loads its thumbnail from the URL it builds for pack templates."""
    thumbnails = ui[0]["thumbnails"]
    assert set(thumbnails) == {p.stem for p in WORKFLOWS}
    missing = [name for name, size in thumbnails.items() if not size or min(size) < 64]
    assert not missing, thumbnails


def test_add_layer_list(ui):
    """Select Layers lists the model's layers; picking one appends "name: 1.0" to the text."""
    layers = ui[0]["layers"]
    assert layers and "add layer" in layers["widgets"], layers
    assert len(layers["values"]) > 3, layers["values"]
    assert f"{layers['picked']}: 1.0" in layers["after"], layers


def test_add_layer_list_across_subgraphs(ui):
    """The list finds the model through a subgraph's input (Select Layers inside) and output (Load CNN inside)."""
    layers = ui[0]["layers"]
    assert layers["insideSubgraph"] == layers["values"]
    assert layers["modelInSubgraph"] == layers["values"]


def test_add_layer_list_in_the_vue_renderer(ui):
    """With Nodes 2.0 on, the list opened on the page lists the layers, and clicking one appends it."""
    report = ui[0]
    if report["version"].startswith("1.32."):
        pytest.skip("frontend 1.32's Vue renderer copies a combo's list once and cannot show a list that fills later")
    vue = report["vue"]
    assert len(vue["listed"]) > 3 and "stem" in vue["listed"], vue
    assert vue["text"].splitlines()[-1] == f"{vue['picked']}: 1.0", vue


def test_queued_from_the_browser(ui):
    assert ui[0]["queued"] == "execution_success"


def test_run_warnings_are_shown_on_the_node(ui):
    """Optimize's ui["reverie_warnings"] appear in a read-only box on the node, which goes when a run has none;
    the box is neither a prompt input nor saved in the workflow."""
    assert ui[0]["warnings"] == {"shown": "Style image 1 is enlarged 4.0×", "readOnly": True, "inPrompt": False,
                                 "inWorkflow": False, "removed": True}


def test_unchanged_graph_comes_from_the_cache(ui):
    """A style graph queued twice from the browser, with the warnings box on Optimize the second time: the
    second run executes no node (ComfyUI reports all of them cached)."""
    cache = ui[0]["cache"]
    assert cache["first"]["status"] == "execution_success", cache
    assert cache["first"]["ran"], cache
    assert cache["second"]["status"] == "execution_success", cache
    assert cache["second"]["ran"] == [], cache
    assert len(cache["second"]["cached"]) == cache["nodes"], cache
