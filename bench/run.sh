#!/usr/bin/env bash
# bench/run.sh: training speed (and optionally accuracy) of the engine against PyTorch, in one
# run and one environment.
#
#   bench/run.sh [--accuracy] [--epochs N] [BUILD_DIR]        (BUILD_DIR defaults to build)
#
# Models: dscnn-s, fmnist-cnn (bench_train / torch_train.py) and lstm-kws (bench_lstm /
# torch_lstm.py). Needs a built tree (`make` first) and Debian's python3-torch (scripts/setup.sh
# --with-reference). Prints one JSON line per model on stdout:
#   {"bench":"train","model":"dscnn-s","ours":N,"pytorch":N,"ratio":R,"unit":"samples/s"}
# ratio = ours / pytorch (above 1: we are faster). With --accuracy it also trains fmnist-cnn
# on Fashion-MNIST with `nas train` and with bench/torch_fmnist_acc.py (same protocol) and
# prints
#   {"bench":"accuracy","model":"fmnist-cnn","epochs":10,"ours":A,"pytorch":B,"diff_points":D}
# with test accuracies in [0,1] and D = 100 * (ours - pytorch).
#
# Environment: THREADS (default 2) is given to both engines (OpenMP + OpenBLAS threads here,
# torch.set_num_threads there); BENCH_SECONDS (default 3) is the timed span per model;
# BENCH_REPEAT (default 1) runs both sides that many times, alternating, and keeps each
# side's best figure (use 3 or more on a machine where other work may be running).
# OPENBLAS_CORETYPE, OMP_* and the rest are inherited unchanged by both sides (set them on the
# command line to override); the values in effect are printed on stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
py=/usr/bin/python3

accuracy=0
epochs=10
build=""
while [ $# -gt 0 ]; do
  case "$1" in
    --accuracy) accuracy=1 ;;
    --epochs)
      [ $# -ge 2 ] || { echo "run.sh: --epochs needs a value" >&2; exit 2; }
      epochs="$2"; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option '$1' (usage: bench/run.sh [--accuracy] [--epochs N] [BUILD_DIR])" >&2; exit 2 ;;
    *)
      [ -z "$build" ] || { echo "run.sh: more than one BUILD_DIR given" >&2; exit 2; }
      build="$1" ;;
  esac
  shift
done
build="${build:-build}"
case "$epochs" in ''|*[!0-9]*|0) echo "run.sh: --epochs must be a positive integer" >&2; exit 2 ;; esac
threads="${THREADS:-2}"
case "$threads" in ''|*[!0-9]*|0) echo "run.sh: THREADS must be a positive integer" >&2; exit 2 ;; esac
bench_seconds="${BENCH_SECONDS:-3}"
repeat="${BENCH_REPEAT:-1}"
case "$repeat" in ''|*[!0-9]*|0) echo "run.sh: BENCH_REPEAT must be a positive integer" >&2; exit 2 ;; esac

bench_bin="$build/bench_train"
if [ ! -x "$bench_bin" ]; then
  echo "run.sh: $bench_bin not found: build first (make, or cmake --build $build)" >&2
  exit 1
fi
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "run.sh: $py cannot import torch: install it with scripts/setup.sh --with-reference" >&2
  exit 1
fi

echo "run.sh: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OMP_NUM_THREADS=${OMP_NUM_THREADS-<unset>}" \
     "OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS-<unset>} THREADS=$threads BENCH_SECONDS=$bench_seconds" \
     "BENCH_REPEAT=$repeat" \
     "nproc=$(nproc)" >&2

tmp="$(mktemp -d "${TMPDIR:-/tmp}/nas-bench.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

: > "$tmp/ours.jsonl"
: > "$tmp/torch.jsonl"
for ((rep = 1; rep <= repeat; rep++)); do
  echo "run.sh: [$rep/$repeat] timing our engine ($bench_bin)" >&2
  "$bench_bin" "$src" "$threads" "$bench_seconds" >> "$tmp/ours.jsonl"
  echo "run.sh: [$rep/$repeat] timing PyTorch (bench/torch_train.py)" >&2
  "$py" "$here/torch_train.py" --model all --threads "$threads" --seconds "$bench_seconds" \
    >> "$tmp/torch.jsonl"
  if [ -x "$build/bench_lstm" ]; then
    echo "run.sh: [$rep/$repeat] timing lstm-kws (bench_lstm, bench/torch_lstm.py)" >&2
    "$build/bench_lstm" "$threads" "$bench_seconds" >> "$tmp/ours.jsonl"
    "$py" "$here/torch_lstm.py" --threads "$threads" --seconds "$bench_seconds" >> "$tmp/torch.jsonl"
  fi
done

"$py" - "$tmp/ours.jsonl" "$tmp/torch.jsonl" <<'EOF'
import json, sys
def load(path, field):
    """Best figure per model over the repetitions."""
    out = {}
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            obj = json.loads(line)
            old = out.get(obj["model"])
            if old is None or obj[field] > old[field]:
                out[obj["model"]] = obj
    return out
ours, torch = load(sys.argv[1], "ours"), load(sys.argv[2], "pytorch")
rc = 0
for model, o in ours.items():
    t = torch.get(model)
    if t is None:
        print("run.sh: no PyTorch figure for %s" % model, file=sys.stderr)
        rc = 1
        continue
    print(json.dumps({"bench": "train", "model": model, "ours": o["ours"],
                      "pytorch": t["pytorch"], "ratio": round(o["ours"] / t["pytorch"], 3),
                      "unit": "samples/s"}), flush=True)
sys.exit(rc)
EOF

# Optional: batch-1 inference time, one JSON line per figure ({"bench":"infer8",...,
# "median_ms":M}): bench_infer8 (dscnn-s on the float engine and on the int8 deploy runtime,
# kws_ref_model imported on the int8 runtime) and, when python3-pyarmnn is installed,
# bench/armnn_infer.py (Arm NN CpuRef on the same kws_ref_model.tflite).
if [ -x "$build/bench_infer8" ]; then
  echo "run.sh: timing batch-1 inference (bench_infer8)" >&2
  "$build/bench_infer8" "$src" "$bench_seconds"
  if "$py" -c 'import pyarmnn' >/dev/null 2>&1; then
    echo "run.sh: timing Arm NN CpuRef inference (bench/armnn_infer.py)" >&2
    "$py" "$here/armnn_infer.py" --seconds "$bench_seconds" 2> "$tmp/armnn.err" ||
      { cat "$tmp/armnn.err" >&2; exit 1; }
  fi
fi

if [ "$accuracy" -eq 1 ]; then
  nas_bin="$build/nas"
  [ -x "$nas_bin" ] || { echo "run.sh: $nas_bin not found: build first" >&2; exit 1; }
  echo "run.sh: training fmnist-cnn for $epochs epochs with nas train" >&2
  OMP_NUM_THREADS="${OMP_NUM_THREADS:-$threads}" "$nas_bin" train \
    --arch "$src/search_spaces/reference/fmnist-cnn.json" --dataset fashion-mnist \
    --epochs "$epochs" --json > "$tmp/ours_acc.out"
  echo "run.sh: training fmnist-cnn for $epochs epochs with PyTorch" >&2
  "$py" "$here/torch_fmnist_acc.py" --epochs "$epochs" --threads "$threads" > "$tmp/torch_acc.out"
  "$py" - "$tmp/ours_acc.out" "$tmp/torch_acc.out" "$epochs" <<'EOF'
import json, sys
def last_json(path):
    lines = [l.strip() for l in open(path) if l.strip().startswith("{")]
    if not lines:
        sys.exit("run.sh: no JSON line in the output of %s" % path)
    return json.loads(lines[-1])
ours = last_json(sys.argv[1])["test_acc"]
torch = last_json(sys.argv[2])["pytorch_test_acc"]
print(json.dumps({"bench": "accuracy", "model": "fmnist-cnn", "epochs": int(sys.argv[3]),
                  "ours": ours, "pytorch": torch, "diff_points": round(100 * (ours - torch), 2)}),
      flush=True)
EOF
fi
