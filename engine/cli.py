"""Reverie's engine from the command line, without ComfyUI (the nodes' settings, as flags):

    python -m engine dream IN OUT [--layers 'inception_4c/output: 1'] [--octaves 4] ...
    python -m engine style CONTENT OUT --style STYLE [--style ANOTHER] [--size 512] ...
    python -m engine video IN OUT [--style STYLE]     (Dream Video; with --style, Stylise Video)

Frames of a clip are a folder of images (in name order), an animated GIF / WebP / PNG, or a video file when
PyAV is installed; the output is written the same ways (a folder, an animated image, or a video).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Iterator

import torch
from PIL import Image, ImageSequence

from .architectures import ARCHITECTURES
from .colour import COLOUR_MODES
from .dream import DreamSettings, dream
from .features import FeatureNet
from .flow import FLOW_METHODS, flow_estimator
from .layers import parse_layers
from .losses import STATISTICS
from .models import CNN, load_cnn
from .objectives import Objective
from .optimize import Diverged, Progress, kept_frames
from .parameterise import PARAMETERISATIONS
from .pictures import atlas, from_pil, read_image, to_pil, write_image
from .pyramid import Pyramid
from .step_rules import NORMALIZERS
from .style import ContentObjective, StyleObjective
from .transfer import INITS, OPTIMIZERS, TILE_STATISTICS, TransferReport, TransferSettings, init_image, transfer
from .video import dream_video, stylise_video
from .visualise import VisualiseSettings, channel_entry, render

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
ANIMATED_SUFFIXES = {".gif", ".webp", ".png", ".apng"}
# The default model's style layers, as the style examples use them (other networks: give --*-layers).
DEFAULT_STYLE_LAYERS = {"efficientnet_lite0": ("blocks.5", "stem, stage1, stage2, stage3, stage4")}


def read_frames(path: Path) -> torch.Tensor:
    """A clip as `[T, 3, H, W]`: a folder of images, an animated image, or a video file (needs PyAV)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SystemExit(f"{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder.")
        return torch.cat([read_image(f) for f in files])
    if path.suffix.lower() in ANIMATED_SUFFIXES:
        with Image.open(path) as image:
            return torch.cat([from_pil(frame) for frame in ImageSequence.Iterator(image)])
    av = _pyav(path)
    with av.open(str(path)) as container:
        return torch.cat([from_pil(frame.to_image()) for frame in container.decode(video=0)])


def write_frames(frames: list[torch.Tensor], path: Path, fps: float) -> None:
    """Writes `[1, 3, H, W]` frames as a folder of PNGs (a path without suffix), an animated GIF / WebP / PNG,
    or a video file (needs PyAV)."""
    images = [to_pil(f[0]) for f in frames]
    if not path.suffix:
        path.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            image.save(path / f"frame_{i:05d}.png")
    elif path.suffix.lower() in ANIMATED_SUFFIXES:
        images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    else:
        av = _pyav(path)
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=round(fps))
            stream.width, stream.height, stream.pix_fmt = images[0].width // 2 * 2, images[0].height // 2 * 2, "yuv420p"
            for image in images:
                frame = av.VideoFrame.from_image(image.crop((0, 0, stream.width, stream.height)))
                container.mux(stream.encode(frame))
            container.mux(stream.encode())


def _pyav(path: Path):
    try:
        import av
    except ImportError:
        raise SystemExit(f"{path}: reading or writing video files needs PyAV (pip install av); or use a folder of "
                         f"frames or an animated GIF / WebP instead.") from None
    return av


class ProgressBar:
    """One updating line on stderr: a bar of the whole run, where it is (the `part`: an octave, or an octave
    of one frame of a clip), the loss and the time left."""

    def __init__(self, what: str, part: str = "octave", width: int = 30):
        self.what, self.part, self.width, self.start = what, part, width, time.monotonic()
        self.shown = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *stopped) -> None:
        if self.shown:  # whatever is printed next (warnings, an error) starts a line of its own
            print(file=sys.stderr)

    def __call__(self, p: Progress) -> None:
        done = p.done
        filled = round(done * self.width)
        elapsed = time.monotonic() - self.start
        left = f", {elapsed * (1 - done) / done:.0f} s left" if done > 0 else ""
        level = f" {self.part} {p.level + 1}/{p.levels}" if p.levels > 1 else ""
        print(f"\r{self.what} [{'#' * filled}{'.' * (self.width - filled)}] {done:4.0%}{level} "
              f"step {p.step}/{p.steps} loss {float(p.loss.mean()):.4g}{left}   ",
              end="", file=sys.stderr, flush=True)
        self.shown = True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dreaming = commands.add_parser("dream", help="DeepDream an image file.")
    dreaming.add_argument("input", type=Path)
    dreaming.add_argument("output", type=Path)
    _model_args(dreaming)
    _dream_args(dreaming, octaves=4)
    _offload_arg(dreaming)
    styling = commands.add_parser("style", help="Neural style transfer onto an image file.")
    styling.add_argument("content", type=Path)
    styling.add_argument("output", type=Path)
    _model_args(styling)
    _style_args(styling, steps=200, octaves=1)
    styling.add_argument("--size", type=int, default=512, help="longer side of the output (0: the content's)")
    styling.add_argument("--init", choices=INITS, default="content")
    styling.add_argument("--init-image", type=Path, help="starting image for --init image")
    styling.add_argument("--scale", type=float, default=1.4, help="size ratio between pyramid levels")
    _offload_arg(styling)
    video = commands.add_parser("video", help="Dream (or, with --style, stylise) a clip without flicker.")
    video.add_argument("input", type=Path, help="a folder of frames, an animated GIF/WebP, or a video file")
    video.add_argument("output", type=Path, help="a folder (no suffix), .gif, .webp, or a video file")
    _model_args(video)
    _dream_args(video, octaves=1)
    _style_args(video, steps=100, octaves=1, required=False)
    video.add_argument("--blend", type=float, default=0.9, help="dream: share of the previous frame's detail kept")
    video.add_argument("--refresh-steps", type=int, help="steps on every frame after the first "
                                                         "(default: dream 1, style 50)")
    video.add_argument("--temporal-weight", type=float, default=100.0, help="style: pull towards the previous "
                                                                            "result where the motion is reliable")
    video.add_argument("--flow", choices=[*FLOW_METHODS, "none"], default="builtin")
    video.add_argument("--flow-weights", type=Path, help="RAFT weights file (default: torchvision's cache)")
    video.add_argument("--fps", type=float, default=12.0, help="frame rate of an animated or video output")
    v = commands.add_parser("visualise", help="Render what a layer's channels respond to, as a labelled atlas.")
    v.add_argument("output", type=Path, help="the atlas image file")
    _model_args(v)
    v.add_argument("--layer", help="e.g. 'inception_4c/output' (default: the model's dream layer)")
    v.add_argument("--channels", default="0-7", help="e.g. '3, 7, 10-20', or 'top8' with --image")
    v.add_argument("--image", type=Path, help="the image that 'topK' ranks channels on")
    v.add_argument("--size", type=int, default=128)
    v.add_argument("--steps", type=int, default=256)
    v.add_argument("--lr", type=float, default=0.05)
    v.add_argument("--batch", type=int, default=8, help="channels rendered at once")
    v.add_argument("--parameterisation", choices=PARAMETERISATIONS, default="fourier")
    v.add_argument("--columns", type=int, default=0, help="tiles per row (0: as square as possible)")
    args = parser.parse_args(argv)

    run = {"dream": _dream, "style": _style, "video": _video, "visualise": _visualise}[args.command]
    try:
        device = torch.device(args.device)
        cnn = load_cnn(args.arch, args.weights)
        cnn.module.to(device)
        print(run(args, cnn, device))
    except (ValueError, OSError) as e:  # bad input (the engine's messages name it) or a file that can't be read
        parser.exit(2, f"{parser.prog} {args.command}: error: {e}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog} {args.command}: interrupted\n")


def _warn(warnings: list[str]) -> None:
    for warning in dict.fromkeys(warnings):
        print(f"warning: {warning}", file=sys.stderr)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default="efficientnet_lite0", choices=list(ARCHITECTURES))
    p.add_argument("--weights", type=Path, help="weights file (default: the architecture's own source)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)


def _offload_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--offload", action="store_true",
                   help="keep the image and the buffers as large as it in host memory, moving one tile at a time "
                        "to --device: prints larger than the GPU's memory (give a tile size too)")


def _storage(args, device: torch.device, tile: int, option: str) -> torch.device:
    """Where the run's images live: host memory with --offload (which needs tiles: `tile`, set by `option`),
    else the compute device."""
    if args.offload and not tile:
        raise ValueError(f"--offload needs a tile size ({option} N, e.g. 1024): without tiles the whole image "
                         f"and its activations go to the device every step.")
    return torch.device("cpu") if args.offload else device


def _dream_args(p: argparse.ArgumentParser, octaves: int) -> None:
    p.add_argument("--layers", help="e.g. 'inception_4c/output: 1' (default: the model's dream layers)")
    p.add_argument("--steps", type=int, default=10, help="dream steps per octave")
    p.add_argument("--step-size", type=float, default=0.01)
    p.add_argument("--jitter", type=int, default=32)
    p.add_argument("--normalize", choices=NORMALIZERS, default="mean_abs")
    p.add_argument("--smoothing", type=float, default=0.0, help="blur of the gradient in pixels (0: off)")
    p.add_argument("--octaves", type=int, default=octaves)
    p.add_argument("--scale", type=float, default=1.4, help="size ratio between octaves")
    p.add_argument("--coarse-steps", type=int, default=0, help="steps at each octave below the full size (0: --steps)")
    p.add_argument("--tile", type=int, default=0, help="0: the whole image at once; else a tile size in pixels")


def _style_args(p: argparse.ArgumentParser, steps: int, octaves: int, required: bool = True) -> None:
    p.add_argument("--style", type=Path, action="append", required=required, help="a style image; repeat to blend")
    p.add_argument("--style-blend", type=float, action="append", help="weight of each --style (default: equal)")
    p.add_argument("--content-layers", help="e.g. 'relu4_2' (default: the default model's)")
    p.add_argument("--style-layers", help="e.g. 'relu1_1, relu2_1, relu3_1, relu4_1, relu5_1'")
    p.add_argument("--content-weight", type=float, default=1.0)
    p.add_argument("--style-weight", type=float, default=10.0)
    p.add_argument("--statistic", choices=list(STATISTICS), default="mean_cov")
    p.add_argument("--style-scale", type=float, default=1.0, help="style image size relative to the output")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    p.add_argument("--lr", type=float, help="learning rate (default: Adam 0.02, L-BFGS 1)")
    p.add_argument("--style-steps", type=int, default=steps, help="optimiser steps per pyramid level")
    p.add_argument("--tv-weight", type=float, default=0.0)
    p.add_argument("--ema", type=float, default=0.0)
    p.add_argument("--colour", choices=COLOUR_MODES, default="none")
    p.add_argument("--style-octaves", type=int, default=octaves, help="pyramid levels of the optimisation")
    p.add_argument("--style-coarse-steps", type=int, default=0,
                   help="optimiser steps at each level below the full size (0: --style-steps)")
    p.add_argument("--style-tile", type=int, default=0, help="0: untiled; else exact tiles of this size")
    p.add_argument("--tile-statistics", choices=TILE_STATISTICS, default="exact")


def _dream_setup(args, cnn: CNN, image: torch.Tensor) -> tuple[FeatureNet, Objective, DreamSettings, Pyramid]:
    """The dream of `args`; topK channels are chosen on `image` (the input, or a clip's first frame)."""
    text = args.layers or ", ".join(f"{k}: {v}" for k, v in cnn.spec.default_layers.items())
    selection = parse_layers(cnn, text).for_image(image)
    for note in selection.notes:
        print(note, file=sys.stderr)
    settings = DreamSettings(args.steps, args.step_size, args.jitter, args.normalize, args.smoothing, args.seed,
                             args.tile)
    return FeatureNet(cnn, selection.layers), selection.dream_objective(), settings, \
        Pyramid(args.octaves, args.scale, args.coarse_steps)


def _style_setup(args, cnn: CNN, content: torch.Tensor | None,
                 storage: torch.device) -> tuple[FeatureNet, Objective, TransferSettings, Pyramid]:
    """The style transfer of `args`, its style images read onto `storage` (where the run keeps its images)."""
    defaults = DEFAULT_STYLE_LAYERS.get(args.arch)
    if defaults is None and not (args.content_layers and args.style_layers):
        raise SystemExit(f"--arch {args.arch}: give --content-layers and --style-layers (only "
                         f"{', '.join(DEFAULT_STYLE_LAYERS)} has default style layers).")
    content_layers, style_layers = (parse_layers(cnn, text) for text in
                                    (args.content_layers or defaults[0], args.style_layers or defaults[1]))
    styles = [read_image(path).to(storage) for path in args.style]
    objective = StyleObjective(styles, style_layers.whole_layers("--style-layers"), args.style_weight,
                               args.style_blend, args.statistic, style_scale=args.style_scale)
    if args.content_weight:
        objective = ContentObjective(content, content_layers.whole_layers("--content-layers"),
                                     args.content_weight) + objective
    settings = TransferSettings(args.optimizer, args.lr, args.style_steps, args.tv_weight, args.ema, args.colour,
                                args.style_tile, tile_statistics=args.tile_statistics)
    layers = list(dict.fromkeys(style_layers.layers + content_layers.layers))
    return FeatureNet(cnn, layers), objective, settings, Pyramid(args.style_octaves, args.scale, args.style_coarse_steps)


def _dream(args, cnn: CNN, device: torch.device) -> Path:
    image = read_image(args.input).to(_storage(args, device, args.tile, "--tile"))
    net, objective, settings, pyramid = _dream_setup(args, cnn, image)
    with ProgressBar("dream") as bar:
        try:
            out, warnings = dream(net, objective.to(device), image, settings, pyramid, bar), []
        except Diverged as e:  # the image from before it went wrong, with the reason
            if e.image is None:
                raise
            out, warnings = e.image, [str(e)]
    _warn(warnings)
    write_image(out, args.output)
    return args.output


def _style(args, cnn: CNN, device: torch.device) -> Path:
    storage = _storage(args, device, args.style_tile, "--style-tile")
    content = read_image(args.content).to(storage)
    net, objective, settings, pyramid = _style_setup(args, cnn, content, storage)
    start = init_image(args.init, content, args.size or None, args.seed,
                       read_image(args.init_image).to(storage) if args.init_image else None)
    with ProgressBar("style") as bar:  # transfer places the objective: image-sized buffers with the image
        out, report = transfer(net, objective, start.to(storage), settings, pyramid, bar, content)
    _warn(report.warnings)
    write_image(out, args.output)
    return args.output


def _video(args, cnn: CNN, device: torch.device) -> Path:
    frames = read_frames(args.input)  # stays in host memory: each frame goes to the device in its turn
    estimate, flow_warnings = (None, []) if args.flow == "none" else flow_estimator(args.flow, args.flow_weights)
    _warn(flow_warnings)
    warnings: list[str] = []
    bar = ProgressBar(f"{len(frames)} frames", part="part")
    if args.style:
        net, objective, settings, pyramid = _style_setup(args, cnn, frames[:1], device)
        stylised = stylise_video(net, objective.to(device), frames, settings, args.temporal_weight,
                                 args.refresh_steps or 50, estimate, pyramid, bar)
        clip = _with_warnings(stylised, warnings)
    else:
        net, objective, settings, pyramid = _dream_setup(args, cnn, frames[:1])
        clip = kept_frames(dream_video(net, objective.to(device), frames, settings, args.blend,
                                       args.refresh_steps or 1, estimate, pyramid, bar), len(frames), warnings)
    done: list[torch.Tensor] = []
    try:
        with bar:
            done.extend(out.cpu() for out in clip)  # each result leaves the device at once
    except KeyboardInterrupt:  # the frames finished so far are kept
        _warn(warnings)
        if done:
            write_frames(done, args.output, args.fps)
            made = "frame 1 is" if len(done) == 1 else f"frames 1-{len(done)} are"
            print(f"Interrupted at frame {len(done) + 1} of {len(frames)}: {made} in {args.output}.", file=sys.stderr)
        raise
    _warn(warnings)
    write_frames(done, args.output, args.fps)
    return args.output


def _with_warnings(stylised: Iterator[tuple[torch.Tensor, TransferReport]],
                   warnings: list[str]) -> Iterator[torch.Tensor]:
    """The frames of a stylised clip, their reports' warnings added to `warnings`."""
    for out, report in stylised:
        warnings += report.warnings
        yield out


def _visualise(args, cnn: CNN, device: torch.device) -> Path:
    entry = channel_entry(cnn, args.layer or "", args.channels)
    settings = VisualiseSettings(args.size, args.steps, args.lr, args.batch, args.seed, args.parameterisation)
    image = read_image(args.image).to(device) if args.image else None
    with ProgressBar("visualise") as bar:
        rendering = render(FeatureNet(cnn, [entry.layer]), entry, settings, image, bar)
    atlas(rendering.images, rendering.labels, args.columns).save(args.output)
    print("\n".join(rendering.labels))
    return args.output
