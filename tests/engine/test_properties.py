"""Properties of the engine's pure functions, for any input hypothesis draws: layer text reads back what was
written, pyramids end at the full size, tile grids cover every pixel once, resizing keeps values in range,
colour transforms round trip, a zero flow warps nothing, non-finite values are counted right."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reverie.engine.colour import luminance_only, rgb_to_yiq, yiq_to_rgb
from reverie.engine.flow import warp
from reverie.engine.layers import MAX_WEIGHT, LayerWeight, parse_layers
from reverie.engine.pyramid import Pyramid, resize
from reverie.engine.style import non_finite
from reverie.engine.tiles import TileGrid, Tiling
from reverie.engine.transfer import fit_size
from reverie.engine.zoom import zoom_in
from tests.helpers import tiny_cnn

QUICK = settings(max_examples=60, deadline=None)  # the CPUs are shared: enough examples to find edge cases
SLOW = settings(max_examples=20, deadline=None)  # examples that run the net
TINY_CHANNELS = {"b1/conv": 8, "b1/relu": 8, "b1/pool": 8, "b2/conv": 16, "b2/relu": 16, "b2/pool": 16,
                 "b3/conv": 16, "b3/relu": 16, "b3/pool": 16}
seeds = st.integers(0, 2**31 - 1)


def images(seed: int, batch: int, channels: int, height: int, width: int) -> torch.Tensor:
    return torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    return tiny_cnn(tmp_path_factory.mktemp("tiny"))


def channel_of(entry: LayerWeight) -> int | None:
    """The one channel an entry written as 'layer#N' reads (None: the whole layer)."""
    return entry.channels[0][0] if entry.channels else None


@st.composite
def layer_entries(draw) -> list[tuple[str, int | None, float]]:
    """(layer, channel or None, weight) entries of the tiny net, not all of weight 0."""
    entries = draw(st.lists(st.tuples(
        st.sampled_from(sorted(TINY_CHANNELS)), st.none() | st.integers(0, 7),
        st.floats(-MAX_WEIGHT, MAX_WEIGHT, allow_nan=False) | st.integers(-1000, 1000).map(float)),
        min_size=1, max_size=6))
    if all(w == 0 for _, _, w in entries):
        entries[0] = (entries[0][0], entries[0][1], 1.0)
    return entries


@SLOW
@given(entries=layer_entries(), separators=st.lists(st.sampled_from([",", "\n", " , ", ",\n  "]), min_size=6,
                                                      max_size=6))
def test_layer_text_reads_back_what_was_written(cnn, entries, separators):
    """Entries written as 'layer#channel: weight' with any separators parse to themselves; printing the
    selection and parsing that again gives the same entries (weights to the 6 digits they print with)."""
    text = "".join(f"{layer}{'' if c is None else f'#{c}'}: {w!r}" + sep
                   for (layer, c, w), sep in zip(entries, separators))
    parsed = parse_layers(cnn, text).entries
    assert [(e.layer, channel_of(e), e.weight) for e in parsed] == entries
    again = parse_layers(cnn, "\n".join(str(e) for e in parsed)).entries
    assert [(e.layer, e.channels) for e in again] == [(e.layer, e.channels) for e in parsed]
    assert all(math.isclose(a.weight, b.weight, rel_tol=1e-5) for a, b in zip(again, parsed))


@SLOW
@given(layer=st.sampled_from(sorted(TINY_CHANNELS)), channel=st.integers(0, 64))
def test_channels_are_accepted_exactly_when_the_layer_has_them(cnn, layer, channel):
    if channel < TINY_CHANNELS[layer]:
        assert channel_of(parse_layers(cnn, f"{layer}#{channel}").entries[0]) == channel
    else:
        with pytest.raises(ValueError, match=f"has {TINY_CHANNELS[layer]} channels"):
            parse_layers(cnn, f"{layer}#{channel}")


@QUICK
@given(octaves=st.integers(1, 12), scale=st.floats(1.05, 4.0), height=st.integers(1, 4096),
       width=st.integers(1, 4096), min_size=st.integers(1, 256))
def test_pyramid_sizes_grow_to_the_full_size(octaves, scale, height, width, min_size):
    """At most `octaves` sizes, growing, the last the full size, every earlier one at least `min_size`."""
    sizes = Pyramid(octaves, scale).sizes(height, width, min_size)
    assert 1 <= len(sizes) <= octaves and sizes[-1] == (height, width)
    assert all(min(s) >= min_size for s in sizes[:-1])
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(sizes, sizes[1:]))


def coverage(windows: list[tuple[slice, slice]], height: int, width: int) -> torch.Tensor:
    count = torch.zeros(height, width, dtype=torch.uint8)
    for rows, cols in windows:
        count[rows, cols] += 1
    return count


@st.composite
def tiled_sizes(draw, tiles: st.SearchStrategy[int]) -> tuple[int, int, int]:
    """A tile size and an image size of up to 8 tiles a side (more only costs time)."""
    tile = draw(tiles)
    return tile, draw(st.integers(1, 8 * tile)), draw(st.integers(1, 8 * tile))


@QUICK
@given(sizes=tiled_sizes(st.integers(8, 512)), seed=seeds)
def test_moving_windows_cover_every_pixel_once(sizes, seed):
    """Every step's moving grid covers each pixel exactly once, with windows a quarter to 1.5 tiles wide."""
    tile, height, width = sizes
    windows = Tiling(tile, torch.Generator().manual_seed(seed)).windows(height, width)
    assert (coverage(windows, height, width) == 1).all()
    for rows, cols in windows:
        for s, length in ((rows, height), (cols, width)):
            size = s.stop - s.start
            assert size == length or tile / 4 - 1 <= size <= 1.5 * tile + 1


@QUICK
@given(step=st.sampled_from([1, 2, 4, 8, 16, 32]), halo_steps=st.integers(0, 6),
       sizes=tiled_sizes(st.integers(1, 12)))
def test_exact_tiles_own_every_pixel_once_and_read_their_halo(step, halo_steps, sizes):
    """The tiles' own regions partition the image; each crop holds its own region plus at most the halo (and the
    image's length modulo the step) on each side, inside the image, starting at a multiple of the step."""
    tile_steps, height, width = sizes
    halo = halo_steps * step
    height, width = height * step, width * step - step // 2  # lengths that are and are not multiples of the step
    grid = TileGrid(max(tile_steps * step, 2 * halo, step), halo, step)
    tiles = grid.tiles(height, width)
    assert (coverage([t.own for t in tiles], height, width) == 1).all()
    for tile in tiles:
        for crop, own, length in ((tile.crop[0], tile.own[0], height), (tile.crop[1], tile.own[1], width)):
            assert 0 <= crop.start <= own.start < own.stop <= crop.stop <= length
            assert own.start - crop.start <= halo and crop.stop - own.stop <= halo + length % step
            assert crop.start % step == 0


@QUICK
@given(seed=seeds, batch=st.integers(1, 3), channels=st.integers(1, 4), h=st.integers(1, 64), w=st.integers(1, 64),
       size=st.tuples(st.integers(1, 96), st.integers(1, 96)))
def test_resize_gives_the_size_and_stays_within_the_values(seed, batch, channels, h, w, size):
    x = images(seed, batch, channels, h, w)
    out = resize(x, size)
    assert out.shape == (batch, channels, *size)
    assert out.min() >= x.min() - 1e-5 and out.max() <= x.max() + 1e-5
    assert torch.equal(resize(x, (h, w)), x)
    constant = torch.full_like(x, 0.37)
    assert torch.allclose(resize(constant, size), torch.full_like(out, 0.37), atol=1e-5)


@QUICK
@given(h=st.integers(1, 10000), w=st.integers(1, 10000), size=st.integers(1, 8192))
def test_fit_size_sets_the_longer_side_and_keeps_the_aspect(h, w, size):
    """The longer side becomes `size`; the shorter one is within half a pixel of the same aspect (at least 1)."""
    out = fit_size((h, w), size)
    (longer, shorter), (out_longer, out_shorter) = ((h, w), out) if h >= w else ((w, h), out[::-1])
    assert out_longer == size
    assert abs(out_shorter - shorter * size / longer) <= 0.5 + 1e-9 or out_shorter == 1


@QUICK
@given(seed=seeds, batch=st.integers(1, 3), h=st.integers(1, 48), w=st.integers(1, 48),
       scale=st.floats(0.0, 4.0), offset=st.floats(-2.0, 2.0))
def test_colour_transforms_round_trip(seed, batch, h, w, scale, offset):
    """RGB -> YIQ -> RGB is the identity (any values, not only 0..1); an image keeps itself under luminance_only
    with itself as the content."""
    x = images(seed, batch, 3, h, w)
    wide = x * scale + offset
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(wide)), wide, atol=1e-5 * max(1.0, scale + abs(offset)))
    assert torch.allclose(luminance_only(x, x), x, atol=1e-5)


@QUICK
@given(seed=seeds, batch=st.integers(1, 3), channels=st.integers(1, 4), h=st.integers(2, 40), w=st.integers(2, 40),
       dy=st.integers(-5, 5), dx=st.integers(-5, 5))
def test_warp_by_zero_is_the_identity_and_by_whole_pixels_a_shift(seed, batch, channels, h, w, dy, dx):
    x = images(seed, batch, channels, h, w)
    assert torch.allclose(warp(x, torch.zeros(batch, 2, h, w)), x, atol=1e-5)
    flow = torch.tensor([float(dx), float(dy)]).view(1, 2, 1, 1).expand(1, 2, h, w)
    out = warp(x, flow)  # out(p) = x(p + flow), borders replicated
    rows = torch.arange(h).add(dy).clamp(0, h - 1)
    cols = torch.arange(w).add(dx).clamp(0, w - 1)
    assert torch.allclose(out, x[..., rows, :][..., cols], atol=1e-4)


@QUICK
@given(seed=seeds, h=st.integers(1, 64), w=st.integers(1, 64))
def test_zoom_by_one_is_the_identity(seed, h, w):
    x = images(seed, 1, 3, h, w)
    assert torch.equal(zoom_in(x, 1.0), x)


@QUICK
@given(seed=seeds, batch=st.integers(1, 3), h=st.integers(1, 16), w=st.integers(1, 16),
       marks=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from([math.nan, math.inf, -math.inf])),
                      max_size=20))
def test_non_finite_values_are_counted_by_kind_and_pixel(seed, batch, h, w, marks):
    x = images(seed, batch, 3, h, w)
    flat = x.view(-1)
    for position, value in marks:
        flat[position % flat.numel()] = value
    bad = ~torch.isfinite(x)
    summary = non_finite(x)
    if not bad.any():
        assert summary is None
        return
    nan, inf = int(x.isnan().sum()), int(x.isinf().sum())
    assert summary.startswith(" and ".join(f"{n:,} {kind}" for n, kind in ((nan, "NaN"), (inf, "infinite")) if n))
    assert summary.endswith(f"values, in {int(bad.any(1).sum()):,} of {batch * h * w:,} pixels")
