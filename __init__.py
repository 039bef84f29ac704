"""Reverie: DeepDream and neural style transfer nodes for ComfyUI."""
from .nodes import ReverieExtension
from .nodes.routes import register_routes

WEB_DIRECTORY = "./web"

register_routes()  # at import: ComfyUI 0.3.75 never calls ComfyExtension.on_load


async def comfy_entrypoint() -> ReverieExtension:
    return ReverieExtension()
