"""Reverie: DeepDream and neural style transfer nodes for ComfyUI."""
from .nodes import ReverieExtension

WEB_DIRECTORY = "./web"


async def comfy_entrypoint() -> ReverieExtension:
    return ReverieExtension()
