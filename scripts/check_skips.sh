#!/usr/bin/env bash
# scripts/check_skips.sh: fails on a test program whose skips could count as passes.
#
# Usage: scripts/check_skips.sh [ROOT]   (ctest: check_skips; ROOT: the source tree)
# A check a test cannot run must go through tests/test_util.h (test_skip / test_skip_part,
# which count it, and test_exit, which turns a count into exit code 77 = ctest "Skipped", or a
# failure with CI=true or NAS_REQUIRE_ALL=1). So in every tests/test_*.c:
#   - no bare cmocka skip() (it exits 0: ctest would say "Passed");
#   - no `return 77` of its own (the one exit code comes from test_exit);
#   - main returns through test_exit.
# Exit 0: clean; 1: violations, each printed as file:line: message.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
bad=0
for f in "$root"/tests/test_*.c; do
  rel=${f#"$root"/}
  # comments are not code: drop /* ... */ on one line and // to end of line before matching
  while IFS=: read -r line text; do
    echo "$rel:$line: bare skip(): use test_skip(\"what is missing\") from tests/test_util.h"
    bad=1
  done < <(sed -e 's#/\*.*\*/##g' -e 's#//.*##' "$f" | grep -nE '(^|[^_[:alnum:]])skip[[:space:]]*\(\)' || true)
  while IFS=: read -r line text; do
    echo "$rel:$line: returns 77 itself: return test_exit(...) instead"
    bad=1
  done < <(sed -e 's#/\*.*\*/##g' -e 's#//.*##' "$f" | grep -nE 'return[[:space:]]+77[[:space:]]*;' || true)
  if grep -q 'int main' "$f" && ! grep -q 'test_exit(' "$f"; then
    echo "$rel: main does not return test_exit(...) (tests/test_util.h)"
    bad=1
  fi
done
exit $bad
