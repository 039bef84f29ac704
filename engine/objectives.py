"""Objectives: modules mapping layer activations to one loss per image, to be minimised.

Terms compose with `+`, `*` and unary `-`, so `print(objective)` shows the whole recipe:
`2 * ActivationL2("inception_4c/output") + ChannelMean("inception_4d/output", 97)`.
DeepDream terms return the *negative* of what they amplify.

Every built-in term is a function of sums over positions: `sums(feats, image, region)` adds up what
it needs over the positions `region` covers (the whole image, or a tile's own part) and
`total(sums)` turns the sums of all regions into the loss. So a large image can be scored tile by
tile and still get exactly the whole image's loss and gradient (see tiles.py). An objective that
only defines `forward` works on whole images.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import nn

Features = dict[str, torch.Tensor]
Sums = dict[str, torch.Tensor]


class Region:
    """The positions an evaluation covers: the whole image. `tiles.TileRegion` is a tile's own part."""

    def crop(self, layer: str, full: torch.Tensor) -> torch.Tensor:
        """The covered part of a map made for the whole image at `layer`'s resolution (targets, masks)."""
        return full

    def size(self, layer: str, act: torch.Tensor) -> tuple[int, int]:
        """The whole image's feature-map size at `layer`."""
        return tuple(act.shape[-2:])

    def pixels(self, image: torch.Tensor) -> torch.Tensor:
        """The covered pixels of the image being scored (a tile's crop holds its halo too)."""
        return image

    def pixel_crop(self, full: torch.Tensor) -> torch.Tensor:
        """The covered part of a map made for the whole image at pixel resolution."""
        return full

    def neighbours(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Differences of horizontal and vertical pixel neighbours whose first pixel is covered."""
        return image[..., :, 1:] - image[..., :, :-1], image[..., 1:, :] - image[..., :-1, :]


WHOLE = Region()


class Objective(nn.Module):
    """`forward(feats, image)` returns a loss per batch element, shape [B].

    `STORED` names (or name prefixes of) the buffers as large as the image (targets, masks, images), which
    `place` keeps where the image is, so that a print larger than the device's memory can keep them in host
    memory; each tile crops them and moves its crop to the device of the features it meets.
    """

    STORED: tuple[str, ...] = ()

    def layers(self) -> set[str]:
        """The layers this objective reads."""
        return set()

    @property
    def linear(self) -> bool:
        """Whether `total` is linear in the sums, so its gradient needs no whole-image statistics."""
        return True

    def sums(self, feats: Features, image: torch.Tensor, region: Region = WHOLE) -> Sums:
        """What the loss needs, summed over the positions of `region` (features cover those positions only)."""
        raise NotImplementedError(f"{type(self).__name__} defines only forward: it cannot be evaluated in tiles.")

    def total(self, sums: Sums) -> torch.Tensor:
        """The loss per image from the sums over all positions."""
        raise NotImplementedError

    def extrapolate(self, last: Sums, before: Sums) -> Sums:
        """The sums expected at the next step from the last two steps' (lagged tile statistics): a line."""
        return {key: 2 * value - before[key] for key, value in last.items()}

    def forward(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        return self.total(self.sums(feats, image))

    def place(self, compute: torch.device, storage: torch.device) -> Objective:
        """Moves the buffers of every term to `compute` (the network's device), the `STORED` ones to `storage`
        (the image's); returns self."""
        for module in self.modules():
            for name, buffer in module.named_buffers(recurse=False):
                stored = name.startswith(getattr(module, "STORED", ()))
                setattr(module, name, buffer.to(storage if stored else compute))
        return self

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

    @property
    def linear(self) -> bool:
        return all(t.linear for t in self.terms)

    def sums(self, feats: Features, image: torch.Tensor, region: Region = WHOLE) -> Sums:
        return {f"{i}/{key}": value for i, t in enumerate(self.terms)
                for key, value in t.sums(feats, image, region).items()}

    def total(self, sums: Sums) -> torch.Tensor:
        return sum(t.total(_part(sums, f"{i}/")) for i, t in enumerate(self.terms))

    def extrapolate(self, last: Sums, before: Sums) -> Sums:
        return {f"{i}/{key}": value for i, t in enumerate(self.terms)
                for key, value in t.extrapolate(_part(last, f"{i}/"), _part(before, f"{i}/")).items()}

    def forward(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        return sum(t(feats, image) for t in self.terms)


def _part(sums: Sums, prefix: str) -> Sums:
    return {key[len(prefix):]: value for key, value in sums.items() if key.startswith(prefix)}


class Scale(Objective):
    def __init__(self, term: Objective, weight: float):
        super().__init__()
        self.term, self.weight = term, weight

    def layers(self) -> set[str]:
        return self.term.layers()

    @property
    def linear(self) -> bool:
        return self.term.linear

    def sums(self, feats: Features, image: torch.Tensor, region: Region = WHOLE) -> Sums:
        return self.term.sums(feats, image, region)

    def total(self, sums: Sums) -> torch.Tensor:
        return self.weight * self.term.total(sums)

    def extrapolate(self, last: Sums, before: Sums) -> Sums:
        return self.term.extrapolate(last, before)

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


def per_image_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum over everything but the batch dimension."""
    return x.reshape(x.shape[0], -1).sum(1)


def count(x: torch.Tensor) -> torch.Tensor:
    """How many values one image of `x` holds, as a tensor beside it (sums add up over regions)."""
    return x.new_tensor(float(x[0].numel()))


class ActivationL2(LayerTerm):
    """Amplifies everything a layer responds to: minus the mean squared activation (DeepDream)."""

    def sums(self, feats: Features, image: torch.Tensor, region: Region = WHOLE) -> Sums:
        act = feats[self.layer]
        return {"power": per_image_sum(act.pow(2)), "n": count(act)}

    def total(self, sums: Sums) -> torch.Tensor:
        return -sums["power"] / sums["n"]


class LogActivationL2(ActivationL2):
    """ActivationL2 on a log scale: minus the log of the mean squared activation.

    Its gradient does not depend on the net's activation scale (Caffe nets run ~60× larger than
    torchvision ones) and weakens as the layer grows, so its weight means the same beside losses that
    are relative to their targets (the style and content losses) and it cannot run away from them.
    """

    @property
    def linear(self) -> bool:
        return False

    def total(self, sums: Sums) -> torch.Tensor:
        return -torch.log(sums["power"] / sums["n"] + 1e-12)


class ChannelMean(LayerTerm):
    """Amplifies chosen channels of a conv layer (or units of a flat layer, such as class logits): minus
    their mean activation over the channels and positions.

    `channels` is one channel, a list of them, or one list per image of the batch (all of one length:
    the `#topK` channels each image responds to most).
    """

    def __init__(self, layer: str, channels: int | Sequence[int] | Sequence[Sequence[int]]):
        super().__init__(layer)
        rows = [[channels]] if isinstance(channels, int) else [list(channels)] if isinstance(channels[0], int) \
            else [list(row) for row in channels]
        self.register_buffer("index", torch.tensor(rows, dtype=torch.long))  # [1 or B, k]

    def sums(self, feats: Features, image: torch.Tensor, region: Region = WHOLE) -> Sums:
        act = feats[self.layer]
        highest = int(self.index.max())
        if highest >= act.shape[1]:
            raise ValueError(f"Layer {self.layer!r} has {act.shape[1]} channels (0..{act.shape[1] - 1}); "
                             f"got channel {highest}.")
        if self.index.shape[0] not in (1, act.shape[0]):
            raise ValueError(f"Channels of {self.layer!r} were chosen for {self.index.shape[0]} images; "
                             f"the batch has {act.shape[0]}.")
        index = self.index.view(*self.index.shape, *(1,) * (act.dim() - 2))
        chosen = act.gather(1, index.expand(act.shape[0], -1, *act.shape[2:]))
        return {"sum": per_image_sum(chosen), "n": count(chosen)}

    def total(self, sums: Sums) -> torch.Tensor:
        return -sums["sum"] / sums["n"]

    def extra_repr(self) -> str:
        rows = self.index.tolist()
        chosen = rows[0][0] if self.index.numel() == 1 else rows[0] if len(rows) == 1 else rows
        return f"{self.layer!r}, channel={chosen}"


class ChannelPerImage(LayerTerm):
    """Amplifies a different channel in each image: image i the mean of channel `channels[i]` (feature
    visualisation renders several channels in one batch)."""

    def __init__(self, layer: str, channels: Sequence[int]):
        super().__init__(layer)
        self.channels = tuple(channels)
        self.register_buffer("index", torch.tensor(self.channels, dtype=torch.long))

    def sums(self, feats: Features, image: torch.Tensor, region: Region = WHOLE) -> Sums:
        act = feats[self.layer]
        if len(self.channels) != act.shape[0] or not 0 <= min(self.channels) <= max(self.channels) < act.shape[1]:
            raise ValueError(f"Layer {self.layer!r} has {act.shape[1]} channels (0..{act.shape[1] - 1}) and the "
                             f"batch {act.shape[0]} images; got channels {list(self.channels)}, one per image.")
        chosen = act[torch.arange(act.shape[0], device=act.device), self.index]
        return {"sum": per_image_sum(chosen), "n": count(chosen)}

    def total(self, sums: Sums) -> torch.Tensor:
        return -sums["sum"] / sums["n"]

    def extra_repr(self) -> str:
        return f"{self.layer!r}, channels={list(self.channels)}"


class GuideDot(LayerTerm):
    """Pulls each position of a layer towards its best-matching feature of a guide image
    (the DeepDream notebook's guided dream: maximise the dot product with the closest guide vector)."""

    def __init__(self, layer: str, guide: torch.Tensor):
        super().__init__(layer)
        self.register_buffer("guide", guide.flatten(2).transpose(1, 2).mean(0))  # [N, C]

    def sums(self, feats: Features, image: torch.Tensor, region: Region = WHOLE) -> Sums:
        act = feats[self.layer].flatten(2).transpose(1, 2)  # [B, HW, C]
        best = self.guide[(act.detach() @ self.guide.T).argmax(-1)]  # [B, HW, C]
        dots = (act * best).sum(-1)
        return {"dot": dots.sum(1), "n": count(dots)}

    def total(self, sums: Sums) -> torch.Tensor:
        return -sums["dot"] / sums["n"]
