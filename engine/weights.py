"""Reading weight files: safetensors, or PyTorch pickles through `weights_only=True` only."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "params")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weight file, on the CPU; a ValueError saying what is wrong otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Weights file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except Exception as e:  # a damaged or foreign file: say so, without echoing any of its bytes
            raise ValueError(f"{path.name} is not a readable .safetensors file (damaged, cut short, or another "
                             f"kind of file).") from e
    if suffix not in PICKLE_SUFFIXES:
        raise ValueError(f"{path.name}: weights must be .safetensors (preferred) or "
                         f"{', '.join(PICKLE_SUFFIXES)}; got {suffix or 'no extension'}.")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path.name} could not be read as plain tensors with torch.load(weights_only=True) "
                         f"({type(e).__name__}). Only state dicts are accepted; convert whole pickled "
                         f"models to .safetensors.") from e
    return _unwrap(obj, path.name)


def _unwrap(obj: object, name: str) -> dict[str, torch.Tensor]:
    for key in WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{name} holds no state dict (a mapping of names to tensors).")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def read_metadata(path: str | Path) -> dict[str, str]:
    """A .safetensors file's string metadata (empty for other formats)."""
    if Path(path).suffix.lower() != ".safetensors":
        return {}
    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}
