#!/usr/bin/env bash
# Install what tests/integration/test_frontend.py needs: Debian's chromium and playwright-core in .browser/.
# Best effort: without them that test is skipped with a reason. Needs root (or sudo) for apt-get.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
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
exit 0
