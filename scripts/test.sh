#!/usr/bin/env bash
# All tests (engine, nodes, integration with a real ComfyUI, browser) with the host's Python.
# usage: scripts/test.sh [pytest args; paths are relative to tests/]   e.g. scripts/test.sh engine -x,
#        scripts/test.sh -m "not integration"
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$REPO/scripts/setup_host.sh" "$HOST" >/dev/null
export REVERIE_HOST=$HOST                  # the integration tier boots this host
export REVERIE_COMFYUI=$HOST/comfyui       # the node tier imports comfy from here (tests/nodes/conftest.py)
cd "$REPO/tests"   # tests/pytest.ini: rootdir tests/, importlib mode; the repo root is a package pytest must not import
rc=0
"$HOST/venv/bin/python" -m pytest -q "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"
