#!/usr/bin/env bash
# fuzz/run.sh: builds the libFuzzer harnesses (clang, ASan+UBSan, build dir of their own) and
# runs each for a bounded time; prints per harness the executions, the coverage libFuzzer
# reached (cov: edges, ft: features, corp: corpus units) and the result. Exits 1 when any
# harness found a crash, leak, UB, timeout or out-of-memory (the input is kept in
# BUILD/fuzz-crashes/<harness>/), 0 otherwise. See docs/fuzzing.md.
#   fuzz/run.sh [-t SECONDS] [-b BUILD_DIR] [-j PARALLEL] [HARNESS ...]
#     -t  seconds per harness (default 60)      -b  build dir (default build-fuzz)
#     -j  harnesses run at the same time (1)    HARNESS: arch, tflite, ... (default: all)
# Seeds: the repo's own files (search spaces, reference archs, targets, calibration CSVs, the
# MLPerf Tiny KWS model when ../shared/models has it), the committed fuzz/corpus/<h>/, and
# inputs the harnesses generate themselves (NAS_FUZZ_SEEDS, see each harness). New corpus
# units accumulate in BUILD/fuzz-corpus/<h>/ across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=60 BUILD=build-fuzz PAR=1
while getopts "t:b:j:" o; do
  case $o in
    t) SECONDS_EACH=$OPTARG ;;
    b) BUILD=$OPTARG ;;
    j) PAR=$OPTARG ;;
    *) echo "usage: fuzz/run.sh [-t SECONDS] [-b BUILD_DIR] [-j PARALLEL] [HARNESS ...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
ALL=(tflite arch space target ckpt dnas_ckpt idx cifar wav meas_csv board_log)
HARNESSES=("${@:-${ALL[@]}}")
for h in "${HARNESSES[@]}"; do
  [ -f "fuzz/fuzz_$h.c" ] || { echo "fuzz: unknown harness '$h' (known: ${ALL[*]})" >&2; exit 2; }
done
command -v clang >/dev/null || { echo "fuzz: clang not found (scripts/setup.sh installs it)" >&2; exit 1; }

# Scratch files of the harnesses (fuzz_util.h) go to one folder per run, removed at the end,
# also when a harness crashed and could not clean up.
SCRATCH_ROOT=/tmp
[ -w /dev/shm ] && SCRATCH_ROOT=/dev/shm
SCRATCH=$(mktemp -d "$SCRATCH_ROOT/nas-fuzz-run-XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
export TMPDIR=$SCRATCH

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DNAS_FUZZ=ON -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build "$BUILD" --target fuzz -j "$(nproc)" >/dev/null

# Seeds of harness $1 into $2 (regenerated every run; never written by the fuzzer).
seeds() {
  local h=$1 d=$2
  rm -rf "$d" && mkdir -p "$d"
  case $h in
    arch) cp search_spaces/reference/*.json latency/calibration/micronets_arch/*.json "$d"/ ;;
    space) cp search_spaces/*.json "$d"/ ;;
    target) cp latency/targets/*.json "$d"/ ;;
    meas_csv) cp latency/calibration/*.csv "$d"/ ;;
    tflite) [ -f ../shared/models/kws_ref_model.tflite ] && cp ../shared/models/kws_ref_model.tflite "$d"/ ;;
  esac
  case $h in
    tflite | ckpt | dnas_ckpt | wav | cifar) NAS_FUZZ_SEEDS="$(cd "$d" && pwd)" "$BUILD/fuzz/fuzz_$h" >/dev/null 2>&1 ||
      { echo "fuzz: $h: seed generation failed" >&2; return 1; } ;;
  esac
  if [ -d "fuzz/corpus/$h" ]; then cp fuzz/corpus/"$h"/* "$d"/; fi
  return 0
}

dict() {
  case $1 in
    arch | space | target) echo "-dict=fuzz/dict/$1.dict" ;;
    meas_csv) echo "-dict=fuzz/dict/csv.dict" ;;
    board_log) echo "-dict=fuzz/dict/board_log.dict" ;;
  esac
}

# Runs harness $1; its log goes to BUILD/fuzz-logs/$1.log.
run_one() {
  local h=$1
  local corpus="$BUILD/fuzz-corpus/$h" seedd="$BUILD/fuzz-seeds/$h" crash="$BUILD/fuzz-crashes/$h"
  local log="$BUILD/fuzz-logs/$h.log"
  mkdir -p "$corpus" "$crash" "$BUILD/fuzz-logs"
  seeds "$h" "$seedd" || return 1
  # -timeout: one input may take at most 10 s; -rss_limit_mb: the whole process 2 GB.
  # shellcheck disable=SC2046
  "$BUILD/fuzz/fuzz_$h" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$crash/" $(dict "$h") "$corpus" "$seedd" \
    >"$log" 2>&1
}

summary() {
  local h=$1 rc=$2 log="$BUILD/fuzz-logs/$1.log"
  local execs cov ft corp res
  [ -f "$log" ] || echo "(no log: the harness did not start)" >"$log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  local last
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  if [ "$rc" -eq 0 ]; then res=ok; else
    res="FAILED ($(grep -m1 -oE 'ERROR: [A-Za-z]+: [^ ]+|ERROR: libFuzzer: [a-z-]+|runtime error: .*|contract violated: .{0,60}' "$log" || echo "exit $rc"))"
  fi
  printf '%-10s %10s %7s %7s %6s  %s\n' "$h" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$res"
}

echo "fuzz: ${#HARNESSES[@]} harness(es), $SECONDS_EACH s each, $PAR at a time; logs in $BUILD/fuzz-logs"
declare -A RC
i=0
while [ $i -lt ${#HARNESSES[@]} ]; do
  pids=() names=()
  for ((k = 0; k < PAR && i < ${#HARNESSES[@]}; k++, i++)); do
    run_one "${HARNESSES[$i]}" & pids+=($!) names+=("${HARNESSES[$i]}")
  done
  for k in "${!pids[@]}"; do
    if wait "${pids[$k]}"; then RC[${names[$k]}]=0; else RC[${names[$k]}]=$?; fi
  done
done
printf '%-10s %10s %7s %7s %6s  %s\n' harness execs cov ft corpus result
fail=0
for h in "${HARNESSES[@]}"; do
  summary "$h" "${RC[$h]}"
  [ "${RC[$h]}" -eq 0 ] || fail=1
done
if [ $fail -ne 0 ]; then
  echo "fuzz: failures above; inputs in $BUILD/fuzz-crashes/, logs in $BUILD/fuzz-logs/" >&2
  exit 1
fi
