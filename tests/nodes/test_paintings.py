"""Load Painting: the bundled paintings load as IMAGEs; each is small and has its source and licence listed."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import ROOT

PAINTINGS = ROOT / "paintings"


def names() -> list[str]:
    from reverie.nodes.paintings import painting_names
    return painting_names()


@pytest.mark.parametrize("name", names())
def test_painting_loads_as_an_image(name):
    from reverie.nodes.paintings import LoadPainting
    with torch.inference_mode():
        image = LoadPainting.execute(painting=name).result[0]
    assert image.dim() == 4 and image.shape[0] == 1 and image.shape[-1] == 3, image.shape
    assert min(image.shape[1:3]) >= 256
    assert image.dtype == torch.float32 and 0 <= image.min() < 0.1 and 0.9 < image.max() <= 1
    assert image.std() > 0.1  # a picture, not a flat colour


def test_unknown_painting_is_refused_naming_the_bundled_ones():
    from reverie.nodes.paintings import LoadPainting
    message = LoadPainting.validate_inputs(painting="mona_lisa")
    assert isinstance(message, str) and "mona_lisa" in message and all(n in message for n in names())
    assert LoadPainting.validate_inputs(painting=names()[0]) is True


def test_every_painting_is_small_and_has_its_source_and_licence():
    readme = (PAINTINGS / "README.md").read_text()
    files = sorted(p for p in PAINTINGS.iterdir() if p.suffix in {".jpg", ".png"})
    assert len(files) >= 2
    for path in files:
        assert path.stat().st_size <= 200_000, f"{path.name} is {path.stat().st_size} bytes"
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{path.name}` |")), None)
        assert row, f"paintings/README.md has no row for {path.name}"
        assert "public domain" in readme.lower() and row.count("|") >= 6 and "Debian" in row, row
