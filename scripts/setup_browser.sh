#!/usr/bin/env bash
# Install what tests/integration/test_frontend.py needs: Debian's chromium, playwright-core in .browser/, and
# the newest ComfyUI frontend (comfyui-frontend-package, unpacked into HOST/frontends/VERSION, next to the
# host's own 1.32.9, which stays as it is; the test boots a second server on it with --front-end-root).
# Best effort: without them that test is skipped with a reason (CI fails instead). Needs root (or sudo) for apt-get.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
NEW_FRONTEND=1.58.1
if ! command -v chromium >/dev/null; then
  SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; } \
    || echo "could not install chromium: the browser test will be skipped" >&2
fi
if [ ! -d "$REPO/.browser/node_modules/playwright-core" ] && command -v npm >/dev/null; then
  mkdir -p "$REPO/.browser"
  [ -f "$REPO/.browser/package.json" ] || echo '{"name": "reverie-browser-tests", "private": true}' >"$REPO/.browser/package.json"
  (cd "$REPO/.browser" && npm install -s playwright-core@1.65.1) \
    || echo "could not install playwright-core: the browser test will be skipped" >&2
fi
FRONTEND_DIR="$HOST/frontends/$NEW_FRONTEND"
if [ ! -f "$FRONTEND_DIR/comfyui_frontend_package/static/index.html" ]; then
  TMP=$(mktemp -d)
  if "$HOST/venv/bin/pip" download -q --no-deps -d "$TMP" "comfyui-frontend-package==$NEW_FRONTEND" \
     && rm -rf "$FRONTEND_DIR" && mkdir -p "$FRONTEND_DIR" \
     && "$HOST/venv/bin/python" -m zipfile -e "$TMP"/comfyui_frontend_package-*.whl "$FRONTEND_DIR"; then
    echo "frontend $NEW_FRONTEND: $FRONTEND_DIR"
  else
    echo "could not install comfyui-frontend-package $NEW_FRONTEND: its browser test will be skipped" >&2
  fi
  rm -rf "$TMP"
fi
exit 0
