#!/usr/bin/env python3
"""Run a ComfyUI workflow file on a live server and download its outputs (images, animations, videos).

    python scripts/run_workflow.py WORKFLOW.json --url http://127.0.0.1:PORT [--out DIR]
                                  [--input photo.png] [--input "Load Image=photo.png"]
                                  [--set Dream.steps=3] [--set 7.steps=3] [--print-prompt]

WORKFLOW is the UI format (what ComfyUI saves, what example_workflows/ holds: "nodes" + "links") or the
API format. The UI format is converted with the server's /object_info, the way the frontend's
graphToPrompt() does it. --input uploads a local file (POST /upload/image) and puts it into the workflow's
Load Image node (name the node by title or id when there are several). --set overrides an input of the
nodes named by id, title or class. Exits 1 with the server's error message when an upload or the graph is
rejected or a node fails. Run it with the host's Python (it needs aiohttp, which ComfyUI installs).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import mimetypes
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Callable

FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}  # never sent to the server
MUTED, BYPASSED = 2, 4  # LiteGraph node modes
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
UPLOAD_OPTIONS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")


class WorkflowError(Exception):
    """The workflow could not be converted, was rejected, or failed while running."""


# ---------------------------------------------------------------- UI format -> API format

def declared_inputs(info: dict) -> list[tuple[str, list]]:
    """(name, spec) of a node's inputs in the order the frontend creates widgets: required, then optional."""
    inputs = info.get("input", {})
    return [*inputs.get("required", {}).items(), *inputs.get("optional", {}).items()]


def widget_slots(name: str, spec: list) -> int:
    """How many widgets_values entries an input takes: 0 (socket only), 1, or more for helper widgets."""
    kind, opts = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
    if opts.get("forceInput") or not (isinstance(kind, list) or kind in WIDGET_TYPES):
        return 0
    if kind == "INT" and opts.get("control_after_generate", name in ("seed", "noise_seed")):
        return 2  # the value, then the "control after generate" combo
    if (isinstance(kind, list) or kind == "COMBO") and opts.get("control_after_generate"):
        return 3  # the value, the control combo and its filter
    return 2 if any(opts.get(k) for k in UPLOAD_OPTIONS) else 1  # upload button stores a value too


def widget_default(spec: list):
    """The value the frontend gives a widget that a saved workflow has no value for: its default, or a
    combo's first option."""
    kind, opts = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
    if "default" in opts:
        return opts["default"]
    options = kind if isinstance(kind, list) else opts.get("options") if kind == "COMBO" else None
    return options[0] if options else None


def widget_values(node: dict, info: dict) -> dict:
    """Widget inputs from the node's widgets_values (a list in widget order, or a dict by name); widgets
    past the end of the list take their defaults, as when the frontend loads an older workflow."""
    values = node.get("widgets_values") or []
    out, i = {}, 0
    for name, spec in declared_inputs(info):
        if not (n := widget_slots(name, spec)):
            continue
        if isinstance(values, dict):
            if name in values:
                out[name] = values[name]
        elif i < len(values):
            out[name] = values[i]
        elif (default := widget_default(spec)) is not None:  # a widget newer than the saved workflow
            out[name] = default
        i += n
    return {k: {"__value__": v} if isinstance(v, list) else v for k, v in out.items()}  # as graphToPrompt does


def to_api(workflow: dict, object_info: dict) -> dict:
    """The API prompt {id: {inputs, class_type, _meta}} for a UI-format workflow (API format passes through)."""
    if "nodes" not in workflow:
        return workflow
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {}
    for link in workflow.get("links", []):
        if isinstance(link, dict):
            link = [link["id"], link["origin_id"], link["origin_slot"], link["target_id"], link["target_slot"], link["type"]]
        links[link[0]] = link

    def source(link_id: int) -> list | None:
        """[origin id, slot] of a link, looking through reroutes and bypassed nodes; None for no real source."""
        _, origin_id, slot, _, _, kind = links[link_id]
        origin = nodes.get(origin_id)
        if origin is None or origin.get("mode") == MUTED:
            return None
        if origin["type"] == "Reroute" or origin.get("mode") == BYPASSED:
            for inp in origin.get("inputs", []):
                if inp.get("link") is not None and (origin["type"] == "Reroute" or inp.get("type") == kind):
                    return source(inp["link"])
            return None
        if origin["type"] not in object_info:  # PrimitiveNode & co: the value is in the target's widget
            return None
        return [str(origin_id), slot]

    prompt = {}
    for node in workflow["nodes"]:
        kind = node["type"]
        if node.get("mode") in (MUTED, BYPASSED) or kind in FRONTEND_ONLY:
            continue
        info = object_info.get(kind)
        if info is None:
            raise WorkflowError(f"node {node['id']} is a {kind!r}, which this server does not have "
                                f"(is the pack that provides it installed, and did it import?)")
        inputs = widget_values(node, info)
        for slot in node.get("inputs", []):
            if slot.get("link") is not None and (src := source(slot["link"])) is not None:
                inputs[slot["name"]] = src
        title = node.get("title") or info.get("display_name") or kind
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": kind, "_meta": {"title": title}}
    for entry in prompt.values():  # links into nodes that were left out are dropped, as the frontend does
        for name, value in list(entry["inputs"].items()):
            if isinstance(value, list) and len(value) == 2 and value[0] not in prompt:
                del entry["inputs"][name]
    return prompt


def node_names(prompt: dict) -> str:
    return ", ".join(f"{i} ({n.get('_meta', {}).get('title') or n['class_type']})" for i, n in prompt.items())


def find_nodes(prompt: dict, target: str) -> list[str]:
    """Ids of the nodes that `target` names: a node id, else a title (as shown on the node), else a class type."""
    if target in prompt:
        return [target]
    for matches in ([i for i, n in prompt.items() if n.get("_meta", {}).get("title") == target],
                    [i for i, n in prompt.items() if n["class_type"] == target]):
        if matches:
            return matches
    return []


def override(prompt: dict, settings: dict[str, object]) -> dict:
    """Set inputs by "NODE.input", NODE being a node id, a title or a class type (every node it names)."""
    for key, value in settings.items():
        target, _, name = key.rpartition(".")
        ids = find_nodes(prompt, target)
        if not ids or not name:
            raise WorkflowError(f"--set {key}: no node with id, title or class {target!r} in this workflow; "
                                f"its nodes: {node_names(prompt)}")
        for i in ids:
            prompt[i]["inputs"][name] = value
    return prompt


def image_loader(prompt: dict, target: str | None) -> str:
    """The id of the Load Image node an --input goes to: the one named by `target`, else the only one."""
    loaders = [i for i, n in prompt.items() if n["class_type"] == "LoadImage"]
    if target is not None:
        ids = [i for i in find_nodes(prompt, target) if i in loaders]
        if len(ids) != 1:
            raise WorkflowError(f"--input {target}=...: no single Load Image node with id or title {target!r}; "
                                f"Load Image nodes: {node_names({i: prompt[i] for i in loaders}) or 'none'}")
        return ids[0]
    if len(loaders) != 1:
        raise WorkflowError(f"--input: this workflow has {len(loaders)} Load Image nodes; name one as "
                            f"--input NODE=FILE (by title or id): {node_names({i: prompt[i] for i in loaders}) or 'none'}")
    return loaders[0]


# ---------------------------------------------------------------- talking to the server

def rejection_message(body: dict) -> str:
    """One readable message from /prompt's 400 answer ({"error": ..., "node_errors": ...})."""
    err = body.get("error", {})
    parts = [err.get("message", "prompt rejected") + (f": {err['details']}" if err.get("details") else "")]
    for node_id, node in (body.get("node_errors") or {}).items():
        for e in node.get("errors", []):
            parts.append(f"node {node_id} ({node.get('class_type')}): {e.get('message')}: {e.get('details')}")
    return "\n".join(parts)


def execution_error(entry: dict) -> str | None:
    """The failure message of a finished /history entry, or None when it succeeded."""
    status = entry.get("status", {})
    for kind, data in status.get("messages", []):
        if kind == "execution_error":
            return (f"node {data.get('node_id')} ({data.get('node_type')}) failed: "
                    f"{data.get('exception_type')}: {str(data.get('exception_message')).strip()}")
        if kind == "execution_interrupted":
            return f"interrupted at node {data.get('node_id')} ({data.get('node_type')})"
    return None if status.get("status_str") == "success" else f"prompt ended with status {status}"


class Comfy:
    """A small client of one ComfyUI server: /object_info, /prompt, websocket progress, /history, /view."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def request(self, path: str, body: object = None, timeout: float = 60) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read()

    def get(self, path: str, **params) -> dict:
        return json.loads(self.request(path + ("?" + urllib.parse.urlencode(params) if params else "")))

    def object_info(self) -> dict:
        return self.get("/object_info")

    def queue(self, prompt: dict, client_id: str = "reverie") -> str:
        """Submit an API prompt; a WorkflowError carries the validation message when it is rejected."""
        try:
            return json.loads(self.request("/prompt", {"prompt": prompt, "client_id": client_id}))["prompt_id"]
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                message = rejection_message(json.loads(body))
            except ValueError:
                message = body.decode(errors="replace")
            raise WorkflowError(message) from None

    def upload(self, path: Path) -> str:
        """POST /upload/image: copy a local image into the server's input folder; the name to load it by."""
        boundary = uuid.uuid4().hex
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        body = b"".join([
            f'--{boundary}\r\nContent-Disposition: form-data; name="overwrite"\r\n\r\ntrue\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{path.name}"\r\n'
            f"Content-Type: {kind}\r\n\r\n".encode(), path.read_bytes(), f"\r\n--{boundary}--\r\n".encode()])
        req = urllib.request.Request(self.url + "/upload/image", body,
                                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                answer = json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise WorkflowError(f"upload of {path.name} refused: HTTP {e.code} {e.read().decode(errors='replace')}") from None
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    def interrupt(self, prompt_id: str | None = None) -> None:
        self.request("/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    def history(self, prompt_id: str, timeout: float = 30) -> dict:
        """The finished /history entry. It is written a moment after the websocket says "done": poll for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                return entry
            time.sleep(0.1)
        raise TimeoutError(f"prompt {prompt_id} has no finished /history entry after {timeout:.0f} s")

    def run(self, prompt: dict, timeout: float = 1800,
            on_progress: Callable[[str, dict], None] | None = None) -> dict:
        """Queue a prompt, follow it over the websocket until it ends, return its /history entry.

        `on_progress(prompt_id, data)` gets each "progress" event ({"value", "max", "node", ...}).
        """
        return asyncio.run(asyncio.wait_for(self._run(prompt, on_progress), timeout))

    async def _run(self, prompt: dict, on_progress) -> dict:
        import aiohttp  # ComfyUI's own dependency; only needed for the websocket

        client_id = uuid.uuid4().hex
        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={client_id}"
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url, heartbeat=30) as ws:
            prompt_id = self.queue(prompt, client_id)  # after connecting, so no event is missed
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue  # binary frames are preview images
                event = json.loads(msg.data)
                data = event.get("data") or {}
                if data.get("prompt_id") != prompt_id:
                    continue
                if event["type"] == "progress" and on_progress:
                    on_progress(prompt_id, data)
                if event["type"] in ("execution_error", "execution_interrupted", "execution_success") or (
                        event["type"] == "executing" and data.get("node") is None):
                    break
            else:
                raise WorkflowError("the server closed the websocket before the prompt finished")
        return self.history(prompt_id)

    def download(self, image: dict, folder: Path) -> Path:
        """Save one {"filename", "subfolder", "type"} output image into `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / image["filename"]
        path.write_bytes(self.request("/view?" + urllib.parse.urlencode(image)))
        return path


def output_images(entry: dict, kind: str = "output") -> list[dict]:
    """Images of a /history entry saved by output nodes (kind "output"; previews are "temp")."""
    return [img for out in entry.get("outputs", {}).values() for img in out.get("images", [])
            if img.get("type") == kind]


def run_prompt(comfy: Comfy, prompt: dict, out: Path, on_progress=None) -> list[Path]:
    """Queue an API prompt and wait for it; download its output images into `out`."""
    entry = comfy.run(prompt, on_progress=on_progress)
    if (message := execution_error(entry)) is not None:
        raise WorkflowError(message)
    images = output_images(entry)
    if not images:
        raise WorkflowError("the prompt ran but saved no images (does it end in a Save Image node?)")
    return [comfy.download(img, out) for img in images]


def prepare(comfy: Comfy, workflow_path: Path, inputs: list[tuple[str | None, Path]] = (),
            settings: dict | None = None) -> dict:
    """The API prompt of a workflow file: --input files uploaded and put into their Load Image nodes, then
    the `settings` overrides."""
    prompt = to_api(json.loads(workflow_path.read_text()), comfy.object_info())
    for target, path in inputs:
        if not path.is_file():
            raise WorkflowError(f"--input {path}: no such file")
        node = image_loader(prompt, target)
        prompt[node]["inputs"]["image"] = comfy.upload(path)
    return override(prompt, settings or {})


def run_file(comfy: Comfy, workflow_path: Path, out: Path, settings: dict | None = None,
             on_progress=None, inputs: list[tuple[str | None, Path]] = ()) -> list[Path]:
    """Prepare one workflow file (inputs, overrides), run it and download its outputs."""
    return run_prompt(comfy, prepare(comfy, workflow_path, inputs, settings), out, on_progress)


def parse_setting(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def parse_input(text: str) -> tuple[str | None, Path]:
    """FILE, or NODE=FILE (NODE: a Load Image node's title or id)."""
    target, sep, file = text.rpartition("=")
    return (target if sep else None), Path(file)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workflow", type=Path)
    ap.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8188")
    ap.add_argument("--out", type=Path, default=Path("out"), help="folder for the output images (default: out)")
    ap.add_argument("--input", dest="inputs", type=parse_input, action="append", default=[], metavar="[NODE=]FILE",
                    help="upload a local image into the Load Image node (NODE: its title or id, when there are several)")
    ap.add_argument("--set", dest="settings", type=parse_setting, action="append", default=[],
                    metavar="NODE.INPUT=VALUE", help="override an input; NODE is a node id, title or class (JSON or text value)")
    ap.add_argument("--print-prompt", action="store_true", help="print the API prompt and exit")
    args = ap.parse_args(argv)
    comfy = Comfy(args.url)
    try:
        if args.print_prompt:
            print(json.dumps(prepare(comfy, args.workflow, args.inputs, dict(args.settings)), indent=2))
            return 0

        def progress(_, data):
            print(f"\r  node {data['node']}: step {data['value']}/{data['max']}", end="", file=sys.stderr, flush=True)

        paths = run_file(comfy, args.workflow, args.out, dict(args.settings), progress, args.inputs)
    except (WorkflowError, TimeoutError, asyncio.TimeoutError, OSError) as e:
        print(f"\n{args.workflow.name}: {e or type(e).__name__}", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
