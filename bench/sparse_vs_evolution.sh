#!/usr/bin/env bash
# bench/sparse_vs_evolution.sh: the sparse strategy (SpArSe-style: architecture and pruning
# searched together) against aging evolution and random search on Fashion-MNIST under a
# SpArSe-like microcontroller budget (issue 16, item 5).
#
#   bench/sparse_vs_evolution.sh [BUILD_DIR]          (BUILD_DIR defaults to build)
#
# Target: stm32l4r5zi (Cortex-M4) priced for the nas-c runtime (this engine's C export, which
# stores pruned weights sparse): the built-in target file with "runtime": "nas-c", the
# runtime's flash overhead measured by compiling the runtime files a CNN links
# (nasrt_conv.c, nasrt_fast_conv.c, nasrt_fast_dw.c, nasrt_sparse.c, nasrt_elem.c,
# nasrt_softmax.c, nasrt_invoke.c; the recurrent kernels are left out by the linker) for the Cortex-M4 (arm-none-eabi-gcc -O2; 21092 B with the fast
# kernels when the toolchain is missing; RUNTIME_FLASH=B sets it, RUNTIME_FLASH=0 makes the flash
# budget bound the model's bytes alone, as SpArSe's model-size constraint) and no SRAM overhead (nasrt keeps no state). Budgets: peak SRAM <= 16 KB, flash <= 32 KB. Space:
# bench/spaces/sparse-fmnist.json (conv stem, optional 1x1 + strided conv "downsample" block,
# depthwise-separable stages, optional pooling, gap or flatten, one or two fc).
#
# Equal training compute: every trained candidate gets EPOCHS epochs on the same TRAIN_LIMIT
# samples (the sparse strategy's warm-started morphisms are fine-tuned for EPOCHS too, so
# they cost what a candidate trained from scratch costs); random and evolution propose
# BUDGET candidates, and the sparse run's budget is the number of candidates evolution
# trained (rejected candidates cost no training), so it trains no more than evolution did.
# Every figure printed below counts the candidates that were trained.
#
# Output (stdout): one JSON line per strategy
#   {"bench":"sparse_vs_evolution","strategy":S,"wall_s":W,"candidates":C,"trained":T,
#    "train_samples":N,"train_s":X,"hv":H,"front":[{"id":I,"v":[acc,flash,sram]},...]}
# (hv: hypervolume of the front over (1 - acc_int8_test, flash_bytes, peak_sram_bytes) in
# the box bounded by (1, 32768, 16384), each axis divided by its bound), then the markdown
# table of the fronts, then the dense-vs-pruned check of the best pruned model of the sparse
# front (at least MIN_SPARSITY zero weights): its architecture retrained with its pruning and
# with the unstructured part of it removed (method none, the same channel pruning) (nas train, FINAL_EPOCHS epochs on FINAL_LIMIT samples), exported to C, and
# the int8 test accuracies (all 10000 test samples) and nas-c flash of both:
#   {"bench":"sparse_vs_evolution","check":"dense_vs_pruned","candidate":I,"zeros":Z,
#    "acc_int8_dense":A,"acc_int8_pruned":B,"flash_dense":F,"flash_pruned":G,
#    "sparse_saved_dense":S0,"sparse_saved_pruned":S1}
# (sparse_saved: filter bytes the sparse storage saves in that model's C export, so
# F - G = S1 - S0 when the priced flash is the exported one)
#
# Environment (defaults fit ~1.5 h on 2 shared cores; the full protocol would use all 60000
# samples and more epochs):
#   TRAIN_LIMIT=8000  EPOCHS=2  EVAL_LIMIT=2000  BUDGET=36  INIT=6  POOL=150  MORPHS=4
#   POP=8  SEED=1  THREADS=2  FINAL_EPOCHS=3  FINAL_LIMIT=20000  MIN_SPARSITY=0.5
#   OUT=/tmp/nas-sparse-bench  RUNTIME_FLASH=(measured)
# The figures in docs/benchmarks.md ran with reduced budgets to fit 40 minutes on the loaded
# machine: TRAIN_LIMIT=2000 EPOCHS=2 EVAL_LIMIT=1000 BUDGET=12 INIT=4 POOL=100 MORPHS=3 POP=5
# FINAL_EPOCHS=2 FINAL_LIMIT=8000 RUNTIME_FLASH=0.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
case "${1:-}" in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
esac
build="${1:-$src/build}"
nas="$build/nas"
hv="$build/bench_hv"
for t in "$nas" "$hv"; do
  [ -x "$t" ] || { echo "sparse_vs_evolution.sh: $t not found (build first)" >&2; exit 2; }
done
command -v sqlite3 >/dev/null || { echo "sparse_vs_evolution.sh: needs the sqlite3 program" >&2; exit 2; }

TRAIN_LIMIT="${TRAIN_LIMIT:-8000}"
EPOCHS="${EPOCHS:-2}"
EVAL_LIMIT="${EVAL_LIMIT:-2000}"
BUDGET="${BUDGET:-36}"
INIT="${INIT:-6}"
POOL="${POOL:-150}"
MORPHS="${MORPHS:-4}"
POP="${POP:-8}"
SEED="${SEED:-1}"
FINAL_EPOCHS="${FINAL_EPOCHS:-3}"
FINAL_LIMIT="${FINAL_LIMIT:-20000}"
MIN_SPARSITY="${MIN_SPARSITY:-0.5}"
OUT="${OUT:-/tmp/nas-sparse-bench}"
export OMP_NUM_THREADS="${THREADS:-2}" OPENBLAS_NUM_THREADS="${THREADS:-2}"
mkdir -p "$OUT"
rm -f "$OUT"/*.db* "$OUT"/*.ckpt
OBJ="acc_int8_test:max,flash_bytes:min,peak_sram_bytes:min"
REF="1,32768,16384"

# The nas-c target: the built-in stm32l4r5zi with the nas-c runtime and its measured size.
rt_flash=21092
if [ -n "${RUNTIME_FLASH:-}" ]; then
  rt_flash=$RUNTIME_FLASH
elif command -v arm-none-eabi-gcc >/dev/null && command -v arm-none-eabi-size >/dev/null; then
  tmp=$(mktemp -d)
  cp "$src"/runtime/*.c "$src"/runtime/*.h "$tmp"/
  (cd "$tmp" && for f in nasrt_conv.c nasrt_fast_conv.c nasrt_fast_dw.c nasrt_sparse.c nasrt_elem.c \
                    nasrt_softmax.c nasrt_invoke.c; do
     arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -O2 -c "$f" -o "$f.o"; done)
  rt_flash=$(arm-none-eabi-size "$tmp"/*.o | awk 'NR > 1 { t += $1 + $2 } END { print t }')
  rm -rf "$tmp"
fi
target="$OUT/stm32l4r5zi-nasc.json"
sed -e 's/"id": "stm32l4r5zi"/"id": "stm32l4r5zi-nasc"/' \
    -e 's/"runtime": "[a-z-]*"/"runtime": "nas-c"/' \
    -e 's/"runtime_overhead_sram_bytes": [0-9]*/"runtime_overhead_sram_bytes": 0/' \
    -e "s/\"runtime_overhead_flash_bytes\": [0-9]*/\"runtime_overhead_flash_bytes\": $rt_flash/" \
    "$src/latency/targets/stm32l4r5zi.json" > "$target"
echo "sparse_vs_evolution: nas-c runtime $rt_flash B flash; train limit $TRAIN_LIMIT, $EPOCHS" \
     "epochs per candidate, eval limit $EVAL_LIMIT, budget $BUDGET, threads $OMP_NUM_THREADS" >&2

common=(--space "$src/bench/spaces/sparse-fmnist.json" --dataset fashion-mnist
        --target-file "$target" --max-sram 16K --max-flash 32K --epochs "$EPOCHS"
        --train-limit "$TRAIN_LIMIT" --eval-limit "$EVAL_LIMIT" --seed "$SEED" --objectives "$OBJ")
now() { date +%s.%N; }

run() { # name, then strategy options
  local name=$1
  shift
  local t0 t1
  t0=$(now)
  "$nas" search "${common[@]}" --db "$OUT/$name.db" "$@" > "$OUT/$name.log"
  t1=$(now)
  echo "$t0 $t1" > "$OUT/$name.wall"
}

report() { # name
  local name=$1 db="$OUT/$1.db" w
  read -r t0 t1 < "$OUT/$name.wall"
  w=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  local cand trained samples trs front
  cand=$(sqlite3 "$db" "SELECT count(*) FROM candidates WHERE retrain_epochs = 0")
  trained=$(sqlite3 "$db" "SELECT count(*) FROM candidates WHERE retrain_epochs = 0 AND state IN ('done','failed')")
  samples=$((trained * EPOCHS * TRAIN_LIMIT))
  trs=$(sqlite3 "$db" "SELECT printf('%.1f', coalesce(sum(train_seconds), 0)) FROM candidates WHERE retrain_epochs = 0")
  front=$("$hv" "$db" 1 "$OBJ" "$REF")
  printf '{"bench":"sparse_vs_evolution","strategy":"%s","wall_s":%s,"candidates":%s,"trained":%s,"train_samples":%s,"train_s":%s,%s\n' \
    "$name" "$w" "$cand" "$trained" "$samples" "$trs" "${front#\{}"
}

run random --strategy random --budget "$BUDGET"
run evolution --strategy evolution --budget "$BUDGET" --population "$POP" --sample-size 3
evo_trained=$(sqlite3 "$OUT/evolution.db" "SELECT count(*) FROM candidates WHERE state IN ('done','failed')")
run sparse --strategy sparse --budget "$evo_trained" --init "$INIT" --pool "$POOL" \
    --morphs "$MORPHS" --finetune-epochs "$EPOCHS"
for s in random evolution sparse; do report "$s"; done | tee "$OUT/summary.jsonl"

# The fronts as a table.
echo
echo "| strategy | candidate | acc_int8_test | flash_bytes | peak_sram_bytes | zero weights | warm |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for s in random evolution sparse; do
  ids=$(grep "\"strategy\":\"$s\"" "$OUT/summary.jsonl" | grep -o '"id":[0-9]*' | cut -d: -f2 | paste -sd, -)
  [ -n "$ids" ] || continue
  sqlite3 -separator ' | ' "$OUT/$s.db" \
    "SELECT '$s', id, printf('%.4f', acc_int8_test), flash_bytes, peak_sram_bytes,
            CASE WHEN instr(arch_json, '\"sparsity\":') > 0
                 THEN printf('%.2f', CAST(substr(arch_json, instr(arch_json, '\"sparsity\":') + 11, 8) AS REAL))
                 ELSE '0' END,
            warm_start
     FROM candidates WHERE id IN ($ids) ORDER BY acc_int8_test DESC" | sed 's/^/| /; s/$/ |/'
done

# Dense against pruned: the most accurate sparse front member with >= MIN_SPARSITY zeros.
ids=$(grep '"strategy":"sparse"' "$OUT/summary.jsonl" | grep -o '"id":[0-9]*' | cut -d: -f2 | paste -sd, -)
best=$(sqlite3 "$OUT/sparse.db" "SELECT id FROM candidates WHERE id IN (${ids:-0})
        AND instr(arch_json, '\"method\":\"magnitude\"') > 0
        AND CAST(substr(arch_json, instr(arch_json, '\"sparsity\":') + 11, 8) AS REAL) >= $MIN_SPARSITY
        ORDER BY acc_int8_test DESC LIMIT 1")
if [ -z "$best" ]; then
  echo '{"bench":"sparse_vs_evolution","check":"dense_vs_pruned","candidate":null}'
  exit 0
fi
sqlite3 "$OUT/sparse.db" "SELECT arch_json FROM candidates WHERE id = $best" > "$OUT/pruned.json"
# the dense twin: the same arch and channel pruning, no unstructured pruning
sed -e 's/"method":"[a-z]*"/"method":"none"/' -e 's/"sparsity":[0-9.e-]*/"sparsity":0/' \
    "$OUT/pruned.json" > "$OUT/dense.json"
zeros=$(grep -o '"sparsity":[0-9.]*' "$OUT/pruned.json" | head -1 | cut -d: -f2)
for v in dense pruned; do
  "$nas" train --arch "$OUT/$v.json" --dataset fashion-mnist --epochs "$FINAL_EPOCHS" \
         --train-limit "$FINAL_LIMIT" --seed "$SEED" --save "$OUT/$v.ckpt" > "$OUT/$v.train.log"
  "$nas" export --checkpoint "$OUT/$v.ckpt" --format c --out "$OUT/$v.c" --json > "$OUT/$v.export.log"
  "$nas" export --checkpoint "$OUT/$v.ckpt" --format tflite --out "$OUT/$v.tfl" > /dev/null
  "$nas" profile --tflite "$OUT/$v.tfl"/*.tflite --target-file "$target" --json > "$OUT/$v.profile.json"
done
acc() { tail -1 "$OUT/$1.export.log" | grep -o '"int8_test_acc":[0-9.e-]*' | cut -d: -f2; }
flash() { grep -o '"flash_bytes":[0-9.e+]*' "$OUT/$1.profile.json" | head -1 | cut -d: -f2; }
saved() { tail -1 "$OUT/$1.export.log" | grep -o '"sparse_saved":[0-9]*' | cut -d: -f2; }
printf '{"bench":"sparse_vs_evolution","check":"dense_vs_pruned","candidate":%s,"zeros":%s,"acc_int8_dense":%s,"acc_int8_pruned":%s,"flash_dense":%s,"flash_pruned":%s,"sparse_saved_dense":%s,"sparse_saved_pruned":%s}\n' \
  "$best" "$zeros" "$(acc dense)" "$(acc pruned)" "$(flash dense)" "$(flash pruned)" "$(saved dense)" "$(saved pruned)"
