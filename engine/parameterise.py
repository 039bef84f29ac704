"""How an image being optimised from noise is represented (Lucid's feature-visualisation recipe).

A parameterisation makes the optimiser's tensor (`noise`) and maps it to pixels (`__call__`, BCHW in
(0, 1), differentiable). `FourierImage` holds a spectrum whose frequencies are scaled by 1/f, so every
frequency learns at the same rate as in natural images and the high-frequency noise that pixel
optimisation produces does not grow; `PixelImage` is plain pixels, for comparison. Both work in a
decorrelated colour space: the optimised colours are multiplied by a square root of ImageNet's colour
correlation, so a step changes natural colour directions rather than raw R, G and B.
"""
from __future__ import annotations

import torch

# Lucid's figures for the Cholesky factor of ImageNet's RGB correlation (its early image parameterisations);
# its later code uses an SVD square root of nearly the same matrix, which differs mainly by a rotation of the
# decorrelated space. Columns are scaled so that the longest has norm 1, as Lucid does.
COLOUR_CORRELATION_CHOLESKY = torch.tensor([[0.28, 0.00, 0.00],
                                            [0.25, 0.12, 0.00],
                                            [0.23, 0.14, 0.14]])
DECORRELATED_TO_RGB = COLOUR_CORRELATION_CHOLESKY / COLOUR_CORRELATION_CHOLESKY.norm(dim=0).max()
INIT_SD = 0.01  # Lucid's: the start is a nearly uniform grey
FOURIER_GAIN = 0.25  # Lucid divides the inverse transform by 4 (less saturated colours)
PARAMETERISATIONS = ("fourier", "pixels")


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Decorrelated colours (BCHW, unbounded) to RGB in (0, 1): the colour matrix, then a sigmoid."""
    return torch.sigmoid(torch.einsum("dc,bchw->bdhw", DECORRELATED_TO_RGB.to(x), x))


class PixelImage:
    """One decorrelated colour value per pixel."""

    def __init__(self, height: int, width: int):
        self.shape = (3, height, width)

    def noise(self, batch: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        return (torch.randn(batch, *self.shape, generator=generator) * INIT_SD).to(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return to_rgb(x)


class FourierImage:
    """The image's 2-D spectrum (real and imaginary parts, `[B, 3, H, W//2 + 1, 2]`), each frequency
    scaled by 1/max(f, 1/max(H, W))^decay; the orthonormal inverse FFT gives the decorrelated image."""

    def __init__(self, height: int, width: int, decay: float = 1.0):
        self.size = (height, width)
        fy = torch.fft.fftfreq(height)[:, None]
        fx = torch.fft.rfftfreq(width)[None, :]
        frequency = (fx * fx + fy * fy).sqrt().clamp(min=1.0 / max(height, width))
        # the orthonormal inverse is Lucid's √(HW) times an unnormalised one: the same learning rates as pixels
        self.scale = (frequency.pow(-decay) * FOURIER_GAIN)[..., None]  # [H, W//2 + 1, 1]

    def noise(self, batch: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        shape = (batch, 3, *self.scale.shape[:2], 2)
        return (torch.randn(shape, generator=generator) * INIT_SD).to(device)

    def __call__(self, spectrum: torch.Tensor) -> torch.Tensor:
        scaled = torch.view_as_complex(spectrum * self.scale.to(spectrum))
        return to_rgb(torch.fft.irfft2(scaled, s=self.size, norm="ortho"))


def parameterisation(name: str, height: int, width: int) -> PixelImage | FourierImage:
    """The parameterisation called `name` (one of PARAMETERISATIONS) for `height`×`width` images."""
    if name not in PARAMETERISATIONS:
        raise ValueError(f"parameterisation must be one of {', '.join(PARAMETERISATIONS)}; got {name!r}.")
    return FourierImage(height, width) if name == "fourier" else PixelImage(height, width)
