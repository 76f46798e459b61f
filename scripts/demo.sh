#!/usr/bin/env bash
# The main job on the default dataset: a small evolution search on Fashion-MNIST for a
# Cortex-M4 (STM32F446RE) with at most 64 KB of SRAM and 256 KB of flash, then its Pareto
# front and a plot. Every candidate is priced before training, trained for one epoch on
# 4000 samples (batch 32), quantised to int8 and evaluated as int8.
set -euo pipefail
NAS=${1:-build/nas}
mkdir -p runs
rm -f runs/demo.db runs/demo.db-wal runs/demo.db-shm
"$NAS" search --space vision-mbnet --strategy evolution --dataset fashion-mnist \
  --target stm32f446re --max-sram 64K --max-flash 256K --budget 12 --epochs 1 \
  --train-limit 4000 --batch 32 --seed 1 --db runs/demo.db
echo
"$NAS" pareto --db runs/demo.db --run 1 --objectives acc_int8:max,latency_ms:min
"$NAS" plot --db runs/demo.db --run 1 --out runs/demo.svg
echo "plot: runs/demo.svg   store: runs/demo.db (sqlite3 runs/demo.db; schema in README)"
