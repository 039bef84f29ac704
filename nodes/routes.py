"""HTTP routes for the web extension (web/js/layers.js); the pack's __init__ calls register_routes()."""
from __future__ import annotations

from aiohttp import web

from ..engine.architectures import ARCHITECTURES


def layer_catalogue(architecture: str) -> dict:
    """Layer names in forward order and the default selection of one architecture."""
    spec = ARCHITECTURES[architecture]
    return {"architecture": architecture,
            "layers": [layer.name for layer in spec.catalogue()],
            "default_layers": dict(spec.default_layers)}


async def get_layers(request: web.Request) -> web.Response:
    """GET /reverie/layers?architecture=NAME -> {"layers": [...], "default_layers": {name: weight}}."""
    name = request.query.get("architecture", "")
    if name not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        return web.json_response({"error": f"unknown architecture {name!r}; known: {known}"}, status=404)
    return web.json_response(layer_catalogue(name))


def register_routes() -> None:
    """Add the routes to the running ComfyUI server (also served under /api/...)."""
    from server import PromptServer

    PromptServer.instance.routes.get("/reverie/layers")(get_layers)
