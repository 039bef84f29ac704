"""Content targets in float16: ScaledHalf keeps large float32 buffers to within 2⁻¹¹ in half the bytes,
whole or assembled part by part."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.half import ScaledHalf
from reverie.engine.losses import ContentLoss


def test_values_keep_their_precision_scaled_by_a_power_of_two():
    x = torch.randn(2, 5, 7, 9, generator=torch.Generator().manual_seed(0)) * 3e6  # past float16's 65504
    half = ScaledHalf.of(x, "x")
    assert half.values.dtype == torch.float16
    assert 2 ** 14 <= half.values.float().abs().max() < 2 ** 15 and torch.log2(half.scale) % 1 == 0
    assert (half.values.float() * half.scale - x).abs().max() <= 2 ** -11 * x.abs().max()
    torch.testing.assert_close(half.mean_square(), x.square().mean((1, 2, 3)), rtol=1e-3, atol=0)


def test_float16_input_is_scaled_in_float32():
    """Small float16 values (largest 2⁻¹², scale 2⁻²⁶, below float16's range) keep their precision."""
    x = torch.rand(1, 4, 5, 5, generator=torch.Generator().manual_seed(2)).mul(2 ** -12).half()
    half = ScaledHalf.of(x, "x")
    assert (half.values.float() * half.scale - x.float()).abs().max() <= 2 ** -11 * x.float().abs().max()


def test_parts_growing_in_size_assemble_to_the_whole_exactly():
    """Each part larger than the scale allows rescales what is there by a power of two, which rounds nothing
    while no value falls below float16's normal range (none does here): the assembly equals the whole
    converted at once, bit for bit, in any order of the parts."""
    g = torch.Generator().manual_seed(1)
    whole = torch.cat([torch.rand(1, 3, 4, 6, generator=g) * 10 ** k for k in range(4)], dim=2)  # 4 row bands
    want = ScaledHalf.of(whole, "whole")
    for order in ([0, 1, 2, 3], [3, 1, 0, 2]):
        built = ScaledHalf.empty(tuple(whole.shape), whole.device, "built")
        for k in order:
            built.put(lambda v, k=k: v[..., 4 * k:4 * k + 4, :], whole[..., 4 * k:4 * k + 4, :])
        assert torch.equal(built.scale, want.scale) and torch.equal(built.values, want.values)


def test_zeros_and_non_finite_features():
    """Zeros keep (a content loss on them has a floor, not a division by 0); a tile of inf or NaN features is
    named as the network overflowing, with the precision that avoids it (a whole target leaves that to the
    first step's loss, see test_guards)."""
    zeros = ScaledHalf.of(torch.zeros(1, 2, 3, 3), "zeros")
    assert torch.equal(zeros.values.float(), torch.zeros(1, 2, 3, 3)) and zeros.mean_square().item() == 0
    loss = ContentLoss("a", torch.zeros(1, 2, 3, 3))
    assert torch.isfinite(loss.total(loss.sums({"a": torch.ones(1, 2, 3, 3)}, torch.zeros(1, 3, 3, 3))))
    for bad in (float("inf"), float("nan")):
        part = torch.ones(1, 2, 3, 3)
        part[0, 1, 2, 2] = bad
        built = ScaledHalf.empty((1, 2, 3, 3), part.device, "The content image's features at 'a'")
        with pytest.raises(ValueError, match=r"The content image's features at 'a' are not finite: .* float32 or "
                                             r"bfloat16"):
            built.put(lambda v: v, part)
