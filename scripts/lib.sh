# Sourced by the scripts in scripts/ and by .ci/run. Sets REPO and HOST (the ComfyUI host directory).
#
# HOST is, in order: $REVERIE_HOST; REPO/.host if it exists; ~/.cache/reverie/host if a host was already
# set up there (so a machine that has one reuses its 6 GB instead of installing another); else REPO/.host.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${REVERIE_HOST:-}" ]; then
  HOST=$REVERIE_HOST
elif [ ! -d "$REPO/.host" ] && [ -f "${XDG_CACHE_HOME:-$HOME/.cache}/reverie/host/comfyui/main.py" ]; then
  HOST=${XDG_CACHE_HOME:-$HOME/.cache}/reverie/host
else
  HOST=$REPO/.host
fi
