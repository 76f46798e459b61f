#!/usr/bin/env bash
# bench/search100.sh: a 100-candidate aging-evolution search on Fashion-MNIST for a Cortex-M4
# (STM32F446RE) with peak SRAM <= 64 KB and flash <= 256 KB, and where its time goes.
# Per-candidate budget (environment EPOCHS, TRAIN_LIMIT): 2 epochs over 20000 training samples
# (batch 32), calibrated on 500 training samples (--calib-samples 500), scored on the first 500
# validation and 500 test samples in float and int8 (--eval-limit 500).
# Prints the wall time, the sum of train_seconds (training steps only: the trainer is given no
# validation/test split), the share of the wall time spent outside training (pricing,
# proposals, evaluation, calibration + lowering, packing weights, SQLite, dataset loading),
# and that outside time by phase (from the per-candidate "timing" events).
# Usage: bench/search100.sh [path/to/nas] [budget]     (BUDGET=100 by default)
set -euo pipefail
NAS=${1:-build/nas}
BUDGET=${2:-100}
OUT=${OUT:-runs}
mkdir -p "$OUT"
DB="$OUT/search100.db"
rm -f "$DB" "$DB-wal" "$DB-shm"
t0=$(date +%s.%N)
"$NAS" search --space vision-mbnet --strategy evolution --dataset fashion-mnist \
  --target stm32f446re --max-sram 64K --max-flash 256K --budget "$BUDGET" --epochs "${EPOCHS:-2}" \
  --train-limit "${TRAIN_LIMIT:-20000}" --eval-limit 500 --calib-samples 500 --batch 32 --seed 1 \
  --db "$DB" > "$OUT/search100.log"
t1=$(date +%s.%N)
python3 - "$DB" "$t0" "$t1" <<'PY'
import json, sqlite3, sys
db, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
wall = t1 - t0
c = sqlite3.connect(db)
states = dict(c.execute("SELECT state, count(*) FROM candidates GROUP BY state").fetchall())
train = c.execute("SELECT coalesce(sum(train_seconds),0) FROM candidates").fetchone()[0]
phases = {}
for (p,) in c.execute("SELECT payload FROM events WHERE kind = 'timing'"):
    for k, v in json.loads(p).items():
        phases[k] = phases.get(k, 0.0) + v
cand = sum(phases.get(k, 0) for k in ("build_train_s", "eval_float_s", "int8_s", "pack_s", "store_s"))
out = {
    "candidates": sum(states.values()), "states": states,
    "wall_s": round(wall, 2), "train_s": round(train, 2),
    "outside_training_share": round(1 - train / wall, 4) if wall > 0 else None,
    "outside_s": {
        "net_build_and_trainer_setup": round(phases.get("build_train_s", 0) - train, 2),
        "float_eval": round(phases.get("eval_float_s", 0), 2),
        "int8_calibration": round(phases.get("calib_s", 0), 2),
        "int8_lowering": round(phases.get("lower_s", 0), 2),
        "int8_eval": round(phases.get("int8_s", 0) - phases.get("calib_s", 0) - phases.get("lower_s", 0), 2),
        "pack_weights": round(phases.get("pack_s", 0), 2),
        "store_final_transaction": round(phases.get("store_s", 0), 2),
        "rest (dataset load, proposals, pricing, state commits)": round(wall - cand, 2),
    },
}
print(json.dumps(out, indent=1))
PY
