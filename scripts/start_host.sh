#!/usr/bin/env bash
# Boot the host's ComfyUI (with this pack) on a free loopback port; prints "PORT PID" once it answers.
# usage: scripts/start_host.sh [LOG]      (default log: HOST/server.log; stop with: kill PID)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
exec "$HOST/venv/bin/python" "$REPO/tests/integration/host.py" start --root "$HOST" --log "${1:-$HOST/server.log}"
