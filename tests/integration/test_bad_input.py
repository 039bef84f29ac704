"""The bad-input table (tests/bad_input_cases.py, docs/bad_input.md) through a real server: each prompt is
refused with its message, which shows no install path and no exception class path, and the server keeps serving."""
import re

import pytest

from graphs import ROOT, PromptKit, failure
from tests.bad_input_cases import CASES

SERVER_CASES = [c for c in CASES if c.tier == "server"]


@pytest.fixture(scope="module")
def image(make_image, comfy) -> str:
    yield make_image(64, 64)
    # the refused prompts hold NaN, which the server's /history sends as bare NaN: a browser opened on this
    # server later (test_frontend.py) could not parse its queue history
    comfy.request("/history", {"clear": True})


@pytest.mark.parametrize("case", SERVER_CASES, ids=[c.id for c in SERVER_CASES])
def test_bad_input_is_reported(case, comfy, host, object_info, default_layers, image, make_image, prefix):
    message = failure(comfy, case.build(PromptKit(object_info, image, default_layers, prefix, make_image)))
    assert case.expect in message, message
    assert str(ROOT) not in message and str(host.base) not in message and "custom_nodes" not in message, message
    assert "Traceback" not in message and "torch/" not in message, message
    if " failed: " in message:  # raised while running: ComfyUI shows the exception's type name
        assert re.search(r" failed: (ValueError|RuntimeError|TypeError): ", message), message
    assert comfy.get("/system_stats")["system"]["comfyui_version"]
