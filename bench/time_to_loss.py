"""Time to a finished image: the classic recipes against Reverie's engine, at equal quality, as JSON.

    python bench/time_to_loss.py [--recipe neural_style|deepdream_notebook|all] [--size 256]
                                 [--iterations 100 | --full] [--net partial|vgg19-random] [--device cpu]
                                 [--optimizer lbfgs|adam] [--octaves 3] [--octave-scale 2] [--coarse-steps 0]
                                 [--reverie-steps 40] [--points 20] [--key NAME]

Quality is the baseline recipe's own measure, taken on each *delivered* image (clamped to [0, 1] and
quantised to 8 bits, as a user gets it): for `neural_style` its loss (its layers, weights and Gram
statistics, bench/baselines/neural_style.py); for `deepdream_notebook` the mean squared activation of
its end layer (higher is better). Baseline and Reverie run alternately in one process (a few steps
of one, then of the other, in proportion to their progress), so a drifting machine load hits both
alike; each side's clock runs only during its own steps (snapshots and scoring are not timed). On
the CPU the clock is this process's CPU seconds (other processes' load does not count), on CUDA
wall seconds. Reported per recipe: the time Reverie needs to reach the loss the baseline's delivered
image has at 25 %, 50 % and 100 % of its run, and at its best delivered intermediate, as speedups
(baseline time / Reverie time), and whether Reverie delivers the baseline's final *internal* loss
(which no delivered image of the baseline has) within the baseline's run time.

Weights: ../shared's partial VGG19 covers relu1_1 ... relu3_1, so the quality runs use content relu3_1
and style relu1_1, relu2_1, relu3_1 (the recipe's weights 5 and 100, TV 1e-3). `--net vgg19-random`
runs the recipe's own layers (content relu4_2, style relu1_1 ... relu5_1) on a random-init full VGG19:
its losses mean nothing, use it for time per iteration only. The dream runs on BVLC GoogLeNet.
Results are merged into bench/results/time_to_loss.json under the recipe's name (the random-net run
under `<recipe>_vgg19_random_timing`), or under `--key` for a run of one recipe with other settings.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared_data import SHARED  # noqa: E402

from baselines import delivered  # noqa: E402
from baselines.deepdream_notebook import DeepDreamNotebook  # noqa: E402
from baselines.deepdream_notebook import Recipe as DreamRecipe  # noqa: E402
from baselines.neural_style import NeuralStyle  # noqa: E402
from baselines.neural_style import Recipe as StyleRecipe  # noqa: E402
from engine.dream import DreamSettings, dream  # noqa: E402
from engine.features import FeatureNet  # noqa: E402
from engine.models import CNN, get_spec, load_cnn  # noqa: E402
from engine.objectives import ActivationL2, Objective  # noqa: E402
from engine.optimize import Progress  # noqa: E402
from engine.pyramid import Pyramid, resize  # noqa: E402
from engine.style import ContentObjective, StyleObjective  # noqa: E402
from engine.transfer import TransferSettings, transfer  # noqa: E402

PARTIAL_VGG = SHARED / "weights" / "vgg19_partial_conv1_1-conv3_4.safetensors"
GOOGLENET = SHARED / "weights" / "googlenet_caffe.safetensors"
IMAGES = SHARED / "testdata" / "images"
RESULTS = ROOT / "bench" / "results" / "time_to_loss.json"
FRACTIONS = (0.25, 0.5, 1.0)


# --- clocks and snapshots --------------------------------------------------------------------------

class Clock:
    """Seconds a side has run: wall and CPU (this process), counted only between start and stop."""

    def __init__(self, device: torch.device):
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.wall = self.cpu = 0.0
        self._started: tuple[float, float] | None = None

    def start(self) -> None:
        self.sync()
        self._started = (time.perf_counter(), time.process_time())

    def stop(self) -> None:
        self.sync()
        wall, cpu = self._started
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        self._started = None


@dataclass
class Point:
    step: int
    wall: float
    cpu: float
    image: torch.Tensor  # delivered (uint8)
    internal: float | None = None  # the loss the optimiser saw, where it reports one
    quality: float | None = None


@dataclass
class Side:
    name: str
    steps: int
    clock: Clock
    points: list[Point] = field(default_factory=list)

    def snapshot(self, step: int, image: torch.Tensor, internal: float | None = None) -> None:
        self.points.append(Point(step, self.clock.wall, self.clock.cpu, delivered(image), internal))


def due(step: int, steps: int, every: int) -> bool:
    """Whether to keep a snapshot: every `every` steps, the last, and the steps at FRACTIONS of the run."""
    return step % every == 0 or step == steps or any(step == round(f * steps) for f in FRACTIONS)


def alternate(baseline: Iterator, base: Side, on_base: Callable[[Side, object, int], None],
              run_reverie: Callable[[Callable[[float], None]], None], rev: Side) -> None:
    """Runs Reverie (which calls `tick(fraction done)` after each of its steps) and, from its ticks, the
    baseline's steps, keeping the two at the same fraction of their runs; then the baseline's rest."""
    done = [0]

    def advance(fraction: float) -> None:
        while done[0] < base.steps and done[0] < fraction * base.steps:
            base.clock.start()
            item = next(baseline)
            base.clock.stop()
            done[0] += 1
            on_base(base, item, done[0])

    def tick(fraction: float) -> None:
        rev.clock.stop()
        advance(fraction)
        rev.clock.start()

    rev.clock.start()
    run_reverie(tick)
    rev.clock.stop()
    advance(1.0)


# --- metrics ---------------------------------------------------------------------------------------

def first_reaching(points: list[Point], target: float, lower_is_better: bool, clock: str) -> float | None:
    for p in points:
        if (p.quality <= target) if lower_is_better else (p.quality >= target):
            return getattr(p, clock)
    return None


def compare(base: Side, rev: Side, lower_is_better: bool, clock: str) -> dict:
    """Speedups of Reverie to the baseline's delivered quality at FRACTIONS of its run and at its best."""
    by_step = {p.step: p for p in base.points}
    marks = {f"{round(f * 100)}%": by_step[round(f * base.steps)] for f in FRACTIONS}
    best = (min if lower_is_better else max)(base.points, key=lambda p: p.quality)
    marks["best"] = best
    out = {}
    for name, p in marks.items():
        t = first_reaching(rev.points, p.quality, lower_is_better, clock)
        out[name] = {"baseline_step": p.step, "baseline_s": round(getattr(p, clock), 2),
                     "quality": round(p.quality, 6), "reverie_s": None if t is None else round(t, 2),
                     "speedup": None if t is None or t == 0 else round(getattr(p, clock) / t, 2)}
    end = base.points[-1]
    within = [p.quality for p in rev.points if getattr(p, clock) <= getattr(end, clock)]
    rev_best = (min if lower_is_better else max)(within) if within else None
    out["reverie_best_within_baseline_time"] = None if rev_best is None else round(rev_best, 6)
    if end.internal is not None:
        out["baseline_final_internal_loss"] = round(end.internal, 6)
        out["reverie_reaches_internal_within_baseline_time"] = rev_best is not None and rev_best <= end.internal
        t = first_reaching(rev.points, end.internal, lower_is_better, clock)
        out["reverie_s_to_internal"] = None if t is None else round(t, 2)
    return out


def curve(side: Side, clock: str) -> list[list[float]]:
    return [[p.step, round(getattr(p, clock), 3), round(p.quality, 6)] + ([round(p.internal, 6)]
            if p.internal is not None else []) for p in side.points]


def measured(base: Side, rev: Side, measure: Callable[[torch.Tensor], float], lower_is_better: bool, clock: str,
             columns: list[str]) -> dict:
    """Scores every snapshot with `measure` (an RGB image in [0, 1]) and returns the timings, the comparison
    and both curves."""
    for side in (base, rev):
        for p in side.points:
            p.quality = measure(p.image.float() / 255)
    return {
        "seconds_per_step": {"baseline": round(getattr(base.clock, clock) / base.steps, 4),
                             "reverie": round(getattr(rev.clock, clock) / rev.steps, 4)},
        "total_s": {"baseline": round(getattr(base.clock, clock), 2), "reverie": round(getattr(rev.clock, clock), 2)},
        "time_ratio": round(getattr(rev.clock, clock) / getattr(base.clock, clock), 3),
        "lower_is_better": lower_is_better,
        "comparison": compare(base, rev, lower_is_better, clock),
        "curves": {"columns": ["step", f"{clock}_s", *columns], "baseline": curve(base, clock),
                   "reverie": curve(rev, clock)},
    }


# --- inputs ----------------------------------------------------------------------------------------

def photo(name: str, longer: int, device: torch.device) -> torch.Tensor:
    """A shared test image with its longer side `longer` (bicubic), as [1, 3, H, W] in [0, 1]."""
    path = IMAGES / name
    if not path.is_file():
        sys.exit(f"{path} not found: ../shared (test images and weights) must sit beside the repository.")
    image = Image.open(path).convert("RGB")
    w, h = image.size
    size = (round(w * longer / max(w, h)), round(h * longer / max(w, h)))
    pixels = np.array(image.resize(size, Image.BICUBIC))
    return torch.from_numpy(pixels).float().div(255).permute(2, 0, 1)[None].contiguous().to(device)


def random_vgg19() -> CNN:
    """The full VGG19 with random weights (for timing only), with the Caffe input convention."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vgg19_random.safetensors"
        torch.manual_seed(0)
        save_file({k: v.contiguous() for k, v in get_spec("vgg19").build().state_dict().items()}, path)
        return load_cnn("vgg19", path, "caffe")


def shared_cnn(arch: str, path: Path) -> CNN:
    if not path.is_file():
        sys.exit(f"{path} not found: ../shared (test images and weights) must sit beside the repository.")
    return load_cnn(arch, path)


# --- neural style ----------------------------------------------------------------------------------

class L1TV(Objective):
    """neural-style's TV term on a 0..1 image, in its 0..255 units: w·255·(Σ|∂x| + Σ|∂y|) per image."""

    def __init__(self, weight: float):
        super().__init__()
        self.weight = weight

    def forward(self, feats, image: torch.Tensor) -> torch.Tensor:
        dx = (image[..., :, 1:] - image[..., :, :-1]).abs().flatten(1).sum(1)
        dy = (image[..., 1:, :] - image[..., :-1, :]).abs().flatten(1).sum(1)
        return self.weight * 255 * (dx + dy)


def recipe_objective(recipe: NeuralStyle, content: torch.Tensor, style: torch.Tensor) -> Objective:
    """The recipe's loss in the engine's terms. The engine divides each term by its target's size (mean
    square of the content features, of the Gram matrix); the layer weights undo that with the recipe's
    full-size targets: content w·mean(P²); style, per layer, w·mean(A²) with A the recipe's target Gram
    matrix (the engine's divided by C, so the C² of the difference cancels)."""
    r, t = recipe.recipe, recipe.targets
    content_w = {l: r.content_weight * t[f"content/{l}"].pow(2).mean().item() for l in r.content_layers}
    style_w = {l: r.style_weight * t[f"style/{l}"].pow(2).mean().item() for l in r.style_layers}
    objective = (ContentObjective(content, content_w, weight=sum(content_w.values()))
                 + StyleObjective([style], style_w, weight=sum(style_w.values())))
    return objective + L1TV(r.tv_weight) if r.tv_weight > 0 else objective


def run_neural_style(args, device: torch.device, clock: str) -> dict:
    random_net = args.net == "vgg19-random"
    cnn = random_vgg19() if random_net else shared_cnn("vgg19", PARTIAL_VGG)
    cnn.module.to(device)
    recipe = StyleRecipe(iterations=args.iterations) if random_net else \
        StyleRecipe(content_layers=("relu3_1",), style_layers=("relu1_1", "relu2_1", "relu3_1"),
                    iterations=args.iterations)
    content = photo("chelsea.png", args.size, device)
    style = photo("starry_night.jpg", args.size, device)  # style_scale 1: as large as the output
    baseline = NeuralStyle(cnn, content, style, recipe)
    objective = recipe_objective(baseline, content, style)
    net = FeatureNet(cnn, objective.layers())
    pyramid = Pyramid(args.octaves, args.octave_scale, args.coarse_steps)
    levels = pyramid.sizes(*content.shape[-2:], net.min_size)
    steps = pyramid.steps(args.reverie_steps, len(levels))
    settings = TransferSettings(optimizer=args.optimizer, steps=args.reverie_steps, lr=args.lr)
    init = content if args.init == "content" else torch.rand(content.shape, generator=torch.Generator().manual_seed(0)).to(content)
    base = Side("neural_style", recipe.iterations, Clock(device))
    rev = Side("reverie", sum(steps), Clock(device))
    every = max(recipe.iterations // args.points, 1)

    def on_base(side: Side, it, step: int) -> None:
        if due(step, side.steps, every):
            side.snapshot(step, it.image, it.loss.item())

    def run_reverie(tick) -> None:
        full = tuple(content.shape[-2:])
        rev_every = max(rev.steps // args.points, 1)

        def callback(p: Progress) -> None:
            step = round(p.done * rev.steps)
            rev.clock.stop()
            if due(step, rev.steps, rev_every) or p.step == p.steps:
                rev.snapshot(step, resize(p.image, full), p.loss.sum().item())
            rev.clock.start()
            tick(p.done)
        transfer(net, objective, init, settings, pyramid, callback)

    alternate(baseline.run(seed=0), base, on_base, run_reverie, rev)
    result = {
        "what": "neural-style's loop (L-BFGS, random init, unclamped pixels) against Reverie's transfer(), "
                "quality = the recipe's loss of each delivered (clamped, 8-bit) image",
        "net": "vgg19, random init (timing only: the losses mean nothing)" if random_net
        else "vgg19 partial (conv1_1..conv3_4), shared weights",
        "recipe": asdict(recipe), "size": list(content.shape[-2:]),
        "content": "chelsea.png", "style": "starry_night.jpg",
        "reverie": {"optimizer": args.optimizer, "lr": settings.learning_rate, "init": args.init,
                    "steps_per_level": steps, "levels": [list(s) for s in levels], "octave_scale": args.octave_scale,
                    "objective": "the recipe's loss in engine terms (bench/time_to_loss.py recipe_objective)"},
        **measured(base, rev, baseline.loss, True, clock, ["delivered_loss", "internal_loss"]),
    }
    save_pictures(args, "neural_style", base, rev)
    return result


# --- deepdream -------------------------------------------------------------------------------------

def run_deepdream(args, device: torch.device, clock: str) -> dict:
    cnn = shared_cnn("googlenet_caffe", GOOGLENET)
    cnn.module.to(device)
    recipe = DreamRecipe()
    image = photo("chelsea.png", args.size, device)
    baseline = DeepDreamNotebook(cnn, image, recipe)
    net = FeatureNet(cnn, [recipe.end])
    steps = recipe.steps * recipe.octaves
    base = Side("deepdream_notebook", steps, Clock(device))
    rev = Side("reverie", steps, Clock(device))
    full = tuple(image.shape[-2:])

    def on_base(side: Side, it, step: int) -> None:
        side.snapshot(step, it.image())

    def run_reverie(tick) -> None:
        settings = DreamSettings(steps=recipe.steps, step_size=recipe.step_size / 255, jitter=recipe.jitter,
                                 normalize="mean_abs")
        pyramid = Pyramid(recipe.octaves, recipe.octave_scale)

        def callback(p: Progress) -> None:
            rev.clock.stop()
            with torch.no_grad():  # the dream so far at full size, as dream() carries it to the next octave
                detail = p.image - resize(image, tuple(p.image.shape[-2:]))
                rev.snapshot(p.level * p.steps + p.step, image + resize(detail, full))
            rev.clock.start()
            tick(p.done)
        dream(net, ActivationL2(recipe.end), image, settings, pyramid, callback)

    alternate(baseline.run(seed=0), base, on_base, run_reverie, rev)
    result = {
        "what": "the google/deepdream notebook's loop against Reverie's dream() at the notebook's settings; "
                "quality = mean squared activation of the end layer on each delivered (clamped, 8-bit) image "
                "(higher is better; before the last octave: the image plus the detail so far, at full size)",
        "net": "googlenet_caffe (BVLC), shared weights", "recipe": asdict(recipe), "size": list(full),
        "image": "chelsea.png",
        "reverie": {"step_size": recipe.step_size / 255, "jitter": recipe.jitter, "normalize": "mean_abs",
                    "octaves": recipe.octaves, "octave_scale": recipe.octave_scale, "steps": recipe.steps},
        "target_time_ratio": 1.05,
        **measured(base, rev, baseline.objective, False, clock, ["objective"]),
    }
    save_pictures(args, "deepdream_notebook", base, rev)
    return result


# --- output ----------------------------------------------------------------------------------------

def save_pictures(args, name: str, base: Side, rev: Side) -> None:
    """The two final delivered images side by side (baseline left), when --pictures names a folder."""
    if not args.pictures:
        return
    folder = Path(args.pictures)
    folder.mkdir(parents=True, exist_ok=True)
    pair = torch.cat([base.points[-1].image, rev.points[-1].image], -1)[0].permute(1, 2, 0).cpu().numpy()
    Image.fromarray(pair).save(folder / f"{name}.png")


def machine(device: torch.device) -> dict:
    info = {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "nproc": os.cpu_count()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="all", choices=["neural_style", "deepdream_notebook", "all"])
    parser.add_argument("--size", type=int, default=256, help="longer side of the output (the recipes: 512)")
    parser.add_argument("--iterations", type=int, default=100, help="neural-style's iterations (its own: 1000)")
    parser.add_argument("--full", action="store_true", help="the recipes' own run: 1000 iterations at --size")
    parser.add_argument("--net", default="partial", choices=["partial", "vgg19-random"])
    parser.add_argument("--optimizer", default="lbfgs", choices=["adam", "lbfgs"], help="Reverie's")
    parser.add_argument("--lr", type=float, default=None, help="Reverie's learning rate (None: its default)")
    parser.add_argument("--init", default="content", choices=["content", "noise"], help="Reverie's init")
    parser.add_argument("--octaves", type=int, default=3, help="Reverie's pyramid levels")
    parser.add_argument("--octave-scale", type=float, default=2.0)
    parser.add_argument("--reverie-steps", type=int, default=40, help="Reverie's steps at the full size")
    parser.add_argument("--coarse-steps", type=int, default=0, help="Reverie's steps at each smaller level (0: as many)")
    parser.add_argument("--points", type=int, default=20, help="snapshots scored per run (about)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--key", help="the result's name in --out (default: the recipe's)")
    parser.add_argument("--pictures", default=None, help="folder for the final images, baseline beside Reverie")
    args = parser.parse_args()
    if args.full:
        args.iterations = 1000
    if args.key and args.recipe == "all":
        parser.error("--key names the result of one recipe: give --recipe too")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock = "wall" if device.type == "cuda" else "cpu"
    results, load_start = {}, loadavg()
    with torch.inference_mode(False), torch.enable_grad():
        if args.recipe in ("neural_style", "all"):
            key = "neural_style" + ("_vgg19_random_timing" if args.net == "vgg19-random" else "")
            results[args.key or key] = run_neural_style(args, device, clock)
        if args.recipe in ("deepdream_notebook", "all"):
            results[args.key or "deepdream_notebook"] = run_deepdream(args, device, clock)
    stamp = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "machine": machine(device), "clock": f"{clock} seconds of each side's own steps",
             "loadavg_start": load_start, "loadavg_end": loadavg()}
    for value in results.values():
        value.update(stamp)
    out = Path(args.out)
    merged = json.loads(out.read_text()) if out.is_file() else {}
    merged.update(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, indent=1) + "\n")
    print(json.dumps({k: {"comparison": v["comparison"], "seconds_per_step": v["seconds_per_step"]}
                      for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
