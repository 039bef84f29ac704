#!/usr/bin/env python3
"""Soak: 50 mixed prompts (Dream, style transfer, Dream Zoom; sizes 64 to 128 px) queued one after another to a
real ComfyUI server with the pack; the server's RSS after each, and its growth from prompt 10 to 50.

    python bench/soak.py [--prompts 50] [--out bench/results/soak.json]

Run it with the host's Python (scripts/setup_host.sh; $REVERIE_HOST picks the host). Every prompt has its own
seed, so nothing is served from ComfyUI's cache; the CNN node's inputs never change, so the loaded network is
reused across prompts. Ends with /free (unload models), then reports the RSS once more. Target: growth from
prompt 10 to the last < 5 %. Writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "integration"), str(ROOT / "scripts"), str(ROOT)]

import psutil  # noqa: E402  (ComfyUI's own dependency)
from PIL import Image, ImageDraw  # noqa: E402

from graphs import node  # noqa: E402
from host import Host  # noqa: E402
from run_workflow import Comfy, execution_error  # noqa: E402

PREFIX = "reverie_soak_"
SIZES = (64, 96, 128)
KINDS = ("dream", "style", "zoom")


def make_input(folder: Path, width: int, height: int, seed: int) -> str:
    """A small synthetic picture (gradient and ellipses) in the server's input folder."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for i in range(4):
        box = [width * i // 5, height * i // 6, width * (i + 2) // 5, height * (i + 3) // 6]
        draw.ellipse(box, fill=((60 * i + 40 * seed) % 256, 200 - 40 * i, 120))
    name = f"{PREFIX}{seed}_{width}x{height}.png"
    image.save(folder / name)
    return name


def graph(info: dict, kind: str, image: str, style: str, seed: int) -> dict:
    """An API prompt of `kind` on the input `image` that saves its result."""
    cnn = {"2": node(info, "ReverieLoadCNN")}
    save = lambda source: node(info, "SaveImage", images=[source, 0], filename_prefix=f"{PREFIX}{kind}")
    load = node(info, "LoadImage", image=image)
    if kind == "dream":
        return {"1": load, **cnn, "3": node(info, "ReverieSelectLayers", cnn=["2", 0], layers="stage5: 1"),
                "4": node(info, "ReverieDream", image=["1", 0], layers=["3", 0], steps=3, seed=seed),
                "5": save("4")}
    if kind == "zoom":
        return {"1": load, **cnn, "3": node(info, "ReverieSelectLayers", cnn=["2", 0], layers="stage5: 1"),
                "4": node(info, "ReverieDreamZoom", image=["1", 0], layers=["3", 0], frames=3, steps=2, seed=seed),
                "5": save("4")}
    return {"1": load, "6": node(info, "LoadImage", image=style), **cnn,
            "3": node(info, "ReverieSelectLayers", cnn=["2", 0], layers="blocks.5"),
            "4": node(info, "ReverieSelectLayers", cnn=["2", 0], layers="stem, stage1, stage2"),
            "7": node(info, "ReverieContentLoss", layers=["3", 0], content=["1", 0]),
            "8": node(info, "ReverieStyleLoss", layers=["4", 0], style=["6", 0], objective=["7", 0]),
            "9": node(info, "ReverieOptimize", objective=["8", 0], size=0, steps=4, seed=seed),
            "5": save("9")}


def write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def summary(rows: list[dict], started: float, freed: float | None) -> dict:
    """The JSON result so far: every row, and the RSS growth from prompt 10 (or the first) to the last."""
    tenth, last = rows[min(9, len(rows) - 1)]["rss_mb"], rows[-1]["rss_mb"]
    growth = (last - tenth) / tenth
    return {
        "benchmark": "soak", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                    "loadavg": [round(x, 2) for x in os.getloadavg()]},
        "setup": "a real ComfyUI server (--cpu); prompts cycle dream / style / zoom, sizes 64, 96, 128 px wide (4:3), "
                 "the default EfficientNet-Lite0; every prompt its own seed and input; RSS of the server process "
                 "after each prompt",
        "prompts": len(rows), "failed": sum(not r["ok"] for r in rows), "seconds": round(time.monotonic() - started, 1),
        "rss_mb_after_10": tenth, "rss_mb_after_last": last, "growth_10_to_last": round(growth, 4),
        "target": "< 0.05", "passes": growth < 0.05 and all(r["ok"] for r in rows),
        "rss_mb_after_free": freed, "rows": rows,
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=50)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    args = ap.parse_args(argv)
    host = Host()
    made: list[Path] = []
    with host.start(Path(os.environ.get("TMPDIR", "/tmp")) / "reverie_soak_server.log", timeout=900):
        comfy, server = Comfy(host.url), psutil.Process(host.pid)
        info = comfy.object_info()
        inputs = host.base / "input"
        style = make_input(inputs, 64, 64, 99)
        made.append(inputs / style)
        rows, started = [], time.monotonic()
        for i in range(args.prompts):
            kind, side = KINDS[i % len(KINDS)], SIZES[(i // len(KINDS)) % len(SIZES)]
            image = make_input(inputs, side, side * 3 // 4, i)
            made.append(inputs / image)
            t = time.monotonic()
            entry = comfy.run(graph(info, kind, image, style, seed=i), timeout=900)
            error = execution_error(entry)
            rows.append({"prompt": i + 1, "kind": kind, "size": [side, side * 3 // 4], "ok": error is None,
                         "error": error, "s": round(time.monotonic() - t, 2),
                         "rss_mb": round(server.memory_info().rss / 2 ** 20, 1)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            write(args.out, summary(rows, started, None))  # so far, in case the run is cut short
        urllib.request.urlopen(urllib.request.Request(host.url + "/free", json.dumps({"unload_models": True}).encode(),
                                                      {"Content-Type": "application/json"})).close()
        time.sleep(2)
        freed = round(server.memory_info().rss / 2 ** 20, 1)
    for path in made + list((host.base / "output").glob(PREFIX + "*")):
        path.unlink(missing_ok=True)
    result = summary(rows, started, freed)
    write(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    return 0 if result["passes"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
