"""What the engine knows about an architecture: how to build it, its layers and its input convention."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import nn

from .download import Download

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """Maps RGB images in [0, 1] to what a network was trained on.

    `scale` multiplies first (255 for Caffe nets), then channels are reordered (`bgr`),
    then `mean` and `std` apply in the network's own channel order and value range.
    """

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1.0
    bgr: bool = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.bgr:
            x = x.flip(1)
        mean = x.new_tensor(self.mean).view(1, 3, 1, 1)
        std = x.new_tensor(self.std).view(1, 3, 1, 1)
        return (x * self.scale - mean) / std


TORCHVISION = Preprocess("torchvision", IMAGENET_MEAN, IMAGENET_STD)
CAFFE_VGG = Preprocess("caffe", (103.939, 116.779, 123.68), scale=255.0, bgr=True)
CAFFE_GOOGLENET = Preprocess("caffe", (104.0, 117.0, 123.0), scale=255.0, bgr=True)
# The MIT Places GoogLeNets' mean images, averaged per channel (B, G, R), as pytorch-caffe-models gives them.
CAFFE_PLACES365 = Preprocess("caffe_places365", (104.051, 112.514, 116.676), scale=255.0, bgr=True)
CAFFE_PLACES205 = Preprocess("caffe_places205", (105.417, 113.753, 116.047), scale=255.0, bgr=True)
TENSORFLOW = Preprocess("tensorflow", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


@dataclass(frozen=True)
class Layer:
    """A readable layer name bound to the module whose output it is.

    `stage` is the index of the top-level stage that computes it, so a net can stop early.
    """

    name: str
    module: str
    stage: int


@dataclass(frozen=True)
class ModelSpec:
    """An architecture: builder, stages in forward order, layer catalogue and preprocessing.

    `build` returns a randomly initialised module whose state-dict keys match the weight files.
    `stages` lists dotted module paths that, applied in order, compute the forward pass; any
    `nn.Flatten` the forward needs is named as a stage too. `layers` maps readable names to the
    dotted path of the module whose output is the layer. `preprocess` lists the input conventions
    the architecture accepts, the default first. `convert_keys` maps a weight file's keys onto
    `build()`'s; `default_weights` finds the spec's own weights (a path, or None; it may download, and
    raises a ValueError naming the file to fetch by hand when it cannot). `detect_preprocess` looks at a
    converted state dict and names the input convention it was trained for, or None when it can't tell
    (then the first of `preprocess` applies); it must return one of `preprocess`. `classifier` is the
    layer whose channels are the classes (the logits), if the net has one; when a file's classifier has
    another number of outputs (Places365's 365), that layer is built with the file's width.
    `downloads` are published files of this architecture that Load CNN can fetch into its models folder;
    the first is the default weights when `default_weights` finds none.
    """

    name: str
    title: str
    build: Callable[[], nn.Module]
    stages: tuple[str, ...]
    layers: Mapping[str, str]
    preprocess: tuple[Preprocess, ...]
    min_size: int
    default_layers: Mapping[str, float]
    classifier: str | None = None
    convert_keys: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] = field(default=lambda sd: sd)
    default_weights: Callable[[], str | None] = field(default=lambda: None)
    weights_hint: str = ""
    detect_preprocess: Callable[[dict[str, torch.Tensor]], Preprocess | None] = field(default=lambda sd: None)
    downloads: tuple[Download, ...] = ()

    def layer(self, name: str) -> Layer:
        """The catalogue entry for `name`; a ValueError naming the closest valid names otherwise."""
        if name not in self.layers:
            raise ValueError(unknown_layer_message(name, self))
        path = self.layers[name]
        for i, stage in enumerate(self.stages):
            if path == stage or path.startswith(stage + "."):
                return Layer(name, path, i)
        raise AssertionError(f"{self.name}: layer {name!r} ({path}) lies in no stage")

    def catalogue(self) -> list[Layer]:
        """Every layer in forward order."""
        return sorted((self.layer(n) for n in self.layers), key=lambda l: l.stage)

    def preprocessing(self, name: str | None) -> Preprocess:
        """The named input convention, or the default one for None."""
        if name is None:
            return self.preprocess[0]
        for p in self.preprocess:
            if p.name == name:
                return p
        valid = ", ".join(p.name for p in self.preprocess)
        raise ValueError(f"{self.title} takes preprocessing {valid}; got {name!r}.")


def unknown_layer_message(name: str, spec: ModelSpec) -> str:
    """Says that `name` is not a layer of `spec` and lists the nearest valid names."""
    import difflib

    names = list(spec.layers)
    near = difflib.get_close_matches(name, names, n=5, cutoff=0.0)  # the five most similar, always
    return (f"{spec.title} has no layer {name!r}. Nearest valid names: {', '.join(near)}. "
            f"The 'add layer' list on Select Layers shows all {len(names)}.")
