#!/usr/bin/env python3
"""Run every example workflow on the real ComfyUI host and regenerate the pictures made from them:

    example_workflows/<name>.jpg   the template browser's thumbnail (512 px on the long side)
    docs/gallery/<name>.jpg        the README's picture (768 px or more on the long side)
    web/docs/images/<name>.jpg     the picture of the node help pages (384 px)
    web/docs/images/paintings.jpg  Load Painting's help picture: the bundled paintings side by side

    python scripts/gallery.py [--url http://127.0.0.1:PORT] [--max-steps N] [NAME ...]

Without --url it boots the host of scripts/lib.sh ($REVERIE_HOST, else .host/) and stops it afterwards.
NAMEs pick examples (default: all). Each example runs as saved, with ComfyUI's example.png, except SETTINGS
below; --max-steps caps every steps / refresh_steps input and frames at 8 (for a slow CPU: the
pictures then show less of each effect). A video or animation is shown as a strip of three of its frames.
Run it with the host's Python.
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests" / "integration")]

from host import Host, default_root  # noqa: E402
from run_workflow import Comfy, WorkflowError, override, run_prompt, to_api  # noqa: E402

WORKFLOWS = ROOT / "example_workflows"
README_PICTURES = ROOT / "docs" / "gallery"
HELP_PICTURES = ROOT / "web" / "docs" / "images"
THUMBNAIL, README_MIN, HELP = 512, 768, 384  # px on the long side
STYLE_SIZE = 768  # Optimize's output size in the gallery: the README's pictures are at least this large
SETTINGS: dict[str, dict] = {}  # per example: what the gallery changes beyond STYLE_SIZE, and why
# (the 4096 px example runs at STYLE_SIZE too: 4096 px take about 50 minutes on a CPU, and its 512 px tiles
# still split a 768 px image)
VIDEOS = {".mp4", ".webm", ".mov", ".mkv"}


def frames(path: Path) -> list[Image.Image]:
    """Every frame of a saved image, animated WEBP or video, as RGB."""
    if path.suffix in VIDEOS:
        import av

        with av.open(str(path)) as video:
            return [f.to_image().convert("RGB") for f in video.decode(video=0)]
    with Image.open(path) as image:
        out = []
        for i in range(getattr(image, "n_frames", 1)):
            image.seek(i)
            out.append(image.convert("RGB"))
        return out


def picture(paths: list[Path]) -> Image.Image:
    """The result as one picture: the image itself, or a strip of the first, middle and last frame."""
    every = [f for p in paths for f in frames(p)]
    if len(every) == 1:
        return every[0]
    chosen = [every[0], every[len(every) // 2], every[-1]]
    strip = Image.new("RGB", (sum(f.width for f in chosen), max(f.height for f in chosen)))
    x = 0
    for f in chosen:
        strip.paste(f, (x, 0))
        x += f.width
    return strip


def fit(image: Image.Image, long_side: int) -> Image.Image:
    scale = long_side / max(image.size)
    return image if scale >= 1 else image.resize((round(image.width * scale), round(image.height * scale)),
                                                 Image.LANCZOS)


def save_jpeg(image: Image.Image, path: Path, quality: int = 85) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = io.BytesIO()
    image.save(data, "JPEG", quality=quality, optimize=True)
    path.write_bytes(data.getvalue())


def settings_for(name: str, prompt: dict, max_steps: int | None) -> dict:
    settings = {f"{i}.size": STYLE_SIZE for i, n in prompt.items() if n["class_type"] == "ReverieOptimize"}
    if max_steps:
        for i, n in prompt.items():
            for key, cap in (("steps", max_steps), ("refresh_steps", max_steps), ("frames", 8)):
                if isinstance(n["inputs"].get(key), int) and n["inputs"][key] > cap:
                    settings[f"{i}.{key}"] = cap
    return {**settings, **SETTINGS.get(name, {})}


def run_example(comfy: Comfy, path: Path, out: Path, max_steps: int | None) -> tuple[Image.Image, float]:
    """Run one example (gallery settings on top), return its picture and the seconds it took."""
    prompt = to_api(json.loads(path.read_text()), comfy.object_info())
    prompt = override(prompt, settings_for(path.stem, prompt, max_steps))
    for node in prompt.values():  # a new prefix: ComfyUI's cache never skips the graph
        if "filename_prefix" in node["inputs"]:
            node["inputs"]["filename_prefix"] = f"reverie_gallery/{path.stem}_{int(time.time())}"
    start = time.monotonic()
    paths = run_prompt(comfy, prompt, out / path.stem)
    return picture(paths), time.monotonic() - start


def paintings_picture() -> Image.Image:
    """The bundled paintings side by side, each HELP px high."""
    images = [Image.open(p).convert("RGB") for p in sorted((ROOT / "paintings").glob("*.jpg"))]
    images = [im.resize((round(im.width * HELP / im.height), HELP), Image.LANCZOS) for im in images]
    strip = Image.new("RGB", (sum(im.width for im in images), HELP))
    for i, im in enumerate(images):
        strip.paste(im, (sum(other.width for other in images[:i]), 0))
    return strip


def make(comfy: Comfy, names: list[str], out: Path, max_steps: int | None) -> int:
    save_jpeg(paintings_picture(), HELP_PICTURES / "paintings.jpg", quality=80)
    failed = 0
    for path in sorted(WORKFLOWS.glob("*.json")):
        if names and path.stem not in names:
            continue
        print(f"{path.stem}: running", file=sys.stderr, flush=True)
        try:
            image, seconds = run_example(comfy, path, out, max_steps)
        except (WorkflowError, TimeoutError, OSError) as e:
            print(f"{path.stem}: FAILED: {e}", file=sys.stderr)
            failed += 1
            continue
        if max(image.size) < README_MIN:
            print(f"{path.stem}: FAILED: {image.size[0]}×{image.size[1]} is smaller than {README_MIN} px",
                  file=sys.stderr)
            failed += 1
            continue
        save_jpeg(fit(image, THUMBNAIL), WORKFLOWS / f"{path.stem}.jpg")
        save_jpeg(image, README_PICTURES / f"{path.stem}.jpg")
        save_jpeg(fit(image, HELP), HELP_PICTURES / f"{path.stem}.jpg", quality=80)
        print(f"{path.stem}: {image.size[0]}×{image.size[1]} in {seconds:.0f} s", file=sys.stderr)
    return failed


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="examples to run (file names without .json; default: all)")
    ap.add_argument("--url", help="a running server with this pack (default: boot the host)")
    ap.add_argument("--max-steps", type=int, help="cap steps and refresh_steps (and frames at 8), for a slow CPU")
    args = ap.parse_args(argv)
    unknown = set(args.names) - {p.stem for p in WORKFLOWS.glob("*.json")}
    if unknown:
        ap.error(f"no example named {', '.join(sorted(unknown))}")
    root = default_root()
    out = root / "gallery-run"
    if args.url:
        return 1 if make(Comfy(args.url), args.names, out, args.max_steps) else 0
    host = Host(root)
    shutil.copy(host.root / "comfyui" / "input" / "example.png", host.base / "input" / "example.png")
    with host.start(root / "gallery-server.log", timeout=900):  # a loaded machine boots slowly
        return 1 if make(Comfy(host.url), args.names, out, args.max_steps) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
