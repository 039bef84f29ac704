"""Reverie's socket types."""
from comfy_api.latest import io

CNN = io.Custom("REVERIE_CNN")
LAYERS = io.Custom("REVERIE_LAYERS")
OBJECTIVE = io.Custom("REVERIE_OBJECTIVE")
OCTAVES = io.Custom("REVERIE_OCTAVES")
