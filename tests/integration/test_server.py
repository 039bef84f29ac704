"""The pack loads into a real ComfyUI: nodes listed, no import failure, routes and templates served."""
from boot_log import boot_lines, pack_import_failures, pack_tracebacks
from graphs import REQUIRED_NODES, ROOT, WORKFLOWS, pack_node_ids


def test_object_info_lists_every_reverie_node(object_info, host):
    """/object_info has every node id declared in nodes/ (and at least the four of issue 3)."""
    missing = sorted((pack_node_ids() | REQUIRED_NODES) - set(object_info))
    assert not missing, f"missing from /object_info: {missing}; server log:\n" + "\n".join(boot_lines(host.log_text())[-40:])


def test_pack_imports_without_errors(host):
    """No IMPORT FAILED line for the pack and no traceback that runs through its files."""
    lines = boot_lines(host.log_text())
    assert lines, "the server log is empty"
    assert not pack_import_failures(lines)
    ours = pack_tracebacks(lines, ROOT)
    assert not ours, ours[0]


def test_layers_route(comfy, object_info):
    """GET /reverie/layers lists the default model's layers; its defaults are among them."""
    architecture = object_info["ReverieLoadCNN"]["input"]["required"]["architecture"]
    default = architecture[1]["default"] if len(architecture) > 1 else architecture[0][0]
    data = comfy.get("/api/reverie/layers", architecture=default)
    assert data["layers"] and all(isinstance(n, str) for n in data["layers"])
    assert set(data["default_layers"]) <= set(data["layers"])


def test_example_workflows_are_templates(comfy):
    """ComfyUI offers every file in example_workflows/ as a template of the pack."""
    listed = set(comfy.get("/api/workflow_templates").get("reverie", []))
    assert {p.stem for p in WORKFLOWS} <= listed
