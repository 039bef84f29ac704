"""Shared test helpers."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_file(relative: str) -> Path:
    """A file under ../shared, or a skip saying it is absent."""
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"{relative} not found: ../shared (pretrained weights and test images) is not beside the repo")
    return path
