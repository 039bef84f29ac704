"""Weighted layer selections, as users write them: `inception_4c/output: 1.0`, `mixed4#97: 0.5`."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .features import layer_channels
from .models import CNN
from .objectives import ActivationL2, ChannelMean, GuideDot, LogActivationL2, Objective, Sum

MAX_WEIGHT = 1e6  # as the loss nodes' weight inputs; far larger weights overflow float32 losses
ENTRY = re.compile(r"^(?P<layer>[^\s:#]+)(?:#(?P<channel>\d+))?(?:\s*:\s*(?P<weight>[-+0-9.eE]+))?$")


@dataclass(frozen=True)
class LayerWeight:
    layer: str
    weight: float = 1.0
    channel: int | None = None

    def __str__(self) -> str:
        channel = "" if self.channel is None else f"#{self.channel}"
        return f"{self.layer}{channel}: {self.weight:g}"


@dataclass(frozen=True)
class LayerSelection:
    """Weighted layers (optionally single channels) of one loaded CNN."""

    cnn: CNN
    entries: tuple[LayerWeight, ...]

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(e.layer for e in self.entries))

    def whole_layers(self, what: str) -> dict[str, float]:
        """Layer weights for a loss over whole layers (`what`, e.g. "Content Loss"); channels make no sense there."""
        if any(e.channel is not None for e in self.entries):
            raise ValueError(f"{what} compares whole layers: remove the '#channel' part of its layer entries.")
        return {e.layer: e.weight for e in self.entries}

    def dream_objective(self, log_scale: bool = False) -> Objective:
        """Amplify each entry: a whole layer's L2 power (its log with `log_scale`, for objectives that
        join relative losses), or one channel's mean."""
        power = LogActivationL2 if log_scale else ActivationL2
        return Sum(e.weight * (power(e.layer) if e.channel is None else ChannelMean(e.layer, e.channel))
                   for e in self.entries)

    def guided_objective(self, guide_feats: dict) -> Objective:
        """Pull each layer towards the guide image's features (channels are not used)."""
        return Sum(e.weight * GuideDot(e.layer, guide_feats[e.layer]) for e in self.entries)


def parse_layers(cnn: CNN, text: str) -> LayerSelection:
    """Parses one `layer[#channel][: weight]` per line or comma and checks each against `cnn`."""
    items = [item.strip() for line in text.splitlines() for item in line.split(",") if item.strip()]
    if not items:
        defaults = ", ".join(f"{k}: {v:g}" for k, v in cnn.spec.default_layers.items())
        raise ValueError(f"No layers given. Write one 'layer: weight' per line, e.g. {defaults}.")
    entries = []
    for item in items:
        match = ENTRY.match(item)
        if not match:
            raise ValueError(f"Cannot read layer entry {item!r}: write 'layer', 'layer: weight' or "
                             f"'layer#channel: weight' (e.g. 'inception_4c/output: 1.0').")
        layer = cnn.layer(match["layer"]).name
        try:
            weight = float(match["weight"]) if match["weight"] else 1.0
        except ValueError:
            raise ValueError(f"Weight {match['weight']!r} of layer {layer!r} is not a number.") from None
        if not abs(weight) <= MAX_WEIGHT:
            raise ValueError(f"Weight {match['weight']!r} of layer {layer!r} is outside "
                             f"{-MAX_WEIGHT:g}..{MAX_WEIGHT:g}; weights set the layers' proportions, usually "
                             f"between -10 and 10.")
        entries.append(LayerWeight(layer, weight, int(match["channel"]) if match["channel"] else None))
    _check_channels(cnn, entries)
    if all(e.weight == 0 for e in entries):
        raise ValueError("Every layer weight is 0: nothing to optimise. Give at least one layer a non-zero weight.")
    return LayerSelection(cnn, tuple(entries))


def _check_channels(cnn: CNN, entries: list[LayerWeight]) -> None:
    """Every `layer#channel` names a channel the layer has."""
    picked = [e for e in entries if e.channel is not None]
    if not picked:
        return
    channels = layer_channels(cnn, [e.layer for e in picked])
    for e in picked:
        if e.channel >= channels[e.layer]:
            raise ValueError(f"Layer {e.layer!r} has {channels[e.layer]} channels (0..{channels[e.layer] - 1}); "
                             f"got channel {e.channel} in '{e.layer}#{e.channel}'.")
