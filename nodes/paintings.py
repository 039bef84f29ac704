"""Load Painting: the public-domain paintings bundled in paintings/ (sources and licences in its README)."""
from __future__ import annotations

from pathlib import Path

import comfy.model_management as mm
import numpy as np
import torch
from comfy_api.latest import io
from PIL import Image

from .inputs import ReverieNode
from .schema import schema

FOLDER = Path(__file__).resolve().parents[1] / "paintings"
SUFFIXES = {".jpg", ".jpeg", ".png"}
DEFAULT = "the_starry_night"


def painting_names() -> list[str]:
    """The bundled paintings, by file stem, sorted."""
    return sorted(p.stem for p in FOLDER.iterdir() if p.suffix.lower() in SUFFIXES)


def painting_path(name: str) -> Path:
    matches = [p for p in FOLDER.iterdir() if p.stem == name and p.suffix.lower() in SUFFIXES]
    if not matches:
        raise ValueError(f"painting: unknown painting {name!r}; bundled: {', '.join(painting_names())}.")
    return matches[0]


class LoadPainting(ReverieNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        names = painting_names()
        return schema(
            node_id="ReverieLoadPainting",
            display_name="Load Painting",
            search_aliases=["painting", "style image", "van gogh", "munch"],
            category="Reverie/image",
            description="A public-domain painting that ships with Reverie, as an IMAGE: a style to start "
                        "from without finding a file first. Use Load Image for your own styles.",
            inputs=[io.Combo.Input("painting", options=names,
                                   default=DEFAULT if DEFAULT in names else names[0],
                                   tooltip="The bundled painting (paintings/README.md lists painter, year, "
                                           "source and licence of each file).")],
            outputs=[io.Image.Output(display_name="image", tooltip="The painting, RGB, its own size.")],
        )

    @classmethod
    def validate_inputs(cls, painting: str) -> bool | str:
        if painting not in painting_names():  # ComfyUI 0.3.75 does not check combo values sent over the API
            return f"painting: unknown painting {painting!r}; bundled: {', '.join(painting_names())}."
        return True

    @classmethod
    def execute(cls, painting: str) -> io.NodeOutput:
        with Image.open(painting_path(painting)) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return io.NodeOutput(torch.from_numpy(pixels)[None].to(mm.intermediate_device()))
