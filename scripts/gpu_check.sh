#!/usr/bin/env bash
# The GPU check: the engine tests on CUDA (every architecture in fp32/bf16/fp16, tiles, style and video
# runs, prints kept in host memory: tests/engine/test_on_device.py, with the rest of the engine tier beside
# them) and the benchmarks on CUDA, each writing JSON into the results folder. Needs python3 with torch,
# torchvision and pytest (the device tool's image has them); no network, no ComfyUI. Each step has a time
# limit (140 + 40 + 40 + 100 + 60 + 60 + 40 s), so the whole ends within 8 minutes.
#
# usage: scripts/gpu_check.sh [--device cuda|cpu] [--out DIR]
#   --device cpu   the dry run: the same steps on the CPU at tiny sizes (proves the script, measures nothing)
#   --out DIR      where the JSON and the test report go (default: $OUT if set, else bench/results/gpu)
# Weights and test images: ../shared beside the repository, else shared/ inside it (a subset: weights/
# googlenet_caffe, vgg19_partial, squeezenet1_1 and testdata/ fit the device tool's 64 MiB; it travels by
# itself), else $REVERIE_SHARED. Without them the tests that need them skip and the benchmarks that need
# them are reported as skipped. Python: $PYTHON, else python3. Exit status: the number of failed steps.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DEVICE=cuda
RESULTS=${OUT:-$REPO/bench/results/gpu}
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --out) RESULTS=$2; shift 2 ;;
    *) echo "gpu_check: unknown argument $1 (valid: --device cuda|cpu, --out DIR)" >&2; exit 64 ;;
  esac
done
PY=${PYTHON:-python3}
case "$PY" in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY") ;; esac  # steps run in other folders
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)

missing=$("$PY" - <<'PY'
import importlib.util
print(" ".join(m for m in ("torch", "torchvision", "pytest", "numpy", "PIL", "safetensors")
               if importlib.util.find_spec(m) is None))
PY
)
if [ -n "$missing" ]; then
  echo "gpu_check: $PY lacks $missing. Install them first (this script installs nothing: no network there)." >&2
  exit 2
fi
if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "gpu_check: torch sees no CUDA device; use --device cpu for the dry run." >&2
  exit 2
fi
if [ -z "${REVERIE_SHARED:-}" ]; then
  for candidate in "$REPO/../shared" "$REPO/shared"; do
    if [ -d "$candidate/weights" ]; then REVERIE_SHARED=$(cd "$candidate" && pwd); break; fi
  done
fi
export REVERIE_SHARED=${REVERIE_SHARED:-$REPO/../shared}
export REVERIE_TEST_DEVICE=$DEVICE
echo "gpu_check: device $DEVICE, shared data ${REVERIE_SHARED}, results in $RESULTS"
"$PY" -c "import json, torch; print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda,
  'gpu': torch.cuda.get_device_name() if torch.cuda.is_available() else None}))" > "$RESULTS/machine.json"

if [ "$DEVICE" = cuda ]; then
  SIZE=512; ITERATIONS=1000; COARSE=20; STEPS=8; TESTS=(engine); SLACK=1
  SCALING=(--sizes 256 512 1024 2048 --steps 4 --pyramid-size 1024 --pyramid-steps 10)
  OFFLOAD=(--sizes 2048 4096 --tile 1024 --steps 3)
else  # the dry run: every step, tiny, with time limits for a shared CPU
  SIZE=64; ITERATIONS=6; COARSE=1; STEPS=2; TESTS=(engine/test_on_device.py engine/test_devices.py); SLACK=10
  SCALING=(--sizes 64 96 --steps 2 --pyramid-size 96 --pyramid-steps 2)
  OFFLOAD=(--sizes 192 --tile 128 --steps 2)
fi
failed=0
step() {  # step NAME SECONDS OUTPUT-JSON COMMAND...: runs COMMAND with a time limit, stdout into OUTPUT-JSON
  local name=$1 limit=$2 out=$3; shift 3
  local start=$SECONDS
  if (cd "$REPO" && timeout $((limit * SLACK)) "$@" > "$out.tmp"); then
    mv "$out.tmp" "$out"; echo "gpu_check: $name passed ($((SECONDS - start)) s) -> $out"
  else
    echo "gpu_check: $name FAILED or ran past $((limit * SLACK)) s ($((SECONDS - start)) s); its output: $out.tmp" >&2
    failed=$((failed + 1))
  fi
}
shared_step() {  # step, when the shared weights and test images are there; else it is reported as skipped
  if [ -d "$REVERIE_SHARED/weights" ] && [ -d "$REVERIE_SHARED/testdata" ]; then step "$@"; else
    echo "gpu_check: $1 skipped: no weights and test images in $REVERIE_SHARED"; fi
}

step "engine tests on $DEVICE" 140 "$RESULTS/engine_tests.log" \
  bash -c "cd tests && '$PY' -m pytest -q -p no:cacheprovider -m 'not slow' ${TESTS[*]} --junitxml='$RESULTS/engine_tests.xml' 2>&1"
step "dream step overhead" 40 "$RESULTS/dream_step_overhead.json" \
  "$PY" bench/overhead.py --device "$DEVICE" --size "$SIZE" --steps "$STEPS"
step "style step overhead" 40 "$RESULTS/style_step.json" \
  "$PY" bench/style_step.py --device "$DEVICE" --size "$SIZE" --steps "$STEPS" --repeats 2
shared_step "time to loss (shared weights)" 100 "$RESULTS/time_to_loss.log" \
  "$PY" bench/time_to_loss.py --device "$DEVICE" --size "$SIZE" --iterations "$ITERATIONS" \
  --octaves 3 --octave-scale 1.6 --coarse-steps "$COARSE" --reverie-steps $((ITERATIONS * 6 / 10 + 1)) \
  --out "$RESULTS/time_to_loss.json"
shared_step "time to loss (full VGG19, random: timing only)" 60 "$RESULTS/time_to_loss_vgg19_random.log" \
  "$PY" bench/time_to_loss.py --device "$DEVICE" --recipe neural_style --net vgg19-random --size "$SIZE" \
  --iterations "$ITERATIONS" --octaves 3 --octave-scale 1.6 --coarse-steps "$COARSE" \
  --reverie-steps $((ITERATIONS * 6 / 10 + 1)) --out "$RESULTS/time_to_loss.json"
step "scaling with size" 60 "$RESULTS/scaling.json" \
  "$PY" bench/scaling.py --device "$DEVICE" "${SCALING[@]}"
shared_step "a print kept in host memory" 40 "$RESULTS/offload.json" \
  "$PY" bench/offload.py --device "$DEVICE" "${OFFLOAD[@]}"
echo "gpu_check: $failed step(s) failed; results: $(cd "$RESULTS" && ls | tr '\n' ' ')"
exit "$failed"
