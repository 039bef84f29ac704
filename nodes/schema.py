"""io.Schema with the optional fields this host's ComfyUI knows: newer hosts take `search_aliases` (other
names the node search finds it by); ComfyUI 0.3.75 has no such field, so there it is left out."""
from __future__ import annotations

import dataclasses

from comfy_api.latest import io

OPTIONAL_FIELDS = {"search_aliases"}  # dropped where the host's Schema lacks them; any other field must exist
HOST_FIELDS = {f.name for f in dataclasses.fields(io.Schema)}


def schema(**fields) -> io.Schema:
    """io.Schema(**fields), without the optional fields this host does not have."""
    return io.Schema(**{k: v for k, v in fields.items() if k in HOST_FIELDS or k not in OPTIONAL_FIELDS})
