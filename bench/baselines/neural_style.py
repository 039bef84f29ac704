"""neural-style's loop (Johnson's jcjohnson/neural-style, as ported in ProGamerGov/neural-style-pt).

The recipe's defaults: VGG19 with max pooling, run to the last loss layer every iteration; content
`relu4_2`, weight 5; style `relu1_1, relu2_1, relu3_1, relu4_1, relu5_1`, weight 100 each; TV weight
1e-3; `-init random` (normal noise of std 0.001 in the net's input space, i.e. the mean colour);
L-BFGS with learning rate 1, 100 corrections, one loss evaluation per iteration, no line search and
both tolerances off (-1); 1000 iterations; `-image_size 512` (the longer side); the style image as
large as the output (`-style_scale 1`). Its losses, all on the net's input space (Caffe: BGR,
0..255 minus the mean):

- content: `w · mean((F - P)²)` over the layer's elements;
- style, per layer: `w · mean((G/M - A/M)²)` over the C×C entries, with `G = F Fᵀ` the Gram matrix of
  the layer's C×HW features and `M = C·H·W` its element count (A the style image's, divided by its own M);
- TV: `w · (Σ|x[i+1, j] - x[i, j]| + Σ|x[i, j+1] - x[i, j]|)`.

The optimised variable is the network input, unbounded: a user gets its deprocessed image clamped
to [0, 1] and saved in 8 bits, which is what `loss` should be given to score a result.
Departure: neural-style-pt scales pixels by 256 where Caffe (and this file) use 255.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from engine.models import CNN

from . import from_net, to_net


@dataclass(frozen=True)
class Recipe:
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    content_weight: float = 5.0
    style_weight: float = 100.0
    tv_weight: float = 1e-3
    iterations: int = 1000
    history: int = 100
    lr: float = 1.0
    init_std: float = 0.001


@dataclass
class Iterate:
    iteration: int
    image: torch.Tensor  # the image this iteration evaluated (neural-style saves that one): RGB, not clamped
    loss: torch.Tensor  # the loss L-BFGS saw there (its "internal" loss)


class NeuralStyle:
    """The recipe for one content and one style image (`[1, 3, H, W]` in [0, 1], the content at the output
    size, the style at its own) on `cnn` (VGG, torchvision layout)."""

    def __init__(self, cnn: CNN, content: torch.Tensor, style: torch.Tensor, recipe: Recipe = Recipe()):
        self.cnn, self.recipe = cnn, recipe
        self.content, self.style = content, style
        index = {name: int(cnn.spec.layers[name].split(".")[1])
                 for name in (*recipe.content_layers, *recipe.style_layers)}
        for name in index:
            cnn.layer(name)  # raises if the weights do not cover it
        self.index = {i: name for name, i in index.items()}
        self.body = cnn.module.features[:max(index.values()) + 1]
        self._targets: dict[str, torch.Tensor] | None = None

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The loss layers' activations of a net-space input: the net run to the last loss layer."""
        out = {}
        for i, module in enumerate(self.body):
            x = module(x)
            if i in self.index:
                out[self.index[i]] = x
        return out

    @staticmethod
    def gram(f: torch.Tensor) -> torch.Tensor:
        flat = f[0].flatten(1)  # batch 1: C × HW
        return flat @ flat.T / f.numel()

    def make_targets(self) -> dict[str, torch.Tensor]:
        """Content features and style Gram matrices (recomputed each call: a run's own setup)."""
        with torch.no_grad():
            content = self.features(to_net(self.cnn, self.content))
            style = self.features(to_net(self.cnn, self.style))
        targets = {f"content/{l}": content[l] for l in self.recipe.content_layers}
        targets.update({f"style/{l}": self.gram(style[l]) for l in self.recipe.style_layers})
        return targets

    @property
    def targets(self) -> dict[str, torch.Tensor]:
        if self._targets is None:
            self._targets = self.make_targets()
        return self._targets

    def net_loss(self, x: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """The recipe's total loss of a net-space input."""
        r, feats = self.recipe, self.features(x)
        loss = sum(r.content_weight * (feats[l] - targets[f"content/{l}"]).pow(2).mean() for l in r.content_layers)
        loss = loss + sum(r.style_weight * (self.gram(feats[l]) - targets[f"style/{l}"]).pow(2).mean()
                          for l in r.style_layers)
        if r.tv_weight > 0:
            loss = loss + r.tv_weight * ((x[..., 1:, :] - x[..., :-1, :]).abs().sum()
                                         + (x[..., :, 1:] - x[..., :, :-1]).abs().sum())
        return loss

    def loss(self, image: torch.Tensor) -> float:
        """The recipe's loss of an RGB image in [0, 1] (a delivered result)."""
        with torch.no_grad():
            return self.net_loss(to_net(self.cnn, image.to(self.content)), self.targets).item()

    def run(self, seed: int = 0) -> Iterator[Iterate]:
        """The optimisation, one L-BFGS iteration per `next`; the first includes making the targets."""
        r = self.recipe
        targets = self.make_targets()
        noise = torch.randn(self.content.shape, generator=torch.Generator().manual_seed(seed)) * r.init_std
        x = noise.to(self.content).requires_grad_(True)
        optimizer = torch.optim.LBFGS([x], lr=r.lr, max_iter=1, history_size=r.history,
                                      tolerance_grad=-1, tolerance_change=-1)
        seen: list[torch.Tensor] = []

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = self.net_loss(x, targets)
            loss.backward()
            seen[:] = [x.detach().clone(), loss.detach()]
            return loss

        for iteration in range(1, r.iterations + 1):
            optimizer.step(closure)  # evaluates at x, then moves x
            yield Iterate(iteration, from_net(self.cnn, seen[0]), seen[1])
