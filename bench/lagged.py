"""Exact against lagged tile statistics at equal steps and at equal time: the final loss and the CPU seconds of
tiled style transfer runs with each, for Gram and mean+covariance statistics. JSON on stdout.

    python bench/lagged.py [--size 320] [--tile 96] [--levels 3] [--exact-steps 10 12] [--lagged-steps 12 14 17]

Setup: the shared partial VGG19, content relu3_1, style relu1_1..relu3_1 (weight 10) of starry_night.jpg on
chelsea.png at `size` px on the longer side, Adam, a pyramid of `levels` × 1.5, `tile` px tiles, on 2 CPU
threads. Each row is one run: its statistics, steps per level, the final loss (the exact whole-image loss,
`TransferReport.loss`) and the process's CPU seconds for it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared_data import SHARED  # noqa: E402

from engine.features import FeatureNet  # noqa: E402
from engine.models import load_cnn  # noqa: E402
from engine.pictures import read_image  # noqa: E402
from engine.pyramid import Pyramid, resize  # noqa: E402
from engine.style import ContentObjective, StyleObjective  # noqa: E402
from engine.transfer import TransferSettings, fit_size, transfer  # noqa: E402

WEIGHTS = SHARED / "weights" / "vgg19_partial_conv1_1-conv3_4.safetensors"
IMAGES = SHARED / "testdata" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--tile", type=int, default=96)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--exact-steps", type=int, nargs="+", default=[10, 12])
    parser.add_argument("--lagged-steps", type=int, nargs="+", default=[12, 14, 17])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cnn = load_cnn("vgg19", WEIGHTS, "caffe")
    photo = read_image(IMAGES / "chelsea.png")
    content = resize(photo, fit_size(tuple(photo.shape[-2:]), args.size)).clamp(0, 1)
    style = read_image(IMAGES / "starry_night.jpg")
    rows = []
    for statistic in ("gram", "mean_cov"):
        objective = (ContentObjective(content, ["relu3_1"])
                     + StyleObjective([style], ["relu1_1", "relu2_1", "relu3_1"], weight=10, statistic=statistic))
        net = FeatureNet(cnn, objective.layers())
        runs = [("exact", n) for n in args.exact_steps] + [("lagged", n) for n in args.lagged_steps]
        for statistics, steps in runs:
            settings = TransferSettings(steps=steps, tile=args.tile, tile_statistics=statistics)
            start = time.process_time()
            _, report = transfer(net, objective, content.clone(), settings, Pyramid(args.levels, 1.5))
            row = {"statistic": statistic, "tile_statistics": statistics, "steps": steps,
                   "loss": round(report.loss[0], 4), "cpu_s": round(time.process_time() - start, 1)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps({"bench": "lagged", "torch": torch.__version__, "threads": args.threads,
                      "size": list(content.shape[-2:]), "tile": args.tile, "levels": args.levels,
                      "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
