"""The host side of a run: images in and out, the CNN in the host's model manager, the memory guard,
progress, previews, interrupts and warnings."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterable, Iterator

import comfy.model_management as mm
import comfy.model_patcher
import comfy.utils
import torch
from PIL import Image

from ..engine.features import FeatureNet
from ..engine.memory import Footprint, estimate, plan
from ..engine.models import CNN
from ..engine.optimize import Progress
from ..engine.pictures import to_pil

PREVIEW_MAX = 512
FREE_SHARE = 0.9  # of the device's free memory a run may plan to use (the estimate is already generous)
HOST = torch.device("cpu")  # where a print larger than the device's memory keeps its image-sized buffers
PATCHER = "reverie_patcher"  # the attribute of a CNN's module that holds its ModelPatcher
log = logging.getLogger("reverie")


def to_bchw(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """ComfyUI IMAGE [B,H,W,C] (C = 1..4, any float dtype) to an RGB float32 BCHW copy on `device`."""
    return rgb_view(image).to(device, memory_format=torch.contiguous_format, copy=True)


def rgb_view(image: torch.Tensor) -> torch.Tensor:
    """ComfyUI IMAGE [B,H,W,C] as RGB float32 [B,3,H,W] where it is, a view when it can be (float32 RGB or RGBA):
    the video engine copies one frame at a time to the device, so a clip is never copied whole."""
    if image.dim() != 4 or not 1 <= image.shape[-1] <= 4:
        raise ValueError(f"Expected an IMAGE of shape [batch, height, width, channels] with 1-4 channels; "
                         f"got {tuple(image.shape)}.")
    rgb = image[..., :3] if image.shape[-1] >= 3 else image[..., :1].expand(*image.shape[:-1], 3)
    return rgb.float().permute(0, 3, 1, 2)


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


def patcher(cnn: CNN) -> comfy.model_patcher.ModelPatcher:
    """The host's ModelPatcher of `cnn` (made on first use and kept on its module, so it lives as long as the
    CNN does): ComfyUI loads, lists, offloads and frees the network like its own models."""
    found = getattr(cnn.module, PATCHER, None)
    if found is None:
        found = comfy.model_patcher.ModelPatcher(cnn.module, load_device=mm.get_torch_device(),
                                                 offload_device=mm.unet_offload_device())
        setattr(cnn.module, PATCHER, found)
    return found


def host_model(cnn: CNN) -> CNN:
    """`cnn` with its ModelPatcher as `patcher`, as ComfyUI's CLIP and VAE objects carry theirs: newer hosts'
    cache then treats the output as a model (under RAM pressure, networks of older workflows go first)."""
    cnn.patcher = patcher(cnn)
    return cnn


def load(cnn: CNN, memory_required: int = 0) -> torch.device:
    """Loads the CNN onto the compute device with the host's loader, which first frees `memory_required` bytes
    for the run (offloading other models if it must); returns the device. Outside inference mode, so the
    moved weights can take part in backward passes."""
    model = patcher(cnn)
    with torch.inference_mode(False):
        mm.load_models_gpu([model], memory_required=memory_required, force_full_load=True)
    return model.load_device


@contextmanager
def cnn_loaded(cnn: CNN) -> Iterator[torch.device]:
    """The CNN on the host's compute device for one run, under autograd (inference mode off). It stays loaded
    afterwards, until the host offloads it for other models or frees its models."""
    with torch.inference_mode(False), torch.enable_grad():
        yield load(cnn)


def feature_net(cnn: CNN, layers: Iterable[str]) -> FeatureNet:
    """The feature net of a run, stopping on the host's interrupt before any layer (so within a tile too)."""
    return FeatureNet(cnn, layers, check=mm.throw_exception_if_processing_interrupted)


def fit_in_memory(net: FeatureNet, size: tuple[int, int], batch: int, tile: int, footprint: Footprint,
                  offload: bool = False) -> tuple[int, torch.device]:
    """The tile a run of `size` (height, width) on `batch` images uses, and the device its images live on: the
    host first makes room for the estimate at `tile` (0: untiled), then memory.plan chooses tiles for tile 0
    when the whole image would not fit in the device's free memory, or, with `offload` and a GPU, keeps the
    image-sized buffers in host memory when no tile would fit beside them; else it refuses with the estimate,
    the budget and the fix."""
    device = load(net.cnn, estimate(net, size, batch, tile, footprint))
    host = mm.get_free_memory(HOST) * FREE_SHARE if offload and device.type not in ("cpu", "mps") else None
    chosen = plan(net, size, batch, tile, footprint, free_memory(net.cnn, device) * FREE_SHARE, host)
    return chosen.tile, HOST if chosen.offload else device


def placement_notes(storage: torch.device, device: torch.device, tile: int) -> list[str]:
    """What the node says about where its run kept the image (see fit_in_memory): nothing when on the device."""
    if storage == device:
        return []
    return [f"The image and the buffers as large as it were kept in host memory: the GPU had room for them only "
            f"beside tiles too small to work well, or for none. It worked on tiles of {tile} px, moved there and "
            f"back (slower than a run that fits; the same result)."]


def free_memory(cnn: CNN, device: torch.device) -> int:
    """Bytes free on `device` as the host counts them for a model's run: newer hosts' ModelPatcher adds what
    their Dynamic VRAM holds but gives back on demand (0.3.75 has no such count: the device's free memory)."""
    count = getattr(patcher(cnn), "get_free_memory", None)
    return count(device) if count is not None else mm.get_free_memory(device)


class NodeProgress:
    """Engine callback: advances the progress bar and sends a preview (the net stops on interrupts)."""

    def __init__(self) -> None:
        self.bar = comfy.utils.ProgressBar(1)
        self.steps = 0

    def __call__(self, p: Progress) -> None:
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
