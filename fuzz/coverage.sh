#!/usr/bin/env bash
# fuzz/coverage.sh: line and branch coverage of each harness's parser files, reached by replaying
# the corpus a fuzz/run.sh run left (BUILD/fuzz-corpus/<h> and BUILD/fuzz-seeds/<h>) through
# a copy of the harness built with clang's source-based coverage (build dir BUILD-cov).
#   fuzz/coverage.sh [-b BUILD_DIR] [HARNESS ...]        (default build-fuzz, all harnesses)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build-fuzz
while getopts "b:" o; do
  case $o in
    b) BUILD=$OPTARG ;;
    *) echo "usage: fuzz/coverage.sh [-b BUILD_DIR] [HARNESS ...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
ALL=(tflite arch space target ckpt dnas_ckpt idx wav meas_csv board_log)
HARNESSES=("${@:-${ALL[@]}}")
COV="$BUILD-cov"
cmake -S . -B "$COV" -DCMAKE_BUILD_TYPE=Debug -DNAS_FUZZ=ON -DCMAKE_C_COMPILER=clang \
  -DCMAKE_C_FLAGS="-fprofile-instr-generate -fcoverage-mapping" \
  -DCMAKE_EXE_LINKER_FLAGS="-fprofile-instr-generate" >/dev/null
cmake --build "$COV" --target fuzz -j "$(nproc)" >/dev/null

# The files that hold each harness's parser (what the figures are about).
files() {
  case $1 in
    tflite) echo deploy/tflite_read.c deploy/graph8.c deploy/kernels8.c ;;
    arch) echo train/net.c ;;
    space) echo search_spaces/space.c search_spaces/supernet.c ;;
    target) echo latency/target.c ;;
    ckpt) echo train/checkpoint.c nas/artifacts.c deploy/lower.c ;;
    dnas_ckpt) echo nas/dnas_ckpt.c ;;
    idx) echo datasets/idx.c datasets/dataset.c ;;
    wav) echo datasets/speech_io.c datasets/speech.c ;;
    meas_csv) echo latency/model.c ;;
    board_log) echo latency/measure.c ;;
  esac
}

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/nas-fuzz-cov-XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# Per file: the lines of the functions the replay entered at least once (the parser's code,
# not e.g. the writer that shares its file) and how many of them ran.
printf '%-10s %-26s %9s %8s %7s\n' harness file "fn lines" covered "%"
for h in "${HARNESSES[@]}"; do
  dirs=()
  for d in "$BUILD/fuzz-corpus/$h" "$BUILD/fuzz-seeds/$h"; do [ -d "$d" ] && dirs+=("$d"); done
  [ ${#dirs[@]} -gt 0 ] || { echo "$h: no corpus (run fuzz/run.sh first)" >&2; continue; }
  TMPDIR=$SCRATCH LLVM_PROFILE_FILE="$SCRATCH/$h.profraw" \
    "$COV/fuzz/fuzz_$h" -runs=0 "${dirs[@]}" >"$SCRATCH/$h.log" 2>&1 ||
    { echo "$h: replay failed (see a fuzz/run.sh log)" >&2; continue; }
  llvm-profdata merge -sparse "$SCRATCH/$h.profraw" -o "$SCRATCH/$h.profdata"
  for f in $(files "$h"); do
    llvm-cov report "$COV/fuzz/fuzz_$h" -instr-profile="$SCRATCH/$h.profdata" -show-functions "$f" |
      awk -v h="$h" -v f="$f" 'NF >= 10 && $1 != "TOTAL" && $5 ~ /^[0-9]+$/ && $6 ~ /^[0-9]+$/ && $6 < $5 {
        n += $5; c += $5 - $6 } END { printf "%-10s %-26s %9d %8d %6.1f%%\n", h, f, n, c, n ? 100 * c / n : 0 }'
  done
done
