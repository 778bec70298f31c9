#!/usr/bin/env bash
# The GPU check: on a machine with a real GPU (NVIDIA or other, through wgpu), in under ten minutes, builds relab with
# the wgpu backend, runs the wgpu test suite (tests/wgpu_backend.rs), times `relab bench train` on wgpu and on the CPU
# for WRN-28-2 and ResNet-18 at batch 64, and runs the main job's stages on the GPU under a time cap. Prints one JSON
# line of figures at the end (progress goes to stderr).
#
#   scripts/gpu-check.sh            # the real check, on a GPU machine
#   scripts/gpu-check.sh --tiny     # tiny sizes, for a dry run on lavapipe (Mesa's Vulkan on the CPU), built with
#                                   # `wgpu-untuned` (burn's fixed kernels: lavapipe compiles autotune candidates
#                                   # and fused kernels too slowly; see docs/backends.md)
#
# One build serves everything: the test profile's dependencies are optimised like a release build's (Cargo.toml),
# so the binary the tests build (target/debug/relab) runs burn and cubecl at full speed, and a second, release
# build of the whole wgpu stack would cost minutes for nothing measured here.
set -euo pipefail
cd "$(dirname "$0")/.."

TINY=0
case "${1:-}" in
  --tiny) TINY=1 ;;
  "") ;;
  *) echo "usage: $0 [--tiny]" >&2; exit 2 ;;
esac

log() { printf '[gpu-check %s] %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(round($(now) - $1, 1))"; }

# wgpu's Vulkan loader exits the process quietly without a runtime folder.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d); chmod 700 "$XDG_RUNTIME_DIR"; export XDG_RUNTIME_DIR
fi
export CARGO_TERM_COLOR=never
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ "$TINY" = 1 ]; then
  # lavapipe compiles and runs every kernel on the CPU: the smallest network, a couple of images, one timed step.
  FEATURES=wgpu-untuned; MODELS="wrn10_2"; BATCH=2; STEPS=1; WARMUP=0; MAIN_CAP=120
else
  FEATURES=wgpu; MODELS="wrn28_2 resnet18"; BATCH=64; STEPS=10; WARMUP=3; MAIN_CAP=300
fi

log "build (cargo test --features $FEATURES --no-run, and the binary)"
t=$(now)
cargo build --features "$FEATURES" >&2
cargo test --features "$FEATURES" --test wgpu_backend --no-run >&2
BUILD_S=$(since "$t")
RELAB=target/debug/relab

log "relab device"
"$RELAB" device >&2
"$RELAB" device --json > "$WORK/device.json"

log "the wgpu suite"
t=$(now)
if cargo test --features "$FEATURES" --test wgpu_backend >&2; then SUITE=pass; else SUITE=fail; fi
SUITE_S=$(since "$t")

: > "$WORK/bench.jsonl"
for model in $MODELS; do
  for backend in wgpu cpu; do
    log "bench train $model on $backend (batch $BATCH)"
    if ! "$RELAB" bench train --model "$model" --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" \
        --backend "$backend" >> "$WORK/bench.jsonl" 2> "$WORK/bench.err"; then
      tail -3 "$WORK/bench.err" >&2
      printf '{"model":"%s","backend":"%s","error":true}\n' "$model" "$backend" >> "$WORK/bench.jsonl"
    fi
  done
done

MAIN_STATUS=skipped
MAIN_S=0
if [ -d /usr/share/datasets/fashion-mnist ] || [ -n "${RELAB_DATA:-}" ]; then
  log "the main job's stages on wgpu (cap ${MAIN_CAP} s)"
  SHORT=()
  if [ "$TINY" = 1 ]; then
    # tests/main_job.rs's shortening, cut further.
    SHORT=(--set dataset.train_limit=300 --set dataset.test_limit=100 --set stages.pretrain.epochs=1
           --set stages.pretrain.images_per_epoch=128 --set "stages.pretrain.schedule.milestones=[1]"
           --set stages.pretrain.monitor_every=1 --set stages.select.sample=100 --set stages.select.epochs=1
           --set stages.select.track_epochs=1 --set stages.select.per_class=2 --set stages.train.warmup.epochs=1
           --set "stages.train.warmup.schedule.milestones=[1]" --set stages.train.epochs=1
           --set "stages.train.repropagate_after=[]" --set stages.train.unlabeled_per_epoch=100
           --set "stages.train.schedule.milestones=[1]" --set stages.train.swa.start=0
           --set stages.train.eval_every=1 --set stages.propagate.k=10)
  fi
  t=$(now)
  if timeout "$MAIN_CAP" "$RELAB" run experiments/fashion-mnist-40.yaml --no-cache --out "$WORK/main" \
      --set backend=wgpu "${SHORT[@]}" >&2 2> "$WORK/main.err"; then
    MAIN_STATUS=done
  else
    rc=$?
    if [ "$rc" = 124 ]; then MAIN_STATUS="stopped at the ${MAIN_CAP} s cap"; else MAIN_STATUS="failed ($rc)"; tail -5 "$WORK/main.err" >&2; fi
  fi
  MAIN_S=$(since "$t")
else
  log "no Fashion-MNIST (apt-get install dataset-fashion-mnist, or RELAB_DATA): main job skipped"
fi

WORK="$WORK" TINY="$TINY" BUILD_S="$BUILD_S" SUITE="$SUITE" SUITE_S="$SUITE_S" MAIN_STATUS="$MAIN_STATUS" \
MAIN_S="$MAIN_S" MAIN_CAP="$MAIN_CAP" python3 - <<'PY'
import glob, json, os
w = os.environ["WORK"]
bench = [json.loads(l) for l in open(f"{w}/bench.jsonl") if l.strip()]
figures = {}
for b in bench:
    figures.setdefault(b["model"], {})[b["backend"]] = b.get("images_per_second")
for f in figures.values():
    if f.get("wgpu") and f.get("cpu"):
        f["wgpu_over_cpu"] = round(f["wgpu"] / f["cpu"], 2)
stages = {}
for path in glob.glob(f"{w}/main/*/summary.json"):
    stage = os.path.basename(os.path.dirname(path))
    s = json.load(open(path))
    stages[stage] = {k: v for k, v in s.items() if k.endswith("seconds") or k in ("test_accuracy", "accuracy")}
device = json.load(open(f"{w}/device.json"))
print(json.dumps({
    "tiny": os.environ["TINY"] == "1", "wgpu_kernels": device.get("wgpu_kernels"),
    "adapters": device["wgpu_adapters"], "auto": device["auto"],
    "build_seconds": float(os.environ["BUILD_S"]),
    "wgpu_suite": os.environ["SUITE"], "wgpu_suite_seconds": float(os.environ["SUITE_S"]),
    "bench_train_images_per_second": figures,
    "main_job": {"status": os.environ["MAIN_STATUS"], "wall_seconds": float(os.environ["MAIN_S"]),
                 "cap_seconds": int(os.environ["MAIN_CAP"]), "stages": stages},
}))
PY
