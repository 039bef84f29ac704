"""The host side of a run: images in and out, device placement, progress, previews and interrupts."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import comfy.model_management as mm
import comfy.utils
import torch
from PIL import Image

from ..engine.models import CNN
from ..engine.optimize import Progress
from ..engine.pictures import to_pil
from ..engine.tiles import BYTES_PER_PIXEL

PREVIEW_MAX = 512
log = logging.getLogger("reverie")


def to_bchw(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """ComfyUI IMAGE [B,H,W,C] (C = 1..4, any float dtype) to an RGB float32 BCHW copy on `device`."""
    if image.dim() != 4 or not 1 <= image.shape[-1] <= 4:
        raise ValueError(f"Expected an IMAGE of shape [batch, height, width, channels] with 1-4 channels; "
                         f"got {tuple(image.shape)}.")
    rgb = image[..., :3] if image.shape[-1] >= 3 else image[..., :1].expand(*image.shape[:-1], 3)
    return rgb.to(device=device, dtype=torch.float32).permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format)


def to_bhwc(x: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
    """BCHW result back to an IMAGE on the host's intermediate device, keeping `like`'s alpha channel."""
    out = x.detach().clamp(0, 1).permute(0, 2, 3, 1).to(mm.intermediate_device(), torch.float32)
    if like is not None and like.shape[-1] == 4 and tuple(like.shape[:3]) == tuple(out.shape[:3]):
        out = torch.cat([out, like[..., 3:].to(out)], -1)
    return out.contiguous()


def to_mask(mask: torch.Tensor, device: torch.device) -> torch.Tensor:
    """ComfyUI MASK [B,H,W] or [H,W] to float32 [B,1,H,W] on `device`."""
    mask = mask if mask.dim() == 3 else mask.unsqueeze(0)
    return mask.to(device=device, dtype=torch.float32).unsqueeze(1).clone()


@contextmanager
def cnn_on_device(cnn: CNN, pixels: int) -> Iterator[torch.device]:
    """Moves the CNN to the host's compute device for one run on `pixels` input pixels (batch
    included), then back to its offload device.

    Runs under autograd (inference mode off), so the moved weights can take part in backward passes.
    """
    device = mm.get_torch_device()
    with torch.inference_mode(False), torch.enable_grad():
        needed = mm.module_size(cnn.module) + pixels * BYTES_PER_PIXEL
        mm.free_memory(needed, device)
        cnn.module.to(device)
        try:
            yield device
        finally:
            cnn.module.to(mm.unet_offload_device())
            mm.soft_empty_cache()


class NodeProgress:
    """Engine callback: stops on the host's interrupt, advances the progress bar, sends a preview."""

    def __init__(self) -> None:
        self.bar = comfy.utils.ProgressBar(1)
        self.steps = 0

    def __call__(self, p: Progress) -> None:
        mm.throw_exception_if_processing_interrupted()
        self.steps += 1  # the bar counts steps taken, out of the total that the fraction done implies
        image = preview(p.image)
        # the third item caps the preview's longer side; the host would otherwise upscale small images
        total = max(self.steps, round(self.steps / p.done))
        self.bar.update_absolute(self.steps, total, ("JPEG", image, max(image.size)))


def preview(x: torch.Tensor) -> Image.Image:
    """The first image of a BCHW batch as a PIL image no larger than the preview size."""
    first = x[:1].detach().float()
    scale = PREVIEW_MAX / max(first.shape[-2:])
    if scale < 1:
        first = torch.nn.functional.interpolate(first, scale_factor=scale, mode="area")
    return to_pil(first[0])


def shown_warnings(warnings: list[str], node: str) -> dict:
    """A run's warnings, logged once each, as the `ui` dict that web/js/warnings.js shows on the node."""
    warnings = list(dict.fromkeys(warnings))
    for warning in warnings:
        log.warning("Reverie %s: %s", node, warning)
    return {"reverie_warnings": warnings}
