#!/usr/bin/env bash
# scripts/run_ctest.sh: runs ctest in a build directory, then lists every skipped check.
#
# Usage: scripts/run_ctest.sh BUILD_DIR [CTEST ARGS...]   (what `make test` and `make test-asan` run)
# After ctest, each "SKIP: ..." line a test printed (tests/test_util.h) is listed with the test
# that printed it, so a run that skipped says what it did not check and why. With CI=true or
# NAS_REQUIRE_ALL=1 a skip already fails its test; in case a test reached ctest's skip code
# some other way, a run with a "Skipped" test fails here too. Exit: ctest's, else 1 for a
# skip under CI=true / NAS_REQUIRE_ALL=1.
set -uo pipefail
build=$1
shift
cd "$build" || exit 2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
ctest "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
log=Testing/Temporary/LastTest.log
if [ -f "$log" ]; then
  skips=$(awk '/^[0-9]+\/[0-9]+ Test: /{t=$3} /^SKIP: /{print "  " t ": " substr($0, 7)}' "$log" | sort -u)
  if [ -n "$skips" ]; then
    echo "Checks not run (see docs/testing.md, \"Test references\"):"
    echo "$skips"
  fi
fi
all=${NAS_REQUIRE_ALL:-0}
if [ "${CI:-}" = true ] || { [ -n "$all" ] && [ "$all" != 0 ]; }; then
  if grep -qE '\*\*\*Skipped|\(Skipped\)' "$out"; then
    echo "error: tests were skipped, and CI=true or NAS_REQUIRE_ALL=1 requires every check to run" >&2
    [ "$rc" -ne 0 ] || rc=1
  fi
fi
exit "$rc"
