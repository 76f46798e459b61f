#!/usr/bin/env bash
# bench/qat_accuracy.sh: int8 accuracy of post-training quantisation (PTQ), quantisation-aware
# training with the straight-through estimator (QAT-STE) and alpha-blending (QAT-alpha),
# against the float network, for the reference models.
#
#   bench/qat_accuracy.sh [BUILD_DIR]            (BUILD_DIR defaults to build)
#
# Per model, with the same seed:
#   float      nas train --epochs E                        -> float test accuracy
#   PTQ        nas export of that checkpoint (min/max calibration on 1000 training samples)
#   QAT-STE    nas train --epochs E+Q --qat ste --qat-epochs Q, then nas export (QAT ranges)
#   QAT-alpha  nas train --epochs E+Q --qat alpha --qat-epochs Q, then nas export (QAT ranges)
# A QAT run's first E epochs are the float run again (same seed, same schedule: bit for bit
# the same network, its "float_phase_test_acc" shows it), followed by Q QAT fine-tuning epochs
# at 0.1x the learning rate. The int8 figures are those of the exported int8 graph (deploy/
# reference kernels) on the whole test split. Prints one JSON line per model and method:
#   {"bench":"qat","model":"fmnist-cnn","method":"ptq","float_test_acc":F,"int8_test_acc":A,
#    "drop_points":D, ...}
# with D = 100 * (float reference - int8), the float reference being the float run's.
#
# Environment: FMNIST_EPOCHS (4), FMNIST_QAT_EPOCHS (1), KWS_DIR (/work/data/kws-synth; the
# dscnn-s rows are skipped with a note on stderr when it is missing), KWS_EPOCHS (12),
# KWS_QAT_EPOCHS (2), MODELS ("fmnist-cnn dscnn-s"), THREADS (1), SEED (1), OUT (a temporary
# directory).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
build="${1:-$src/build}"
nas="$build/nas"
[ -x "$nas" ] || { echo "qat_accuracy: $nas not found (build first)" >&2; exit 1; }
threads="${THREADS:-1}"
seed="${SEED:-1}"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
echo "qat_accuracy: outputs in $out, threads $threads, seed $seed" >&2

last_json() { grep '^{' "$1" | tail -n 1; }
field() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# run_model NAME ARCH DATASET EPOCHS QAT_EPOCHS
run_model() {
  local name="$1" arch="$2" ds="$3" ep="$4" qep="$5"
  local d="$out/$name"
  mkdir -p "$d"
  echo "== $name: float, $ep epochs" >&2
  "$nas" train --arch "$arch" --dataset "$ds" --epochs "$ep" --seed "$seed" --threads "$threads" \
    --save "$d/float.ckpt" --json > "$d/float.train.log"
  local ft
  ft="$(field "$(last_json "$d/float.train.log")" test_acc)"
  "$nas" export --checkpoint "$d/float.ckpt" --format tflite --out "$d/ptq" --json > "$d/ptq.export.log"
  local j
  j="$(last_json "$d/ptq.export.log")"
  emit "$name" ptq "$ft" "$(field "$j" int8_test_acc)" "$ft" "$ep" 0
  for m in ste alpha; do
    echo "== $name: QAT $m, $ep float epochs + $qep QAT epochs" >&2
    "$nas" train --arch "$arch" --dataset "$ds" --epochs "$((ep + qep))" --qat "$m" --qat-epochs "$qep" \
      --seed "$seed" --threads "$threads" --save "$d/$m.ckpt" --json > "$d/$m.train.log"
    local tj qat_fq phase_float
    tj="$(last_json "$d/$m.train.log")"
    qat_fq="$(field "$tj" test_acc)"
    phase_float="$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("float_test_acc", -1))' "$tj")"
    "$nas" export --checkpoint "$d/$m.ckpt" --format tflite --out "$d/$m" --json > "$d/$m.export.log"
    j="$(last_json "$d/$m.export.log")"
    emit "$name" "qat-$m" "$ft" "$(field "$j" int8_test_acc)" "$phase_float" "$ep" "$qep" "$qat_fq"
  done
}

# emit MODEL METHOD FLOAT_REF INT8 FLOAT_OF_THIS_RUN EPOCHS QAT_EPOCHS [QAT_FAKEQUANT_ACC]
emit() {
  /usr/bin/python3 - "$@" <<'EOF'
import json, sys
m, meth, fref, i8, frun, ep, qep = sys.argv[1:8]
o = {"bench": "qat", "model": m, "method": meth, "float_test_acc": float(fref),
     "int8_test_acc": float(i8), "drop_points": round(100 * (float(fref) - float(i8)), 2),
     "epochs": int(ep), "qat_epochs": int(qep)}
if meth != "ptq":
    o["float_phase_test_acc"] = float(frun)
    o["qat_fakequant_test_acc"] = float(sys.argv[8])
print(json.dumps(o))
EOF
}

models=" ${MODELS:-fmnist-cnn dscnn-s} "
if [[ "$models" == *" fmnist-cnn "* ]]; then
  run_model fmnist-cnn "$src/search_spaces/reference/fmnist-cnn.json" fashion-mnist \
    "${FMNIST_EPOCHS:-4}" "${FMNIST_QAT_EPOCHS:-1}"
fi

kws="${KWS_DIR:-/work/data/kws-synth}"
if [[ "$models" != *" dscnn-s "* ]]; then
  :
elif [ -d "$kws" ]; then
  run_model dscnn-s "$src/search_spaces/reference/dscnn-s.json" "speech-commands:$kws" \
    "${KWS_EPOCHS:-12}" "${KWS_QAT_EPOCHS:-2}"
else
  echo "qat_accuracy: $kws not found: dscnn-s not run" >&2
fi
