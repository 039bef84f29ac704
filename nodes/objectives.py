"""Content Loss, Style Loss and Dream Objective: terms that one Optimize node combines.

A REVERIE_OBJECTIVE is a recipe, not tensors: each node adds a factory that Optimize calls with autograd on
(so no target is made under the host's inference mode), its images on the device the run keeps its images on
(the compute device, or host memory for a print too large for it: see transfer).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Callable

import torch
from comfy_api.latest import io

from ..engine.features import FeatureNet
from ..engine.layers import LayerSelection
from ..engine.losses import STATISTICS
from ..engine.models import CNN
from ..engine.objectives import Objective
from ..engine.style import ContentObjective, StyleObjective
from .host import to_bchw, to_mask
from .inputs import ReverieNode
from .schema import schema
from .types import LAYERS, OBJECTIVE

Term = Callable[[FeatureNet, torch.device], Objective]


@dataclass(frozen=True)
class ObjectiveRecipe:
    """Objective terms on one CNN, built by Optimize once the net is on its device."""

    cnn: CNN
    layers: tuple[str, ...]
    terms: tuple[Term, ...]
    content: torch.Tensor | None = None  # the first content image (IMAGE), for init and colour handling
    targets: tuple[str, ...] = ()  # the content losses' layers, whose full-size features a run keeps

    def add(self, selection: LayerSelection, term: Term, content: torch.Tensor | None = None) -> ObjectiveRecipe:
        """The recipe with `term` on `selection`'s layers; `content` marks a content loss and its image."""
        if selection.cnn is not self.cnn:
            raise ValueError("Chained objectives must read the same network: connect their Select Layers "
                             "nodes to one Load CNN node.")
        layers = tuple(dict.fromkeys(self.layers + tuple(selection.layers)))
        targets = self.targets if content is None else tuple(dict.fromkeys(self.targets + tuple(selection.layers)))
        return replace(self, layers=layers, terms=self.terms + (term,), targets=targets,
                       content=self.content if self.content is not None else content)

    def build(self, net: FeatureNet, device: torch.device) -> Objective:
        """The objective, its images on `device` (where the run keeps its images)."""
        return sum((term(net, device) for term in self.terms[1:]), self.terms[0](net, device))


def chain(previous: ObjectiveRecipe | None, selection: LayerSelection, term: Term,
          content: torch.Tensor | None = None) -> ObjectiveRecipe:
    start = previous if previous is not None else ObjectiveRecipe(selection.cnn, (), ())
    return start.add(selection, term, content)


def _content(layers: dict[str, float], image: torch.Tensor, weight: float,
             net: FeatureNet, device: torch.device) -> Objective:
    return ContentObjective(to_bchw(image, device), layers, weight)


def _style(layers: dict[str, float], styles: list[torch.Tensor], blend: list[float], weight: float,
           statistic: str, style_scale: float, mask: torch.Tensor | None,
           net: FeatureNet, device: torch.device) -> Objective:
    return StyleObjective([to_bchw(s, device) for s in styles], layers, weight,
                          blend, statistic, None if mask is None else to_mask(mask, device), style_scale)


def _dream(selection: LayerSelection, weight: float, net: FeatureNet, device: torch.device) -> Objective:
    return weight * selection.dream_objective(log_scale=True)


def _chain_input() -> io.Input:
    return OBJECTIVE.Input("objective", optional=True,
                           tooltip="Optional objective to add this term to (chain Content, Style and "
                                   "Dream objectives into one Optimize).")


def _objective_output() -> io.Output:
    return OBJECTIVE.Output(display_name="objective", tooltip="The chain so far, for Optimize or another term.")


class ContentLoss(ReverieNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="ReverieContentLoss",
            display_name="Content Loss",
            search_aliases=["neural style", "style transfer", "neural style transfer"],
            category="Reverie/style",
            description="Keeps the content image's structure: the output's features at these layers should "
                        "equal the content image's (mean squared error, relative to the target's size). "
                        "A batch of content images pairs with the output batch.",
            inputs=[
                LAYERS.Input("layers", tooltip="Layers to compare, e.g. 'relu4_2' for VGG."),
                io.Image.Input("content", tooltip="The image whose structure the output keeps."),
                io.Float.Input("weight", default=1.0, min=0.0, max=1e6, step=0.1,
                               tooltip="Strength of this term; 0 switches it off."),
                _chain_input(),
            ],
            outputs=[_objective_output()],
        )

    @classmethod
    def execute(cls, layers: LayerSelection, content: torch.Tensor, weight: float,
                objective: ObjectiveRecipe | None = None) -> io.NodeOutput:
        term = partial(_content, layers.whole_layers("Content Loss"), content, weight)
        return io.NodeOutput(chain(objective, layers, term, content))


class StyleLoss(ReverieNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="ReverieStyleLoss",
            display_name="Style Loss",
            search_aliases=["neural style", "style transfer", "neural style transfer", "gram matrix"],
            category="Reverie/style",
            description="Gives the output the style images' textures: their feature statistics at these "
                        "layers (Gram matrices, or mean and covariance = Wasserstein-2). Two styles blend "
                        "by `blend`; a mask confines the style to a region. Chain several Style Loss "
                        "nodes for several regions.",
            inputs=[
                LAYERS.Input("layers", tooltip="Layers whose statistics to match, e.g. relu1_1 … relu5_1."),
                io.Image.Input("style", tooltip="The style image (a batch counts as one blended style)."),
                io.Float.Input("weight", default=10.0, min=0.0, max=1e6, step=0.5,
                               tooltip="Style intensity relative to the content loss; 0 switches it off."),
                io.Combo.Input("statistic", options=list(STATISTICS), default="gram",
                               tooltip="gram: classic Gatys et al. matching; mean_cov: mean and covariance "
                                       "(Wasserstein-2), often cleaner colours and fewer artefacts."),
                io.Float.Input("style_scale", default=1.0, min=0.05, max=8.0, step=0.05,
                               tooltip="Size of the style image relative to the output (1 = its longer side "
                                       "equals the output's); smaller gives finer brush strokes."),
                io.Image.Input("style_b", optional=True, tooltip="Optional second style to blend with."),
                io.Float.Input("blend", default=0.5, min=0.0, max=1.0, step=0.05,
                               tooltip="Share of style_b in the blend (0 = only style, 1 = only style_b); "
                                       "ignored without style_b."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional region (1 = styled) the style applies to; resized to the output."),
                _chain_input(),
            ],
            outputs=[_objective_output()],
        )

    @classmethod
    def execute(cls, layers: LayerSelection, style: torch.Tensor, weight: float, statistic: str,
                style_scale: float, blend: float, style_b: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, objective: ObjectiveRecipe | None = None) -> io.NodeOutput:
        styles, shares = ([style], [1.0]) if style_b is None else ([style, style_b], [1.0 - blend, blend])
        term = partial(_style, layers.whole_layers("Style Loss"), styles, shares, weight, statistic,
                       style_scale, mask)
        return io.NodeOutput(chain(objective, layers, term))


class DreamObjective(ReverieNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="ReverieDreamObjective",
            display_name="Dream Objective",
            search_aliases=["deepdream", "deep dream", "inceptionism"],
            category="Reverie/dream",
            description="A DeepDream term for Optimize: amplifies the selected layers (log of their power, "
                        "so the weight means the same for every network) or channels, so a style transfer "
                        "can dream at the same time.",
            inputs=[
                LAYERS.Input("layers", tooltip="Layers or 'layer#channel' entries to amplify."),
                io.Float.Input("weight", default=1.0, min=0.0, max=1e4, step=0.1,
                               tooltip="Strength against the other terms; 0 switches it off. Whole layers "
                                       "are amplified on a log scale, so the weight does not depend on the "
                                       "network: beside style weight 10, 0.5 is subtle and 2 clearly dreams."),
                _chain_input(),
            ],
            outputs=[_objective_output()],
        )

    @classmethod
    def execute(cls, layers: LayerSelection, weight: float,
                objective: ObjectiveRecipe | None = None) -> io.NodeOutput:
        if layers.chooses_channels:
            raise ValueError("Dream Objective has no input image to choose topK channels on: name the channels "
                             "(layer#3,7,10-20), or use Dream, which chooses them on its image.")
        return io.NodeOutput(chain(objective, layers, partial(_dream, layers, weight)))
