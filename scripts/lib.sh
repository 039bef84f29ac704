# Sourced by the scripts in scripts/ and by .ci/run. Sets REPO and HOST (the ComfyUI host directory):
# $REVERIE_HOST if set, else REPO/.host (inside the checkout, ignored by git and never collected by pytest).
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST=${REVERIE_HOST:-$REPO/.host}
