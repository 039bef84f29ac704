"""Building API-format test graphs from /object_info, and reading their failures."""
from __future__ import annotations

import ast
from pathlib import Path

from run_workflow import Comfy, WorkflowError, execution_error

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REQUIRED_NODES = {"ReverieLoadCNN", "ReverieSelectLayers", "ReverieOctavePyramid", "ReverieDream"}
WORKFLOWS = sorted((ROOT / "example_workflows").glob("*.json"))


def pack_node_ids() -> set[str]:
    """Every `node_id="..."` a schema in nodes/ declares (read from the source, not imported)."""
    ids = set()
    for path in (ROOT / "nodes").glob("*.py"):
        for call in ast.walk(ast.parse(path.read_text())):
            for kw in getattr(call, "keywords", []):
                if kw.arg == "node_id" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    ids.add(kw.value.value)
    return ids


def node(object_info: dict, class_type: str, **inputs) -> dict:
    """An API-format node with every widget input at its default, then `inputs` on top."""
    values = {}
    for group in ("required", "optional"):
        for name, spec in object_info[class_type]["input"].get(group, {}).items():
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if "default" in opts:
                values[name] = opts["default"]
            elif isinstance(spec[0], list) and spec[0]:
                values[name] = spec[0][0]
    return {"class_type": class_type, "inputs": {**values, **inputs}}


def dream_graph(object_info: dict, layers: str, image: str, prefix: str, **dream) -> dict:
    """LoadImage -> LoadCNN (defaults) -> SelectLayers(layers) -> Dream (defaults + `dream`) -> SaveImage."""
    return {"1": node(object_info, "LoadImage", image=image),
            "2": node(object_info, "ReverieLoadCNN"),
            "3": node(object_info, "ReverieSelectLayers", cnn=["2", 0], layers=layers),
            "4": node(object_info, "ReverieDream", image=["1", 0], layers=["3", 0], **dream),
            "5": node(object_info, "SaveImage", images=["4", 0], filename_prefix=prefix)}


def failure(comfy: Comfy, prompt: dict) -> str:
    """The error a bad prompt gets: the validation message, else the execution error; fails if it ran."""
    try:
        entry = comfy.run(prompt, timeout=300)
    except WorkflowError as e:
        return str(e)
    message = execution_error(entry)
    assert message is not None, "the prompt succeeded, but it should have failed"
    return message
