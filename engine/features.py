"""Running a CNN only as deep as the requested layers and returning their activations."""
from __future__ import annotations

from functools import cached_property
from typing import Callable, Iterable

import torch
from torch import nn

from .geometry import Geometry
from .models import CNN


class FeatureNet(nn.Module):
    """`forward(x)` takes RGB images in [0, 1] (BCHW) and returns `{layer: activation}`.

    Only the stages up to the deepest requested layer run, on the network's device, whatever the input's (a
    window of an image kept in host memory crosses over here, and its gradient back); preprocessing happens
    inside. `check` (e.g. the host's interrupt test) is called before every stage, in the
    forward pass and again where the backward pass reaches that stage's input, so a run can be stopped
    within one layer of either pass, between tiles or inside a huge one; it stops the run by raising.
    """

    def __init__(self, cnn: CNN, layers: Iterable[str], check: Callable[[], None] | None = None):
        super().__init__()
        names = list(dict.fromkeys(layers))
        if not names:
            raise ValueError("No layers selected: name at least one layer.")
        if any(p.is_inference() for p in cnn.module.parameters()):
            raise RuntimeError("The CNN's weights were made under torch.inference_mode() and cannot take "
                               "part in autograd; load or move the model outside inference mode.")
        self.cnn = cnn
        self.layers = {name: cnn.layer(name) for name in names}
        depth = max(l.stage for l in self.layers.values()) + 1
        self.stages = nn.ModuleList(cnn.module.get_submodule(s) for s in cnn.spec.stages[:depth])
        self.min_size = cnn.spec.min_size
        self.check = check

    @cached_property
    def geometry(self) -> Geometry:
        """The layers' strides and receptive margins (measured on first use, kept with the CNN), for exact tiling."""
        return Geometry(self)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(f"{self.cnn.spec.title} needs images of at least {self.min_size}×{self.min_size} "
                             f"pixels; got {x.shape[-1]}×{x.shape[-2]}. Upscale the image or use fewer octaves.")
        feats: dict[str, torch.Tensor] = {}
        handles = [self.cnn.module.get_submodule(l.module).register_forward_hook(_store(feats, name))
                   for name, l in self.layers.items()]
        try:
            h = self.cnn.preprocess(x.to(self.cnn.device, self.cnn.dtype))
            for stage in self.stages:
                if self.check is not None:
                    self.check()
                    if h.requires_grad:
                        h.register_hook(self._check_backward)
                h = stage(h)
        finally:
            for handle in handles:
                handle.remove()
        return feats

    def _check_backward(self, grad: torch.Tensor) -> None:
        self.check()  # leaves the gradient as it is


def layer_channels(cnn: CNN, layers: Iterable[str]) -> dict[str, int]:
    """The channels (units, for a flat layer such as a classifier) of each layer: one no-grad pass of the
    smallest image the net takes, on the net's device."""
    net = FeatureNet(cnn, layers)
    with torch.no_grad():
        feats = net(torch.zeros(1, 3, net.min_size, net.min_size, device=cnn.device))
    return {name: act.shape[1] for name, act in feats.items()}


def _store(feats: dict[str, torch.Tensor], name: str):
    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        feats[name] = output.float()  # losses in float32 whatever the net's precision (no copy if it is)
    return hook
