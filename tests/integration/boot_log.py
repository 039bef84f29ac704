"""Reading a ComfyUI boot log: which import failures and tracebacks belong to this pack.

A traceback is the pack's only when one of its frames runs through the pack's own code (`PACK_CODE`
under the repository or under `custom_nodes/reverie/`). The host may live inside the checkout
(`.host/` on a fresh machine), so a path that merely contains the repository is not enough:
ComfyUI's own failures (its audio nodes without torchaudio) run through `.host/comfyui/`.
"""
from __future__ import annotations

import re
from pathlib import Path

PACK_CODE = ("__init__.py", "nodes", "engine")  # what ComfyUI imports of the pack, relative to its root
LINK = "/custom_nodes/reverie/"  # how the host reaches the pack (scripts/setup_host.sh links it)
FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line \d+')
LISTENING = "To see the GUI go to"


def boot_lines(log: str) -> list[str]:
    """The log up to the point where the server listens (prompts run later may log tracebacks on purpose)."""
    end = log.find(LISTENING)
    return (log if end < 0 else log[:end]).splitlines()


def tracebacks(lines: list[str]) -> list[list[str]]:
    """Each `Traceback ...` block, up to and including its exception line (the first unindented line)."""
    found, current = [], None
    for line in lines:
        if line.startswith("Traceback"):
            current = [line]
            found.append(current)
        elif current is not None:
            current.append(line)
            if line and not line[0].isspace():
                current = None
    return found


def is_pack_file(path: str, root: Path) -> bool:
    """Whether a traceback frame's file is the pack's own code, reached directly or through the host's link."""
    for base in (f"{root}/", LINK):
        at = path.find(base)
        if at >= 0 and path[at + len(base):].split("/", 1)[0] in PACK_CODE:
            return True
    return False


def pack_tracebacks(lines: list[str], root: Path) -> list[str]:
    """The tracebacks with a frame in the pack's code, each as one string."""
    return ["\n".join(t) for t in tracebacks(lines)
            if any((m := FRAME.match(l)) and is_pack_file(m["path"], root) for l in t)]


def pack_import_failures(lines: list[str]) -> list[str]:
    """ComfyUI's `IMPORT FAILED` summary lines that name the pack's directory."""
    return [l for l in lines if "IMPORT FAILED" in l and l.rstrip().endswith(LINK.rstrip("/"))]
