"""A small command line for the engine alone (no ComfyUI): `python -m engine dream IN OUT ...`."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .architectures import ARCHITECTURES
from .dream import DreamSettings, dream
from .features import FeatureNet
from .layers import parse_layers
from .models import load_cnn
from .pyramid import Pyramid
from .step_rules import NORMALIZERS


def read_image(path: Path) -> torch.Tensor:
    """An image file as a 1×3×H×W float batch in [0, 1]."""
    rgb = np.array(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(rgb).permute(2, 0, 1)[None]


def write_image(x: torch.Tensor, path: Path) -> None:
    pixels = (x[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    Image.fromarray(pixels).save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Reverie's engine without ComfyUI.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("dream", help="DeepDream an image file.")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--arch", default="efficientnet_lite0", choices=list(ARCHITECTURES))
    p.add_argument("--weights", type=Path, help="weights file (default: the architecture's own source)")
    p.add_argument("--layers", help="e.g. 'inception_4c/output: 1' (default: the model's dream layers)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--step-size", type=float, default=0.01)
    p.add_argument("--jitter", type=int, default=32)
    p.add_argument("--normalize", choices=NORMALIZERS, default="mean_abs")
    p.add_argument("--octaves", type=int, default=4)
    p.add_argument("--scale", type=float, default=1.4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    cnn = load_cnn(args.arch, args.weights)
    cnn.module.to(device)
    text = args.layers or ", ".join(f"{k}: {v}" for k, v in cnn.spec.default_layers.items())
    selection = parse_layers(cnn, text)
    net = FeatureNet(cnn, selection.layers)
    settings = DreamSettings(args.steps, args.step_size, args.jitter, args.normalize, args.seed)
    out = dream(net, selection.dream_objective().to(device), read_image(args.input).to(device), settings,
                Pyramid(args.octaves, args.scale),
                lambda p: print(f"\roctave {p.level + 1}/{p.levels} step {p.step}/{p.steps} "
                                f"loss {p.loss.mean():.4g}", end="", flush=True))
    print()
    write_image(out, args.output)
    print(args.output)
