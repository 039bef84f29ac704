"""The class names of a loaded CNN's classifier, in the order of its outputs.

Names come from, in this order: the weights file's safetensors metadata `reverie.classes` (names joined
by newlines); a text file beside the weights named `<weights stem>.classes.txt` (one name per line; when
every line ends in its own index, as in Places365's `categories_places365.txt`, the indices go); for a
1000-way classifier, torchvision's ImageNet categories (the order of every ImageNet net here). A
classifier without names gets None and a warning: its classes are then only indices.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from .models import CNN
from .weights import read_metadata

CLASSES_METADATA = "reverie.classes"
CLASSES_SUFFIX = ".classes.txt"
IMAGENET_CLASSES = 1000


def class_names(cnn: CNN) -> tuple[list[str] | None, list[str]]:
    """(names of the classifier's outputs or None, warnings saying why there are none or which were ignored)."""
    spec = cnn.spec
    if spec.classifier is None:
        return None, [f"{spec.title} has no classifier layer, so it has no class names."]
    layer = spec.layer(spec.classifier)
    if layer.stage >= cnn.depth:
        return None, [f"{cnn.weights} has no weights for the classifier {spec.classifier!r} (a partial file), "
                      f"so it has no classes."]
    width = classifier_width(cnn.module.get_submodule(layer.module))
    warnings: list[str] = []
    for source, names in _named_sources(cnn.path):
        if len(names) == width:
            return names, warnings
        warnings.append(f"{source} lists {len(names)} class names but {spec.classifier!r} has {width} outputs: "
                        f"its names were not used.")
    if width == IMAGENET_CLASSES:
        from torchvision.models import GoogLeNet_Weights  # torchvision ships the ImageNet names with its weights
        return list(GoogLeNet_Weights.IMAGENET1K_V1.meta["categories"]), warnings
    stem = cnn.path.stem if cnn.path else "<weights file name>"
    warnings.append(f"No class names for the {width} classes of {cnn.weights}: classes are indices 0-{width - 1}. "
                    f"Put one name per line in {stem}{CLASSES_SUFFIX} beside the weights (or a safetensors "
                    f"metadata entry {CLASSES_METADATA!r}).")
    return None, warnings


def classifier_width(module: nn.Module) -> int:
    """The number of outputs of a linear or convolutional classifier."""
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    raise TypeError(f"A classifier must be nn.Linear or nn.Conv2d; got {type(module).__name__}.")


def _named_sources(path: Path | None) -> list[tuple[str, list[str]]]:
    """(where, names) for each source of names that the weights file has."""
    if path is None:
        return []
    sources = []
    listed = read_metadata(path).get(CLASSES_METADATA)
    if listed:
        sources.append((f"{path.name}'s metadata {CLASSES_METADATA!r}", _lines(listed)))
    text = path.with_name(path.stem + CLASSES_SUFFIX)
    if text.is_file():
        sources.append((text.name, _without_indices(_lines(text.read_text(encoding="utf-8")))))
    return sources


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _without_indices(names: list[str]) -> list[str]:
    """`/a/airfield 0`, `/a/airplane_cabin 1`, ... (every line ends in its index) -> the names alone."""
    indexed = [name.rsplit(None, 1) for name in names]
    if all(len(parts) == 2 and parts[1] == str(i) for i, parts in enumerate(indexed)):
        return [parts[0] for parts in indexed]
    return names
