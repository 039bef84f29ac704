"""pytest collects the tests and nothing else: never the host (.host/ holds a venv full of other packages'
test files and a link back to this checkout), the browser install or outputs, from either directory."""
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.parametrize("where", [ROOT, ROOT / "tests"], ids=["repo root", "tests"])
def test_only_tests_are_collected(where):
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                         cwd=where, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    collected = [line.split("::")[0] for line in run.stdout.splitlines() if "::" in line]
    assert collected, run.stdout[-2000:]
    prefix = "" if where == ROOT / "tests" else "tests/"
    strays = sorted({path for path in collected if not path.startswith(prefix) or "/." in path or "host/" in path})
    assert not strays, strays
