"""A small command line for the engine alone (no ComfyUI): `python -m engine dream IN OUT ...`."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .architectures import ARCHITECTURES
from .dream import DreamSettings, dream
from .features import FeatureNet
from .layers import parse_layers
from .models import load_cnn
from .parameterise import PARAMETERISATIONS
from .pictures import atlas, read_image, write_image
from .pyramid import Pyramid
from .step_rules import NORMALIZERS
from .visualise import VisualiseSettings, layer_named, parse_channels, render


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
    v = commands.add_parser("visualise", help="Render what a layer's channels respond to, as a labelled atlas.")
    v.add_argument("output", type=Path, help="the atlas image file")
    v.add_argument("--arch", default="efficientnet_lite0", choices=list(ARCHITECTURES))
    v.add_argument("--weights", type=Path, help="weights file (default: the architecture's own source)")
    v.add_argument("--layer", help="e.g. 'inception_4c/output' (default: the model's dream layer)")
    v.add_argument("--channels", default="0-7", help="e.g. '3, 7, 10-20', or 'top8' with --image")
    v.add_argument("--image", type=Path, help="the image that 'topK' ranks channels on")
    v.add_argument("--size", type=int, default=128)
    v.add_argument("--steps", type=int, default=256)
    v.add_argument("--lr", type=float, default=0.05)
    v.add_argument("--batch", type=int, default=8, help="channels rendered at once")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--parameterisation", choices=PARAMETERISATIONS, default="fourier")
    v.add_argument("--columns", type=int, default=0, help="tiles per row (0: as square as possible)")
    v.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    cnn = load_cnn(args.arch, args.weights)
    cnn.module.to(device)
    if args.command == "visualise":
        _visualise(args, cnn, device)
        return
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


def _visualise(args: argparse.Namespace, cnn, device: torch.device) -> None:
    layer = layer_named(cnn, args.layer or "")
    settings = VisualiseSettings(args.size, args.steps, args.lr, args.batch, args.seed, args.parameterisation)
    image = read_image(args.image).to(device) if args.image else None
    rendering = render(FeatureNet(cnn, [layer]), layer, parse_channels(args.channels), settings, image,
                       lambda p: print(f"\rbatch {p.level + 1}/{p.levels} step {p.step}/{p.steps} "
                                       f"loss {p.loss.mean():.4g}", end="", flush=True))
    print()
    atlas(rendering.images, rendering.labels, args.columns).save(args.output)
    print("\n".join(rendering.labels))
    print(args.output)
