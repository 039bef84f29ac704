"""Building API-format test graphs from /object_info, and reading their failures."""
from __future__ import annotations

import ast
from pathlib import Path

from run_workflow import Comfy, WorkflowError, execution_error, widget_default

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REQUIRED_NODES = {"ReverieLoadCNN", "ReverieSelectLayers", "ReverieOctavePyramid", "ReverieDream"}
WORKFLOWS = sorted((ROOT / "example_workflows").glob("*.json"))


def pack_node_ids() -> set[str]:
    """Every `node_id="..."` a schema in nodes/ declares (read from the source, not imported)."""
    ids = set()
    for path in (ROOT / "nodes").glob("*.py"):
        for call in ast.walk(ast.parse(path.read_text())):
            for kw in getattr(call, "keywords", []):
                if kw.arg == "node_id" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    ids.add(kw.value.value)
    return ids


def node(object_info: dict, class_type: str, **inputs) -> dict:
    """An API-format node with every widget input at its default, then `inputs` on top."""
    values = {}
    for group in ("required", "optional"):
        for name, spec in object_info[class_type]["input"].get(group, {}).items():
            if (default := widget_default(spec)) is not None:
                values[name] = default
    return {"class_type": class_type, "inputs": {**values, **inputs}}


def dream_graph(object_info: dict, layers: str, image: str, prefix: str, **dream) -> dict:
    """LoadImage -> LoadCNN (defaults) -> SelectLayers(layers) -> Dream (defaults + `dream`) -> SaveImage."""
    return {"1": node(object_info, "LoadImage", image=image),
            "2": node(object_info, "ReverieLoadCNN"),
            "3": node(object_info, "ReverieSelectLayers", cnn=["2", 0], layers=layers),
            "4": node(object_info, "ReverieDream", image=["1", 0], layers=["3", 0], **dream),
            "5": node(object_info, "SaveImage", images=["4", 0], filename_prefix=prefix)}


def failure(comfy: Comfy, prompt: dict) -> str:
    """The error a bad prompt gets: the validation message, else the execution error; fails if it ran."""
    try:
        entry = comfy.run(prompt, timeout=300)
    except WorkflowError as e:
        return str(e)
    message = execution_error(entry)
    assert message is not None, "the prompt succeeded, but it should have failed"
    return message


class PromptKit:
    """Small API prompts for the bad-input table (tests/bad_input_cases.py): every node at its defaults but
    one step, one Load CNN shared by every Select Layers unless a case changes it, and `image` (a file in
    the server's input folder) wherever an image is needed."""

    def __init__(self, object_info: dict, image: str, layers: str, prefix: str, make_image):
        self.info, self.image_name, self.default_layers, self.prefix = object_info, image, layers, prefix
        self.make_image = make_image
        self.prompt: dict[str, dict] = {}
        self.shared: dict[str, list] = {}

    def add(self, class_type: str, **inputs) -> list:
        key = str(len(self.prompt) + 1)
        self.prompt[key] = node(self.info, class_type, **inputs)
        return [key, 0]

    def _once(self, key: str, make) -> list:
        if key not in self.shared:
            self.shared[key] = make()
        return self.shared[key]

    def image(self, width: int = 0, height: int = 0) -> list:
        if width:
            return self.add("LoadImage", image=self.make_image(width, height))
        return self._once("image", lambda: self.add("LoadImage", image=self.image_name))

    def nan_image(self) -> list:
        """The image with every value NaN: core Image Blend with blend_factor NaN (its min/max pass NaN)."""
        return self.add("ImageBlend", image1=self.image(), image2=self.image(), blend_factor=float("nan"),
                        blend_mode="normal")

    def mask(self, value: float) -> list:
        return self.add("SolidMask", value=value, width=64, height=64)

    def layers(self, text: str | None = None, cnn: dict | None = None) -> list:
        make_cnn = lambda: self.add("ReverieLoadCNN", **(cnn or {}))  # noqa: E731
        model = make_cnn() if cnn else self._once("cnn", make_cnn)
        return self.add("ReverieSelectLayers", cnn=model, layers=self.default_layers if text is None else text)

    def octaves(self, **inputs) -> list:
        return self.add("ReverieOctavePyramid", **inputs)

    def visualise(self, **inputs) -> dict:
        model = self._once("cnn", lambda: self.add("ReverieLoadCNN"))
        return self._save(self.add("ReverieVisualise", cnn=model, **{"steps": 1, "size": 64, **inputs}))

    def _save(self, images: list) -> dict:
        self.add("SaveImage", images=images, filename_prefix=self.prefix)
        return self.prompt

    def dream(self, image: list | None = None, layers: list | None = None, **inputs) -> dict:
        inputs = {"steps": 1, **inputs}
        return self._save(self.add("ReverieDream", image=image or self.image(), layers=layers or self.layers(),
                                   **inputs))

    def zoom(self, **inputs) -> dict:
        inputs = {"steps": 1, "frames": 2, **inputs}
        return self._save(self.add("ReverieDreamZoom", image=self.image(), layers=self.layers(), **inputs))

    def content(self, layers: list | None = None, content: list | None = None, **inputs) -> list:
        return self.add("ReverieContentLoss", layers=layers or self.layers(), content=content or self.image(),
                        **inputs)

    def style(self, layers: list | None = None, style: list | None = None, **inputs) -> list:
        return self.add("ReverieStyleLoss", layers=layers or self.layers(), style=style or self.image(), **inputs)

    def dream_objective(self, **inputs) -> list:
        return self.add("ReverieDreamObjective", layers=self.layers(), **inputs)

    def optimize(self, objective: list, **inputs) -> dict:
        inputs = {"steps": 1, "size": 64, **inputs}
        return self._save(self.add("ReverieOptimize", objective=objective, **inputs))

    def dream_video(self, frames: list | None = None, **inputs) -> dict:
        inputs = {"steps": 1, "refresh_steps": 1, **inputs}
        return self._save(self.add("ReverieDreamVideo", frames=frames or self.image(), layers=self.layers(),
                                   **inputs))

    def stylise_video(self, **inputs) -> dict:
        inputs = {"steps": 1, "refresh_steps": 1, **inputs}
        return self._save(self.add("ReverieStyliseVideo", frames=self.image(), objective=self.content(), **inputs))
