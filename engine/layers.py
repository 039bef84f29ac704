"""Weighted layer selections, as users write them: `inception_4c/output: 1.0`, `mixed4#3,7,10-20: 0.5`,
`class#golden retriever: 2`.

One entry per line (commas separate entries too):

    entry    = layer ["#" channels] [":" weight]
    channels = item {"," item}          item = N | N-M | topK | class name

`layer` is a layer name or `class`, the architecture's classifier layer. Channels are numbers and
inclusive ranges; `topK` is the K channels each input image responds to most (chosen by `for_image`,
on its own in its entry); on the classifier layer a name picks the class of that exact name, else every
class whose name contains it. After `#` the items run on over commas until one names a layer or holds
its own `#`; the weight after the last item is the whole set's (negative suppresses).
"""
from __future__ import annotations

import difflib
import math
import re
import weakref
from dataclasses import dataclass, field, replace

import torch
from torch.func import functional_call

from .classes import missing_names_hint
from .features import FeatureNet
from .models import CNN
from .objectives import ActivationL2, ChannelMean, GuideDot, LogActivationL2, Objective, Sum
from .pyramid import analysis_size

CLASSIFIER = "class"
MAX_WEIGHT = 1e6  # as the loss nodes' weight inputs; far larger weights overflow float32 losses
NUMBER = re.compile(r"^\d+$")
RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")
TOP = re.compile(r"^top\s*(\d+)$", re.IGNORECASE)
SHOWN_CLASSES = 12  # a note lists at most this many of an entry's classes


@dataclass(frozen=True)
class LayerWeight:
    """One entry: a layer, its weight, and the channels it reads (none: the whole layer).

    `channels` holds one row for every image, or one row per image once `top` channels are chosen.
    """

    layer: str
    weight: float = 1.0
    channels: tuple[tuple[int, ...], ...] = ()
    top: int = 0

    @property
    def whole(self) -> bool:
        return not self.channels and not self.top

    def __str__(self) -> str:
        if self.top:
            chosen = f"#top{self.top}"
        elif self.channels:
            chosen = "#" + compact(self.channels[0])
        else:
            chosen = ""
        return f"{self.layer}{chosen}: {self.weight:g}"


def describe(cnn: CNN, layer: str, channels: tuple[int, ...]) -> str:
    """The chosen channels in words: class names with their indices on a named classifier, else numbers."""
    names = cnn.names_of(layer)
    if names is None:
        return "channels " + compact(channels)
    shown = ", ".join(names.label(c) for c in channels[:SHOWN_CLASSES])
    more = f" and {len(channels) - SHOWN_CLASSES} more" if len(channels) > SHOWN_CLASSES else ""
    return f"{len(channels)} class{'es' if len(channels) > 1 else ''}: {shown}{more}"


def compact(channels: tuple[int, ...]) -> str:
    """Sorted channels written with ranges: (3, 7, 10, 11, 12) -> '3,7,10-12'."""
    runs: list[list[int]] = []
    for c in channels:
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


@dataclass(frozen=True)
class LayerSelection:
    """Weighted layers (or channel sets) of one loaded CNN; `notes` say what names and `topK` chose."""

    cnn: CNN
    entries: tuple[LayerWeight, ...]
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(e.layer for e in self.entries))

    @property
    def chooses_channels(self) -> bool:
        """Whether some entry's channels are still to be chosen on the input image (`topK`)."""
        return any(e.top and not e.channels for e in self.entries)

    def for_image(self, image: torch.Tensor) -> LayerSelection:
        """This selection with every `topK` entry's channels chosen per image of the BCHW batch `image`: the K
        with the highest mean activation, read at most 512 px on the longer side. Its notes say which (none
        without topK entries)."""
        if not self.chooses_channels:
            return replace(self, notes=())
        net = FeatureNet(self.cnn, [e.layer for e in self.entries if e.top])
        with torch.no_grad():
            feats = net(analysis_size(image, net.min_size))
        entries, notes = [], []
        for e in self.entries:
            if e.top:
                act = feats[e.layer]
                means = act.flatten(2).mean(2) if act.dim() > 2 else act
                rows = tuple(tuple(r) for r in means.topk(e.top, dim=1).indices.sort(1).values.tolist())
                e = replace(e, channels=rows)
                for i, row in enumerate(rows):
                    image_label = f" on image {i + 1}" if len(rows) > 1 else ""
                    notes.append(f"{e.layer}#top{e.top}{image_label} → {describe(self.cnn, e.layer, row)}")
            entries.append(e)
        return replace(self, entries=tuple(entries), notes=tuple(notes))

    def whole_layers(self, what: str) -> dict[str, float]:
        """Layer weights for a loss over whole layers (`what`, e.g. "Content Loss"); channels make no sense there."""
        if not all(e.whole for e in self.entries):
            raise ValueError(f"{what} compares whole layers: remove the '#channel' part of its layer entries.")
        return {e.layer: e.weight for e in self.entries}

    def dream_objective(self, log_scale: bool = False) -> Objective:
        """Amplify each entry: a whole layer's L2 power (its log with `log_scale`, for objectives that
        join relative losses), or its channels' mean."""
        if self.chooses_channels:
            pending = ", ".join(str(e) for e in self.entries if e.top and not e.channels)
            raise ValueError(f"{pending}: the channels of a topK entry are chosen on an input image "
                             f"(LayerSelection.for_image) before dreaming.")
        power = LogActivationL2 if log_scale else ActivationL2
        return Sum(e.weight * (power(e.layer) if e.whole else ChannelMean(e.layer, e.channels))
                   for e in self.entries)

    def guided_objective(self, guide_feats: dict) -> Objective:
        """Pull each layer towards the guide image's features (channels are not used)."""
        return Sum(e.weight * GuideDot(e.layer, guide_feats[e.layer]) for e in self.entries)


@dataclass
class _Written:
    """An entry as written: layer text, channel items, weight text."""

    layer: str
    items: list[str]
    weight: str | None
    has_channels: bool

    @property
    def open(self) -> bool:
        return self.has_channels and self.weight is None


def parse_layers(cnn: CNN, text: str) -> LayerSelection:
    """Reads the entries of `text` (see the module's docstring) and checks each against `cnn`."""
    written = _split(cnn, text)
    if not written:
        defaults = ", ".join(f"{k}: {v:g}" for k, v in cnn.spec.default_layers.items())
        raise ValueError(f"No layers given. Write one 'layer: weight' per line, e.g. {defaults}.")
    entries, notes = [], []
    for w in written:
        layer = _layer(cnn, w.layer)
        weight = _weight(w.weight, layer)
        if not w.has_channels:
            entries.append(LayerWeight(layer, weight))
            continue
        entry, note = _channels(cnn, layer, w.items, weight)
        entries.append(entry)
        notes += note
    if all(e.weight == 0 for e in entries):
        raise ValueError("Every layer weight is 0: nothing to optimise. Give at least one layer a non-zero weight.")
    return LayerSelection(cnn, tuple(entries), tuple(notes))


def _split(cnn: CNN, text: str) -> list[_Written]:
    """The entries of `text`: lines and commas separate them, except that after `#` items run on (see the
    module's docstring)."""
    entries: list[_Written] = []
    for line in text.splitlines():
        current: _Written | None = None
        for piece in (p.strip() for p in line.split(",")):
            if not piece:
                continue
            body, colon, weight = piece.rpartition(":") if ":" in piece else (piece, "", "")
            body, weight = body.strip(), (weight.strip() if colon else None)
            if current is not None and current.open and "#" not in body and not _names_layer(cnn, body):
                current.items.append(body)
                current.weight = weight
                continue
            layer, hash_, items = body.partition("#")
            current = _Written(layer.strip(), [items.strip()] if hash_ else [], weight, bool(hash_))
            entries.append(current)
    return entries


def _names_layer(cnn: CNN, text: str) -> bool:
    return text == CLASSIFIER or text in cnn.spec.layers


def _layer(cnn: CNN, name: str) -> str:
    if not name:
        raise ValueError(f"An entry starts with '#': write its layer first, e.g. '{CLASSIFIER}#12' for a class "
                         f"or '{next(iter(cnn.spec.default_layers))}#12' for a channel.")
    if name == CLASSIFIER:
        if cnn.spec.classifier is None:
            raise ValueError(f"{cnn.spec.title} has no classifier layer: '{CLASSIFIER}#...' cannot be used with it.")
        name = cnn.spec.classifier
    return cnn.layer(name).name


def _weight(text: str | None, layer: str) -> float:
    if text is None:
        return 1.0
    try:
        weight = float(text)
    except ValueError:
        weight = math.nan
    if math.isnan(weight):
        raise ValueError(f"Weight {text!r} of layer {layer!r} is not a number: write one such as 0.5 or -2.")
    if not abs(weight) <= MAX_WEIGHT:
        raise ValueError(f"Weight {text!r} of layer {layer!r} is outside {-MAX_WEIGHT:g}..{MAX_WEIGHT:g}; weights "
                         f"set the layers' proportions, usually between -10 and 10.")
    return weight


def _channels(cnn: CNN, layer: str, items: list[str], weight: float) -> tuple[LayerWeight, list[str]]:
    """The entry for `layer#items`, checked against the layer's channel count, and the notes it makes."""
    count = channel_count(cnn, layer)
    span = f"{layer!r} has {count} channels (0..{count - 1})"
    classifier = layer == cnn.spec.classifier
    chosen: list[int] = []
    top = 0
    for item in items:
        if not item:
            raise ValueError(f"Nothing follows '#' in an entry of {layer!r}: write channels (3,7,10-20), "
                             f"topK{' or class names' if classifier else ''}.")
        if match := TOP.match(item):
            top = int(match[1])
            if top == 0:
                raise ValueError(f"{layer}#{item} picks no channels: K of topK must be at least 1.")
            if top > count:
                raise ValueError(f"{layer}#{item} asks for more channels than there are: {span}.")
        elif NUMBER.match(item) or RANGE.match(item):
            first, last = (int(item), int(item)) if NUMBER.match(item) else map(int, RANGE.match(item).groups())
            if first > last:
                raise ValueError(f"Channel range {item!r} of {layer!r} runs backwards: write {last}-{first}.")
            if last >= count:
                raise ValueError(f"{layer}#{item} is out of range: {span}.")
            chosen += range(first, last + 1)
        else:
            chosen += _classes(cnn, layer, item, classifier)
    if top and len(items) > 1:
        raise ValueError(f"{layer}#{','.join(items)}: topK chooses its channels itself; give it its own entry "
                         f"({layer}#top{top}, {layer}#...).")
    if top:
        return LayerWeight(layer, weight, top=top), []
    channels = tuple(sorted(set(chosen)))
    entry = LayerWeight(layer, weight, (channels,))
    notes = []
    if classifier:
        notes.append(f"{CLASSIFIER}#{','.join(items)} → {describe(cnn, layer, channels)}")
        if cnn.class_names is None:
            notes.append(f"{layer} of {cnn.weights} has {count} classes but no names: classes are chosen by "
                         f"index only; {missing_names_hint(cnn.weights)}.")
    return entry, notes


def _classes(cnn: CNN, layer: str, name: str, classifier: bool) -> list[int]:
    """The classes a name picks on the classifier layer; a ValueError saying why not otherwise."""
    if not classifier:
        where = (f"the classifier layer is {cnn.spec.classifier!r} (write {CLASSIFIER}#{name})"
                 if cnn.spec.classifier else f"{cnn.spec.title} has no classifier layer")
        near = difflib.get_close_matches(name, list(cnn.spec.layers), n=3, cutoff=0.75)
        typo = f" If {name!r} is a layer: nearest valid names {', '.join(near)}." if near else ""
        raise ValueError(f"{layer}#{name}: {name!r} is not a channel number, range (10-20) or topK, and class names "
                         f"select classes of the classifier only: {where}.{typo}")
    names = cnn.class_names
    if names is None:
        raise ValueError(f"{layer} of {cnn.weights} has no class names, so {name!r} cannot be looked up: choose "
                         f"classes by index ({CLASSIFIER}#12) or {missing_names_hint(cnn.weights)}.")
    found = names.find(name)
    if not found:
        raise ValueError(f"No class of {cnn.spec.title} is named {name!r} or contains it. Closest names: "
                         f"{', '.join(names.closest(name))}.")
    return found


_CHANNELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # module -> {layer: channel count}


def channel_count(cnn: CNN, layer: str) -> int:
    """How many channels (or units) `layer` has: a shape-only forward on the meta device, remembered."""
    known = _CHANNELS.setdefault(cnn.module, {})
    if layer not in known:
        net = FeatureNet(cnn, [layer])
        meta = {k: v.to("meta") for k, v in (*net.named_parameters(), *net.named_buffers())}
        size = cnn.spec.min_size
        with torch.no_grad():
            feats = functional_call(net, meta, (torch.empty(1, 3, size, size, device="meta"),))
        known[layer] = feats[layer].shape[1]
    return known[layer]
