"""Node-tier setup: import ComfyUI (CPU mode) from the host, or skip these tests with the reason."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.helpers import shared_file

DEFAULT_HOST = Path(__file__).resolve().parents[2] / ".host"  # scripts/lib.sh's default


def _comfyui_dir() -> Path | None:
    candidates = [Path(os.environ["REVERIE_COMFYUI"])] if os.environ.get("REVERIE_COMFYUI") else []
    candidates.append(DEFAULT_HOST / "comfyui")
    return next((c for c in candidates if (c / "comfy_api").is_dir()), None)


COMFYUI = _comfyui_dir()
if COMFYUI is not None and str(COMFYUI) not in sys.path:
    sys.path.insert(0, str(COMFYUI))
    from comfy.cli_args import args

    args.cpu = True  # before anything imports comfy.model_management: no GPU here


def pytest_collection_modifyitems(config, items):
    if COMFYUI is None:
        skip = pytest.mark.skip(reason="ComfyUI not found: run scripts/setup_host.sh or set REVERIE_COMFYUI")
        for item in items:
            if "tests/nodes" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="module")
def nodes():
    """The pack's nodes module, with ../shared/weights as a models/cnn folder (skips without ../shared)."""
    import folder_paths
    from reverie import nodes
    folder_paths.add_model_folder_path("cnn", str(shared_file("weights/googlenet_caffe.safetensors").parent))
    return nodes
