"""Octave Pyramid and Dream."""
from __future__ import annotations

import dataclasses

import torch
from comfy_api.latest import io

from ..engine.dream import DreamSettings, dream
from ..engine.features import FeatureNet
from ..engine.layers import LayerSelection
from ..engine.memory import CLIP_IMAGES, DREAM
from ..engine.optimize import Diverged, kept_frames
from ..engine.pyramid import Pyramid, analysis_size
from ..engine.step_rules import NORMALIZERS
from ..engine.zoom import dream_zoom
from .host import (NodeProgress, cnn_loaded, feature_net, fit_in_memory, placement_notes, shown_warnings, to_bchw,
                   to_bhwc)
from .inputs import ReverieNode
from .schema import schema
from .types import LAYERS, OCTAVES


class OctavePyramid(ReverieNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="ReverieOctavePyramid",
            display_name="Octave Pyramid",
            search_aliases=["octaves", "coarse to fine"],
            category="Reverie/dream",
            description="Processes the image coarse to fine: first at 1/scale^(octaves-1) of its size, "
                        "then each octave `scale` times larger, ending at full size. Larger, "
                        "more coherent patterns than working at full size only.",
            inputs=[
                io.Int.Input("octaves", default=4, min=1, max=12,
                             tooltip="Number of sizes, the full size included (1 = full size only)."),
                io.Float.Input("scale", default=1.4, min=1.05, max=4.0, step=0.05,
                               tooltip="Size ratio between neighbouring octaves."),
                io.Int.Input("coarse_steps", default=0, min=0, max=10000,
                             tooltip="Steps at each octave below the full size; 0 = as many as the node's "
                                     "steps (at the full size). Few coarse steps with L-BFGS reach a good "
                                     "image soonest."),
            ],
            outputs=[OCTAVES.Output(display_name="octaves", tooltip="The pyramid for Dream or Optimize.")],
        )

    @classmethod
    def execute(cls, octaves: int, scale: float, coarse_steps: int) -> io.NodeOutput:
        return io.NodeOutput(Pyramid(octaves, scale, coarse_steps))


def step_inputs() -> list[io.Input]:
    """The gradient-ascent settings Dream and Dream Zoom share (DreamSettings' fields, in order)."""
    return [
        io.Int.Input("steps", default=10, min=1, max=10000,
                     tooltip="Gradient steps per octave (at the coarse octaves: the pyramid's coarse_steps, if set)."),
        io.Float.Input("step_size", default=0.01, min=0.0001, max=0.5, step=0.0005,
                       tooltip="How far each step moves the pixels, as a fraction of the 0..1 range "
                               "(the gradient is normalised first)."),
        io.Int.Input("jitter", default=32, min=0, max=512,
                     tooltip="Random shift in pixels before each step; hides the net's grid."),
        io.Combo.Input("normalize", options=list(NORMALIZERS), default="mean_abs",
                       tooltip="How the gradient is scaled before each step: by its mean absolute value "
                               "(DeepDream notebook), by its standard deviation, or 'laplacian': each band of "
                               "its Laplacian pyramid by its own size (TF DeepDream tutorial), which gives "
                               "larger, smoother shapes at the same steps."),
        io.Float.Input("smoothing", default=0.0, min=0.0, max=16.0, step=0.1,
                       tooltip="Blur of the gradient in pixels (sigma) before each step: three Gaussians at "
                               "0.5, 1 and 2 × this, averaged (pytorch-deepdream). 0 = off; 1-2 give softer, "
                               "less noisy patterns."),
        io.Int.Input("seed", default=0, min=0, max=2**31 - 1, control_after_generate=True,
                     tooltip="Seeds the jitter; the same seed gives the same dream."),
        io.Int.Input("tile_size", default=0, min=0, max=8192, step=64,
                     tooltip="0 = automatic: the whole image at once when it fits in the device's free memory, "
                             "else tiles sized from it (Dream keeps the image in host memory when not even that "
                             "fits on the GPU). Or a size, e.g. 512: the gradient is computed in tiles "
                             "of about this size (memory follows the tile), on a grid that moves every step so "
                             "no seams show."),
    ]


class Dream(ReverieNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="ReverieDream",
            display_name="Dream",
            search_aliases=["deepdream", "deep dream", "inceptionism", "dream"],
            category="Reverie/dream",
            description="DeepDream: changes the image so that the selected layers respond more strongly, "
                        "by normalised gradient ascent on the pixels with random jitter. With an Octave "
                        "Pyramid the detail dreamed at each size is carried up to the next. Every image "
                        "of the batch is dreamed.",
            inputs=[
                io.Image.Input("image", tooltip="The image(s) to dream on; RGBA keeps its alpha."),
                LAYERS.Input("layers", tooltip="Layers to amplify, from Select Layers."),
                *step_inputs(),
                OCTAVES.Input("octaves", optional=True, tooltip="Optional coarse-to-fine pyramid."),
                io.Image.Input("guide", optional=True,
                               tooltip="Optional guide image: dream towards its features instead of "
                                       "amplifying whatever the layers see."),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The dreamed image(s).")],
        )

    @classmethod
    def execute(cls, image: torch.Tensor, layers: LayerSelection, steps: int, step_size: float, jitter: int,
                normalize: str, smoothing: float, seed: int, tile_size: int, octaves: Pyramid | None = None,
                guide: torch.Tensor | None = None) -> io.NodeOutput:
        settings = DreamSettings(steps, step_size, jitter, normalize, smoothing, seed, tile_size)
        warnings = []
        with cnn_loaded(layers.cnn) as device:
            net = feature_net(layers.cnn, layers.layers)
            settings, storage = dream_settings(net, settings, image, offload=True)
            x = to_bchw(image, storage)
            layers = layers.for_image(x) if guide is None else dataclasses.replace(layers, notes=())
            objective = layers.dream_objective() if guide is None else _guided(net, layers, guide, device)
            try:
                out = dream(net, objective.to(device), x, settings, octaves, NodeProgress())
            except Diverged as e:
                if e.image is None:
                    raise
                out, warnings = e.image, [str(e)]
        notes = placement_notes(storage, device, settings.tile)
        return io.NodeOutput(to_bhwc(out, image), ui=shown_warnings([*notes, *layers.notes, *warnings], "Dream"))


def dream_settings(net: FeatureNet, settings: DreamSettings, image: torch.Tensor, clip: bool = False,
                   offload: bool = False) -> tuple[DreamSettings, torch.device]:
    """`settings` with the tile that fits the device's memory for dreaming on `image` (an IMAGE batch; with
    `clip`, a clip's frames dreamed one at a time beside the previous one), and the device for the images (with
    `offload`, host memory when the image is too large for the device); refuses a run that cannot fit."""
    batch = 1 if clip else image.shape[0]
    footprint = dataclasses.replace(DREAM, images=DREAM.images + CLIP_IMAGES) if clip else DREAM
    tile, storage = fit_in_memory(net, tuple(image.shape[1:3]), batch, settings.tile, footprint, offload)
    return dataclasses.replace(settings, tile=tile), storage


def _guided(net: FeatureNet, layers: LayerSelection, guide: torch.Tensor, device: torch.device):
    """The guided objective from the guide's features, at a size the net accepts (≤ 512 px is plenty)."""
    with torch.no_grad():
        return layers.guided_objective(net(analysis_size(to_bchw(guide, device), net.min_size)))


class DreamZoom(ReverieNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="ReverieDreamZoom",
            display_name="Dream Zoom",
            search_aliases=["deepdream zoom", "deep dream zoom", "inceptionism", "infinite zoom"],
            category="Reverie/dream",
            description="A DeepDream zoom: dreams on the image, zooms into the centre, dreams again, "
                        "`frames` times. Returns the frames as a batch (each input image's frames in order) "
                        "for Save Animated WEBP or a video node.",
            inputs=[
                io.Image.Input("image", tooltip="The first frame (each image of a batch gets its own zoom)."),
                LAYERS.Input("layers", tooltip="Layers to amplify, from Select Layers."),
                io.Int.Input("frames", default=24, min=1, max=10000, tooltip="Number of frames to make."),
                io.Float.Input("zoom", default=1.05, min=1.0, max=2.0, step=0.01,
                               tooltip="Zoom factor between frames (1.05 = 5 % closer each frame)."),
                *step_inputs(),
                OCTAVES.Input("octaves", optional=True,
                              tooltip="Optional pyramid for every frame (slower; usually only worth it for the first)."),
            ],
            outputs=[io.Image.Output(display_name="frames", tooltip="frames × batch images.")],
        )

    @classmethod
    def execute(cls, image: torch.Tensor, layers: LayerSelection, frames: int, zoom: float, steps: int,
                step_size: float, jitter: int, normalize: str, smoothing: float, seed: int, tile_size: int,
                octaves: Pyramid | None = None) -> io.NodeOutput:
        settings = DreamSettings(steps, step_size, jitter, normalize, smoothing, seed, tile_size)
        warnings = []
        with cnn_loaded(layers.cnn) as device:
            net = feature_net(layers.cnn, layers.layers)
            settings, _ = dream_settings(net, settings, image)
            x = to_bchw(image, device)
            layers = layers.for_image(x)  # topK channels are chosen on the first frame
            warnings += layers.notes
            sequence = dream_zoom(net, layers.dream_objective().to(device), x, settings, frames, zoom, octaves,
                                  NodeProgress())
            # RGB; each frame leaves the device at once
            done = [to_bhwc(frame) for frame in kept_frames(sequence, frames, warnings)]
        return io.NodeOutput(torch.stack(done, 1).flatten(0, 1), ui=shown_warnings(warnings, "Dream Zoom"))
