#!/usr/bin/env bash
# bench/kws_accuracy.sh: keyword-spotting accuracy of the reference models dscnn-s and lstm-s
# on a synthetic Speech Commands set (issue 3, item 7: dscnn-s >= 90%, lstm-s >= 85% test
# accuracy on >= 4,000 utterances of the 12-class task).
#
#   bench/kws_accuracy.sh [options] DATA_DIR
#
#   --build DIR        build directory holding `nas` (default: build)
#   --n-per-word N     synth-kws utterances per keyword (350)
#   --n-unknown N      synth-kws utterances per _unknown_ word (70)
#   --seed S           synth-kws seed (1)
#   --jobs J           synth-kws workers (2)
#   --threads T        `nas train --threads` (1)
#   --dscnn-epochs E   (10)    --dscnn-lr X   (0.002, Adam)
#   --lstm-epochs E    (30)    --lstm-lr X    (0.005, Adam)
#   --spec-extra S     appended to the dataset spec, e.g. ",aug=4" (none)
#   --split voice      train and test on DATA_DIR-voice instead: DATA_DIR's word folders as
#                      symlinks with speaker-disjoint lists (synth-kws SPLIT=voice
#                      LISTS_ONLY=1: test = voices m2 and f2, validation = m5), made if missing
#
# When DATA_DIR has no validation_list.txt it is first generated with
# `JOBS=J N_UNKNOWN=n-unknown datasets/tools/synth-kws DATA_DIR n-per-word seed`. The 12-class
# task then holds 12 * n-per-word clips (10 keywords, 1/12 _silence_, 1/12 _unknown_; 4,200
# with the defaults). Each model is trained with `nas train ... --json`; one JSON line per
# model goes to stdout:
#   {"bench":"kws-accuracy","model":"dscnn-s","epochs":10,"lr":0.002,"test_acc":A,
#    "val_acc":V,"train_seconds":T,"wall_seconds":W,"spec":"speech-commands:DIR..."}
# Wall times depend on the machine and its load; accuracies depend only on the seeds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"

build="$src/build"
npw=350
nunk=70
seed=1
jobs=2
threads=1
d_epochs=10
d_lr=0.002
l_epochs=30
l_lr=0.005
extra=""
split=index
data=""
usage="usage: bench/kws_accuracy.sh [--build DIR] [--n-per-word N] [--n-unknown N] [--seed S] [--jobs J] [--threads T] [--dscnn-epochs E] [--dscnn-lr X] [--lstm-epochs E] [--lstm-lr X] [--spec-extra S] [--split index|voice] DATA_DIR"
while [ $# -gt 0 ]; do
  case "$1" in
    --build|--n-per-word|--n-unknown|--seed|--jobs|--threads|--dscnn-epochs|--dscnn-lr|--lstm-epochs|--lstm-lr|--spec-extra|--split)
      [ $# -ge 2 ] || { echo "kws_accuracy.sh: $1 needs a value" >&2; exit 2; }
      case "$1" in
        --build) build="$2" ;;
        --n-per-word) npw="$2" ;;
        --n-unknown) nunk="$2" ;;
        --seed) seed="$2" ;;
        --jobs) jobs="$2" ;;
        --threads) threads="$2" ;;
        --dscnn-epochs) d_epochs="$2" ;;
        --dscnn-lr) d_lr="$2" ;;
        --lstm-epochs) l_epochs="$2" ;;
        --lstm-lr) l_lr="$2" ;;
        --spec-extra) extra="$2" ;;
        --split) split="$2" ;;
      esac
      shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "kws_accuracy.sh: unknown option '$1'" >&2; echo "$usage" >&2; exit 2 ;;
    *)
      [ -z "$data" ] || { echo "kws_accuracy.sh: one DATA_DIR only" >&2; exit 2; }
      data="$1" ;;
  esac
  shift
done
[ -n "$data" ] || { echo "$usage" >&2; exit 2; }
case "$split" in index | voice) ;; *) echo "kws_accuracy.sh: --split '$split' (expected index or voice)" >&2; exit 2 ;; esac
data="${data%/}"
nas="$build/nas"
[ -x "$nas" ] || { echo "kws_accuracy.sh: $nas not found (build first)" >&2; exit 1; }

now() { date +%s.%N; }

if [ ! -f "$data/validation_list.txt" ]; then
  echo "kws_accuracy.sh: generating $data (n-per-word $npw, n-unknown $nunk, seed $seed)" >&2
  t0=$(now)
  JOBS="$jobs" N_UNKNOWN="$nunk" "$src/datasets/tools/synth-kws" "$data" "$npw" "$seed"
  echo "kws_accuracy.sh: generated in $(echo "$(now) - $t0" | bc) s" >&2
fi

if [ "$split" = voice ]; then
  twin="$data-voice"
  if [ ! -f "$twin/validation_list.txt" ]; then
    mkdir -p "$twin"
    for d in "$data"/*/; do ln -sfn "$(cd "$d" && pwd)" "$twin/$(basename "$d")"; done
    SPLIT=voice LISTS_ONLY=1 N_UNKNOWN="$nunk" "$src/datasets/tools/synth-kws" "$twin" "$npw" "$seed"
  fi
  data="$twin"
fi

spec="speech-commands:$data$extra"
run() { # model epochs lr
  local model=$1 epochs=$2 lr=$3 t0 out line
  t0=$(now)
  out=$("$nas" train --arch "$src/search_spaces/reference/$model.json" --dataset "$spec" \
          --epochs "$epochs" --lr "$lr" --threads "$threads" --json)
  line=$(printf '%s\n' "$out" | tail -n 1)
  /usr/bin/python3 - "$model" "$epochs" "$lr" "$(echo "$(now) - $t0" | bc)" "$spec" "$line" <<'EOF'
import json, sys
model, epochs, lr, wall, spec, line = sys.argv[1:]
r = json.loads(line)
print(json.dumps({"bench": "kws-accuracy", "model": model, "epochs": int(epochs),
                  "lr": float(lr), "test_acc": round(r["test_acc"], 4),
                  "val_acc": round(r["val_acc"], 4),
                  "train_seconds": round(r["train_seconds"], 1),
                  "wall_seconds": round(float(wall), 1), "spec": spec}))
EOF
}
run dscnn-s "$d_epochs" "$d_lr"
run lstm-s "$l_epochs" "$l_lr"
