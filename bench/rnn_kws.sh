#!/usr/bin/env bash
# bench/rnn_kws.sh: the recurrent reference models lstm-s, gru-s and crnn-s on the synthetic
# keyword-spotting set (issue 18, item 6): float vs int8 (post-training quantisation, and
# quantisation-aware training where `nas train --qat` supports the model) test accuracy,
# flash, planned SRAM and emulated cycles of the C export on a Cortex-M4 target.
#
#   bench/rnn_kws.sh [options] DATA_DIR
#
#   --build DIR        build directory holding `nas` (default: build)
#   --epochs E         float training epochs (20)
#   --qat-epochs Q     QAT epochs after E - Q float epochs, same total (3)
#   --lr X             Adam learning rate (0.005)
#   --threads T        `nas train --threads` (2)
#   --target ID        target priced and emulated (stm32f446re: Cortex-M4 at 180 MHz)
#   --models LIST      comma-separated subset of lstm-s,gru-s,crnn-s (all)
#   --work DIR         checkpoints and exports (a fresh mktemp directory)
#
# DATA_DIR is a Speech Commands tree (`datasets/tools/synth-kws DATA_DIR 350 1` with
# N_UNKNOWN=70 gives the 4,200-clip set of bench/kws_accuracy.sh; generated here when DATA_DIR
# has no validation_list.txt). gru-s is specified on 25x10 MFCC (40 ms hop); the dataset
# computes 49 frames (20 ms hop), so gru-s is trained on 49x10 (same 154 units; the JSON line
# says "input": [49, 10, 1]). For each model, one JSON line on stdout:
#   {"bench":"rnn-kws","model":M,"input":[..],"epochs":E,"float_test_acc":A,
#    "ptq_int8_test_acc":A8,"qat":{"epochs":Q,"fakequant_test_acc":..,"int8_test_acc":..} or
#    {"unsupported":"..."},"flash_bytes":..,"model_flash_bytes":..,"arena_bytes":..,
#    "peak_sram_bytes":..,"peak_sram_method":"planner","latency_pred_ms":..,"latency_model":..,
#    "emu":{"core":..,"cycles":..,"ms":..,"text_bytes":..,"output_matches_host":true},
#    "test_n":N,"train_seconds":T}
# flash/SRAM/latency_pred from `nas profile --checkpoint --runtime nas-c --json`; "emu" from
# `nas measure --checkpoint --json` (the C export cross-compiled and run in Unicorn, first test
# sample). Accuracies depend only on the seeds (seed 1); wall times on the machine and load.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"

build="$src/build"
epochs=20
qat_epochs=3
lr=0.005
threads=2
target=stm32f446re
models="lstm-s,gru-s,crnn-s"
work=""
data=""
usage="usage: bench/rnn_kws.sh [--build DIR] [--epochs E] [--qat-epochs Q] [--lr X] [--threads T] [--target ID] [--models LIST] [--work DIR] DATA_DIR"
while [ $# -gt 0 ]; do
  case "$1" in
    --build|--epochs|--qat-epochs|--lr|--threads|--target|--models|--work)
      [ $# -ge 2 ] || { echo "rnn_kws.sh: $1 needs a value" >&2; exit 2; }
      case "$1" in
        --build) build="$2" ;;
        --epochs) epochs="$2" ;;
        --qat-epochs) qat_epochs="$2" ;;
        --lr) lr="$2" ;;
        --threads) threads="$2" ;;
        --target) target="$2" ;;
        --models) models="$2" ;;
        --work) work="$2" ;;
      esac
      shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "rnn_kws.sh: unknown option '$1'" >&2; echo "$usage" >&2; exit 2 ;;
    *)
      [ -z "$data" ] || { echo "rnn_kws.sh: one DATA_DIR only" >&2; exit 2; }
      data="$1" ;;
  esac
  shift
done
[ -n "$data" ] || { echo "$usage" >&2; exit 2; }
data="${data%/}"
nas="$build/nas"
[ -x "$nas" ] || { echo "rnn_kws.sh: $nas not found (build first)" >&2; exit 1; }
if [ ! -f "$data/validation_list.txt" ]; then
  echo "rnn_kws.sh: generating $data (350 per keyword, 70 per unknown word, seed 1)" >&2
  JOBS=2 N_UNKNOWN=70 "$src/datasets/tools/synth-kws" "$data" 350 1
fi
if [ -z "$work" ]; then
  work="$(mktemp -d /tmp/rnn_kws.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
spec="speech-commands:$data"

one() { # model
  local m=$1 arch="$src/search_spaces/reference/$1.json" qat_json
  if [ "$m" = gru-s ]; then # the dataset's 49 frames (see the header)
    arch="$work/gru-s-49.json"
    sed 's/"input": \[25, 10, 1\]/"input": [49, 10, 1]/' "$src/search_spaces/reference/gru-s.json" >"$arch"
    grep -q '"input": \[49, 10, 1\]' "$arch" || { echo "rnn_kws.sh: cannot set gru-s's input" >&2; exit 1; }
  fi
  "$nas" train --arch "$arch" --dataset "$spec" --epochs "$epochs" --lr "$lr" --seed 1 \
    --threads "$threads" --save "$work/$m.ckpt" --json | tail -n 1 >"$work/$m.train.json"
  "$nas" export --checkpoint "$work/$m.ckpt" --format c --out "$work/$m-c" --json \
    | tail -n 1 >"$work/$m.ptq.json"
  if grep -q '"gru"' "$arch"; then
    qat_json='{"unsupported":"nas train --qat does not support GRU layers yet"}'
  else
    "$nas" train --arch "$arch" --dataset "$spec" --epochs "$epochs" --lr "$lr" --seed 1 \
      --qat ste --qat-epochs "$qat_epochs" --threads "$threads" --save "$work/$m.qat.ckpt" \
      --json | tail -n 1 >"$work/$m.qat.json"
    "$nas" export --checkpoint "$work/$m.qat.ckpt" --format c --out "$work/$m-qc" --json \
      | tail -n 1 >"$work/$m.qatx.json"
    qat_json=$(/usr/bin/python3 - "$work/$m.qat.json" "$work/$m.qatx.json" "$qat_epochs" <<'EOF'
import json, sys
t, x = (json.load(open(p)) for p in sys.argv[1:3])
print(json.dumps({"epochs": int(sys.argv[3]), "fakequant_test_acc": round(t["test_acc"], 4),
                  "int8_test_acc": round(x["int8_test_acc"], 4),
                  "ranges": "QAT" if x["qat_ranges"] else "calibrated"}))
EOF
)
  fi
  "$nas" profile --checkpoint "$work/$m.ckpt" --target "$target" --runtime nas-c --json \
    >"$work/$m.profile.json"
  "$nas" measure --checkpoint "$work/$m.ckpt" --target "$target" --json >"$work/$m.measure.json"
  /usr/bin/python3 - "$m" "$arch" "$epochs" "$work" "$qat_json" "$target" <<'EOF'
import json, sys
m, arch, epochs, work, qat, target = sys.argv[1:]
ld = lambda s: json.load(open(f"{work}/{m}.{s}.json"))
tr, ptq, pr, me = ld("train"), ld("ptq"), ld("profile"), ld("measure")
print(json.dumps({
    "bench": "rnn-kws", "model": m, "input": json.load(open(arch))["input"], "epochs": int(epochs),
    "target": target, "float_test_acc": round(tr["test_acc"], 4),
    "ptq_int8_test_acc": round(ptq["int8_test_acc"], 4), "qat": json.loads(qat),
    "flash_bytes": pr["flash_bytes"], "arena_bytes": pr["arena_bytes"],
    "peak_sram_bytes": pr["peak_sram_bytes"], "peak_sram_method": pr["peak_sram_method"],
    "latency_pred_ms": round(pr["latency_ms"], 3), "latency_model": pr["latency_model"],
    "emu": {"core": me["core"], "cycles": me["total"]["cycles"], "ms": round(me["total"]["ms"], 3),
            "text_bytes": me["text_bytes"], "bss_bytes": me["bss_bytes"],
            "output_matches_host": me["output_matches_host"]},
    "test_n": ptq["test_n"], "train_seconds": round(tr["train_seconds"], 1)}))
EOF
}

IFS=, read -r -a list <<<"$models"
for m in "${list[@]}"; do
  case "$m" in lstm-s|gru-s|crnn-s) one "$m" ;; *) echo "rnn_kws.sh: unknown model '$m'" >&2; exit 2 ;; esac
done
