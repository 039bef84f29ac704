#!/usr/bin/env python3
"""Flicker and ghosting of video dreams: independent frames, blending in place, and ours (flow-warped detail).

    python bench/video_flicker.py [--size 256] [--frames 8] [--strip docs/video_strip.jpg] [--out FILE.json]

The clip is made from real photos: a camera pan over coffee.png with a patch of chelsea.png moving faster
across it (so there is occlusion). Each scheme dreams it with BVLC GoogLeNet (inception_4c/output) at the
Dream Video node's defaults. Reported per scheme: flicker (mean |out_t - warp(out_t-1)| over consistent
pixels, relative to the input's own), detail drift (the same for the dreamed detail: ghosting when detail
stays put while content moves), frames per second. Prints JSON; `--strip` saves a frame strip (rows: input,
independent, in place, ours).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared_data import SHARED  # noqa: E402

from engine.dream import DreamSettings  # noqa: E402
from engine.features import FeatureNet  # noqa: E402
from engine.flow import estimate_flow  # noqa: E402
from engine.layers import parse_layers  # noqa: E402
from engine.models import load_cnn  # noqa: E402
from engine.video import clip_motion, detail_drift, dream_video, flicker  # noqa: E402


def clip(size: int, frames: int, pan: int = 2, speed: int = 7) -> torch.Tensor:
    from PIL import Image

    def load(name: str, width: int) -> torch.Tensor:
        image = Image.open(SHARED / "testdata/images" / name).convert("RGB")
        image = image.resize((width, round(image.height * width / image.width)), Image.BICUBIC)
        return torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(image.height, image.width, 3) \
            .permute(2, 0, 1)[None].float() / 255

    background = load("coffee.png", size + pan * frames + 8)
    patch = load("chelsea.png", size)[..., size // 6:size // 6 + size // 3, size // 3:size // 3 + size // 3]
    out = []
    for t in range(frames):
        frame = background[..., 4:4 + size, pan * t:pan * t + size].clone()
        x, y = size // 8 + speed * t, size // 3
        frame[..., y:y + patch.shape[-2], x:x + patch.shape[-1]] = patch
        out.append(frame)
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--strip", type=Path, default=None, help="save a frame strip image here")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cnn = load_cnn("googlenet_caffe", SHARED / "weights/googlenet_caffe.safetensors")
    selection = parse_layers(cnn, "inception_4c/output")
    net, objective = FeatureNet(cnn, selection.layers), selection.dream_objective()
    frames = clip(args.size, args.frames)
    start = time.perf_counter()
    motions = clip_motion(frames, estimate_flow)
    flow_seconds = (time.perf_counter() - start) / (2 * (len(frames) - 1))
    settings = DreamSettings(steps=10, step_size=0.01, jitter=32)  # the Dream node's defaults
    schemes = {"independent": (0.0, 1, estimate_flow), "in_place": (0.9, 1, None), "ours": (0.9, 1, estimate_flow)}
    results, outputs = {}, {}
    for name, (blend, refresh, flow) in schemes.items():
        start = time.perf_counter()
        out = torch.cat(list(dream_video(net, objective, frames, settings, blend, refresh, flow)))
        seconds = time.perf_counter() - start
        outputs[name] = out
        results[name] = {"blend": blend, "refresh_steps": refresh, "flow": "builtin" if flow else "none",
                         "flicker": round(flicker(out, frames, motions), 2),
                         "detail_drift": round(detail_drift(out, frames, motions), 5),
                         "frames_per_second": round(len(frames) / seconds, 3)}
    ours, independent, in_place = results["ours"], results["independent"], results["in_place"]
    report = {
        "benchmark": "video_flicker", "date": date.today().isoformat(),
        "machine": {"cpu_threads": args.threads, "torch": torch.__version__, "platform": platform.platform()},
        "clip": {"size": args.size, "frames": args.frames, "made_of": "pan over coffee.png, chelsea.png patch moving 7 px/frame"},
        "net": "googlenet_caffe inception_4c/output", "dream": {"steps": 10, "step_size": 0.01, "jitter": 32},
        "flow_seconds_per_call": round(flow_seconds, 3),
        "schemes": results,
        "ratios": {"flicker_independent_over_ours": round(independent["flicker"] / ours["flicker"], 2),
                   "drift_in_place_over_ours": round(in_place["detail_drift"] / ours["detail_drift"], 2)},
        "targets": {"flicker_3x_less_than_independent": independent["flicker"] >= 3 * ours["flicker"],
                    "less_ghosting_than_in_place": ours["detail_drift"] < in_place["detail_drift"]},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.strip:
        from torchvision.utils import save_image
        shown = list(range(0, len(frames), max(len(frames) // 4, 1)))[:4]
        rows = [frames, outputs["independent"], outputs["in_place"], outputs["ours"]]
        save_image(torch.cat([row[shown] for row in rows]), args.strip, nrow=len(shown), padding=4, pad_value=1.0)


if __name__ == "__main__":
    main()
