#!/usr/bin/env bash
# The fresh-machine demo: set up a ComfyUI host with this pack, run example_workflows/deepdream_octaves.json
# on ComfyUI's own example.png, and write the result into out/.
# usage: scripts/demo.sh [WORKFLOW.json]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
WORKFLOW=$(realpath "${1:-$REPO/example_workflows/deepdream_octaves.json}")
"$REPO/scripts/setup_host.sh" "$HOST"
cp "$HOST/comfyui/input/example.png" "$HOST/base/input/example.png"   # the image the examples load
PY=$HOST/venv/bin/python
echo "starting ComfyUI (log: $HOST/demo-server.log)"
started=$("$REPO/scripts/start_host.sh" "$HOST/demo-server.log")
read -r PORT PID <<<"$started"
trap '"$PY" "$REPO/tests/integration/host.py" stop "$PID"' EXIT
echo "running $(basename "$WORKFLOW") on http://127.0.0.1:$PORT"
"$PY" "$REPO/scripts/run_workflow.py" "$WORKFLOW" --url "http://127.0.0.1:$PORT" --out "$REPO/out"
