#!/usr/bin/env bash
# bench/winograd.sh: Winograd-aware convolutions against the direct convolution (issue 17) on
# a 3x3-conv-heavy reference net: int8 accuracy and emulated cycles per algorithm.
#
#   bench/winograd.sh [BUILD_DIR]            (BUILD_DIR defaults to build)
#
# The reference net (Fashion-MNIST, 28x28x1): conv 16, conv 16, maxpool, conv 32, conv 32,
# maxpool, conv 48, gap, fc 10 -- every conv 3x3 stride 1 with the algorithm ALGO (im2row,
# wino2, wino4). Per algorithm, with the same seed:
#   float    nas train --epochs E                            -> float test accuracy
#   ptq      nas export --format c of that checkpoint          -> int8 test accuracy (PTQ)
#   qat      nas train --epochs E+Q --qat ste --qat-epochs Q   -> int8 (Winograd-aware static)
#   flex     the same with "flex": true (wino2, wino4 only)    -> int8 (Winograd-aware flex)
# then `nas measure --backend emulator` of the qat checkpoint on TARGETS (cortex-m4 and
# cortex-m7 boards by default): per-layer and total emulated cycles, and `nas profile
# --runtime nas-c` for flash and arena. Prints one JSON line per row:
#   {"bench":"winograd","dataset":..,"algo":..,"method":..,"float_test_acc":..,"int8_test_acc":..}
#   {"bench":"winograd-cycles","algo":..,"target":..,"layers":[{"op":..,"cycles":..}],"total_cycles":..,
#    "flash_bytes":..,"arena_bytes":..}
# Environment: EPOCHS (2), QAT_EPOCHS (1), TRAIN_LIMIT (10000 training samples), TARGETS
# ("stm32f446re stm32f746"), ALGOS ("im2row wino2 wino4"), THREADS (1), SEED (1), OUT (a
# temporary directory). The search comparison of issue 17 item 6 (a search with the algorithm
# as a decision against one without, at one latency budget) is not part of this script.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
build="${1:-$src/build}"
nas="$build/nas"
[ -x "$nas" ] || { echo "winograd: $nas not found (build first)" >&2; exit 1; }
epochs="${EPOCHS:-2}"
qep="${QAT_EPOCHS:-1}"
limit="${TRAIN_LIMIT:-10000}"
targets="${TARGETS:-stm32f446re stm32f746}"
algos="${ALGOS:-im2row wino2 wino4}"
threads="${THREADS:-1}"
seed="${SEED:-1}"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
echo "winograd: outputs in $out, $epochs+$qep epochs on $limit samples, threads $threads" >&2

last_json() { grep '^{' "$1" | tail -n 1; }
field() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# arch ALGO FLEX -> the reference net's JSON
arch() {
  local extra=""
  [ "$1" != im2row ] && extra=",\"algo\":\"$1\""
  [ "$2" = 1 ] && extra="$extra,\"flex\":true"
  cat <<EOF
{"input":[28,28,1],"classes":10,"layers":[
 {"op":"conv","out":16$extra},{"op":"conv","out":16$extra},{"op":"maxpool"},
 {"op":"conv","out":32$extra},{"op":"conv","out":32$extra},{"op":"maxpool"},
 {"op":"conv","out":48$extra},{"op":"gap"},{"op":"fc","out":10}]}
EOF
}

row() { # ALGO METHOD FLOAT INT8
  printf '{"bench":"winograd","dataset":"fashion-mnist","algo":"%s","method":"%s","float_test_acc":%s,"int8_test_acc":%s,"epochs":%s,"qat_epochs":%s,"train_limit":%s}\n' \
    "$1" "$2" "$3" "$4" "$epochs" "$qep" "$limit"
}

common=(--dataset fashion-mnist --seed "$seed" --threads "$threads" --train-limit "$limit" --json)
for a in $algos; do
  d="$out/$a"
  mkdir -p "$d"
  arch "$a" 0 > "$d/arch.json"
  echo "== $a: float, $epochs epochs" >&2
  "$nas" train --arch "$d/arch.json" --epochs "$epochs" --save "$d/float.ckpt" "${common[@]}" > "$d/float.log"
  ft="$(field "$(last_json "$d/float.log")" test_acc)"
  "$nas" export --checkpoint "$d/float.ckpt" --format c --out "$d/ptq" --threads "$threads" --json > "$d/ptq.log"
  row "$a" ptq "$ft" "$(field "$(last_json "$d/ptq.log")" int8_test_acc)"
  flexes=0
  [ "$a" != im2row ] && flexes="0 1"
  for fx in $flexes; do
    m=qat; [ "$fx" = 1 ] && m=flex
    arch "$a" "$fx" > "$d/arch_$m.json"
    echo "== $a: $m, $epochs + $qep QAT epochs" >&2
    "$nas" train --arch "$d/arch_$m.json" --epochs "$((epochs + qep))" --qat ste --qat-epochs "$qep" \
      --save "$d/$m.ckpt" "${common[@]}" > "$d/$m.log"
    "$nas" export --checkpoint "$d/$m.ckpt" --format c --out "$d/$m" --threads "$threads" --json > "$d/$m.export.log"
    row "$a" "$m" "$ft" "$(field "$(last_json "$d/$m.export.log")" int8_test_acc)"
  done
  for t in $targets; do
    "$nas" measure --checkpoint "$d/$( [ "$a" = im2row ] && echo float || echo qat ).ckpt" --target "$t" \
      --json > "$d/measure_$t.log"
    "$nas" profile --arch "$d/arch.json" --target "$t" --runtime nas-c --json > "$d/profile_$t.log"
    /usr/bin/python3 - "$a" "$t" "$(last_json "$d/measure_$t.log")" "$(last_json "$d/profile_$t.log")" <<'EOF'
import json, sys
a, t, m, p = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
layers = [{"op": l["op"], "cycles": round(l["cycles"])} for l in m["layers"] if l["index"] >= 0]
print(json.dumps({"bench": "winograd-cycles", "algo": a, "target": t, "core": m["core"],
                  "layers": layers, "total_cycles": round(m["total"]["cycles"]),
                  "total_ms": round(m["total"]["ms"], 3), "flash_bytes": p["flash_bytes"],
                  "arena_bytes": p.get("arena_bytes", p.get("peak_sram_bytes"))}))
EOF
  done
done
