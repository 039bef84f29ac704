"""Pictures for people: image files and labelled grids, made with PIL on the CPU once a run is over.

The engine's computations never import this module (they stay pure PyTorch on the tensors' device);
the command line and the nodes do, to read and write files and to draw text.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

BACKGROUND, INK = (255, 255, 255), (24, 24, 24)
MIN_FONT = 8


def from_pil(image: Image.Image) -> torch.Tensor:
    """A PIL image (any mode) as a 1×3×H×W float batch in [0, 1]."""
    rgb = np.array(image.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()


def read_image(path: Path) -> torch.Tensor:
    """An image file as a 1×3×H×W float batch in [0, 1]."""
    with Image.open(path) as image:
        return from_pil(image)


def to_pil(x: torch.Tensor) -> Image.Image:
    """One CHW image in [0, 1] (any device) as an RGB PIL image."""
    return Image.fromarray((x.detach().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy())


def write_image(x: torch.Tensor, path: Path) -> None:
    """The first image of a BCHW batch in [0, 1] to a file (the format follows the suffix)."""
    to_pil(x[0]).save(path)


def grid_shape(count: int, columns: int = 0) -> tuple[int, int]:
    """(rows, columns) of a grid of `count` tiles; `columns` 0 makes it as square as possible."""
    columns = min(columns, count) if columns > 0 else math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def label_height(tile_width: int) -> int:
    """Pixels of the band under each tile that holds its label."""
    return _font_size(tile_width) + 6


def atlas(images: torch.Tensor, labels: list[str], columns: int = 0) -> Image.Image:
    """A grid of the BCHW `images` on white, each with its label centred in a band underneath (PIL's
    default font, made smaller or cut short with '…' where a label is wider than its tile)."""
    if len(labels) != images.shape[0]:
        raise ValueError(f"atlas needs one label per image; got {len(labels)} labels for {images.shape[0]} images.")
    rows, columns = grid_shape(len(labels), columns)
    h, w = images.shape[-2:]
    gap, band = max(2, w // 32), label_height(w)
    canvas = Image.new("RGB", (columns * (w + gap) + gap, rows * (h + band + gap) + gap), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for i, (image, label) in enumerate(zip(images, labels)):
        left, top = gap + (i % columns) * (w + gap), gap + (i // columns) * (h + band + gap)
        canvas.paste(to_pil(image), (left, top))
        font, text = _fitted(label, w)
        draw.text((left + w / 2, top + h + band / 2), text, fill=INK, font=font, anchor="mm")
    return canvas


def _font_size(tile_width: int) -> int:
    return max(MIN_FONT, min(20, tile_width // 11))


def _fitted(label: str, width: int) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, str]:
    """The default font at the tile's size, smaller (down to MIN_FONT) or the text cut short to fit `width`."""
    size = _font_size(width)
    font = ImageFont.load_default(size)
    room = width - 2
    if font.getlength(label) > room:
        size = max(MIN_FONT, int(size * room / font.getlength(label)))
        font = ImageFont.load_default(size)
    text = label
    while len(text) > 1 and font.getlength(text) > room:
        text = text[:-2] + "…"
    return font, text
