"""Large float32 buffers kept in float16, scaled by a power of two (content targets at print sizes)."""
from __future__ import annotations

import math
from typing import Callable

import torch

TINY = 2.0 ** -100  # largest magnitudes below this are scaled as this (the scale stays a normal float32)
CHUNK = 16  # channels read back to float32 at once (mean_square): a bounded temporary at any size


class ScaledHalf:
    """Values stored as float16 times `scale`, a power of two chosen so that the largest magnitude lies in
    [2¹⁴, 2¹⁵): each value rounded to within 2⁻¹¹ of itself, in half the bytes, far from float16's limits.

    `of` converts a whole tensor on its device (no host read). `empty` and `put` assemble one part by part
    (tiles) with no float32 copy of the whole: a part larger than the scale allows rescales what is there by a
    power of two, which is exact for every value not pushed below float16's normal range (2⁻¹⁴ of the scale,
    2⁻²⁹ of the largest value). One host read per part; non-finite parts are refused there, naming `name`.
    Values are divided in float32 whatever their dtype (a float16 division would flush small scales to 0).
    The scale lives with the values, which may be in host memory while the parts come from the device.
    """

    def __init__(self, values: torch.Tensor, scale: torch.Tensor | None, name: str):
        self.values, self.scale, self.name = values, scale, name

    @classmethod
    def of(cls, x: torch.Tensor, name: str) -> ScaledHalf:
        x = x.float()
        scale = _scale(x)
        return cls(torch.div(x, scale, out=torch.empty_like(x, dtype=torch.float16)), scale, name)

    @classmethod
    def empty(cls, shape: tuple[int, ...], device: torch.device, name: str) -> ScaledHalf:
        """Nothing written yet (no scale): every position must then be `put` before use."""
        return cls(torch.empty(shape, dtype=torch.float16, device=device), None, name)

    def put(self, select: Callable[[torch.Tensor], torch.Tensor], part: torch.Tensor) -> None:
        """Writes `part` into `select(values)` (a view: a tile's crop), rescaling what is there if needed."""
        part = part.float()
        needed = _scale(part)
        need = float(needed)
        if not math.isfinite(need):
            raise ValueError(f"{self.name} are not finite: the network's numbers overflowed (float16 reaches only "
                             f"65504). Set Load CNN's precision to float32 or bfloat16.")
        if self.scale is None:
            self.scale = needed.to(self.values.device)
        elif need > (have := float(self.scale)):
            self.values.mul_(have / need)
            self.scale = needed.to(self.values.device)
        select(self.values).copy_(part / self.scale.to(part.device))

    def mean_square(self) -> torch.Tensor:
        """The mean square of each batch element's values `[B]`, float32, read a few channels at a time."""
        total = sum(part.float().square().sum(tuple(range(1, part.dim())))
                    for part in self.values.split(CHUNK, dim=1))
        return total * self.scale * self.scale / self.values[0].numel()


def _scale(x: torch.Tensor) -> torch.Tensor:
    """The power of two (float32, on x's device) that puts |x|'s largest value in [2¹⁴, 2¹⁵); inf or NaN
    for non-finite x."""
    largest = torch.maximum(x.amax(), -x.amin()).float().clamp_min(TINY)
    return torch.exp2(torch.floor(torch.log2(largest)) - 14)
