"""Visualise Features: what a layer's channels (or a classifier's classes) respond to, rendered from noise."""
from __future__ import annotations

import numpy as np
import torch
from comfy_api.latest import io

from ..engine.models import CNN as LoadedCNN
from ..engine.parameterise import PARAMETERISATIONS
from ..engine.pictures import atlas
from ..engine.visualise import VisualiseSettings, channel_entry, render
from .host import NodeProgress, cnn_loaded, feature_net, to_bchw, to_bhwc
from .inputs import ReverieNode
from .schema import schema
from .types import CNN


class Visualise(ReverieNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="ReverieVisualise",
            search_aliases=["feature visualization", "channel atlas", "lucid"],
            display_name="Visualise Features",
            category="Reverie/visualise",
            description="Feature visualisation (Lucid's recipe): for each chosen channel of a layer, an image made "
                        "from noise that the channel responds to as strongly as possible. Optimises a Fourier "
                        "spectrum with 1/f scaling in decorrelated colour, with random pad, jitter, scale and "
                        "rotation every step, by Adam. On a classifier layer the channels are classes. Returns a "
                        "labelled grid (a channel atlas), the images as a batch and their labels.",
            inputs=[
                CNN.Input("cnn", tooltip="The network to look into."),
                io.String.Input("layer", default="",
                                tooltip="The layer whose channels are rendered, e.g. 'inception_4c/output' for "
                                        "GoogLeNet, 'stage4' for EfficientNet-Lite0, the classifier "
                                        "('loss3/classifier', 'logits') for classes; empty = the model's dream layer."),
                io.String.Input("channels", default="0-7",
                                tooltip="Channel numbers and ranges, e.g. '3, 7, 10-20' (on a classifier, class "
                                        "indices or names, e.g. '207' or 'golden retriever'), or 'top8': the "
                                        "eight channels most active on each image of `image`."),
                io.Int.Input("size", default=128, min=32, max=1024, step=8,
                             tooltip="Side of each square image in pixels (Lucid uses 128; 224 shows more detail)."),
                io.Int.Input("steps", default=256, min=1, max=10000,
                             tooltip="Adam steps per image; 256-512 give clear patterns, fewer look unfinished."),
                io.Float.Input("learning_rate", default=0.05, min=0.001, max=1.0, step=0.001,
                               tooltip="Adam's learning rate on the spectrum (Lucid's 0.05)."),
                io.Int.Input("batch_size", default=8, min=1, max=256,
                             tooltip="Channels rendered at once, one image each: faster than one by one; "
                                     "memory grows with it."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1, control_after_generate=True,
                             tooltip="Seeds the starting noise and the transforms; the same seed gives the "
                                     "same images."),
                io.Combo.Input("parameterisation", options=list(PARAMETERISATIONS), default="fourier",
                               tooltip="fourier: Lucid's 1/f-scaled spectrum (clean, structured patterns); "
                                       "pixels: raw pixels, for comparison (greyer, fine-grained noise)."),
                io.Int.Input("columns", default=0, min=0, max=64,
                             tooltip="Tiles per row of the atlas; 0 = as square as possible."),
                io.Image.Input("image", optional=True,
                               tooltip="For 'topK' channels: the image whose most active channels are rendered."),
            ],
            outputs=[
                io.Image.Output("atlas", display_name="atlas",
                                tooltip="The images in a grid, each labelled layer#channel or with its class name."),
                io.Image.Output("images", display_name="images",
                                tooltip="One image per channel, in the atlas's order."),
                io.String.Output("labels", display_name="labels", tooltip="The label of each image, one per line."),
            ],
        )

    @classmethod
    def execute(cls, cnn: LoadedCNN, layer: str, channels: str, size: int, steps: int, learning_rate: float,
                batch_size: int, seed: int, parameterisation: str, columns: int,
                image: torch.Tensor | None = None) -> io.NodeOutput:
        settings = VisualiseSettings(size, steps, learning_rate, batch_size, seed, parameterisation)
        entry = channel_entry(cnn, layer, channels)
        with cnn_loaded(cnn) as device:
            net = feature_net(cnn, [entry.layer])
            rendering = render(net, entry, settings, None if image is None else to_bchw(image, device),
                               NodeProgress())
            images = to_bhwc(rendering.images)
        grid = torch.from_numpy(np.array(atlas(images.permute(0, 3, 1, 2), rendering.labels, columns)))
        return io.NodeOutput(grid.float().div(255)[None], images, "\n".join(rendering.labels))
