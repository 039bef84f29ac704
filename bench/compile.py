"""Whether torch.compile pays: a bare forward+backward of each net's truncated stages, eager against compiled,
as JSON.

    python bench/compile.py [--size 512] [--steps 5] [--device cpu]

The stages are what a Dream or Optimize step spends nearly all its time in (bench/overhead.py,
bench/style_step.py), so a step can gain at most what they gain. Timing only: random weights. Reported per
net: the compile time (the first compiled call) and the median step of each, in CPU seconds of this process
on the CPU (wall on CUDA).
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from overhead import random_cnn  # noqa: E402

from engine.features import FeatureNet  # noqa: E402

NETS = {"googlenet_caffe": "inception_4c/output", "vgg19": "relu3_2"}


def clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time()


def step_times(body: nn.Module, preprocess, x: torch.Tensor, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        start = clock(x.device)
        leaf = x.detach().requires_grad_(True)
        body(preprocess(leaf)).pow(2).mean().backward()
        times.append(clock(x.device) - start)
    return times


def measure(arch: str, layer: str, args, device: torch.device) -> dict:
    cnn = random_cnn(arch)
    cnn.module.to(device)
    net = FeatureNet(cnn, [layer])
    body = nn.Sequential(*net.stages)
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(device)
    eager = step_times(body, cnn.preprocess, x, args.steps + 1)[1:]
    compiled_body = torch.compile(body)
    start = clock(device)
    step_times(compiled_body, cnn.preprocess, x, 1)
    compile_s = clock(device) - start
    compiled = step_times(compiled_body, cnn.preprocess, x, args.steps)
    e, c = statistics.median(eager), statistics.median(compiled)
    return {"layer": layer, "eager_step_s": round(e, 4), "compiled_step_s": round(c, 4),
            "speedup": round(e / c, 3), "compile_s": round(compile_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    with torch.inference_mode(False), torch.enable_grad():
        results = {arch: measure(arch, layer, args, device) for arch, layer in NETS.items()}
    print(json.dumps({"benchmark": "compile", "device": str(device), "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "size": args.size,
                      "clock": "wall" if device.type == "cuda" else "cpu",
                      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                      **results}, indent=1))


if __name__ == "__main__":
    main()
