"""Class names of a classifier layer: where they come from and finding classes by name.

Names come, in this order, from the weight file's safetensors metadata `reverie.classes` (one name per
line), from a text file beside the weights named after them (`places365.safetensors` →
`places365.classes.txt`, one name per line), or, for a 1000-class classifier, from ImageNet's names as
torchvision ships them (the ILSVRC-2012 order every ImageNet checkpoint uses). Lines may carry the
decorations of published lists: a leading WordNet id (`n01440764 tench`), Places' `/a/` prefix and
trailing index (`/a/airfield 0`); underscores read as spaces.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

CLASSES_METADATA = "reverie.classes"
CLASSES_SUFFIX = ".classes.txt"
IMAGENET_CLASSES = 1000
WORDNET_ID = re.compile(r"^n\d{8}\s+")
PLACES_PREFIX = re.compile(r"^/[a-z]/")


@dataclass(frozen=True)
class ClassNames:
    """The names of a classifier's classes, in output order, and where they were read."""

    names: tuple[str, ...]
    source: str

    def find(self, query: str) -> list[int]:
        """The classes named exactly `query` (case and spacing aside), else every class whose name contains it."""
        key = normalise(query)
        lowered = [normalise(n) for n in self.names]
        exact = [i for i, n in enumerate(lowered) if n == key]
        return exact or [i for i, n in enumerate(lowered) if key in n]

    def closest(self, query: str, n: int = 5) -> list[str]:
        """The `n` names most similar to `query`."""
        key = normalise(query)

        def similarity(name: str) -> float:  # to the whole name or its best-matching word
            parts = [normalise(name), *normalise(name).split()]
            return max(difflib.SequenceMatcher(None, key, part).ratio() for part in parts)
        return sorted(self.names, key=similarity, reverse=True)[:n]

    def label(self, index: int) -> str:
        return f"{self.names[index]} ({index})"


def normalise(name: str) -> str:
    return " ".join(name.lower().split())


def parse_names(text: str) -> tuple[str, ...]:
    """One class name per line, published lists' decorations removed (see the module's docstring)."""
    names = []
    for i, line in enumerate(line for line in text.splitlines() if line.strip()):
        name = WORDNET_ID.sub("", PLACES_PREFIX.sub("", line.strip()))
        head, _, tail = name.rpartition(" ")
        if head and tail == str(i):  # Places' "/a/airfield 0": the line's own index
            name = head
        names.append(" ".join(name.replace("_", " ").split()))
    return tuple(names)


def imagenet_names() -> tuple[str, ...]:
    """ImageNet's 1000 class names in the ILSVRC-2012 order, from torchvision's weights metadata."""
    from torchvision.models import GoogLeNet_Weights  # imported when needed: loading the registry stays light
    return tuple(GoogLeNet_Weights.IMAGENET1K_V1.meta["categories"])


def class_names(path: str | Path, metadata: dict[str, str], count: int) -> ClassNames | None:
    """The names of the `count` classes of the weights at `path` (None when no source has them); a ValueError
    when a source lists another number of names than the classifier has classes."""
    path = Path(path)
    text_file = path.with_name(path.stem + CLASSES_SUFFIX)
    if CLASSES_METADATA in metadata:
        found = ClassNames(parse_names(metadata[CLASSES_METADATA]), f"the {CLASSES_METADATA} metadata of {path.name}")
    elif text_file.is_file():
        found = ClassNames(parse_names(text_file.read_text(encoding="utf-8")), text_file.name)
    elif count == IMAGENET_CLASSES:
        return ClassNames(imagenet_names(), "ImageNet's class names")
    else:
        return None
    if len(found.names) != count:
        raise ValueError(f"{found.source} lists {len(found.names)} class names but the classifier of {path.name} "
                         f"has {count} classes: give one name per class, in order.")
    return found


def missing_names_hint(weights: str) -> str:
    """How to give a classifier without names its names."""
    stem = Path(weights).stem
    return (f"put the names, one per line in class order, into {stem}{CLASSES_SUFFIX} beside {weights} "
            f"(or into its safetensors metadata {CLASSES_METADATA!r})")
