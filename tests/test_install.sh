#!/usr/bin/env bash
# tests/test_install.sh: `cmake --install` into a temporary prefix gives a program that works
# from any directory without the source tree, and reads the data it was installed with (or
# $NAS_DATA_DIR), not the source tree it was built from.
#
# Usage: tests/test_install.sh BUILD_DIR SOURCE_DIR   (ctest: test_install; $CMAKE: cmake)
# Nothing but `cmake --install` puts files into the prefix. To tell which data a run read, the
# test takes a file away from the copy it expects to be read (the source tree keeps it): if
# the program still finds it, it read the source tree, and the test fails. Errors must name
# the path of the copy that was read.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The environment ctest gives the other tests points at the source tree: not here.
unset NAS_DATA_DIR NAS_TARGET_DIR NAS_SOURCE_DIR NAS_BIN
fails=0
fail() {
  echo "FAIL: $*" >&2
  fails=$((fails + 1))
}
# run NAME CMD...: runs in $tmp/elsewhere, keeps stdout in $tmp/NAME.out, stderr in .err.
run() {
  local name=$1
  shift
  (cd "$tmp/elsewhere" && "$@") >"$tmp/$name.out" 2>"$tmp/$name.err"
}
ok() { # NAME CMD...: must succeed
  local name=$1 rc=0
  run "$@" || rc=$?
  [ "$rc" = 0 ] || fail "$name: exit $rc ($(head -c 600 "$tmp/$name.err"))"
}
refuses() { # NAME CMD...: must fail with exit 1 and a message naming the text in $want
  local name=$1 rc=0
  run "$@" || rc=$?
  if [ "$rc" != 1 ]; then
    fail "$name: exit $rc, expected 1 (stdout: $(head -c 300 "$tmp/$name.out"))"
  elif ! grep -qF -- "$want" "$tmp/$name.err"; then
    fail "$name: the error does not name '$want': $(head -c 600 "$tmp/$name.err")"
  fi
}

prefix=$tmp/prefix
mkdir -p "$tmp/elsewhere"
"${CMAKE:-cmake}" --install "$build" --prefix "$prefix" >"$tmp/install.log"
nas=$prefix/bin/nas
data=$prefix/share/nas
[ -x "$nas" ] || fail "no executable $nas"

# What is installed: every target, every built-in and reference space, the calibration data
# and the dataset tool, as in the source tree.
for f in "$src"/latency/targets/* "$src"/search_spaces/*.json "$src"/search_spaces/reference/*.json \
  "$src"/latency/calibration/*.csv "$src"/latency/calibration/SOURCES.md \
  "$src"/latency/calibration/micronets_arch/*.json; do
  rel=${f#"$src"/}
  cmp -s "$f" "$data/$rel" || fail "installed $data/$rel differs from $rel or is missing"
done
[ -x "$data/datasets/tools/synth-kws" ] || fail "no executable $data/datasets/tools/synth-kws"

arch=$data/search_spaces/reference/dscnn-s.json
ntargets=$(ls "$src"/latency/targets/*.json | wc -l)

# 1. NAS_DATA_DIR: a copy of the installed data, less one target and one space.
cp -r "$data" "$tmp/data"
rm "$tmp/data/latency/targets/nrf52840.json" "$tmp/data/search_spaces/kws-rnn.json"
export NAS_DATA_DIR=$tmp/data
ok env-targets "$nas" targets
grep -q '^stm32f446re ' "$tmp/env-targets.out" || fail "env-targets: stm32f446re not listed"
! grep -q '^nrf52840 ' "$tmp/env-targets.out" ||
  fail "env-targets: nrf52840 listed: not read from NAS_DATA_DIR"
ok env-profile "$nas" profile --arch "$arch" --target stm32f446re
want="$tmp/data/search_spaces/kws-rnn.json"
refuses env-spaces "$nas" spaces
export NAS_DATA_DIR=$tmp/no-such-dir
want="NAS_DATA_DIR=$tmp/no-such-dir"
refuses env-missing "$nas" targets
unset NAS_DATA_DIR

# 2. The install itself, from another directory.
ok targets "$nas" targets
[ "$(grep -c ' cortex-m' "$tmp/targets.out")" = "$ntargets" ] ||
  fail "targets: expected $ntargets targets: $(cat "$tmp/targets.out")"
ok spaces "$nas" spaces
for s in kws-dscnn kws-rnn vision-mbnet; do
  grep -q "^$s " "$tmp/spaces.out" || fail "spaces: $s not listed"
done
ok profile "$nas" profile --arch "$arch" --target stm32f446re
grep -q 'binding budget' "$tmp/profile.out" || fail "profile: no summary: $(cat "$tmp/profile.out")"
# ... and it is the installed copy that is read: take a target and a space away from it.
rm "$data/latency/targets/stm32f446re.json" "$data/search_spaces/kws-dscnn.json"
ok targets-less "$nas" targets
! grep -q '^stm32f446re ' "$tmp/targets-less.out" ||
  fail "targets: stm32f446re still listed after its removal from $data: the source tree was read"
want="unknown target 'stm32f446re'"
refuses profile-less "$nas" profile --arch "$arch" --target stm32f446re
want="$data/search_spaces/kws-dscnn.json"
refuses spaces-less "$nas" spaces

if [ "$fails" -ne 0 ]; then
  echo "test_install: $fails failure(s)" >&2
  exit 1
fi
echo "test_install: ok ($prefix)"
