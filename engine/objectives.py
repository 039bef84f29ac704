"""Objectives: modules mapping layer activations to one loss per image, to be minimised.

Terms compose with `+`, `*` and unary `-`, so `print(objective)` shows the whole recipe:
`2 * ActivationL2("inception_4c/output") + ChannelMean("inception_4d/output", 97)`.
DeepDream terms return the *negative* of what they amplify.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

Features = dict[str, torch.Tensor]


class Objective(nn.Module):
    """`forward(feats, image)` returns a loss per batch element, shape [B]."""

    def layers(self) -> set[str]:
        """The layers this objective reads."""
        return set()

    def forward(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __add__(self, other: Objective) -> Objective:
        return Sum([*_terms(self), *_terms(other)])

    def __mul__(self, weight: float) -> Objective:
        return Scale(self, float(weight))

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return Scale(self, -1.0)

    def __sub__(self, other: Objective) -> Objective:
        return self + (-other)


def _terms(objective: Objective) -> list[Objective]:
    return list(objective.terms) if isinstance(objective, Sum) else [objective]


class Sum(Objective):
    def __init__(self, terms: Iterable[Objective]):
        super().__init__()
        self.terms = nn.ModuleList(terms)

    def layers(self) -> set[str]:
        return set().union(*(t.layers() for t in self.terms))

    def forward(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        return sum(t(feats, image) for t in self.terms)


class Scale(Objective):
    def __init__(self, term: Objective, weight: float):
        super().__init__()
        self.term, self.weight = term, weight

    def layers(self) -> set[str]:
        return self.term.layers()

    def forward(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        return self.weight * self.term(feats, image)

    def extra_repr(self) -> str:
        return f"weight={self.weight:g}"


class LayerTerm(Objective):
    """A term reading one layer."""

    def __init__(self, layer: str):
        super().__init__()
        self.layer = layer

    def layers(self) -> set[str]:
        return {self.layer}

    def extra_repr(self) -> str:
        return repr(self.layer)


def _spatial_mean(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).mean(1)


class ActivationL2(LayerTerm):
    """Amplifies everything a layer responds to: minus the mean squared activation (DeepDream)."""

    def forward(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        return -_spatial_mean(feats[self.layer].pow(2))


class LogActivationL2(LayerTerm):
    """ActivationL2 on a log scale: minus the log of the mean squared activation.

    Its gradient does not depend on the net's activation scale (Caffe nets run ~60× larger than
    torchvision ones) and weakens as the layer grows, so its weight means the same beside losses that
    are relative to their targets (the style and content losses) and it cannot run away from them.
    """

    def forward(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        return -torch.log(_spatial_mean(feats[self.layer].pow(2)) + 1e-12)


class ChannelMean(LayerTerm):
    """Amplifies one channel of a conv layer (or one unit of a flat layer, such as a class logit)."""

    def __init__(self, layer: str, channel: int):
        super().__init__(layer)
        self.channel = channel

    def forward(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        act = feats[self.layer]
        if not 0 <= self.channel < act.shape[1]:
            raise ValueError(f"Layer {self.layer!r} has {act.shape[1]} channels (0..{act.shape[1] - 1}); "
                             f"got channel {self.channel}.")
        return -_spatial_mean(act[:, self.channel])

    def extra_repr(self) -> str:
        return f"{self.layer!r}, channel={self.channel}"


class GuideDot(LayerTerm):
    """Pulls each position of a layer towards its best-matching feature of a guide image
    (the DeepDream notebook's guided dream: maximise the dot product with the closest guide vector)."""

    def __init__(self, layer: str, guide: torch.Tensor):
        super().__init__(layer)
        self.register_buffer("guide", guide.flatten(2).transpose(1, 2).mean(0))  # [N, C]

    def forward(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        act = feats[self.layer].flatten(2).transpose(1, 2)  # [B, HW, C]
        best = self.guide[(act.detach() @ self.guide.T).argmax(-1)]  # [B, HW, C]
        return -(act * best).sum(-1).mean(1)
