"""Every architecture the engine can build, by name."""
from ..spec import ModelSpec
from . import googlenet_caffe

ARCHITECTURES: dict[str, ModelSpec] = {spec.name: spec for spec in (
    googlenet_caffe.SPEC,
)}
