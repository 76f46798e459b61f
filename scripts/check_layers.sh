#!/usr/bin/env bash
# scripts/check_layers.sh: fails on an #include edge that docs/design.md does not allow, and on
# a file-level include cycle inside a module.
#
# Usage: scripts/check_layers.sh [--table FILE] [ROOT]
#        scripts/check_layers.sh --self-test
#   ROOT   the source tree (default: the directory above this script)
#   FILE   the page holding the table (default: ROOT/docs/design.md)
#
# The allowed edges are written once, in the table under "## Modules and allowed includes" of
# docs/design.md: one row per module, `| `dir` | `a`, `b` | role |`, where the first column is
# the module's directory (relative to ROOT; a file belongs to the longest one that contains
# it), the second the modules it may include besides itself (`*` = any, `—` = none) and
# later columns are ignored. Every .c and .h file under ROOT (hidden directories and CMake
# build directories skipped) is read; for each `#include "p"` or `#include <p>` the target is
# p relative to the including file when that file exists, else p relative to ROOT (the
# include path of the build); a target outside every module's directory that exists in the
# tree is an error too, one that names no file of the tree (system or generated headers) is
# ignored. Exit 0: clean; 1: violations (each printed as file:line: message); 2: usage error
# or a missing/empty table. --self-test runs the checker on temporary trees with known
# violations and fails unless each is reported.
set -euo pipefail

self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

usage() {
  echo "usage: $0 [--table FILE] [ROOT] | --self-test" >&2
  exit 2
}

# ---- self-test: a good tree passes, each bad tree fails naming file:line and the edge ----
self_test() {
  local tmp fails=0 out rc
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  mk() { mkdir -p "$(dirname "$tmp/$1")" && printf '%s\n' "$2" >"$tmp/$1"; }
  mk docs/design.md '# t
## Modules and allowed includes
| Module | May include | Role |
| --- | --- | --- |
| `lo` | — | bottom |
| `mid` | `lo` | middle |
| `top` | lo, mid | top |
| `top/sub` | * | anything |
## Next section
| `mid` | `top` | (not part of the table) |'
  mk lo/a.h '#include <stdio.h>'
  mk lo/a.c '#include "lo/a.h"
#include "gen.pb-c.h" /* generated: names no file of the tree */'
  mk mid/m.c '#include "lo/a.h"
#include "m.h"'
  mk mid/m.h '#include <lo/a.h>'
  mk top/t.c '#include "mid/m.h"'
  mk top/sub/s.c '#include "top/t.h"'
  mk build/CMakeCache.txt ''
  mk build/gen/x.c '#include "top/t.h" /* a build directory: skipped */'

  expect() { # name, expected exit code, then patterns the output must contain
    local name=$1 want=$2
    shift 2
    rc=0
    out=$(bash "$self" "$tmp" 2>&1) || rc=$?
    if [ "$rc" != "$want" ]; then
      echo "self-test $name: exit $rc, expected $want; output:"$'\n'"$out" >&2
      fails=$((fails + 1))
      return
    fi
    local p
    for p in "$@"; do
      if ! grep -qF -- "$p" <<<"$out"; then
        echo "self-test $name: output lacks '$p'; output:"$'\n'"$out" >&2
        fails=$((fails + 1))
      fi
    done
  }

  expect clean 0
  mk lo/a.c '#include "lo/a.h"
/* fine */
  #  include "mid/m.h" // upward edge, indented'
  expect upward 1 "lo/a.c:3: lo -> mid" '"mid/m.h"'
  mk lo/a.c '#include "../mid/m.h"'
  expect relative 1 "lo/a.c:1: lo -> mid"
  mk lo/a.c '#include <top/none.h>'
  expect angle-missing 1 "lo/a.c:1: lo -> top"
  mk lo/a.c '#include "lo/a.h"'
  mk mid/m.c '#include "top/sub/x.h"'
  expect sub-module 1 "mid/m.c:1: mid -> top/sub"
  mk mid/m.c '#include "lo/a.h"'
  mk lo/b.h '#include "lo/c.h"'
  mk lo/c.h '#include "b.h"'
  expect cycle 1 "include cycle in lo: lo/b.h -> lo/c.h -> lo/b.h"
  rm "$tmp/lo/b.h" "$tmp/lo/c.h"
  mk stray/x.c '#include "lo/a.h"'
  expect no-module 1 "stray/x.c: belongs to no module"
  rm -r "$tmp/stray"
  mk misc/x.h '/* a header outside every module */'
  mk mid/m.c '#include "misc/x.h"'
  expect unowned-target 1 "mid/m.c:1: includes misc/x.h, which belongs to no module"
  rm -r "$tmp/misc"
  mk mid/m.c '#include "lo/a.h"'
  expect clean-again 0
  mk docs/design.md '# no table here'
  expect no-table 2 "no table"

  if [ "$fails" -ne 0 ]; then
    echo "check_layers self-test: $fails failure(s)" >&2
    return 1
  fi
  echo "check_layers self-test: ok"
}

root="" table=""
while [ $# -gt 0 ]; do
  case $1 in
    --self-test) [ $# -eq 1 ] || usage; self_test; exit ;;
    --table) [ $# -ge 2 ] || usage; table=$2; shift 2 ;;
    -*) usage ;;
    *) [ -z "$root" ] || usage; root=$1; shift ;;
  esac
done
[ -n "$root" ] || root=$(dirname "$self")/..
root=$(cd "$root" && pwd)
[ -n "$table" ] || table=$root/docs/design.md
if [ ! -r "$table" ]; then
  echo "check_layers: $table: cannot read the module table" >&2
  exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The table: "dir<TAB>allowed modules separated by spaces, or *".
awk -v src="$table" '
  /^## / { in_sec = ($0 ~ /^## Modules and allowed includes[[:space:]]*$/); next }
  !in_sec || !/^[[:space:]]*\|/ { next }
  {
    n = split($0, c, "|")
    if (n < 4) next
    mod = c[2]; allow = c[3]
    gsub(/[`[:space:]]/, "", mod)
    if (mod == "" || mod ~ /^-+$/ || mod ~ /^:?-+:?$/ || tolower(mod) == "module") next
    sub(/\/+$/, "", mod)
    gsub(/[`[:space:]]/, "", allow)
    if (allow == "—" || allow ~ /^-*$/) allow = ""
    gsub(/,/, " ", allow)
    print mod "\t" allow
  }' "$table" >"$work/table"
if [ ! -s "$work/table" ]; then
  echo "check_layers: $table: no table under '## Modules and allowed includes'" >&2
  exit 2
fi

# Every .c/.h file, relative to root; hidden directories and build trees are skipped.
(cd "$root" && find . -mindepth 1 -type d \( -name '.*' -o -exec test -e '{}/CMakeCache.txt' \; \) \
  -prune -o -type f \( -name '*.c' -o -name '*.h' \) -print | sed 's|^\./||' | LC_ALL=C sort) \
  >"$work/files"

# Include lines: file<TAB>line<TAB>kind<TAB>path (kind q = "...", a = <...>).
: >"$work/incs"
if [ -s "$work/files" ]; then
  (cd "$root" && tr '\n' '\0' <"$work/files" | xargs -0 grep -HnE \
    '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<][^">]+[">]' || true) |
    sed -E 's/^([^:]+):([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*(["<])([^">]+)[">].*$/\1\t\2\t\3\t\4/' |
    sed -E 's/\t"\t/\tq\t/; s/\t<\t/\ta\t/' >"$work/incs"
fi

awk -F '\t' -v table_src="${table#"$root"/}" '
  function normpath(p,   n, parts, out, k, i) {
    n = split(p, parts, "/"); k = 0
    for (i = 1; i <= n; i++) {
      if (parts[i] == "" || parts[i] == ".") continue
      if (parts[i] == "..") { if (k > 0) k--; else return ""; continue }
      out[++k] = parts[i]
    }
    p = ""
    for (i = 1; i <= k; i++) p = p (i > 1 ? "/" : "") out[i]
    return p
  }
  function dirof(p) { return sub(/\/[^\/]*$/, "", p) ? p : "" }
  function module_of(p,   m, best) {
    best = ""
    for (m in allowed)
      if (index(p, m "/") == 1 && length(m) > length(best)) best = m
    return best
  }
  function may(a, b,   n, l, i) {
    if (a == b || allowed[a] == "*") return 1
    n = split(allowed[a], l, " ")
    for (i = 1; i <= n; i++) if (l[i] == b || l[i] == "*") return 1
    return 0
  }
  function say(msg) { print msg; bad++ }
  # DFS over the include graph of one module; colour 1 = on the stack, 2 = done.
  function dfs(v, depth,   i, w, j, cyc) {
    colour[v] = 1; stack[depth] = v
    for (i = 1; i <= nout[v]; i++) {
      w = edge[v, i]
      if (colour[w] == 1) {
        for (j = depth; j >= 1 && stack[j] != w; j--) ;
        cyc = w
        for (j++; j <= depth; j++) cyc = cyc " -> " stack[j]
        say("include cycle in " module_of(w) ": " cyc " -> " w)
      } else if (colour[w] == 0) dfs(w, depth + 1)
    }
    colour[v] = 2
  }
  FILENAME == ARGV[1] { allowed[$1] = $2; next }
  FILENAME == ARGV[2] { exists[$0] = 1; files[++nfiles] = $0; next }
  {
    file = $1; line = $2; kind = $3; inc = $4
    from = module_of(file)
    if (from == "") next # reported once per file below
    tgt = rel = ""
    if (kind == "q") {
      rel = normpath((dirof(file) == "" ? "" : dirof(file) "/") inc)
      if (rel != "" && (rel in exists)) tgt = rel
    }
    if (tgt == "") {
      top = normpath(inc)
      if (top in exists) tgt = top
      else if (inc ~ /^\.\.?\//) tgt = rel
      else if (index(inc, "/") && module_of(top) != "") tgt = top # a module path, file or not
    }
    if (tgt == "") next # a system or generated header
    to = module_of(tgt)
    if (to == "") {
      say(file ":" line ": includes " tgt ", which belongs to no module of " table_src)
      next
    }
    if (!may(from, to))
      say(file ":" line ": " from " -> " to " (#include " (kind == "q" ? "\"" inc "\"" : "<" inc ">") \
          ") is not allowed; " from " may include: " (allowed[from] == "" ? "nothing" : allowed[from]) \
          " (" table_src ")")
    else if (from == to && (tgt in exists) && tgt != file && !((file, tgt) in seen)) {
      seen[file, tgt] = 1
      edge[file, ++nout[file]] = tgt
    }
  }
  END {
    for (i = 1; i <= nfiles; i++)
      if (module_of(files[i]) == "")
        say(files[i] ": belongs to no module of " table_src " (add its directory to the table)")
    for (i = 1; i <= nfiles; i++) if (colour[files[i]] == 0) dfs(files[i], 1)
    if (bad) { printf "check_layers: %d violation(s)\n", bad; exit 1 }
    n = 0
    for (m in allowed) n++
    printf "check_layers: %d files, %d modules, no forbidden include and no include cycle\n", nfiles, n
  }' "$work/table" "$work/files" "$work/incs"
