"""How time grows with size, as JSON: seconds per Dream and Optimize step from 256 to 2048 px with the fitted
exponent of time against pixels (target ≤ 1.1), and a whole octave pyramid against its largest octave alone
(target ≤ 2.1×).

    python bench/scaling.py [--sizes 256 512 1024 2048] [--steps 3] [--pyramid-size 768] [--pyramid-steps 5]
                            [--device cpu] [--only dream|style]

Timing only, so the nets need no particular weights: Dream runs BVLC GoogLeNet's layout to
inception_4c/output with random weights, Optimize style_step.py's VGG19 head (content relu3_2, style
relu1_1, relu2_1, relu3_1, Adam; the shared partial weights when there). A step's time is the median
between consecutive step callbacks after the first (which allocates), beside the bare forward+backward of
the same layers (overhead.py's and style_step.py's floor): where the bare pass itself grows faster than the
pixels (caches), the engine cannot do better. On the CPU in this process's CPU seconds, on CUDA in wall
seconds. The pyramid is Dream's classic 4 octaves × 1.4 with equal steps per octave
against the same steps at the full size only: 1.90× if time were exactly linear in pixels.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from overhead import bare_step, random_cnn  # noqa: E402
from style_step import bare_steps  # noqa: E402
from style_step import setup as style_setup  # noqa: E402

from engine.dream import DreamSettings, dream  # noqa: E402
from engine.features import FeatureNet  # noqa: E402
from engine.objectives import ActivationL2  # noqa: E402
from engine.optimize import Progress  # noqa: E402
from engine.pyramid import Pyramid  # noqa: E402
from engine.transfer import TransferSettings, transfer  # noqa: E402

DREAM_LAYER = "inception_4c/output"
PYRAMID = Pyramid(4, 1.4)
Go = Callable[[int, Pyramid, Callable[[Progress], None]], None]  # (steps, pyramid, callback): one timed run
Bare = Callable[[], None]  # one bare forward+backward of the same layers (style_step.py's and overhead.py's floor)
Prepare = Callable[[int], tuple[Go, Bare]]  # size -> the run and the bare step at that size, inputs made


class Clock:
    """CPU seconds of this process on the CPU, wall seconds on CUDA (synchronised)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return time.perf_counter()
        return time.process_time()


def dream_run(device: torch.device) -> Prepare:
    cnn = random_cnn("googlenet_caffe")
    cnn.module.to(device)
    net, objective = FeatureNet(cnn, [DREAM_LAYER]), ActivationL2(DREAM_LAYER)

    def prepare(size: int) -> tuple[Go, Bare]:
        image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        return (lambda steps, pyramid, callback: dream(net, objective, image, DreamSettings(steps=steps), pyramid,
                                                       callback),
                lambda: bare_step(net, DREAM_LAYER, image))
    return prepare


def style_run(device: torch.device) -> Prepare:
    def prepare(size: int) -> tuple[Go, Bare]:
        net, objective, content, _ = style_setup(size, "gram", device)
        return (lambda steps, pyramid, callback: transfer(net, objective, content, TransferSettings(steps=steps),
                                                          pyramid, callback),
                lambda: bare_steps(net, content, 1, lambda: None))
    return prepare


def step_seconds(prepare: Prepare, size: int, steps: int, clock: Clock) -> tuple[float, float]:
    """The median time of a step at `size` after the first, and of a bare step (one untimed first)."""
    go, bare = prepare(size)
    stamps: list[float] = []
    go(steps, Pyramid(1), lambda p: stamps.append(clock()))
    floor = []
    for _ in range(steps):
        start = clock()
        bare()
        floor.append(clock() - start)
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:])), statistics.median(floor[1:])


def run_seconds(prepare: Prepare, size: int, steps: int, pyramid: Pyramid, clock: Clock) -> float:
    """The time of a whole run (the targets made at each size included)."""
    go, _ = prepare(size)
    start = clock()
    go(steps, pyramid, lambda p: None)
    return clock() - start


def exponent(sizes: list[int], seconds: list[float]) -> float:
    """The slope of log time against log pixels (pixels = size²)."""
    return float(np.polyfit(np.log(np.square(sizes, dtype=float)), np.log(seconds), 1)[0])


def between(sizes: list[int], seconds: list[float]) -> dict[str, float]:
    """The exponent between each pair of neighbouring sizes."""
    return {f"{a}-{b}": round(math.log(tb / ta) / math.log((b / a) ** 2), 3)
            for (a, ta), (b, tb) in zip(zip(sizes, seconds), zip(sizes[1:], seconds[1:]))}


def measure(name: str, prepare: Prepare, args, clock: Clock) -> dict:
    seconds, bare = [], []
    for size in args.sizes:
        step, floor = step_seconds(prepare, size, args.steps, clock)
        seconds.append(step)
        bare.append(floor)
        print(f"{name}: {size} px {step:.3f} s/step, bare {floor:.3f}", file=sys.stderr, flush=True)
    run_seconds(prepare, args.pyramid_size, 1, PYRAMID, clock)  # warm-up: the pyramid's shapes once
    largest = run_seconds(prepare, args.pyramid_size, args.pyramid_steps, Pyramid(1), clock)
    whole = run_seconds(prepare, args.pyramid_size, args.pyramid_steps, PYRAMID, clock)
    print(f"{name}: pyramid {whole:.1f} s, largest octave {largest:.1f} s", file=sys.stderr, flush=True)
    return {
        "step_s": dict(zip(map(str, args.sizes), (round(s, 4) for s in seconds))),
        "bare_step_s": dict(zip(map(str, args.sizes), (round(s, 4) for s in bare))),
        "ratio_to_bare": dict(zip(map(str, args.sizes), (round(s / b, 3) for s, b in zip(seconds, bare)))),
        "exponent": round(exponent(args.sizes, seconds), 3), "bare_exponent": round(exponent(args.sizes, bare), 3),
        "exponent_between": between(args.sizes, seconds), "bare_exponent_between": between(args.sizes, bare),
        "target_exponent": 1.1,
        "pyramid": {"octaves": PYRAMID.octaves, "scale": PYRAMID.scale, "size": args.pyramid_size,
                    "steps_per_octave": args.pyramid_steps, "whole_s": round(whole, 2),
                    "largest_octave_s": round(largest, 2), "ratio": round(whole / largest, 3),
                    "linear_ratio": round(sum(PYRAMID.scale ** (-2 * k) for k in range(PYRAMID.octaves)), 3),
                    "target_ratio": 2.1},
    }


def allocator() -> str:
    """Which malloc serves the CPU's tensors: a preloaded one (tcmalloc, jemalloc) or the C library's."""
    preloaded = os.environ.get("LD_PRELOAD", "").replace(":", " ").split()
    return " ".join(os.path.basename(p) for p in preloaded) or "the C library's malloc"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--steps", type=int, default=3, help="steps per size (the first is not timed)")
    parser.add_argument("--pyramid-size", type=int, default=768)
    parser.add_argument("--pyramid-steps", type=int, default=5)
    parser.add_argument("--only", choices=["dream", "style"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2: the first step is not timed")
    device, results = torch.device(args.device), {}
    clock = Clock(device)
    with torch.inference_mode(False), torch.enable_grad():
        if args.only in (None, "dream"):
            results["dream"] = {"net": f"googlenet_caffe to {DREAM_LAYER}, random weights",
                                **measure("dream", dream_run(device), args, clock)}
        if args.only in (None, "style"):
            results["style"] = {"net": "vgg19 head (style_step.py), Adam", **measure("style", style_run(device), args,
                                                                                     clock)}
    print(json.dumps({
        "benchmark": "scaling", "device": str(device), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "clock": "wall" if clock.cuda else "cpu", "allocator": allocator(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **results,
    }, indent=1))


if __name__ == "__main__":
    main()
