"""Dream Video and Stylise Video: a clip (an IMAGE batch of frames in order) in, as many frames out."""
from __future__ import annotations

import folder_paths
import torch
from comfy_api.latest import io

from ..engine.dream import DreamSettings
from ..engine.flow import FLOW_METHODS, FlowEstimator, flow_estimator
from ..engine.layers import LayerSelection
from ..engine.optimize import kept_frames
from ..engine.pyramid import Pyramid
from ..engine.transfer import TransferSettings
from ..engine.video import dream_video, stylise_video
from .dream import dream_settings, step_inputs
from .host import NodeProgress, cnn_loaded, feature_net, rgb_view, shown_warnings, to_bhwc
from .inputs import ReverieNode
from .models import FOLDER
from .objectives import ObjectiveRecipe
from .optimize import tile_inputs, transfer_inputs, transfer_settings
from .schema import schema
from .types import LAYERS, OBJECTIVE, OCTAVES

NO_FLOW = "none"
FLOWS = (*FLOW_METHODS, NO_FLOW)


def flow_input() -> io.Input:
    return io.Combo.Input("flow", options=list(FLOWS), default="builtin",
                          tooltip="How frames follow the motion: 'builtin' optical flow (no download), RAFT "
                                  "from torchvision (its weights file in models/cnn or torchvision's cache; "
                                  "the built-in flow with a warning otherwise), or 'none' (the previous frame "
                                  "is blended in place, as most DeepDream video tools do: ghosts on motion).")


def frames_input() -> io.Input:
    return io.Image.Input("frames", tooltip="The clip: an IMAGE batch of frames in order (Load Video → Get "
                                            "Video Components, or any batch).")


def refresh_input(default: int) -> io.Input:
    return io.Int.Input("refresh_steps", default=default, min=1, max=10000,
                        tooltip="Steps for every frame after the first, which starts from the previous "
                                "frame's result moved along the motion.")


def load_flow(method: str) -> tuple[FlowEstimator | None, list[str]]:
    """The flow estimator for the combo value (None for 'none'); RAFT weights from models/cnn if a file there
    is named after the method, else torchvision's cache."""
    if method == NO_FLOW:
        return None, []
    files = [f for f in folder_paths.get_filename_list(FOLDER) if f.split("/")[-1].startswith(method)]
    return flow_estimator(method, folder_paths.get_full_path(FOLDER, files[0]) if files else None)


class DreamVideo(ReverieNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="ReverieDreamVideo",
            display_name="Dream Video",
            search_aliases=["deepdream video", "deep dream video", "inceptionism video"],
            category="Reverie/video",
            description="DeepDream on a clip without flicker: the first frame is dreamed in full; every later "
                        "frame starts from its own input plus the previous frame's dreamed detail, moved along "
                        "the optical flow and kept where the motion is reliable, then gets a few refresh steps. "
                        "Returns as many frames, for Create Video / Save Video / Save Animated WEBP.",
            inputs=[
                frames_input(),
                LAYERS.Input("layers", tooltip="Layers to amplify, from Select Layers."),
                *step_inputs(),
                io.Float.Input("blend", default=0.9, min=0.0, max=1.0, step=0.05,
                               tooltip="Share of the previous frame's dreamed detail carried into the next "
                                       "(0 = every frame dreamed on its own, which flickers)."),
                refresh_input(1),
                flow_input(),
                OCTAVES.Input("octaves", optional=True, tooltip="Optional pyramid for the first frame."),
            ],
            outputs=[io.Image.Output(display_name="frames", tooltip="The dreamed frames, in order.")],
        )

    @classmethod
    def execute(cls, frames: torch.Tensor, layers: LayerSelection, steps: int, step_size: float, jitter: int,
                normalize: str, smoothing: float, seed: int, tile_size: int, blend: float, refresh_steps: int,
                flow: str, octaves: Pyramid | None = None) -> io.NodeOutput:
        settings = DreamSettings(steps, step_size, jitter, normalize, smoothing, seed, tile_size)
        estimate, warnings = load_flow(flow)
        with cnn_loaded(layers.cnn) as device:
            net = feature_net(layers.cnn, layers.layers)
            settings, _ = dream_settings(net, settings, frames, clip=True)
            x = rgb_view(frames)  # each frame goes to the device in its turn
            layers = layers.for_image(x[:1])  # topK channels are chosen on the first frame, for the whole clip
            warnings = [*layers.notes, *warnings]
            clip = dream_video(net, layers.dream_objective().to(device), x, settings, blend, refresh_steps, estimate,
                               octaves, NodeProgress())
            done = [to_bhwc(out, frames[t:t + 1]) for t, out in enumerate(kept_frames(clip, len(frames), warnings))]
        return io.NodeOutput(torch.cat(done), ui=shown_warnings(warnings, "Dream Video"))


class StyliseVideo(ReverieNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="ReverieStyliseVideo",
            display_name="Stylise Video",
            search_aliases=["neural style video", "style transfer video", "stylize video"],
            category="Reverie/video",
            description="Style transfer on a clip without flicker (Ruder et al.): every content loss of the "
                        "chain reads the current frame as its content; every frame after the first starts "
                        "from the previous result moved along the optical flow, with a temporal loss that "
                        "keeps it there where the motion is reliable. One frame at a time: memory is one frame's.",
            inputs=[
                frames_input(),
                OBJECTIVE.Input("objective", tooltip="Content Loss / Style Loss / Dream Objective chain; its "
                                                     "content image is replaced by each frame."),
                *transfer_inputs(),
                refresh_input(50),
                io.Float.Input("temporal_weight", default=100.0, min=0.0, max=1e6, step=1.0,
                               tooltip="How strongly a frame keeps the previous result where the motion is "
                                       "reliable (0 = only the warped start)."),
                flow_input(),
                *tile_inputs(),
                OCTAVES.Input("octaves", optional=True, tooltip="Optional pyramid for the first frame."),
            ],
            outputs=[io.Image.Output(display_name="frames", tooltip="The stylised frames, in order.")],
        )

    @classmethod
    def execute(cls, frames: torch.Tensor, objective: ObjectiveRecipe, optimizer: str, learning_rate: float,
                steps: int, tv_weight: float, ema: float, colour: str, refresh_steps: int, temporal_weight: float,
                flow: str, tile_size: int, tile_statistics: str,
                octaves: Pyramid | None = None) -> io.NodeOutput:
        settings = TransferSettings(optimizer, learning_rate or None, steps, tv_weight, ema, colour, tile_size,
                                    tile_statistics=tile_statistics)
        estimate, warnings = load_flow(flow)
        with cnn_loaded(objective.cnn) as device:
            net = feature_net(objective.cnn, objective.layers)
            settings, _ = transfer_settings(net, settings, objective.targets, tuple(frames.shape[1:3]), 1, clip=True)
            clip = stylise_video(net, objective.build(net, device), rgb_view(frames), settings,
                                 temporal_weight, refresh_steps, estimate, octaves, NodeProgress())
            done = []
            for t, (out, report) in enumerate(clip):
                done.append(to_bhwc(out, frames[t:t + 1]))
                warnings += report.warnings
        return io.NodeOutput(torch.cat(done), ui=shown_warnings(warnings, "Stylise Video"))
