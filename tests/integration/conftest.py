"""Integration tier: one real ComfyUI server per session with this repo installed as the `reverie` pack.

The host is $REVERIE_HOST, else the one whose venv runs pytest (scripts/test.sh sets both up).
"""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "scripts")]  # graphs, host, run_workflow

import graphs  # noqa: E402
from graphs import ROOT  # noqa: E402
from host import Host, default_root, is_host  # noqa: E402
from run_workflow import Comfy  # noqa: E402

PREFIX = "reverie_test_"  # of every file the tests write into the host's input/ and output/


def pytest_collection_modifyitems(items):
    for item in items:  # the tests that boot the server (test_boot_log.py needs none)
        if HERE in Path(item.fspath).resolve().parents and "host" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def host(tmp_path_factory):
    root = default_root()
    if not is_host(root):
        message = f"no ComfyUI host at {root}: run scripts/setup_host.sh, then scripts/test.sh"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    link = root / "base" / "custom_nodes" / "reverie"
    if link.resolve() != ROOT:
        pytest.fail(f"{link} should point at {ROOT}: run scripts/setup_host.sh {root}")
    server = Host(root).start(tmp_path_factory.mktemp("comfy") / "server.log")
    yield server
    server.stop()
    for path in (server.base / "output").glob(PREFIX + "*"):  # what the tests saved
        path.unlink()


@pytest.fixture(scope="session")
def comfy(host) -> Comfy:
    return Comfy(host.url)


@pytest.fixture(scope="session")
def object_info(comfy) -> dict:
    return comfy.object_info()


@pytest.fixture(scope="session")
def make_image(host):
    """make_image(w, h) -> the name of a new PNG in the server's input folder (removed after the session)."""
    from PIL import Image, ImageDraw

    made = []

    def make(width: int = 96, height: int = 64) -> str:
        image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
        draw = ImageDraw.Draw(image)
        for i in range(4):  # some edges and colour for the net to respond to
            box = [width * i // 5, height * i // 6, width * (i + 2) // 5, height * (i + 3) // 6]
            draw.ellipse(box, fill=(60 * i, 200 - 40 * i, 120))
        name = f"{PREFIX}{uuid.uuid4().hex[:8]}_{width}x{height}.png"
        image.save(host.base / "input" / name)
        made.append(host.base / "input" / name)
        return name

    yield make
    for path in made:
        path.unlink(missing_ok=True)


@pytest.fixture
def prefix() -> str:
    """A unique SaveImage filename_prefix: a new input, so ComfyUI's cache never skips the graph."""
    return f"{PREFIX}{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def default_layers(object_info) -> str:
    """The default architecture's default layers as Select Layers text ("name: weight" lines)."""
    from reverie.engine.architectures import ARCHITECTURES  # the package tests/conftest.py registers

    architecture = graphs.node(object_info, "ReverieLoadCNN")["inputs"]["architecture"]
    return "\n".join(f"{n}: {w}" for n, w in ARCHITECTURES[architecture].default_layers.items())
