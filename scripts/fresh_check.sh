#!/usr/bin/env bash
# The fresh-machine check: clone the current commit into a temporary directory with ../shared beside it and run
# `bash .ci/run` there as CI does, with HOME pointed at an empty directory and REVERIE_HOST unset, so that no host,
# cache or package left on this machine can help. Uncommitted changes are not part of the clone: commit first.
# usage: scripts/fresh_check.sh [--keep]      (--keep leaves the temporary directory for a look; else it is removed)
# Takes ~5 min plus the test run (the host is installed from the registries, ~6 GB in the temporary directory).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KEEP=${1:-}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/reverie-fresh.XXXXXX")
[ "$KEEP" = "--keep" ] || trap 'rm -rf "$WORK"' EXIT
[ -z "$(git -C "$REPO" status --porcelain)" ] || echo "note: uncommitted changes are not checked" >&2
git clone -q --no-hardlinks "$REPO" "$WORK/reverie"
git -C "$WORK/reverie" checkout -q "$(git -C "$REPO" rev-parse HEAD)"
if [ -d "$REPO/../shared" ]; then
  ln -s "$(cd "$REPO/../shared" && pwd)" "$WORK/shared"
else
  echo "note: no ../shared beside $REPO: the tests that need it will skip" >&2
fi
mkdir "$WORK/home"
echo "fresh check of $(git -C "$REPO" rev-parse --short HEAD) in $WORK (HOME=$WORK/home)"
cd "$WORK/reverie"
rc=0
env -u REVERIE_HOST -u REVERIE_COMFYUI -u XDG_CACHE_HOME HOME="$WORK/home" CI=true bash .ci/run </dev/null || rc=$?
echo "fresh check: bash .ci/run exited $rc"
exit "$rc"
