"""Reverie's ComfyUI nodes (V3): thin adapters over the engine."""
from comfy_api.latest import ComfyExtension, io

from .dream import Dream, DreamZoom, OctavePyramid
from .models import LoadCNN, SelectLayers
from .objectives import ContentLoss, DreamObjective, StyleLoss
from .optimize import Optimize
from .paintings import LoadPainting
from .video import DreamVideo, StyliseVideo
from .visualise import Visualise

NODES: list[type[io.ComfyNode]] = [LoadCNN, SelectLayers, OctavePyramid, Dream, DreamZoom,
                                   ContentLoss, StyleLoss, DreamObjective, Optimize, DreamVideo, StyliseVideo,
                                   LoadPainting, Visualise]


class ReverieExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES
