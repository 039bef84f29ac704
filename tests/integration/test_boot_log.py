"""The boot-log reader blames the pack only for tracebacks through its own code (no server needed)."""
from pathlib import Path

from boot_log import boot_lines, pack_import_failures, pack_tracebacks

ROOT = Path("/home/user/reverie")  # a checkout with its host inside it, as on a fresh machine
HOST_LINK = ROOT / ".host/base/custom_nodes/reverie"

COMFY_FAILURE = f"""\
Traceback (most recent call last):
  File "{ROOT}/.host/comfyui/nodes.py", line 2146, in load_custom_node
    module_spec.loader.exec_module(module)
  File "{ROOT}/.host/comfyui/comfy_extras/nodes_audio_encoder.py", line 3, in <module>
    import torchaudio
ModuleNotFoundError: No module named 'torchaudio'"""

PACK_FAILURE = f"""\
Traceback (most recent call last):
  File "{ROOT}/.host/comfyui/nodes.py", line 2146, in load_custom_node
    module_spec.loader.exec_module(module)
  File "<frozen importlib._bootstrap_external>", line 940, in exec_module
  File "{HOST_LINK}/nodes/models.py", line 12, in <module>
    from ..engine.models import load_cnn
ImportError: cannot import name 'load_cnn'"""

SUMMARY = f"""\
Import times for custom nodes:
   0.0 seconds (IMPORT FAILED): {HOST_LINK}
To see the GUI go to: http://127.0.0.1:8188
{PACK_FAILURE}"""


def log(*parts: str) -> list[str]:
    return boot_lines("\nsome startup line\n".join(parts))


def test_comfyuis_own_failure_inside_the_checkout_is_not_ours():
    assert pack_tracebacks(log(COMFY_FAILURE), ROOT) == []


def test_a_failure_through_the_pack_is_ours_beside_comfyuis():
    ours = pack_tracebacks(log(COMFY_FAILURE, PACK_FAILURE), ROOT)
    assert len(ours) == 1 and "cannot import name 'load_cnn'" in ours[0]


def test_the_pack_reached_directly_is_ours_but_not_its_other_folders():
    direct = PACK_FAILURE.replace(str(HOST_LINK), str(ROOT))
    assert len(pack_tracebacks(log(direct), ROOT)) == 1
    elsewhere = PACK_FAILURE.replace(f"{HOST_LINK}/nodes", f"{ROOT}/.browser/node_modules")
    assert pack_tracebacks(log(elsewhere), ROOT) == []


def test_import_failed_summary_and_what_runs_after_boot():
    lines = log(SUMMARY)
    assert pack_import_failures(lines) == [f"   0.0 seconds (IMPORT FAILED): {HOST_LINK}"]
    assert pack_tracebacks(lines, ROOT) == []  # after "To see the GUI": a prompt's failure, not the boot's
    assert pack_import_failures(log(SUMMARY.replace("IMPORT FAILED", "OK"))) == []
