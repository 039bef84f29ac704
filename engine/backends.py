"""Backend settings for runs that repeat one input shape many times."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def repeated_shapes(device: torch.device) -> Iterator[None]:
    """On CUDA, lets cuDNN time its convolution algorithms for each new shape and keep the fastest
    (`torch.backends.cudnn.benchmark`): it pays when a shape repeats for many steps, as in style
    transfer. The caller's other cuDNN settings are kept, and all of them are restored afterwards.
    Elsewhere it changes nothing. The fastest algorithm may not be deterministic: on CUDA, a seed then
    gives the same image up to float rounding, not to the bit."""
    if device.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    with cudnn.flags(enabled=cudnn.enabled, benchmark=True, deterministic=cudnn.deterministic,
                     allow_tf32=cudnn.allow_tf32):
        yield
