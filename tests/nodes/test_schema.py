"""nodes/schema.py: search aliases reach a host whose io.Schema has the field, and are left out on one that
lacks it (ComfyUI 0.3.75), while a misspelt field still fails."""
from __future__ import annotations

import dataclasses

import pytest


def test_every_node_builds_on_this_host_and_declares_search_aliases(monkeypatch):
    from reverie.nodes import NODES
    from reverie.nodes import schema as module
    for node in NODES:
        node.GET_SCHEMA()  # 0.3.75 would raise a TypeError if search_aliases were passed to it
    declared = {}
    monkeypatch.setattr(module, "HOST_FIELDS", module.HOST_FIELDS | {"search_aliases"})
    monkeypatch.setattr(module.io, "Schema", lambda **fields: declared.update({fields["node_id"]: fields}))
    for node in NODES:
        node.define_schema()
    assert all(fields.get("search_aliases") for fields in declared.values()), declared.keys()
    assert {"deepdream", "inceptionism"} <= set(declared["ReverieDream"]["search_aliases"])
    assert "neural style" in declared["ReverieOptimize"]["search_aliases"]


def test_aliases_are_passed_where_the_schema_has_the_field(monkeypatch):
    from reverie.nodes import schema as module

    @dataclasses.dataclass
    class NewerSchema:
        node_id: str
        search_aliases: list[str] | None = None

    monkeypatch.setattr(module.io, "Schema", NewerSchema)
    monkeypatch.setattr(module, "HOST_FIELDS", {f.name for f in dataclasses.fields(NewerSchema)})
    assert module.schema(node_id="X", search_aliases=["deepdream"]).search_aliases == ["deepdream"]


def test_aliases_are_left_out_where_it_lacks_it_and_typos_still_fail():
    from reverie.nodes.schema import HOST_FIELDS, schema
    if "search_aliases" in HOST_FIELDS:
        pytest.skip("this host's io.Schema has search_aliases")
    assert schema(node_id="X", search_aliases=["deepdream"]).node_id == "X"
    with pytest.raises(TypeError):
        schema(node_id="X", search_alias=["deepdream"])
