"""Test setup: the pack is importable as `reverie` without running its ComfyUI entry point."""
from __future__ import annotations

import sys
import types

from tests.helpers import ROOT, SHARED, shared_file  # noqa: F401  (re-exported for tests)

if "reverie" not in sys.modules:
    package = types.ModuleType("reverie")
    package.__path__ = [str(ROOT)]
    sys.modules["reverie"] = package
