"""GET /reverie/layers (nodes/routes.py), called on a mocked request: no server needed."""
from __future__ import annotations

import asyncio
import json
import sys
import types

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request


def get(query: str) -> web.Response:
    from reverie.nodes.routes import get_layers
    return asyncio.run(get_layers(make_mocked_request("GET", "/reverie/layers?" + query)))


def test_layers_of_an_architecture_in_forward_order():
    from reverie.engine.architectures import ARCHITECTURES
    response = get("architecture=googlenet_caffe")
    data = json.loads(response.body)
    assert response.status == 200
    assert data["layers"] == [layer.name for layer in ARCHITECTURES["googlenet_caffe"].catalogue()]
    assert data["default_layers"] == dict(ARCHITECTURES["googlenet_caffe"].default_layers)


def test_unknown_architecture_is_a_404_naming_the_known_ones():
    response = get("architecture=alexnet")
    assert response.status == 404
    assert "alexnet" in json.loads(response.body)["error"] and "vgg19" in json.loads(response.body)["error"]


def test_register_routes_adds_the_route(monkeypatch):
    routes = web.RouteTableDef()
    server = types.SimpleNamespace(PromptServer=types.SimpleNamespace(instance=types.SimpleNamespace(routes=routes)))
    monkeypatch.setitem(sys.modules, "server", server)
    from reverie.nodes.routes import register_routes
    register_routes()
    assert [(r.method, r.path) for r in routes] == [("GET", "/reverie/layers")]


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "/etc/passwd", "vgg19/../vgg16", "..%2F..%2Fetc%2Fpasswd",
                                  "__class__", "vgg19\x00.png", "x" * 5000, ""])
def test_hostile_architecture_values_read_no_file(name, monkeypatch):
    """Paths, encodings, attribute names and huge values are unknown architectures: a 404 naming the known
    ones, and no file is opened while answering."""
    import builtins
    import io
    import os

    def refuse(*args, **kwargs):
        raise AssertionError(f"the route opened a file: {args[:1]}")

    for module, name_ in ((builtins, "open"), (io, "open"), (os, "open")):
        monkeypatch.setattr(module, name_, refuse)
    from urllib.parse import quote
    response = get("architecture=" + quote(name))
    assert response.status == 404
    error = json.loads(response.body)["error"]
    assert error.startswith("unknown architecture") and "known: efficientnet_lite0" in error
