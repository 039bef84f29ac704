"""Feature visualisation (Olah et al. 2017, Lucid): images, made from noise, that a channel responds to.

Each image of a batch maximises the mean of its own channel, through a Fourier parameterisation in
decorrelated colour (parameterise.py) and Lucid's random pad, jitter, scale and rotation every step
(transforms.py), with Adam on the parameters. Several channels render at once, one image each.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .features import FeatureNet
from .layers import LayerSelection, LayerWeight, parse_layers
from .models import CNN
from .objectives import ChannelPerImage
from .optimize import Callback, feature_loss, optimize, whole_image
from .parameterise import parameterisation
from .redirection import RedirectedReLU
from .tiles import LossFn
from .transforms import compose, lucid_transforms

REDIRECT_STEPS = 16  # Lucid's: the ReLU gradient is redirected for the first 16 steps of each batch


@dataclass(frozen=True)
class VisualiseSettings:
    """`size`: side of each square image; `steps` of Adam at `lr` (Lucid's 0.05); `batch`: channels
    rendered at once (one image each: faster than one by one, memory grows with it); `parameterisation`:
    one of parameterise.PARAMETERISATIONS."""

    size: int = 128
    steps: int = 256
    lr: float = 0.05
    batch: int = 8
    seed: int = 0
    parameterisation: str = "fourier"

    def __post_init__(self):
        if self.steps < 1 or self.batch < 1:
            raise ValueError(f"steps and batch must be at least 1; got {self.steps} and {self.batch}.")
        if not self.lr > 0:
            raise ValueError(f"The learning rate must be > 0; got {self.lr}.")


def channel_entry(cnn: CNN, layer: str, channels: str) -> LayerWeight:
    """The channels of `layer` (empty: the model's dream layer) that `channels` names, in Select Layers'
    grammar after '#': numbers and ranges ('3, 7, 10-20'), 'topK', or on a classifier class names."""
    layer = layer.strip() or next(iter(cnn.spec.default_layers))
    if not channels.strip():
        raise ValueError("channels is empty: list some (e.g. '0-7', '3, 7, 10-20') or write 'top8' for the eight "
                         "most active on an image.")
    entries = parse_layers(cnn, f"{layer}#{channels}").entries
    if len(entries) != 1:
        raise ValueError(f"channels {channels!r} names other layers ({', '.join(e.layer for e in entries[1:])}): "
                         f"give the layer in 'layer' and only channels here.")
    return entries[0]


def chosen_channels(cnn: CNN, entry: LayerWeight, image: torch.Tensor | None) -> list[int]:
    """The entry's channels; for `topK`, the K most active on each image of the BCHW `image`, together."""
    if not entry.top:
        return list(entry.channels[0])
    if image is None:
        raise ValueError(f"channels 'top{entry.top}' ranks the channels on an image: connect one, or list "
                         f"channels (e.g. '0-7').")
    rows = LayerSelection(cnn, (entry,)).for_image(image).entries[0].channels
    return list(dict.fromkeys(c for row in rows for c in row))


def tile_labels(cnn: CNN, layer: str, channels: list[int]) -> list[str]:
    """A label per rendered image: the class name (and index) on a named classifier, else `layer#channel`."""
    names = cnn.names_of(layer)
    return [names.label(c) if names else f"{layer}#{c}" for c in channels]


@dataclass(frozen=True)
class Rendering:
    """What `render` made: an image per channel (BCHW in [0, 1]), the channels and their labels, in order."""

    images: torch.Tensor
    channels: list[int]
    labels: list[str]


def render(net: FeatureNet, entry: LayerWeight, settings: VisualiseSettings, image: torch.Tensor | None = None,
           callback: Callback | None = None) -> Rendering:
    """Renders the channels `entry` names (`channel_entry`; topK chosen on `image`) and labels them."""
    channels = chosen_channels(net.cnn, entry, image)
    return Rendering(visualise(net, entry.layer, channels, settings, callback), channels,
                     tile_labels(net.cnn, entry.layer, channels))


def visualise(net: FeatureNet, layer: str, channels: list[int], settings: VisualiseSettings,
              callback: Callback | None = None) -> torch.Tensor:
    """One `size`×`size` image per channel (BCHW in [0, 1], in the order of `channels`), on the net's device.

    Channels render `settings.batch` at a time; each batch is one level of the progress reported to
    `callback`. The run is seeded: the same settings and channels give the same images on one device.
    """
    if settings.size < net.min_size:
        raise ValueError(f"size must be at least {net.min_size} px for {net.cnn.spec.title}; got {settings.size}.")
    device = net.cnn.device
    generator = torch.Generator().manual_seed(settings.seed)
    param = parameterisation(settings.parameterisation, settings.size, settings.size)
    transform = compose(lucid_transforms(generator))
    groups = [channels[i:i + settings.batch] for i in range(0, len(channels), settings.batch)]
    images = []
    for level, group in enumerate(groups):
        loss = _redirected_at_first(feature_loss(net, ChannelPerImage(layer, group).to(device), transform))
        x = param.noise(len(group), generator, device).requires_grad_(True)
        adam = torch.optim.Adam([x], lr=settings.lr)
        images.append(optimize(x, whole_image(loss), adam, settings.steps, callback, level, len(groups), param))
    return torch.cat(images)


def _redirected_at_first(loss_fn: LossFn) -> LossFn:
    """`loss_fn` with redirected ReLU gradients for its first REDIRECT_STEPS calls (one per step)."""
    calls = 0

    def loss(image: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls > REDIRECT_STEPS:
            return loss_fn(image)
        with RedirectedReLU():
            return loss_fn(image)
    return loss
