"""A print kept in host memory against one kept on the device: seconds per step and the device's peak memory
of the same tiled style transfer, the image (with the optimiser's state, targets and masks) on the device
or in host memory, the network on the device either way. JSON on stdout.

    python bench/offload.py [--device cuda] [--sizes 2048 4096] [--tile 1024] [--steps 3]

Setup as tiled_style.py: the shared partial VGG19, content relu3_1, Gram style relu1_1..relu3_1 (weight 10)
of starry_night.jpg on chelsea.png resized to N×N, Adam, `tile` px tiles with exact statistics. Each size
runs once unmeasured (cuDNN picks its algorithms and workspaces on first use), then kept on the device, then
kept in host memory. The first step builds the targets; s/step is the mean of the steps after it. On CUDA the peak is torch.cuda.max_memory_allocated beyond what was allocated before
the run, and `buffers_mb` what the run keeps image-sized (engine/memory.py's estimate of them), which the
host-memory run should not hold on the device. On the CPU both runs are on the CPU: the dry run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared_data import SHARED  # noqa: E402

from engine.features import FeatureNet  # noqa: E402
from engine.memory import parts, transfer_footprint  # noqa: E402
from engine.models import load_cnn  # noqa: E402
from engine.pictures import read_image  # noqa: E402
from engine.pyramid import resize  # noqa: E402
from engine.style import ContentObjective, StyleObjective  # noqa: E402
from engine.transfer import LBFGS_HISTORY, TransferSettings, transfer  # noqa: E402

WEIGHTS = SHARED / "weights" / "vgg19_partial_conv1_1-conv3_4.safetensors"
IMAGES = SHARED / "testdata" / "images"
CONTENT_LAYERS, STYLE_LAYERS = ["relu3_1"], ["relu1_1", "relu2_1", "relu3_1"]
MB = 2 ** 20


def run(net: FeatureNet, objective, content: torch.Tensor, settings: TransferSettings, device: torch.device) -> dict:
    """One run: seconds per step after the first, and on CUDA the peak allocated beyond the start."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        sync()
        torch.cuda.reset_peak_memory_stats(device)
    start = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    stamps = [time.perf_counter()]

    def tick(progress) -> None:
        sync()
        stamps.append(time.perf_counter())

    transfer(net, objective, content, settings, callback=tick)
    steps = [b - a for a, b in zip(stamps, stamps[1:])]
    result = {"first_step_s": round(steps[0], 3), "s_per_step": round(sum(steps[1:]) / len(steps[1:]), 3)}
    if device.type == "cuda":
        result["cuda_peak_mb"] = round((torch.cuda.max_memory_allocated(device) - start) / MB)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2: the first step also builds the targets")
    device, host = torch.device(args.device), torch.device("cpu")
    cnn = load_cnn("vgg19", WEIGHTS)
    cnn.module.to(device)
    net = FeatureNet(cnn, CONTENT_LAYERS + STYLE_LAYERS)
    style = read_image(IMAGES / "starry_night.jpg")
    settings = TransferSettings(steps=args.steps, tile=args.tile)
    footprint = transfer_footprint("adam", False, LBFGS_HISTORY, tuple(CONTENT_LAYERS))
    rows = []
    for size in args.sizes:
        content = resize(read_image(IMAGES / "chelsea.png"), (size, size)).clamp(0, 1)
        objective = (ContentObjective(content, CONTENT_LAYERS)
                     + StyleObjective([style], STYLE_LAYERS, weight=10.0))
        buffers, _ = parts(net, (size, size), 1, args.tile, footprint)
        row = {"size": size, "tile": args.tile, "buffers_mb": round(buffers / MB)}
        run(net, objective, content.to(device), dataclasses.replace(settings, steps=2), device)  # warm-up
        for where, storage in (("device", device), ("host", host)):
            row[where] = run(net, objective, content.to(storage), settings, device)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps({"bench": "offload", "device": str(device), "torch": torch.__version__,
                      "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                      "steps": args.steps, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
