"""Load CNN and Select Layers."""
from __future__ import annotations

import os
from pathlib import Path

import comfy.model_management as mm
import comfy.utils
import folder_paths
import torch
from comfy_api.latest import io

from ..engine.architectures import ARCHITECTURES
from ..engine.download import Progress, fetch
from ..engine.layers import parse_layers
from ..engine.models import CNN as LoadedCNN
from ..engine.models import DOWNLOADS, PADDING, POOLING, default_weights, load_cnn
from .host import host_model, shown_warnings
from .inputs import ReverieNode
from .schema import schema
from .types import CNN, LAYERS

FOLDER = "cnn"
DEFAULT_WEIGHTS = "default"
DOWNLOAD_PREFIX = "download/"  # combo entries for published files (fetched into models/cnn on first use)
AUTO = "auto"
PREPROCESSING = (AUTO, *sorted({p.name for spec in ARCHITECTURES.values() for p in spec.preprocess}))
DEFAULT_ARCHITECTURE = "efficientnet_lite0"
PRECISIONS = {AUTO: None, "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

folder_paths.add_model_folder_path(FOLDER, os.path.join(folder_paths.models_dir, FOLDER))


def _weight_files() -> list[str]:
    """'default', the weight files in models/cnn, then a `download/<file>` entry for each published file that Load
    CNN can fetch, fetched or not: a workflow saved with the entry stays valid once the file has arrived (the
    entry then loads it from models/cnn)."""
    present = folder_paths.filter_files_extensions(folder_paths.get_filename_list(FOLDER),
                                                   folder_paths.supported_pt_extensions)  # no .classes.txt
    return [DEFAULT_WEIGHTS, *present, *(DOWNLOAD_PREFIX + name for name in DOWNLOADS)]


def _download_folder() -> Path:
    """Where fetched weights go: the first models/cnn folder (ComfyUI's own)."""
    return Path(folder_paths.get_folder_paths(FOLDER)[0])


def _downloadable(weights: str) -> str | None:
    """The file name behind a `download/<file>` entry, if `weights` is one."""
    return weights.removeprefix(DOWNLOAD_PREFIX) if weights.startswith(DOWNLOAD_PREFIX) else None


def _progress_bar() -> Progress:
    bar = comfy.utils.ProgressBar(1)

    def update(received: int, expected: int | None) -> None:
        mm.throw_exception_if_processing_interrupted()
        bar.update_absolute(received, max(expected or received, received, 1))

    return update


def _weights_path(architecture: str, weights: str) -> Path | None:
    """The file to load: a models/cnn file, a published one (fetched into models/cnn on first use), or for
    'default' the architecture's own weights (found, or fetched into models/cnn when it has a download)."""
    name = _downloadable(weights)
    if name is not None:
        present = folder_paths.get_full_path(FOLDER, name)
        return Path(present) if present else fetch(DOWNLOADS[name][1], _download_folder(), _progress_bar())
    if weights != DEFAULT_WEIGHTS:
        return Path(folder_paths.get_full_path_or_raise(FOLDER, weights))
    return default_weights(ARCHITECTURES[architecture], _download_folder(), _progress_bar())


class LoadCNN(ReverieNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        names = list(ARCHITECTURES)
        return schema(
            node_id="ReverieLoadCNN",
            display_name="Load CNN",
            search_aliases=["classifier", "vgg", "googlenet", "inception"],
            category="Reverie/models",
            description="Loads a pretrained image classifier whose layers Dream and the style losses read. "
                        "Weights come from ComfyUI's models/cnn folder (.safetensors preferred; .pth/.pt "
                        "state dicts are read with weights_only=True) or, with 'default', from the "
                        "architecture's own source (a pip package, torchvision's cache, or a published file "
                        "fetched into models/cnn on first use). 'download/...' entries are published "
                        "files (BVLC GoogLeNet, Places365 and Places205 GoogLeNets) fetched the same way, "
                        "checked against their pinned SHA-256.",
            inputs=[
                io.Combo.Input("architecture", options=names,
                               default=DEFAULT_ARCHITECTURE if DEFAULT_ARCHITECTURE in names else names[0],
                               tooltip="The network design; the weights file must be made for it."),
                io.Combo.Input("weights", options=_weight_files(), default=DEFAULT_WEIGHTS,
                               tooltip="A file in models/cnn; 'default' for the architecture's own weights "
                                       "(EfficientNet-Lite0 and BVLC GoogLeNet are fetched into models/cnn "
                                       "once when missing, torchvision's into its cache); 'download/<file>' "
                                       "fetches that published file into models/cnn (19-28 MB) "
                                       "the first time it runs. Offline, the error says what to put where."),
                io.Combo.Input("preprocessing", options=list(PREPROCESSING), default=AUTO,
                               tooltip="How pixels are fed to the net: 'auto' reads the file (e.g. Caffe "
                                       "VGG weights want BGR 0..255); override only for unusual files."),
                io.Combo.Input("pooling", options=list(POOLING), default="max",
                               tooltip="'average' replaces max pooling: smoother, often nicer style "
                                       "transfer (Gatys et al.); 'max' is the network as trained."),
                io.Combo.Input("padding", options=list(PADDING), default="zeros",
                               tooltip="Border mode of the convolutions: 'replicate' or 'reflect' avoid the "
                                       "bright or dark frames that zero padding leaves on optimised images."),
                io.Combo.Input("precision", options=list(PRECISIONS), default=AUTO,
                               tooltip="Precision of the network's weights and convolutions; losses stay "
                                       "float32. 'auto' follows ComfyUI's choice for its VAE on this device "
                                       "(bf16 where it is fast, else fp32); fp16 can overflow on Caffe nets."),
            ],
            outputs=[CNN.Output(display_name="cnn", tooltip="The loaded network.")],
        )

    @classmethod
    def validate_inputs(cls, weights: str, architecture: str = DEFAULT_ARCHITECTURE) -> bool | str:
        if architecture not in ARCHITECTURES:  # named here, so the host leaves this combo to us
            return f"architecture {architecture!r} is unknown; valid: {', '.join(ARCHITECTURES)}."
        name = _downloadable(weights)
        if name is not None:
            if name not in DOWNLOADS:
                known = ", ".join(DOWNLOAD_PREFIX + n for n in DOWNLOADS)
                return f"weights {weights!r} is no file Load CNN can download; it can download {known}."
            spec = DOWNLOADS[name][0]
            if spec.name != architecture:
                return (f"weights {weights!r} is a {spec.title} file; set architecture to {spec.name!r} "
                        f"(it is {architecture!r}).")
        elif weights != DEFAULT_WEIGHTS and folder_paths.get_full_path(FOLDER, weights) is None:
            return f"Weights file {weights!r} is not in models/{FOLDER}; pick another or 'default'."
        return True

    @classmethod
    def fingerprint_inputs(cls, weights: str, **_) -> object:
        name = _downloadable(weights) or (None if weights == DEFAULT_WEIGHTS else weights)
        path = folder_paths.get_full_path(FOLDER, name) if name else None
        return os.path.getmtime(path) if path else weights

    @classmethod
    def execute(cls, architecture: str, weights: str, preprocessing: str, pooling: str, padding: str,
                precision: str) -> io.NodeOutput:
        path = _weights_path(architecture, weights)
        dtype = PRECISIONS[precision] or mm.vae_dtype(mm.get_torch_device(), [torch.bfloat16])
        with torch.inference_mode(False):  # weights made in inference mode could not be used by autograd
            cnn = load_cnn(architecture, path, None if preprocessing == AUTO else preprocessing, pooling, padding,
                           dtype)
        return io.NodeOutput(host_model(cnn))


class SelectLayers(ReverieNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="ReverieSelectLayers",
            display_name="Select Layers",
            search_aliases=["layers", "channels"],
            category="Reverie/models",
            description="Chooses which layers of the CNN an effect reads, each with a weight. One entry per "
                        "line or comma: 'layer' or 'layer: weight' for a whole layer; 'layer#channels: weight' "
                        "for channels: numbers and ranges ('mixed4#3,7,10-20': the commas after '#' continue "
                        "the list until an item names a layer), or 'topK', the K channels the input image "
                        "excites most, chosen by Dream ('mixed4#top8'). 'class' stands for the classifier "
                        "layer, whose channels are the classes: 'class#207', or by name, 'class#golden "
                        "retriever' (an exact name picks that class) or 'class#dog' (every class whose name "
                        "contains it; unknown names get the closest ones). A negative weight suppresses. The "
                        "classes a name picked show on the node after a run.",
            inputs=[
                CNN.Input("cnn", tooltip="The network whose layers are named."),
                io.String.Input("layers", multiline=True, default="",
                                tooltip="e.g. 'inception_4c/output: 1.0' (GoogLeNet) or 'stage5: 1.0' "
                                        "(EfficientNet-Lite0); 'stage5#3,7,10-20: 1', 'stage5#top8: 1', "
                                        "'stage4#12: -0.5' (suppress), 'class#golden retriever: 1', "
                                        "'class#dog'. Unknown names are reported with the nearest valid ones."),
            ],
            outputs=[LAYERS.Output(display_name="layers", tooltip="Weighted layers of this CNN.")],
        )

    @classmethod
    def execute(cls, cnn: LoadedCNN, layers: str) -> io.NodeOutput:
        selection = parse_layers(cnn, layers)
        return io.NodeOutput(selection, ui=shown_warnings(list(selection.notes), "Select Layers"))
