"""Load CNN and Select Layers."""
from __future__ import annotations

import os

import comfy.model_management as mm
import folder_paths
import torch
from comfy_api.latest import io

from ..engine.architectures import ARCHITECTURES
from ..engine.layers import parse_layers
from ..engine.models import CNN as LoadedCNN
from ..engine.models import PADDING, POOLING, load_cnn
from .host import shown_warnings
from .schema import schema
from .types import CNN, LAYERS

FOLDER = "cnn"
DEFAULT_WEIGHTS = "default"
AUTO = "auto"
PREPROCESSING = (AUTO, *sorted({p.name for spec in ARCHITECTURES.values() for p in spec.preprocess}))
DEFAULT_ARCHITECTURE = "efficientnet_lite0"
PRECISIONS = {AUTO: None, "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

folder_paths.add_model_folder_path(FOLDER, os.path.join(folder_paths.models_dir, FOLDER))


def _weight_files() -> list[str]:
    return [DEFAULT_WEIGHTS] + folder_paths.get_filename_list(FOLDER)


class LoadCNN(io.ComfyNode):
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
                        "architecture's own source (a pip package or torchvision's cache).",
            inputs=[
                io.Combo.Input("architecture", options=names,
                               default=DEFAULT_ARCHITECTURE if DEFAULT_ARCHITECTURE in names else names[0],
                               tooltip="The network design; the weights file must be made for it."),
                io.Combo.Input("weights", options=_weight_files(), default=DEFAULT_WEIGHTS,
                               tooltip="A file in models/cnn, or 'default' for weights that need no "
                                       "file of yours (EfficientNet-Lite0's pip package, torchvision's cache)."),
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
    def validate_inputs(cls, weights: str) -> bool | str:  # only `weights`: ComfyUI still checks the others
        if weights != DEFAULT_WEIGHTS and folder_paths.get_full_path(FOLDER, weights) is None:
            return f"Weights file {weights!r} is not in models/{FOLDER}; pick another or 'default'."
        return True

    @classmethod
    def fingerprint_inputs(cls, weights: str, **_) -> object:
        path = None if weights == DEFAULT_WEIGHTS else folder_paths.get_full_path(FOLDER, weights)
        return os.path.getmtime(path) if path else weights

    @classmethod
    def execute(cls, architecture: str, weights: str, preprocessing: str, pooling: str, padding: str,
                precision: str) -> io.NodeOutput:
        path = None if weights == DEFAULT_WEIGHTS else folder_paths.get_full_path_or_raise(FOLDER, weights)
        dtype = PRECISIONS[precision] or mm.vae_dtype(mm.get_torch_device(), [torch.bfloat16])
        with torch.inference_mode(False):  # weights made in inference mode could not be used by autograd
            cnn = load_cnn(architecture, path, None if preprocessing == AUTO else preprocessing, pooling, padding,
                           dtype)
        return io.NodeOutput(cnn)


class SelectLayers(io.ComfyNode):
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
