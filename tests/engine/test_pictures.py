"""The channel atlas: grid size, one label per tile, nothing drawn in empty cells."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reverie.engine.pictures import atlas, grid_shape, label_height


@pytest.mark.parametrize("count, columns, shape", [(1, 0, (1, 1)), (5, 0, (2, 3)), (9, 0, (3, 3)),
                                                    (10, 0, (3, 4)), (7, 2, (4, 2)), (3, 8, (1, 3))])
def test_grid_shape(count, columns, shape):
    assert grid_shape(count, columns) == shape


def test_atlas_has_the_grids_size_and_a_label_under_every_tile():
    """Five 64×48 tiles in a 2×3 grid: the canvas fits them with their label bands; each of the five
    bands holds dark text, the sixth cell stays white; a long class name is shortened to fit."""
    images = torch.rand(5, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    labels = ["inception_4c/output#3", "#7", "x", "a very long class name that cannot fit", "loss3/classifier#9"]
    picture = np.asarray(atlas(images, labels))
    gap, band = max(2, 64 // 32), label_height(64)
    assert picture.shape == (2 * (48 + band + gap) + gap, 3 * (64 + gap) + gap, 3)
    inked = []
    for i in range(6):
        row, col = divmod(i, 3)
        top, left = gap + row * (48 + band + gap) + 48, gap + col * (64 + gap)
        strip = picture[top:top + band, left:left + 64]
        inked.append(bool((strip.min(-1) < 128).any()))
        if i < 5:
            tile = picture[top - 48:top, left:left + 64]
            assert np.abs(tile / 255 - images[i].permute(1, 2, 0).numpy()).max() <= 1 / 255 + 1e-6
    assert inked == [True] * 5 + [False]


def test_atlas_needs_one_label_per_image():
    with pytest.raises(ValueError, match="one label per image"):
        atlas(torch.rand(2, 3, 8, 8), ["only one"])
