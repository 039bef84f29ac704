"""Every architecture the engine can build, by name."""
from ..spec import ModelSpec
from . import efficientnet_lite, googlenet_caffe, torchvision_nets

ARCHITECTURES: dict[str, ModelSpec] = {spec.name: spec for spec in (
    efficientnet_lite.SPEC,
    googlenet_caffe.SPEC,
    *torchvision_nets.SPECS,
)}
