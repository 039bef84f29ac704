"""Seconds per Dream step against a bare forward+backward of the same truncated net, as JSON.

    python bench/overhead.py [--arch googlenet_caffe] [--layer inception_4c/output] [--size 512] [--steps 5]

Weights do not change the timing, so the net is random-initialised (no file needed). Target: ratio <= 1.10.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.dream import DreamSettings, dream  # noqa: E402
from engine.features import FeatureNet  # noqa: E402
from engine.models import get_spec, load_cnn  # noqa: E402
from engine.objectives import ActivationL2  # noqa: E402


def random_cnn(arch: str):
    spec = get_spec(arch)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.safetensors"
        save_file({k: v.contiguous() for k, v in spec.build().state_dict().items()}, path)
        return load_cnn(spec, path)


def bare_step(net: FeatureNet, layer: str, x: torch.Tensor) -> None:
    """The floor: preprocessing, the truncated forward, one loss and its backward to the pixels."""
    x = x.detach().requires_grad_(True)
    h = net.cnn.preprocess(x)
    for stage in net.stages:
        h = stage(h)
    h.pow(2).mean().backward()


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="googlenet_caffe")
    parser.add_argument("--layer", default="inception_4c/output")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    cnn = random_cnn(args.arch)
    cnn.module.to(device)
    net = FeatureNet(cnn, [args.layer])
    x = torch.rand(1, 3, args.size, args.size, device=device)
    objective = ActivationL2(args.layer)
    settings = DreamSettings(steps=args.steps)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def run_dream():
        dream(net, objective, x, settings)
        sync()

    def run_bare():
        for _ in range(args.steps):
            bare_step(net, args.layer, x)
        sync()

    run_bare(), run_dream()  # warm-up
    bare = timed(run_bare, args.repeats) / args.steps
    ours = timed(run_dream, args.repeats) / args.steps
    print(json.dumps({
        "benchmark": "dream_step_overhead", "arch": args.arch, "layer": args.layer, "size": args.size,
        "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "steps": args.steps, "repeats": args.repeats,
        "dream_step_s": round(ours, 4), "bare_step_s": round(bare, 4), "ratio": round(ours / bare, 3),
        "target_ratio": 1.10,
    }, indent=2))


if __name__ == "__main__":
    main()
