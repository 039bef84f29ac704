"""Seconds per style-transfer (Optimize) step against a bare forward+backward of the same VGG19, and
peak memory for Adam and L-BFGS, as JSON.

    python bench/style_step.py [--size 512] [--steps 4] [--repeats 3] [--statistic gram]

Uses the shared partial VGG19 (conv1_1 ... conv3_4) when ../shared is there, else random weights for the
same layers (weights do not change the timing). Content loss at relu3_2, style at relu1_1, relu2_1 and
relu3_1; the bare baseline runs the same layers. On the CPU a step is timed in CPU seconds of
this process (wall seconds are printed too), so other processes' load does not count: run with
OMP_NUM_THREADS=1 for the cleanest figure; on CUDA in wall seconds. Baseline and transfer alternate in one
process. Memory is the peak RSS of separate child processes (`resource.getrusage`/VmHWM, the only
honest peak for torch on the CPU), and on CUDA torch.cuda's peaks (allocated and reserved), each beside the
engine's own estimate of the run (`engine/memory.py`). Target: ratio <= 1.10. `loop_ratio` runs the
baseline's own loss through transfer() (Adam): the Optimize loop's overhead alone, without the cost of
the style statistics.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared_data import SHARED  # noqa: E402

from engine.features import FeatureNet  # noqa: E402
from engine.memory import estimate, transfer_footprint  # noqa: E402
from engine.models import get_spec, load_cnn  # noqa: E402
from engine.objectives import Objective  # noqa: E402
from engine.style import ContentObjective, StyleObjective  # noqa: E402
from engine.transfer import LBFGS_HISTORY, TransferSettings, transfer  # noqa: E402

PARTIAL = SHARED / "weights" / "vgg19_partial_conv1_1-conv3_4.safetensors"
STARRY = SHARED / "testdata" / "images" / "starry_night.jpg"
CONTENT_LAYERS = ["relu3_2"]
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1"]  # Gatys et al.'s, as far as the partial VGG19 goes


def vgg19_head() -> tuple[object, str]:
    """VGG19 up to relu3_4: the shared partial file, or the same tensors randomly initialised."""
    if PARTIAL.is_file():
        return load_cnn("vgg19", PARTIAL, "caffe"), PARTIAL.name
    spec = get_spec("vgg19")
    with torch.device("meta"):
        keys = [k for k in spec.build().state_dict() if k.startswith("features.") and int(k.split(".")[1]) < 18]
    state = {k: v.contiguous() for k, v in spec.build().state_dict().items() if k in keys}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vgg19_random_head.safetensors"
        save_file(state, path)
        return load_cnn("vgg19", path, "caffe"), "random init"


def setup(size: int, statistic: str, device: torch.device):
    cnn, weights = vgg19_head()
    cnn.module.to(device)
    g = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, size, size, generator=g).to(device)
    style = _style_image(g).to(device)
    objective = (ContentObjective(content, CONTENT_LAYERS)
                 + StyleObjective([style], STYLE_LAYERS, weight=10, statistic=statistic))
    return FeatureNet(cnn, objective.layers()), objective, content, weights


def _style_image(g: torch.Generator) -> torch.Tensor:
    if STARRY.is_file():
        import numpy as np
        from PIL import Image
        pixels = np.array(Image.open(STARRY).convert("RGB"))
        return torch.from_numpy(pixels).float().div(255).permute(2, 0, 1)[None].contiguous()
    return torch.rand(1, 3, 480, 600, generator=g)


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def bare_steps(net: FeatureNet, x: torch.Tensor, steps: int, sync) -> list[tuple[float, float]]:
    """The floor: the truncated forward to the same layers, a trivial loss on each, backward to the pixels.
    (wall, cpu) seconds per step."""
    times = []
    for _ in range(steps):
        start = clocks()
        leaf = x.detach().requires_grad_(True)
        sum(a.mean() for a in net(leaf).values()).backward()
        sync()
        times.append(tuple(b - a for a, b in zip(start, clocks())))
    return times


class LayerMeans(Objective):
    """The baseline's loss as an objective: transfer() with it costs the Optimize loop's own overhead only."""

    def __init__(self, layers: set[str]):
        super().__init__()
        self.names = set(layers)

    def layers(self) -> set[str]:
        return self.names

    def forward(self, feats, image):
        return sum(a.flatten(1).mean(1) for a in feats.values())


def transfer_steps(net, objective, x, optimizer: str, steps: int, sync) -> list[tuple[float, float]]:
    """(wall, cpu) seconds between consecutive step callbacks: one whole step of the Optimize loop each."""
    stamps = []

    def tick(_):
        sync()
        stamps.append(clocks())
    transfer(net, objective, x, TransferSettings(optimizer=optimizer, steps=steps + 1), callback=tick)
    return [tuple(b - a for a, b in zip(s, t)) for s, t in zip(stamps, stamps[1:])]


def peak_memory(mode: str, args) -> dict:
    """Runs `mode` in a fresh process and returns its peak memory."""
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--size", str(args.size), "--steps",
                          str(args.steps), "--statistic", args.statistic, "--device", args.device],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def _status_mb(field: str) -> float | None:
    """A memory figure of /proc/self/status (Linux) in MiB."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith(field + ":")), None)


def child(mode: str, args, device: torch.device) -> None:
    """One mode in this fresh process. Loading the net peaks higher than a step may, so on Linux the
    high-water mark is reset after loading (`/proc/self/clear_refs` 5) to measure the run alone."""
    net, objective, x, _ = setup(args.size, args.statistic, device)
    before = _status_mb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if mode == "bare":
        bare_steps(net, x, args.steps, lambda: None)
    else:
        transfer_steps(net, objective, x, mode, args.steps, lambda: None)
    peak = (_status_mb("VmHWM") if reset else None) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"peak_rss_mb": round(peak), "rss_before_run_mb": round(before or 0),
              "run_increase_mb": round(peak - (before or 0)), "peak_reset_after_load": reset}
    if mode != "bare":  # the engine's estimate (engine/memory.py: what Optimize asks the host for), beside
        footprint = transfer_footprint(mode, False, LBFGS_HISTORY, tuple(CONTENT_LAYERS))
        result["estimate_mb"] = round(estimate(net, (args.size, args.size), 1, 0, footprint) / 2**20)
    if device.type == "cuda":
        result["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
        result["cuda_reserved_peak_mb"] = round(torch.cuda.max_memory_reserved(device) / 2**20)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--statistic", default="gram", choices=["gram", "mean_cov"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.child:
        return child(args.child, args, device)

    net, objective, x, weights = setup(args.size, args.statistic, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    bare_steps(net, x, 1, sync)  # warm-up
    times: dict[str, list[tuple[float, float]]] = {"bare": [], "loop": [], "adam": [], "lbfgs": []}
    for _ in range(args.repeats):  # interleaved, so drifting load hits every mode alike
        times["bare"] += bare_steps(net, x, args.steps, sync)
        times["loop"] += transfer_steps(net, LayerMeans(objective.layers()), x, "adam", args.steps, sync)
        times["adam"] += transfer_steps(net, objective, x, "adam", args.steps, sync)
        times["lbfgs"] += transfer_steps(net, objective, x, "lbfgs", args.steps, sync)
    clock = 0 if device.type == "cuda" else 1
    step = {k: statistics.median(t[clock] for t in v) for k, v in times.items()}
    wall = {k: round(statistics.median(t[0] for t in v), 4) for k, v in times.items()}
    print(json.dumps({
        "benchmark": "style_step_overhead", "arch": "vgg19 (conv1_1..relu3_4)", "weights": weights,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "size": args.size, "statistic": args.statistic, "content_layers": CONTENT_LAYERS,
        "style_layers": STYLE_LAYERS, "device": str(device), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "steps": args.steps, "repeats": args.repeats,
        "clock": "wall" if clock == 0 else "cpu", "wall_step_s": wall,
        "bare_step_s": round(step["bare"], 4),
        "loop_step_s": round(step["loop"], 4), "loop_ratio": round(step["loop"] / step["bare"], 3),
        "adam_step_s": round(step["adam"], 4), "adam_ratio": round(step["adam"] / step["bare"], 3),
        "lbfgs_step_s": round(step["lbfgs"], 4), "lbfgs_ratio": round(step["lbfgs"] / step["bare"], 3),
        "target_ratio": 1.10,
        "memory": {mode: peak_memory(mode, args) for mode in ("bare", "adam", "lbfgs")},
    }, indent=2))


if __name__ == "__main__":
    main()
