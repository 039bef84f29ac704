"""Where the shared weights and test images are: $REVERIE_SHARED, else ../shared beside the repository
(the same rule as tests/helpers.py's SHARED)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REVERIE_SHARED") or ROOT.parent / "shared")
