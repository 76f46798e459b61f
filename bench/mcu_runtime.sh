#!/usr/bin/env bash
# bench/mcu_runtime.sh: the engine's MCU runtime (the C export) against TFLM + CMSIS-NN, per
# model and core, in executed instructions of one inference on the emulated core.
#
#   bench/mcu_runtime.sh [BUILD_DIR]          (BUILD_DIR defaults to build)
#
# Ours: bench_mcu_runtime (import -> C export -> arm-none-eabi-gcc -O2 -> Unicorn, block-decode
# counting, latency/emulator.h); the output is checked byte for byte against `nas run`.
# Peer: the corpus ../shared/data/tflm-cmsisnn (README there): TFLM + CMSIS-NN built from source
# and run on the same emulator. Its production Invoke is sum(op insn - 16 profiler-hook
# instructions) + 31 x n_ops + 74 (TFLM's interpreter loop, M4 and M7). Ours is the sum of the
# operator rows, which include our invoke loop and our layer-mark hook (conservative: the hook
# is not subtracted). Both sides' cycle estimates use the same per-core CPI table
# (nas_cpi_for_core: cycles per class, per extra register transferred, per taken branch, per
# division) applied to the same instruction classes: for the corpus, ldst = load + store, mul,
# branch, other = simd + it + vfp + div + other, extra registers = load_regs + store_regs -
# load - store, taken = branch_taken; TFLM's 16 hook instructions per operator are removed at
# the mean cycles per instruction of that operator, and its 31 x n_ops + 74 loop instructions
# are charged at the core's "other" CPI.
#
# Models: the four MLPerf Tiny models, dscnn-s/m/l, fmnist-cnn (the corpus' ref_*), and the 20
# corpus models on which the engine's old planner lost to TFLM's (mbconv nets and a probe);
# MODELS="id id ..." overrides the corpus list. Cores: cortex-m4 (stm32l4r5zi) and cortex-m7
# (stm32h743); CORES="m4 m7 m33 m0plus" widens it (the corpus has no M0+ figures: ratio null).
# Prints one JSON line per model and core:
#   {"bench":"mcu_runtime","model":M,"core":C,"ours_insn":N,"tflm_insn":N,"ratio_insn":R,
#    "ours_cycles":N,"tflm_cycles":N,"ratio_cycles":R,"ours_arena":B,"tflm_arena_host64":B,
#    "tflm_arena_m32":B,"ours_data_bytes":B,"tflite_bytes":B,"exact":1}
# ratio = ours / TFLM (below 1: ours executes fewer); then one summary line per core with the
# median and maximum ratio. Needs arm-none-eabi-gcc and a build with Unicorn.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
build="${1:-$src/build}"
corpus="${CORPUS:-$src/../shared/data/tflm-cmsisnn}"
bin="$build/bench_mcu_runtime"
[ -x "$bin" ] || { echo "mcu_runtime.sh: $bin not built" >&2; exit 1; }
[ -f "$corpus/ops.csv" ] || { echo "mcu_runtime.sh: corpus not found at $corpus" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export NAS_CACHE_DIR="${NAS_CACHE_DIR:-$tmp/cache}"
mkdir -p "$NAS_CACHE_DIR"
default_models="mlperf_kws_ref_model mlperf_vww_96_int8 mlperf_pretrainedResnet_quant mlperf_ad01_int8
ref_dscnn-s ref_dscnn-m ref_dscnn-l ref_fmnist-cnn
probe2d_c004 vmb28_c007 vmb28_c029 vmb32c1_c004 vmb32c1_c021 vmb32c1_c024 vmb32c1_c035
vmb32c1_c046 vmb32c1_c048 vmb96c1_c003 vmb96c1_c006 vmb96c1_c007 vmb96c1_c020 vmb96c1_c021
vmb96c1_c026 vmb96c1_c029 vmb96c1_c041 vmb96c1_c051 vmb96c1_c055 vmb96c1_c060"
models="${MODELS:-$default_models}"
cores="${CORES:-m4 m7}"
target_of() {
  case "$1" in
    m4) echo stm32l4r5zi ;; m7) echo stm32h743 ;; m33) echo nrf5340 ;; m0plus) echo stm32g0b1 ;;
    *) echo "mcu_runtime.sh: unknown core $1" >&2; exit 2 ;;
  esac
}
: > "$tmp/ours.jsonl"
for m in $models; do
  gunzip -c "$corpus/models/$m.tflite.gz" > "$tmp/$m.tflite"
  for c in $cores; do
    "$bin" "$(target_of "$c")" "$tmp/$m.tflite" "$m" >> "$tmp/ours.jsonl" || {
      echo "mcu_runtime.sh: $m on $c failed" >&2
      exit 1
    }
  done
  rm -f "$tmp/$m.tflite"
done
python3 "$here/mcu_runtime_join.py" "$corpus" "$tmp/ours.jsonl"
