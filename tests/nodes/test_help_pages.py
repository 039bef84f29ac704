"""Every registered node has a help page, web/docs/<node id>.md, which the frontend's node help shows (it reads
/extensions/<pack>/docs/<node id>.md, served from web/): what the node does, every input, a picture, tips."""
from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT

DOCS = ROOT / "web" / "docs"
SECTIONS = ("## Inputs", "## Tips")


def registered_nodes():
    from reverie.nodes import NODES
    return NODES


@pytest.fixture(scope="module", params=[n.__name__ for n in registered_nodes()])
def node(request):
    return next(n for n in registered_nodes() if n.__name__ == request.param)


def test_every_registered_node_has_a_help_page(node):
    schema = node.GET_SCHEMA()
    page = DOCS / f"{schema.node_id}.md"
    assert page.is_file(), f"{schema.node_id} has no help page: write {page.relative_to(ROOT)}"
    text = page.read_text()
    assert text.startswith(f"# {schema.display_name}\n"), f"{page.name} should start with '# {schema.display_name}'"
    for section in SECTIONS:
        assert section in text, f"{page.name} has no '{section}' section"
    intro = text.split("\n\n", 2)[1]
    assert len(intro.split()) >= 12, f"{page.name} should say what the node does before anything else"


def test_help_page_names_every_input(node):
    schema = node.GET_SCHEMA()
    inputs = (DOCS / f"{schema.node_id}.md").read_text().split("## Inputs", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z_0-9]+)` \|", inputs, re.M))
    missing = [i.id for i in schema.inputs if i.id not in listed]
    assert not missing, f"{schema.node_id}.md does not describe the inputs {missing}"
    assert listed <= {i.id for i in schema.inputs}, f"{schema.node_id}.md describes inputs the node lacks"


def test_help_page_pictures_exist(node):
    page = DOCS / f"{node.GET_SCHEMA().node_id}.md"
    pictures = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", page.read_text())
    assert pictures, f"{page.name} has no picture"
    for picture in pictures:
        assert not picture.startswith(("/", "http")), f"{page.name}: {picture} should be relative to web/docs/"
        assert (DOCS / picture).is_file(), f"{page.name} shows {picture}, which is not in web/docs/"


def test_no_page_for_a_node_that_does_not_exist():
    ids = {n.GET_SCHEMA().node_id for n in registered_nodes()}
    strays = sorted(p.stem for p in DOCS.glob("*.md") if p.stem not in ids)
    assert not strays, strays
