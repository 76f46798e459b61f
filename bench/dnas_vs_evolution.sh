#!/usr/bin/env bash
# bench/dnas_vs_evolution.sh: DNAS against aging evolution on Fashion-MNIST for a Cortex-M4
# (stm32f446re), SRAM <= 64 KB, flash <= 256 KB (issue 7, item 5).
#
#   bench/dnas_vs_evolution.sh [BUILD_DIR]          (BUILD_DIR defaults to build)
#
# Runs `nas search --strategy evolution` and `nas search --strategy dnas` (a sweep of cost
# weights) on the same space, data, target, budgets and per-candidate retraining, each into
# its own store under OUT (default /tmp/nas-dnas-bench), and prints one JSON line per run:
#   {"bench":"dnas_vs_evolution","strategy":S,"wall_s":W,"samples":N,"train_s":T,
#    "candidates":C,"done":D,"front":[[acc_int8_test,peak_sram_bytes,latency_pred_ms],...]}
# samples = training samples processed: evolution, the done candidates' epochs x training
# set; DNAS, the supernet's training + architecture-step samples (its "dnas_point" events)
# plus the extracted candidates' retraining. train_s = training wall time (candidates'
# train_seconds, plus the supernet's seconds for DNAS). Then one line
#   {"bench":"dnas_vs_evolution","compute_ratio":R,"train_seconds_ratio":S,"dnas_dominated":K,
#    "dnas_points":P}
# R = DNAS samples / evolution samples (train_seconds_ratio: the same for training seconds, a
# fairer measure of compute: a supernet sample costs more than a candidate's); K = DNAS
# candidates dominated (accuracy, SRAM,
# latency) by an evolution candidate. Every DNAS candidate's stored costs are the exact
# model's; over-budget ones would be stored as rejected.
#
# Environment (defaults give the full protocol; reduce them on a shared machine and say so):
#   SPACE=vision-mbnet  TRAIN_LIMIT=0 (all 54000)  EPOCHS=3 (retraining per candidate)
#   EVO_BUDGET=60  POP=12  SN_EPOCHS=6  WARMUP=2  SWEEP=0.25,0.5,1,2,4  BATCH=128
#   WEIGHTS=sram=1,flash=0.5,latency=0.5  SEED=1  THREADS=2  OUT=/tmp/nas-dnas-bench
#   EVAL_LIMIT=0 (score on all validation/test samples)  CALIB=1000 (calibration samples)
#   SN_LIMIT=0 (supernet training samples; 0: all)  ARCH_EVERY=1 (weight steps per arch step)
#   REUSE_EVO=1 keeps OUT/evo.db and its recorded wall time from an earlier run with the same
#   settings (to re-run only the DNAS side)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
case "${1:-}" in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
esac
build="${1:-$src/build}"
nas="$build/nas"
[ -x "$nas" ] || { echo "dnas_vs_evolution.sh: $nas not found (build first)" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "dnas_vs_evolution.sh: needs the sqlite3 program" >&2; exit 2; }

SPACE="${SPACE:-vision-mbnet}"
TRAIN_LIMIT="${TRAIN_LIMIT:-0}"
EPOCHS="${EPOCHS:-3}"
EVO_BUDGET="${EVO_BUDGET:-60}"
POP="${POP:-12}"
SN_EPOCHS="${SN_EPOCHS:-6}"
WARMUP="${WARMUP:-2}"
SWEEP="${SWEEP:-0.25,0.5,1,2,4}"
BATCH="${BATCH:-128}"
WEIGHTS="${WEIGHTS:-sram=1,flash=0.5,latency=0.5}"
SEED="${SEED:-1}"
EVAL_LIMIT="${EVAL_LIMIT:-0}"
CALIB="${CALIB:-1000}"
SN_LIMIT="${SN_LIMIT:-0}"
ARCH_EVERY="${ARCH_EVERY:-1}"
OUT="${OUT:-/tmp/nas-dnas-bench}"
export OMP_NUM_THREADS="${THREADS:-2}" OPENBLAS_NUM_THREADS="${THREADS:-2}"
mkdir -p "$OUT"
REUSE_EVO="${REUSE_EVO:-0}"
if [ "$REUSE_EVO" = 1 ] && [ -f "$OUT/evo.db" ] && [ -f "$OUT/evo.wall" ]; then
  echo "dnas_vs_evolution: reusing $OUT/evo.db" >&2
else
  REUSE_EVO=0
  rm -f "$OUT"/evo.db* "$OUT"/evo.wall
fi
rm -f "$OUT"/dnas.db*

common=(--space "$SPACE" --dataset fashion-mnist --target stm32f446re --max-sram 64K
        --max-flash 256K --epochs "$EPOCHS" --batch "$BATCH" --seed "$SEED")
[ "$TRAIN_LIMIT" != 0 ] && common+=(--train-limit "$TRAIN_LIMIT")
[ "$EVAL_LIMIT" != 0 ] && common+=(--eval-limit "$EVAL_LIMIT")
common+=(--calib-samples "$CALIB")
echo "dnas_vs_evolution: space $SPACE, train limit $TRAIN_LIMIT, retraining $EPOCHS epochs," \
     "evolution $EVO_BUDGET candidates (population $POP), DNAS $SN_EPOCHS supernet epochs" \
     "($WARMUP warm-up) x sweep $SWEEP, threads $OMP_NUM_THREADS" >&2

now() { date +%s.%N; }
if [ "$REUSE_EVO" = 0 ]; then
  t0=$(now)
  "$nas" search --strategy evolution --population "$POP" --budget "$EVO_BUDGET" \
    --db "$OUT/evo.db" "${common[@]}" > "$OUT/evo.log"
  awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }' > "$OUT/evo.wall"
fi
evo_wall=$(cat "$OUT/evo.wall")
t1=$(now)
"$nas" search --strategy dnas --supernet-epochs "$SN_EPOCHS" --warmup "$WARMUP" \
  --cost-weights "$WEIGHTS" --sweep "$SWEEP" --arch-every "$ARCH_EVERY" \
  $( [ "$SN_LIMIT" != 0 ] && echo --supernet-limit "$SN_LIMIT" ) \
  --db "$OUT/dnas.db" "${common[@]}" > "$OUT/dnas.log"
t2=$(now)

# training-set size actually used (the run's configuration knows the limit; 54000 otherwise)
ntrain=$(( TRAIN_LIMIT > 0 ? TRAIN_LIMIT : 54000 ))

front() { # JSON list of the run's front over accuracy, SRAM, latency
  "$nas" pareto --db "$1" --run 1 --objectives acc_int8:max,sram:min,latency_ms:min --format csv |
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
             { printf "%s[%s,%s,%s]", (n++ ? "," : ""), $col["acc_int8_test"], $col["peak_sram_bytes"],
               $col["latency_pred_ms"] } END { printf "\n" }'
}
q() { sqlite3 -noheader "$1" "$2"; }

evo_done=$(q "$OUT/evo.db" "SELECT count(*) FROM candidates WHERE run_id=1 AND state='done'")
evo_cand=$(q "$OUT/evo.db" "SELECT count(*) FROM candidates WHERE run_id=1")
evo_samples=$(( evo_done * EPOCHS * ntrain ))
evo_train=$(q "$OUT/evo.db" "SELECT printf('%.1f', coalesce(sum(train_seconds),0)) FROM candidates WHERE run_id=1")
dn_done=$(q "$OUT/dnas.db" "SELECT count(*) FROM candidates WHERE run_id=1 AND state='done'")
dn_cand=$(q "$OUT/dnas.db" "SELECT count(*) FROM candidates WHERE run_id=1")
sn_samples=$(q "$OUT/dnas.db" "SELECT coalesce(sum(json_extract(payload,'$.supernet_samples')),0) FROM events WHERE run_id=1 AND kind='dnas_point'")
sn_secs=$(q "$OUT/dnas.db" "SELECT coalesce(sum(json_extract(payload,'$.supernet_seconds')),0) FROM events WHERE run_id=1 AND kind='dnas_point'")
dn_samples=$(awk -v a="$sn_samples" -v d="$dn_done" -v e="$EPOCHS" -v n="$ntrain" 'BEGIN { printf "%.0f", a + d * e * n }')
dn_train=$(q "$OUT/dnas.db" "SELECT printf('%.1f', coalesce(sum(train_seconds),0) + $sn_secs) FROM candidates WHERE run_id=1")

printf '{"bench":"dnas_vs_evolution","strategy":"evolution","wall_s":%.1f,"samples":%s,"train_s":%s,"candidates":%s,"done":%s,"front":[%s]}\n' \
  "$evo_wall" "$evo_samples" "$evo_train" "$evo_cand" "$evo_done" "$(front "$OUT/evo.db")"
printf '{"bench":"dnas_vs_evolution","strategy":"dnas","wall_s":%.1f,"samples":%s,"train_s":%s,"candidates":%s,"done":%s,"front":[%s]}\n' \
  "$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')" "$dn_samples" "$dn_train" "$dn_cand" "$dn_done" "$(front "$OUT/dnas.db")"

# DNAS candidates dominated by an evolution candidate (>= accuracy, <= SRAM, <= latency, one
# strictly better)
dominated=$(sqlite3 -noheader "$OUT/dnas.db" "ATTACH '$OUT/evo.db' AS evo;
  SELECT count(*) FROM candidates d WHERE d.run_id=1 AND d.state='done' AND EXISTS (
    SELECT 1 FROM evo.candidates v WHERE v.run_id=1 AND v.state='done'
      AND v.acc_int8_test >= d.acc_int8_test AND v.peak_sram_bytes <= d.peak_sram_bytes
      AND v.latency_pred_ms <= d.latency_pred_ms
      AND (v.acc_int8_test > d.acc_int8_test OR v.peak_sram_bytes < d.peak_sram_bytes
           OR v.latency_pred_ms < d.latency_pred_ms))")
printf '{"bench":"dnas_vs_evolution","compute_ratio":%s,"train_seconds_ratio":%s,"dnas_dominated":%s,"dnas_points":%s}\n' \
  "$(awk -v a="$dn_samples" -v b="$evo_samples" 'BEGIN { printf "%.3f", (b > 0) ? a / b : -1 }')" \
  "$(awk -v a="$dn_train" -v b="$evo_train" 'BEGIN { printf "%.3f", (b > 0) ? a / b : -1 }')" \
  "$dominated" "$dn_done"
