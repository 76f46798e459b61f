#!/usr/bin/env bash
# Installs the Debian packages the project needs. Idempotent: installs only what is missing.
# Usage: scripts/setup.sh [--with-reference]   (--with-reference adds the reference tools the fixture scripts and benchmarks use)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libopenblas-openmp-dev libsqlite3-dev sqlite3 libcjson-dev
      libcmocka-dev zlib1g-dev dataset-fashion-mnist)
pkgs+=(libsndfile1-dev libfftw3-dev espeak-ng sox)  # Speech Commands: WAV, FFT, synth-kws
if [ "${1:-}" = "--with-reference" ]; then pkgs+=(python3-torch python3-torchaudio python3-numpy python3-pyarmnn libarmnn-cpuref-backend22 libarmnntfliteparser22); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
