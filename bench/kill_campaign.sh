#!/usr/bin/env bash
# bench/kill_campaign.sh: crash campaign of the results store (issue 13, item 3).
#
#   bench/kill_campaign.sh [BUILD_DIR]          (BUILD_DIR defaults to build)
#
# 1. Kills: EVO_KILLS evolution searches and DNAS_KILLS DNAS searches are each killed with
#    SIGKILL at a random moment (uniform over the reference run's duration, counted from the
#    moment its run row exists), then continued with `nas resume` to the end. Each final store
#    must equal the store of an uninterrupted run of the same command (see "Comparison").
#    A search that ends before its kill is started again with a new moment (counted as a
#    miss; after 8 attempts the case is "nokill" and fails); every other case was killed (the
#    process died by SIGKILL). A new attempt starts on a new store at the same path: the DNAS
#    checkpoints the previous attempt left beside it (STORE.dnas-r1-*.ckpt) are deliberately
#    kept, since a new run must not take them for its own (it removes them).
# 2. Readers: during every search, kill and resume, `nas runs`, `nas pareto` and `nas show`
#    (of the newest candidate) run in a loop on the store; any non-zero exit or any output on
#    stderr is an error.
# 3. Disk full: the same evolution and DNAS searches with their store on a small tmpfs
#    (FULL_KB KiB, mounted here; needs root): the search must fail with exit 1 and exactly one
#    line on stderr, `PRAGMA integrity_check` must say ok, and after the tmpfs is remounted
#    larger `nas resume` must complete with the store of the uninterrupted run (the failed
#    attempt's one "error" event and the one run_resume event aside).
#
# Comparison (dump below): runs (every column but id, created_at, updated_at), candidates
# (every column but created_at, updated_at and train_seconds; REALs as %.17g, i.e. bit for
# bit), weights (candidate, kind, length, SHA3-256 of the blob), layer costs (all), and the
# events in id order (run, candidate, kind, payload). Ignored, because they legitimately
# differ: timestamps; wall-time payloads (a "timing" event's whole payload, "seconds" of
# dnas_epoch, "supernet_seconds" of dnas_point); and the events that record the resumption
# itself: each `nas resume` adds one run_resume event (their number must equal the number of
# resumes) and a kill -9 leaves no interrupt event (there must be none). Two checks of the
# comparison itself run first: a second uninterrupted run must compare equal to the first
# (the ignored fields are all that varies), and a run with another seed must compare unequal.
#
# Output: one JSON line per part on stdout, and a summary; the work files under OUT. Exit 0
# when every case is equal, no reader failed and both disk-full cases passed, else 1.
# Environment (defaults in brackets; reduce on a loaded machine and say so):
#   EVO_KILLS [20]  DNAS_KILLS [10]  SEED [1] (kill moments)  THREADS [1]  OUT [/tmp/nas-kill]
#   TRAIN_LIMIT [3000]  EVO_BUDGET [10]  FULL_KB [192] (tmpfs size for the disk-full case: the
#   schema and the run row fit, the first candidates do not; 0 skips it)  READ_PAUSE [0.05]
#   (seconds between reader rounds)  SPAN_SCALE [1] (kill moments uniform over this multiple
#   of the reference duration: above 1 on a machine slower than during the reference runs)
# Needs: Fashion-MNIST in /usr/share/datasets/fashion-mnist and the sqlite3 shell (for the
# dumps; scripts/setup.sh installs both).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
case "${1:-}" in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
esac
build="$(cd "${1:-$src/build}" && pwd)"
EVO_KILLS=${EVO_KILLS:-20} DNAS_KILLS=${DNAS_KILLS:-10} SEED=${SEED:-1} THREADS=${THREADS:-1}
OUT=${OUT:-/tmp/nas-kill} TRAIN_LIMIT=${TRAIN_LIMIT:-3000} EVO_BUDGET=${EVO_BUDGET:-10}
FULL_KB=${FULL_KB:-192} READ_PAUSE=${READ_PAUSE:-0.05} SPAN_SCALE=${SPAN_SCALE:-1}
command -v sqlite3 >/dev/null || { echo "kill_campaign: the sqlite3 shell is needed" >&2; exit 2; }
[ -d /usr/share/datasets/fashion-mnist ] || { echo "kill_campaign: Fashion-MNIST is needed" >&2; exit 2; }
RANDOM=$SEED
rm -rf "$OUT"
mkdir -p "$OUT"
# a private copy of the program: rebuilding the tree meanwhile changes nothing here
cp "$build/nas" "$OUT/nas"
nas="$OUT/nas"
export NAS_DATA_DIR="$src" OMP_NUM_THREADS="$THREADS"
cat >"$OUT/space.json" <<'EOF'
{"name":"kill-small","input":[28,28,1],"classes":10,"layers":[
 {"op":"conv","out":{"choice":[4,8]},"k":3,"stride":2},
 {"op":"dsconv","out":{"choice":[8,16]},"k":{"choice":[3,5]},"stride":2},
 {"op":"dsconv","out":{"choice":[16,24]},"k":3,"optional":true},
 {"op":"gap"},{"op":"fc","out":10}]}
EOF
common=(--space "$OUT/space.json" --dataset fashion-mnist --target stm32f446re --epochs 2
        --batch 32 --train-limit "$TRAIN_LIMIT" --eval-limit 500 --calib-samples 200
        --threads "$THREADS")
evo_args=(search --strategy evolution --population 4 --sample-size 2 --budget "$EVO_BUDGET"
          "${common[@]}")
dnas_args=(search --strategy dnas --supernet-epochs 3 --warmup 1 --sweep 0.5,2
           --supernet-limit "$TRAIN_LIMIT" "${common[@]}")

now() { date +%s.%N; }
# The comparable content of a store (see the header).
# dump DB [KIND]: with KIND, the events of that kind are left out as well.
dump() {
  local skip=${2:-}
  sqlite3 -readonly "$1" <<'SQL' | awk -F'|' -v k="$skip" 'k == "" || !($1 == "ev" && $4 == k)'
.mode list
.separator |
SELECT 'run', strategy, space, dataset, target, seed, budget, status, objectives, config_json
  FROM runs ORDER BY id;
SELECT 'cand', id, run_id, arch_hash, arch_json, parent_id, generation, retrain_epochs, state,
       reason, printf('%.17g', acc_float_val), printf('%.17g', acc_float_test),
       printf('%.17g', acc_int8_val), printf('%.17g', acc_int8_test), macs, params,
       flash_bytes, peak_sram_bytes, printf('%.17g', latency_pred_ms),
       printf('%.17g', latency_meas_ms)
  FROM candidates ORDER BY id;
SELECT 'w', candidate_id, kind, length(data), hex(sha3(data, 256)) FROM weights
  ORDER BY candidate_id, kind;
SELECT 'lc', candidate_id, layer, op, macs, params, flash_bytes, sram_bytes,
       printf('%.17g', latency_ms) FROM layer_costs ORDER BY candidate_id, layer;
SELECT 'ev', run_id, candidate_id, kind,
       CASE kind WHEN 'timing' THEN '-'
                 ELSE json_remove(payload, '$.seconds', '$.supernet_seconds') END
  FROM events WHERE kind NOT IN ('run_resume', 'interrupt') ORDER BY id;
SQL
}
count_events() { sqlite3 -readonly "$1" "SELECT count(*) FROM events WHERE kind = '$2'"; }
has_run() { [ -s "$1" ] && [ "$(sqlite3 -readonly "$1" "SELECT count(*) FROM runs" 2>/dev/null)" = 1 ]; }

# reader_loop DB STOPFILE TAG: the readers (see the header) until STOPFILE exists; writes
# "reads errors" to OUT/TAG.reads and each error to OUT/TAG.readerr.
reader_loop() {
  local db=$1 stop=$2 tag=$3 n=0 bad=0 err id
  until has_run "$db" || [ -e "$stop" ]; do sleep 0.01; done
  while [ ! -e "$stop" ]; do
    id=$(sqlite3 -readonly "$db" "SELECT max(id) FROM candidates" 2>/dev/null)
    for cmd in "runs --db $db" "pareto --db $db" ${id:+"show --db $db --candidate $id"}; do
      # shellcheck disable=SC2086
      if ! err=$("$nas" $cmd 2>&1 >/dev/null) || [ -n "$err" ]; then
        bad=$((bad + 1))
        echo "nas $cmd: ${err:-exit status $?}" >>"$OUT/$tag.readerr"
      fi
      n=$((n + 1))
    done
    sleep "$READ_PAUSE"
  done
  echo "$n $bad" >"$OUT/$tag.reads"
}

# run_plain NAME ARGS...: an uninterrupted run into OUT/NAME.db; prints its wall time from the
# moment its run row exists to its end.
run_plain() {
  local name=$1 db="$OUT/$1.db"
  shift
  "$nas" "$@" --db "$db" >"$OUT/$name.out" 2>"$OUT/$name.err" &
  local pid=$! t0
  until has_run "$db" || ! kill -0 "$pid" 2>/dev/null; do sleep 0.005; done
  t0=$(now)
  wait "$pid" || { echo "kill_campaign: $name failed: $(cat "$OUT/$name.err")" >&2; exit 1; }
  awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'
}

# kill_case KIND I SPAN ARGS...: case I of KIND: search, kill -9 at a random moment within SPAN
# seconds after its run row exists (again with a new moment if it ended first), resume,
# compare. Appends one line to OUT/KIND.cases: i, attempts, moment, phase at the kill, result.
kill_case() {
  local kind=$1 i=$2 span=$3
  shift 3
  local db="$OUT/$kind-$i.db" stop="$OUT/$kind-$i.stop" attempts=0 moment pid st phase state
  while :; do
    attempts=$((attempts + 1))
    rm -f "$db" "$db"-* "$stop"
    reader_loop "$db" "$stop" "$kind-$i" &
    local rpid=$!
    "$nas" "$@" --db "$db" >"$OUT/$kind-$i.out" 2>"$OUT/$kind-$i.err" &
    pid=$!
    until has_run "$db" || ! kill -0 "$pid" 2>/dev/null; do sleep 0.005; done
    moment=$(awk -v r=$RANDOM -v s="$span" -v k="$SPAN_SCALE" 'BEGIN { printf "%.3f", k * s * r / 32768 }')
    sleep "$moment"
    kill -STOP "$pid" 2>/dev/null
    # the signal is delivered asynchronously: wait until it is stopped (T) or has ended (Z)
    while state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) && [ "$state" != T ] &&
          [ "$state" != Z ]; do sleep 0.001; done
    if [ "${state:-}" = T ]; then
      # the phase at the kill: final candidates, one in training, supernet epochs stored
      phase=$(sqlite3 -readonly "$db" "SELECT (SELECT count(*) FROM candidates WHERE state IN
        ('done','rejected','failed')) || ' final, ' || (SELECT count(*) FROM candidates WHERE
        state = 'training') || ' training, ' || (SELECT count(*) FROM events WHERE kind =
        'dnas_epoch') || ' epochs'" 2>/dev/null)
      kill -KILL "$pid"
      wait "$pid"
      st=$?
      [ "$st" -eq 137 ] && break # died by SIGKILL
    fi
    wait "$pid" 2>/dev/null
    touch "$stop"
    wait "$rpid"
    [ "$attempts" -ge 8 ] && { echo "$i $attempts - - nokill" >>"$OUT/$kind.cases"; return; }
  done
  local rc=0
  "$nas" resume --db "$db" --threads "$THREADS" >"$OUT/$kind-$i.resume.out" \
    2>"$OUT/$kind-$i.resume.err" || rc=$?
  touch "$stop"
  wait "$rpid"
  local result=equal
  if [ "$rc" -ne 0 ]; then
    result="resume-exit-$rc"
  elif [ "$(count_events "$db" run_resume)" != 1 ] || [ "$(count_events "$db" interrupt)" != 0 ]; then
    result=resume-events
  elif ! diff <(dump "$OUT/$kind-ref.db") <(dump "$db") >"$OUT/$kind-$i.diff"; then
    result=differs
  fi
  echo "$i $attempts $moment ${phase// /_} $result" >>"$OUT/$kind.cases"
}

# full_case KIND ARGS...: the disk-full case (see the header).
full_case() {
  local kind=$1
  shift
  local mnt="$OUT/full-$kind" db stop rc=0 lines integrity resumed=fail same=no
  mkdir -p "$mnt"
  if ! mount -t tmpfs -o "size=${FULL_KB}k" tmpfs "$mnt" 2>"$OUT/full-$kind.mount"; then
    echo "{\"bench\":\"kill_campaign\",\"part\":\"disk_full\",\"strategy\":\"$kind\",\"skipped\":\"cannot mount a tmpfs: $(head -c 200 "$OUT/full-$kind.mount")\"}"
    fail=1 # not run is not passed
    return
  fi
  db="$mnt/store.db" stop="$OUT/full-$kind.stop"
  reader_loop "$db" "$stop" "full-$kind" &
  local rpid=$!
  "$nas" "$@" --db "$db" >"$OUT/full-$kind.out" 2>"$OUT/full-$kind.err" || rc=$?
  lines=$(wc -l <"$OUT/full-$kind.err")
  integrity=$(sqlite3 -readonly "$db" "PRAGMA integrity_check" 2>&1 | head -1)
  local used
  used=$(du -sk "$mnt" | cut -f1)
  mount -o remount,size=64m "$mnt"
  "$nas" resume --db "$db" --threads "$THREADS" >"$OUT/full-$kind.resume.out" \
    2>"$OUT/full-$kind.resume.err" && resumed=ok
  touch "$stop"
  wait "$rpid"
  # the failure is recorded by one "error" event (as a resumption by run_resume): left out
  [ "$(count_events "$db" error)" = 1 ] && [ "$(count_events "$db" run_resume)" = 1 ] &&
    diff <(dump "$OUT/$kind-ref.db") <(dump "$db" error) >"$OUT/full-$kind.diff" && same=yes
  local reads
  reads=$(cat "$OUT/full-$kind.reads")
  [ "$rc" = 1 ] && [ "$lines" = 1 ] && [ "$integrity" = ok ] && [ "$resumed" = ok ] &&
    [ "$same" = yes ] && [ "${reads#* }" = 0 ] || fail=1
  printf '{"bench":"kill_campaign","part":"disk_full","strategy":"%s","tmpfs_kib":%s,"used_kib":%s,"exit":%s,"stderr_lines":%s,"error":"%s","integrity":"%s","resume":"%s","equal_to_uninterrupted":"%s","reads":%s,"read_errors":%s}\n' \
    "$kind" "$FULL_KB" "$used" "$rc" "$lines" "$(head -1 "$OUT/full-$kind.err" | sed 's/"/\\"/g')" \
    "$integrity" "$resumed" "$same" "${reads% *}" "${reads#* }"
  umount "$mnt"
}

t_start=$(now)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
# References, and the two checks of the comparison.
span_evo=$(run_plain evo-ref "${evo_args[@]}")
span_dnas=$(run_plain dnas-ref "${dnas_args[@]}")
run_plain evo-ref2 "${evo_args[@]}" >/dev/null
run_plain evo-seed "${evo_args[@]}" --seed 2 >/dev/null
self_equal=no self_unequal=no
diff <(dump "$OUT/evo-ref.db") <(dump "$OUT/evo-ref2.db") >"$OUT/self.diff" && self_equal=yes
diff -q <(dump "$OUT/evo-ref.db") <(dump "$OUT/evo-seed.db") >/dev/null || self_unequal=yes
echo "{\"bench\":\"kill_campaign\",\"part\":\"comparison_check\",\"two_uninterrupted_equal\":\"$self_equal\",\"other_seed_differs\":\"$self_unequal\",\"evo_span_s\":$span_evo,\"dnas_span_s\":$span_dnas}"

for i in $(seq 1 "$EVO_KILLS"); do kill_case evo "$i" "$span_evo" "${evo_args[@]}"; done
for i in $(seq 1 "$DNAS_KILLS"); do kill_case dnas "$i" "$span_dnas" "${dnas_args[@]}"; done
fail=0
for kind in evo dnas; do
  [ -f "$OUT/$kind.cases" ] || continue
  cases=$(wc -l <"$OUT/$kind.cases")
  killed=$(awk '$5 != "nokill"' "$OUT/$kind.cases" | wc -l)
  equal=$(awk '$5 == "equal"' "$OUT/$kind.cases" | wc -l)
  misses=$(awk '{ m += $5 == "nokill" ? $2 : $2 - 1 } END { print m + 0 }' "$OUT/$kind.cases")
  reads=$(cat "$OUT/$kind"-*.reads 2>/dev/null | awk '{ n += $1; b += $2 } END { print n + 0, b + 0 }')
  intraining=$(awk '$4 ~ /_1_training/' "$OUT/$kind.cases" | wc -l)
  [ "$equal" = "$cases" ] && [ "${reads#* }" = 0 ] || fail=1
  printf '{"bench":"kill_campaign","part":"kills","strategy":"%s","cases":%s,"killed":%s,"equal":%s,"ended_before_kill_retried":%s,"killed_with_a_candidate_in_training":%s,"reads":%s,"read_errors":%s}\n' \
    "$kind" "$cases" "$killed" "$equal" "$misses" "$intraining" "${reads% *}" "${reads#* }"
done
if [ "$FULL_KB" != 0 ]; then
  full_case evo "${evo_args[@]}"
  full_case dnas "${dnas_args[@]}"
fi
echo "{\"bench\":\"kill_campaign\",\"part\":\"machine\",\"wall_s\":$(awk -v a="$t_start" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'),\"loadavg_start\":\"$load0\",\"loadavg_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"nproc\":$(nproc)}"
echo "cases: $OUT/evo.cases $OUT/dnas.cases (i attempts moment_s phase result); reader errors: $OUT/*.readerr" >&2
[ "$self_equal" = yes ] && [ "$self_unequal" = yes ] || fail=1
if [ "$fail" = 0 ]; then echo "kill_campaign: PASS" >&2; else echo "kill_campaign: FAIL" >&2; fi
exit "$fail"
