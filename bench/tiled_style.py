"""Peak memory and seconds per step of style transfer (Optimize) at 1024, 2048 and 4096 px, tiled and untiled,
as JSON.

    python bench/tiled_style.py [--out bench/results/tiled_style.json] [--steps 3] [--steps-4096 2]
                                [--threads 2] [--limit-gb 12] [--configs 1024:0,2048:0,1024:512,...]

Setup: the shared partial VGG19 (conv1_1 ... conv3_4), content loss at relu3_1 (weight 1), Gram style loss
at relu1_1, relu2_1 and relu3_1 (weight 10) of starry_night.jpg, Adam with the engine's defaults; the
content image chelsea.png is resized to a square of the configuration's side N and is also the initial
image. A configuration `N:T` optimises N×N pixels with `TransferSettings(tile=T)` (0: untiled); `N:T:lagged`
also with `tile_statistics="lagged"` (one pass over the tiles per step instead of two).

Every configuration runs in a fresh child process, one at a time, with `torch.set_num_threads` threads, so
its peak RSS is its own: `resource.getrusage(RUSAGE_SELF).ru_maxrss` at the end of the child (the whole
process, loading included). The baseline is the RSS right after loading the net and the images. A thread
of the child samples its RSS every 10 ms and attributes it to the phase the run is in (prepare, geometry
probe, content and style targets, and per step the statistics pass, the tiles' forward+backward and the
Adam update; found by wrapping engine functions from outside, the engine is not changed), so the JSON says
where the memory goes. Beside it, `estimate_gb` is the engine's own estimate of the run (`engine/memory.py`:
what Optimize asks the host to make room for), and `estimate_to_increase` its ratio to the measured increase.
The parent polls the child's RSS and kills it above --limit-gb (recorded as failed,
with the RSS reached).

Timing: the step callback's stamps (it stops the run after the last step, so transfer()'s final
loss pass is not timed or run). The first step also builds the targets (and, tiled, probes the layers'
geometry), so it is reported on its own; s/step is the mean of steps 2..n, in wall seconds and in CPU
seconds of the child (CPU time is less sensitive to other processes' load; the load average at the start
and end of every configuration is recorded). Targets (issue): peak RSS ≤ 3 GB at 2048², ≤ 4 GB at 4096²
with tiles; time per pixel at 4096 (tiled) ≤ 1.3× that at 1024.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared_data import SHARED  # noqa: E402

WEIGHTS = SHARED / "weights" / "vgg19_partial_conv1_1-conv3_4.safetensors"
STYLE = SHARED / "testdata" / "images" / "starry_night.jpg"
CONTENT = SHARED / "testdata" / "images" / "chelsea.png"
CONTENT_LAYERS = ["relu3_1"]
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1"]
STYLE_WEIGHT = 10.0
DEFAULT_CONFIGS = "1024:0,2048:0,1024:512,2048:512,4096:512,4096:512:lagged,4096:1024:lagged"
TARGETS_GB = {2048: 3.0, 4096: 4.0}
TARGET_TIME_RATIO = 1.3
GB = 1e9


def rel(path: Path) -> str:
    """`path` relative to the repository root (no machine paths in the JSON)."""
    return os.path.relpath(path, ROOT)


def rss_kb(pid: str = "self", field: str = "VmRSS") -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def loadavg() -> list[float]:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


# ----------------------------------------------------------------------------------------------- child

class Phases:
    """The RSS of this process per phase: at its start and end, and the peak of 10 ms samples within it."""

    def __init__(self, interval: float = 0.01):
        self.interval, self.records, self.current = interval, [], None
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def start(self, name: str) -> None:
        self.set(name)
        self.thread.start()

    def set(self, name: str) -> None:
        now, rss = time.perf_counter(), rss_kb()
        with self.lock:
            if self.current is not None:
                rec = self.current
                rec["end_mb"] = rss / 1024
                rec["peak_mb"] = max(rec["peak_mb"], rss / 1024)
                rec["s"] = now - rec.pop("t0")
                self.records.append(rec)
                print(json.dumps({"event": "phase", **_rounded(rec)}), flush=True)  # survives a kill
            self.current = None if name is None else {"phase": name, "start_mb": rss / 1024,
                                                       "peak_mb": rss / 1024, "t0": now}

    def _sample(self) -> None:
        while not self.stop.wait(self.interval):
            rss = rss_kb()
            with self.lock:
                if self.current is not None and rss is not None:
                    self.current["peak_mb"] = max(self.current["peak_mb"], rss / 1024)

    def finish(self) -> list[dict]:
        self.set(None)
        self.stop.set()
        self.thread.join()
        return [_rounded(r) for r in self.records]


def _rounded(rec: dict) -> dict:
    return {k: (round(v, 3) if k == "s" else round(v)) if isinstance(v, float) else v for k, v in rec.items()}


def instrument(phases: Phases, steps: dict) -> None:
    """Wraps the engine functions transfer() calls, so that each phase of the run is named (from outside:
    the engine's code is not changed)."""
    import engine.tiles as tiles
    import engine.transfer as tr
    from engine.style import ContentObjective, StyleObjective

    def named(fn, name):
        def wrapper(*args, **kwargs):
            phases.set(name() if callable(name) else name)
            try:
                return fn(*args, **kwargs)
            finally:
                phases.set("transfer (between phases)")
        return wrapper

    tr._prepare = named(tr._prepare, "prepare (copy of the objective)")
    tr.tile_grid = named(tr.tile_grid, "tile_grid (geometry probe)")
    ContentObjective.retarget = named(ContentObjective.retarget, "content target")
    StyleObjective.retarget = named(StyleObjective.retarget, "style targets")
    tr.make_optimizer = named(tr.make_optimizer, "make_optimizer")

    def evaluating(make, label):
        def factory(*args, **kwargs):
            evaluate = make(*args, **kwargs)

            def wrapped(image):
                phases.set(f"step {steps['n'] + 1}: {label}")
                loss = evaluate(image)
                phases.set(f"step {steps['n'] + 1}: Adam update")
                return loss
            return wrapped
        return factory

    tr.whole_image = evaluating(tr.whole_image, "forward+backward (whole image)")
    tr.exact_tiles = evaluating(tr.exact_tiles, "statistics pass (no grad; lagged steps after the first: the tiles)")
    inner_sums = tiles.tiled_sums  # what exact_tiles calls for the whole-image statistics

    def stats_pass(*args, **kwargs):
        total = inner_sums(*args, **kwargs)
        phases.set(f"step {steps['n'] + 1}: tiles forward+backward")
        return total
    tiles.tiled_sums = stats_pass


def load_image(path: Path, size: int | None = None):
    import numpy as np
    import torch
    from PIL import Image

    from engine.pyramid import resize
    pixels = np.array(Image.open(path).convert("RGB"))
    image = torch.from_numpy(pixels).float().div(255).permute(2, 0, 1)[None].contiguous()
    return image if size is None else resize(image, (size, size)).clamp(0, 1).contiguous()


class Done(Exception):
    """Raised by the step callback after the last timed step: the run is over."""


def parse_config(text: str) -> tuple[int, int, str]:
    """SIZE:TILE[:STATISTICS] -> (size, tile, tile_statistics)."""
    size, tile, *rest = text.split(":")
    return int(size), int(tile), rest[0] if rest else "exact"


def child(size: int, tile: int, tile_statistics: str, steps_count: int, threads: int) -> None:
    phases = Phases()
    phases.start("import torch + engine")
    import torch
    torch.set_num_threads(threads)

    from engine.features import FeatureNet
    from engine.memory import estimate, transfer_footprint
    from engine.models import load_cnn
    from engine.style import ContentObjective, StyleObjective
    from engine.tiles import tile_grid
    from engine.transfer import LBFGS_HISTORY, TransferSettings, transfer

    steps = {"n": 0}
    instrument(phases, steps)
    phases.set("load net + images")
    cnn = load_cnn("vgg19", WEIGHTS)
    content = load_image(CONTENT, size)
    style = load_image(STYLE)
    objective = (ContentObjective(content, CONTENT_LAYERS, weight=1.0)
                 + StyleObjective([style], STYLE_LAYERS, weight=STYLE_WEIGHT, statistic="gram"))
    net = FeatureNet(cnn, objective.layers())
    gc.collect()
    phases.set("transfer (between phases)")
    baseline_kb = rss_kb()
    load_peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    stamps = []

    def tick(progress) -> None:
        stamps.append((time.perf_counter(), time.process_time()))
        steps["n"] += 1
        if steps["n"] == steps_count:
            raise Done  # skips transfer()'s final loss pass (a whole extra no-grad pass over the tiles)
        phases.set(f"step {steps['n'] + 1}: before evaluate")

    settings = TransferSettings(optimizer="adam", steps=steps_count, tile=tile, tile_statistics=tile_statistics)
    start = (time.perf_counter(), time.process_time())
    try:
        transfer(net, objective, content, settings, callback=tick)
    except Done:
        pass
    end = (time.perf_counter(), time.process_time())
    phases.set("after transfer")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    records = phases.finish()
    footprint = transfer_footprint("adam", False, LBFGS_HISTORY, tuple(CONTENT_LAYERS))  # what Optimize asks for
    estimated = estimate(net, (size, size), 1, tile, footprint)

    grid = tile_grid(net, tile) if tile else None
    tiled = grid is not None and not grid.fits(size, size)
    crops = [(t.crop[0].stop - t.crop[0].start, t.crop[1].stop - t.crop[1].start) for t in grid.tiles(size, size)] \
        if tiled else []
    wall = [b[0] - a[0] for a, b in zip(stamps, stamps[1:])]
    cpu = [b[1] - a[1] for a, b in zip(stamps, stamps[1:])]
    mp = size * size / 1e6
    result = {
        "size": size, "pixels": size * size, "megapixels": round(mp, 3), "tile": tile, "tiled": tiled,
        "tile_statistics": tile_statistics,
        "halo": grid.halo if grid else None, "tiles": len(crops) if tiled else 1,
        "largest_crop": list(max(crops, key=lambda c: c[0] * c[1])) if tiled else [size, size],
        "steps": steps_count, "threads": torch.get_num_threads(),
        "peak_rss_gb": round(peak_kb * 1024 / GB, 3),
        "baseline_rss_gb": round(baseline_kb * 1024 / GB, 3),
        "load_peak_rss_gb": round(load_peak_kb * 1024 / GB, 3),
        "run_increase_gb": round((peak_kb - baseline_kb) * 1024 / GB, 3),
        "estimate_gb": round(estimated / GB, 3),
        "estimate_to_increase": round(estimated / ((peak_kb - baseline_kb) * 1024), 3),
        "first_step_s": round(stamps[0][0] - start[0], 3),
        "first_step_cpu_s": round(stamps[0][1] - start[1], 3),
        "s_per_step": round(statistics.mean(wall), 3) if wall else None,
        "cpu_s_per_step": round(statistics.mean(cpu), 3) if cpu else None,
        "step_wall_s": [round(w, 3) for w in wall],
        "s_per_step_per_mp": round(statistics.mean(wall) / mp, 4) if wall else None,
        "cpu_s_per_step_per_mp": round(statistics.mean(cpu) / mp, 4) if cpu else None,
        "transfer_total_s": round(end[0] - start[0], 3),
        "phases": records,
    }
    print(json.dumps({"event": "result", **result}), flush=True)


# ---------------------------------------------------------------------------------------------- parent

def run_config(config: str, steps: int, args) -> dict:
    """One configuration in a fresh child process, killed above the memory limit or the time limit."""
    size, tile, _ = parse_config(config)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", config, "--steps", str(steps),
           "--threads", str(args.threads)]
    load_start, t0 = loadavg(), time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    errors: list[str] = []
    readers = [threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True),
               threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)]
    for r in readers:
        r.start()
    limit_kb, seen_kb, killed = args.limit_gb * GB / 1024, 0, None
    while proc.poll() is None:
        rss = rss_kb(str(proc.pid))
        seen_kb = max(seen_kb, rss or 0)
        if rss and rss > limit_kb:
            killed = f"RSS {rss * 1024 / GB:.2f} GB exceeded the limit of {args.limit_gb} GB"
        elif time.perf_counter() - t0 > args.timeout:
            killed = f"ran longer than {args.timeout} s"
        if killed:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.1)
    for r in readers:
        r.join(timeout=5)
    events = [json.loads(line) for line in lines if line.startswith("{")]
    result = next((e for e in events if e.get("event") == "result"), None)
    base = {"config": config, "wall_s": round(time.perf_counter() - t0, 1),
            "loadavg_start": load_start, "loadavg_end": loadavg()}
    if result is None:
        return {**base, "size": size, "tile": tile, "failed": killed or f"exit status {proc.returncode}",
                "max_polled_rss_gb": round(seen_kb * 1024 / GB, 3),
                "phases": [e for e in events if e.get("event") == "phase"],
                "stderr_tail": "".join(errors)[-2000:]}
    result.pop("event")
    for p in result["phases"]:
        p.pop("event", None)
    return {**base, **result, "max_polled_rss_gb": round(seen_kb * 1024 / GB, 3)}


def machine() -> dict:
    import torch
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), None)
    mem = total_memory_gb()
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "memory_gb": mem, "torch": torch.__version__,
            "python": sys.version.split()[0]}


def total_memory_gb() -> float | None:
    try:
        line = next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal:"))
        return round(int(line.split()[1]) * 1024 / GB, 1)
    except (OSError, StopIteration):
        return None


def summary(results: list[dict]) -> dict:
    ok = {r["config"]: r for r in results if "failed" not in r}

    def per_mp(config: str, key: str):
        return ok[config][key] if config in ok else None

    def label(config: str) -> str:
        size, tile, kind = parse_config(config)
        return f"{size} untiled" if not tile else f"{size} tile {tile}" + (f" {kind}" if kind != "exact" else "")

    ratios = {}
    for key, name in (("s_per_step_per_mp", "wall"), ("cpu_s_per_step_per_mp", "cpu")):
        for big_config in (c for c in ok if c.startswith("4096:")):
            for ref in ("1024:0", "1024:512"):
                big, small = per_mp(big_config, key), per_mp(ref, key)
                if big and small:
                    ratios[f"{name}: {label(big_config)} vs {label(ref)}"] = round(big / small, 3)
    targets = []
    for r in results:
        size = r["size"]
        if size not in TARGETS_GB:
            continue
        peak = r.get("peak_rss_gb", r.get("max_polled_rss_gb"))
        entry = {"target": f"peak RSS at {size}² ≤ {TARGETS_GB[size]} GB with tiles", "config": r["config"],
                 "peak_rss_gb": peak, "pass": "failed" not in r and peak <= TARGETS_GB[size]}
        if "failed" in r:
            entry["failed_run"] = r["failed"]
        if not r["tile"]:
            entry["note"] = "untiled: for comparison, the target is for tiled runs"
        targets.append(entry)
    for label, ratio in ratios.items():
        targets.append({"target": f"time per pixel at 4096 ≤ {TARGET_TIME_RATIO}× that at 1024",
                        "comparison": label, "ratio": ratio, "pass": ratio <= TARGET_TIME_RATIO})
    return {"time_per_pixel_ratios": ratios, "targets": targets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS,
                        help="comma-separated SIZE:TILE[:lagged] (TILE 0: untiled), run in this order")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--steps-4096", type=int, default=2, help="steps at sizes of 4096 px and more")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit-gb", type=float, default=12.0, help="kill a configuration above this RSS")
    parser.add_argument("--timeout", type=float, default=2400.0, help="kill a configuration after this many s")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*parse_config(args.child), args.steps, args.threads)

    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = loadavg()
    results = []
    for config in args.configs.split(","):
        steps = args.steps_4096 if parse_config(config)[0] >= 4096 else args.steps
        print(f"running {config} ({steps} steps) ...", file=sys.stderr, flush=True)
        results.append(run_config(config, steps, args))
        r = results[-1]
        print(f"  -> {r.get('failed') or (str(r['peak_rss_gb']) + ' GB, ' + str(r['s_per_step']) + ' s/step')}"
              f" in {r['wall_s']} s", file=sys.stderr, flush=True)
        text = json.dumps(document(args, started, load_start, results), indent=2, ensure_ascii=False)
        if args.out:  # after every configuration: a long run that is stopped keeps what it measured
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n")
    print(text)


def document(args, started: datetime.datetime, load_start: list[float], results: list[dict]) -> dict:
    """The JSON of the configurations run so far."""
    load_end = loadavg()
    loads = [v for r in results for v in (r["loadavg_start"][:1] + r["loadavg_end"][:1])] + load_start[:1] + load_end[:1]
    untiled_2048 = next((r for r in results if r["config"] == "2048:0" and "failed" not in r), None)
    skipped = {"config": "4096:0", "reason": "not run: untiled 4096² needs a forward+backward over 16.8 MP at once"}
    if untiled_2048:
        per_px = untiled_2048["run_increase_gb"] / untiled_2048["pixels"]
        skipped["estimated_peak_rss_gb"] = round(untiled_2048["baseline_rss_gb"] + per_px * 4096 ** 2, 1)
        skipped["estimate"] = "2048² untiled run increase per pixel × 4096² + baseline"
    return {
        "benchmark": "tiled_style_transfer",
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "setup": {
            "arch": "vgg19 (conv1_1..conv3_4)", "weights": WEIGHTS.name, "optimizer": "adam (engine defaults)",
            "content": f"{rel(CONTENT)} resized to N×N (also the initial image)", "style": rel(STYLE),
            "content_layers": {layer: 1.0 for layer in CONTENT_LAYERS},
            "style_layers": {"layers": STYLE_LAYERS, "statistic": "gram", "weight": STYLE_WEIGHT},
            "threads": args.threads, "steps": args.steps, "steps_4096": args.steps_4096,
            "memory": "peak RSS = ru_maxrss of the configuration's own child process (loading included); "
                      "baseline = RSS after loading the net and images",
            "timing": "first step = transfer() start to the first callback (targets, geometry probe, first "
                      "evaluation); s/step = mean of steps 2..n (wall); cpu_s = CPU seconds of the child; the "
                      "callback stops the run after the last step (transfer()'s final loss pass is not run)",
        },
        "loadavg_start": load_start, "loadavg_end": load_end,
        "load_note": ("load average above 2 during the run: other processes shared the 2 cores, so wall "
                      "seconds are inflated; compare the cpu_s figures" if max(loads, default=0) > 2 else
                      "load average stayed ≤ 2"),
        "results": results,
        "skipped": [skipped],
        **summary(results),
    }


if __name__ == "__main__":
    main()
