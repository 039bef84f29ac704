"""Feature visualisation (Olah et al. 2017, Lucid): images, made from noise, that a channel responds to.

Each image of a batch maximises the mean of its own channel, through a Fourier parameterisation in
decorrelated colour (parameterise.py) and Lucid's random pad, jitter, scale and rotation every step
(transforms.py), with Adam on the parameters. Several channels render at once, one image each.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .features import FeatureNet
from .models import CNN
from .objectives import ChannelPerImage
from .optimize import Callback, feature_loss, optimize, whole_image
from .parameterise import parameterisation
from .pyramid import resize
from .redirection import RedirectedReLU
from .tiles import LossFn
from .transforms import compose, lucid_transforms

TOP = re.compile(r"^#?top\s*(?P<k>\d+)$", re.IGNORECASE)
RANGE = re.compile(r"^(?P<first>\d+)(?:\s*-\s*(?P<last>\d+))?$")
REDIRECT_STEPS = 16  # Lucid's: the ReLU gradient is redirected for the first 16 steps of each batch
TOP_IMAGE_MAX = 512  # top-k reads the image at most this large (plenty to rank channels)
IMAGENET_CLASSES = 1000


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


@dataclass(frozen=True)
class ChannelRequest:
    """Which channels to render: listed ones, or the `top` most active on an image."""

    channels: tuple[int, ...] = ()
    top: int = 0

    def __post_init__(self):
        if self.top < 0 or not (self.channels or self.top):
            raise ValueError("No channels given: list some (e.g. '0-7', '3, 7, 10-20') or write 'top8' for the "
                             "eight most active on an image.")


def parse_channels(text: str) -> ChannelRequest:
    """Reads '3, 7, 10-20' (channels and inclusive ranges, in the order given) or 'top8'."""
    text = text.strip()
    top = TOP.match(text)
    if top:
        if int(top["k"]) < 1:
            raise ValueError(f"channels {text!r}: top-k needs k ≥ 1, e.g. 'top8'.")
        return ChannelRequest(top=int(top["k"]))
    if not text:
        return ChannelRequest()
    channels: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        match = RANGE.match(item)
        if not match:
            raise ValueError(f"channels: cannot read {item!r} in {text!r}. Write channel numbers and ranges, "
                             f"e.g. '3, 7, 10-20', or 'top8' for the eight most active on the image.")
        first, last = int(match["first"]), int(match["last"] or match["first"])
        if last < first:
            raise ValueError(f"channels: the range {item!r} runs backwards; write {last}-{first}.")
        channels.extend(range(first, last + 1))
    return ChannelRequest(tuple(channels))


def layer_named(cnn: CNN, name: str) -> str:
    """`name` checked against `cnn` (unknown names get the nearest valid ones); empty: the model's dream layer."""
    return cnn.layer(name.strip() or next(iter(cnn.spec.default_layers))).name


def channel_count(net: FeatureNet, layer: str) -> int:
    """How many channels (or units, for a flat layer such as class logits) `layer` has."""
    x = torch.zeros(1, 3, net.min_size, net.min_size, device=net.cnn.device)
    with torch.no_grad():
        return net(x)[layer].shape[1]


def top_channels(net: FeatureNet, layer: str, image: torch.Tensor, k: int) -> list[int]:
    """The `k` channels of `layer` with the highest mean activation on `image` (BCHW; a batch is averaged),
    most active first."""
    h, w = image.shape[-2:]
    scale = max(min(TOP_IMAGE_MAX / max(h, w), 1.0), net.min_size / min(h, w))
    with torch.no_grad():
        act = net(resize(image, (round(h * scale), round(w * scale))))[layer]
    mean = act.flatten(2).mean(2).mean(0) if act.dim() > 2 else act.mean(0)
    return mean.topk(k).indices.tolist()


def choose_channels(net: FeatureNet, layer: str, request: ChannelRequest,
                    image: torch.Tensor | None = None) -> list[int]:
    """The channels `request` names, checked against `layer`'s channel count."""
    n = channel_count(net, layer)
    if request.top:
        if image is None:
            raise ValueError(f"channels 'top{request.top}' ranks the channels on an image: connect one, or "
                             f"list channels (e.g. '0-7').")
        if request.top > n:
            raise ValueError(f"channels 'top{request.top}' asks for {request.top} channels; layer {layer!r} "
                             f"has only {n}.")
        return top_channels(net, layer, image, request.top)
    if max(request.channels) >= n:
        raise ValueError(f"channels asks for channel {max(request.channels)}; layer {layer!r} has only {n} "
                         f"channels (0..{n - 1}).")
    return list(request.channels)


def class_names(net: FeatureNet, layer: str, count: int) -> list[str] | None:
    """ImageNet's class names when `layer` is the net's output with 1000 units (its classifier), else None."""
    if count != IMAGENET_CLASSES or layer != net.cnn.spec.catalogue()[-1].name:
        return None
    from torchvision.models import GoogLeNet_Weights  # torchvision ships the names with its weights' metadata
    return list(GoogLeNet_Weights.IMAGENET1K_V1.meta["categories"])


def tile_labels(layer: str, channels: list[int], names: list[str] | None = None) -> list[str]:
    """A label per rendered image: the class name (and index) on a classifier, else `layer#channel`."""
    return [f"{names[c]} ({c})" if names else f"{layer}#{c}" for c in channels]


@dataclass(frozen=True)
class Rendering:
    """What `render` made: an image per channel (BCHW in [0, 1]), the channels and their labels, in order."""

    images: torch.Tensor
    channels: list[int]
    labels: list[str]


def render(net: FeatureNet, layer: str, request: ChannelRequest, settings: VisualiseSettings,
           image: torch.Tensor | None = None, callback: Callback | None = None) -> Rendering:
    """Chooses the channels `request` names (the top ones on `image`), renders them and labels them."""
    channels = choose_channels(net, layer, request, image)
    names = class_names(net, layer, channel_count(net, layer))
    return Rendering(visualise(net, layer, channels, settings, callback), channels, tile_labels(layer, channels, names))


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
