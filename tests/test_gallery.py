"""The pictures scripts/gallery.py makes from the examples: a thumbnail next to every example (what the
template browser shows), a README picture of at least 768 px shown in the README beside the workflow that
made it, and the help pages' pictures. No server needed: these check the files in the repository."""
from __future__ import annotations

import pytest
from PIL import Image

from tests.helpers import ROOT

WORKFLOWS = sorted((ROOT / "example_workflows").glob("*.json"))
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.stem)
def test_example_has_a_thumbnail(workflow):
    thumbnail = workflow.with_suffix(".jpg")
    assert thumbnail.is_file(), f"no {thumbnail.name}: run scripts/gallery.py {workflow.stem}"
    with Image.open(thumbnail) as image:
        assert image.format == "JPEG" and 64 <= max(image.size) <= 512, image.size


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.stem)
def test_example_is_in_the_readme_gallery_with_its_picture(workflow):
    picture = ROOT / "docs" / "gallery" / f"{workflow.stem}.jpg"
    assert picture.is_file(), f"no docs/gallery/{picture.name}: run scripts/gallery.py {workflow.stem}"
    with Image.open(picture) as image:
        assert max(image.size) >= 768, image.size
    rows = [line for line in README.splitlines() if f"docs/gallery/{workflow.stem}.jpg" in line]
    assert any(f"{workflow.name}" in row for row in rows), f"the README shows no {picture.name} beside {workflow.name}"
