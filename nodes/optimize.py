"""Optimize: style transfer (and any chained objective) on the pixels."""
from __future__ import annotations

import dataclasses

import torch
from comfy_api.latest import io

from ..engine.colour import COLOUR_MODES
from ..engine.features import FeatureNet
from ..engine.memory import CLIP_IMAGES, transfer_footprint
from ..engine.pyramid import Pyramid
from ..engine.transfer import (INITS, LBFGS_HISTORY, OPTIMIZERS, TILE_STATISTICS, TransferSettings, fit_size,
                               init_image, transfer)
from .host import (NodeProgress, cnn_loaded, feature_net, fit_in_memory, placement_notes, shown_warnings, to_bchw,
                   to_bhwc)
from .inputs import ReverieNode
from .objectives import ObjectiveRecipe
from .schema import schema
from .types import OBJECTIVE, OCTAVES


def transfer_inputs() -> list[io.Input]:
    """The optimiser settings Optimize and Stylise Video share (TransferSettings' fields, in order)."""
    return [
        io.Combo.Input("optimizer", options=list(OPTIMIZERS), default="adam",
                       tooltip="adam: steady, carries its state across pyramid sizes, least memory; lbfgs: a "
                               "finished image in the fewest steps (with a pyramid, give it few coarse_steps)."),
        io.Float.Input("learning_rate", default=0.0, min=0.0, max=10.0, step=0.001,
                       tooltip="0 = the optimizer's default (Adam 0.02, L-BFGS 1)."),
        io.Int.Input("steps", default=200, min=1, max=10000,
                     tooltip="Steps at the full size, and at each pyramid level unless the Octave Pyramid "
                             "sets coarse_steps."),
        io.Float.Input("tv_weight", default=0.0, min=0.0, max=1e4, step=0.01,
                       tooltip="Total-variation smoothing; raise it against high-frequency noise."),
        io.Float.Input("ema", default=0.0, min=0.0, max=0.999, step=0.001,
                       tooltip="Return the average of recent iterates (e.g. 0.99 ≈ last 100 steps) "
                               "instead of the last one; 0 = off."),
        io.Combo.Input("colour", options=list(COLOUR_MODES), default="none",
                       tooltip="Keep the content's colours: 'luminance' transfers only brightness, "
                               "'histogram' recolours the styles to the content's palette first."),
    ]


def tile_inputs() -> list[io.Input]:
    """Tiling of Optimize and Stylise Video (TransferSettings' tile and tile_statistics)."""
    return [
        io.Int.Input("tile_size", default=0, min=0, max=8192, step=64,
                     tooltip="0 = automatic: the whole image at once when it fits in the device's free "
                             "memory, else tiles sized from it (Optimize keeps the image in host memory "
                             "when not even that fits on the GPU). Or a size, e.g. 512, for prints larger "
                             "than memory: each tile reads a halo as wide as the layers see, so the "
                             "result equals the untiled one (no seams), at about 1.5× the time."),
        io.Combo.Input("tile_statistics", options=list(TILE_STATISTICS), default="exact",
                       tooltip="When tiling: 'exact' measures the whole image's style statistics in an extra "
                               "pass every step (identical to untiled); 'lagged' uses the previous step's "
                               "(one pass, about a third faster; the loss ends 3-15% above exact's)."),
    ]


def transfer_settings(net: FeatureNet, settings: TransferSettings, targets: tuple[str, ...], size: tuple[int, int],
                      batch: int, clip: bool = False) -> tuple[TransferSettings, torch.device]:
    """`settings` with the tile that fits the device's memory for a run at `size` on `batch` images keeping
    content targets at the `targets` layers, and the device for the images (host memory for a run too large for
    the device; for a `clip`'s frames, stylised one at a time beside the previous one, always the device);
    refuses a run that cannot fit."""
    footprint = transfer_footprint(settings.optimizer, settings.ema > 0, LBFGS_HISTORY, targets)
    if clip:  # + the previous frame, its result, that result warped and the temporal loss's weights
        footprint = dataclasses.replace(footprint, images=footprint.images + CLIP_IMAGES)
    tile, storage = fit_in_memory(net, size, batch, settings.tile, footprint, offload=not clip)
    return dataclasses.replace(settings, tile=tile), storage


class Optimize(ReverieNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="ReverieOptimize",
            display_name="Optimize",
            search_aliases=["neural style", "style transfer", "neural style transfer"],
            category="Reverie/style",
            description="Optimises the pixels of an image against the chained objective (content, style, "
                        "dream terms): neural style transfer. With an Octave Pyramid it works coarse to "
                        "fine, carrying Adam's state across sizes. Every image of the batch is optimised.",
            inputs=[
                OBJECTIVE.Input("objective", tooltip="Content Loss / Style Loss / Dream Objective chain."),
                io.Combo.Input("init", options=list(INITS), default="content",
                               tooltip="Start from the content image, from `image`, or from noise."),
                io.Int.Input("size", default=512, min=0, max=8192, step=8,
                             tooltip="Longer side of the output in pixels; 0 keeps the starting image's size."),
                *transfer_inputs(),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1, control_after_generate=True,
                             tooltip="Seeds the noise init; the same seed gives the same bytes on one device."),
                *tile_inputs(),
                io.Image.Input("image", optional=True, tooltip="Starting image for init 'image'."),
                OCTAVES.Input("octaves", optional=True, tooltip="Optional coarse-to-fine pyramid."),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The optimised image(s).")],
        )

    @classmethod
    def execute(cls, objective: ObjectiveRecipe, init: str, size: int, optimizer: str, learning_rate: float,
                steps: int, tv_weight: float, ema: float, colour: str, seed: int, tile_size: int,
                tile_statistics: str, image: torch.Tensor | None = None,
                octaves: Pyramid | None = None) -> io.NodeOutput:
        settings = TransferSettings(optimizer, learning_rate or None, steps, tv_weight, ema, colour, tile_size,
                                    tile_statistics=tile_statistics)
        like = image if image is not None else objective.content
        if like is None:
            batch, out_size = 1, (size, size)
        else:
            batch, out_size = like.shape[0], fit_size(tuple(like.shape[1:3]), size or None)
        with cnn_loaded(objective.cnn) as device:
            net = feature_net(objective.cnn, objective.layers)
            settings, storage = transfer_settings(net, settings, objective.targets, out_size, batch)
            content = None if objective.content is None else to_bchw(objective.content, storage)
            start = init_image(init, content, size or None, seed,
                               None if image is None else to_bchw(image, storage)).to(storage)
            out, report = transfer(net, objective.build(net, storage), start, settings, octaves,
                                   NodeProgress(), content)
        notes = placement_notes(storage, device, settings.tile)
        return io.NodeOutput(to_bhwc(out, like), ui=shown_warnings([*notes, *report.warnings], "Optimize"))
