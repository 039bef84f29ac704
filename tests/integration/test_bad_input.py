"""Bad input gets a clear message naming the problem, and the server keeps serving."""
import re

import pytest

from graphs import dream_graph, failure


@pytest.mark.parametrize("case, expect", [
    ({"layers": "no_such_layer: 1.0"}, "no_such_layer"),
    ({"layers": ""}, "layer"),
    ({"steps": 0}, "steps"),
    ({"size": 1}, r"small|minimum|at least"),
], ids=["unknown-layer", "no-layers", "zero-steps", "1x1-image"])
def test_bad_input_is_reported(case, expect, comfy, object_info, default_layers, make_image, prefix):
    """Rejected at validation or failed with a short message (no torch internals); /system_stats still answers."""
    size = case.pop("size", 64)
    graph = dream_graph(object_info, case.pop("layers", default_layers), make_image(size, size), prefix, **case)
    message = failure(comfy, graph)
    assert re.search(expect, message, re.I), message
    assert "Traceback" not in message and "torch/" not in message, message
    assert comfy.get("/system_stats")["system"]["comfyui_version"]
