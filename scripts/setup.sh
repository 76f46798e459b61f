#!/usr/bin/env bash
# Installs what the project needs. Idempotent: installs only what is missing.
#   scripts/setup.sh                    build and test dependencies, the third-party runtimes
#                                       the tests check exports against (Arm NN, onnxruntime,
#                                       TensorFlow Lite)
#   scripts/setup.sh --with-reference   also PyTorch/torchaudio (fixture scripts, benchmarks)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libopenblas-openmp-dev libsqlite3-dev sqlite3 libcjson-dev
      libcmocka-dev zlib1g-dev dataset-fashion-mnist)
pkgs+=(liblapacke-dev)  # opt/gp.c: LAPACKE (Cholesky); LAPACK itself comes from OpenBLAS
pkgs+=(libsndfile1-dev libfftw3-dev espeak-ng sox)  # Speech Commands: WAV, FFT, synth-kws
pkgs+=(python3-onnx protobuf-c-compiler libprotobuf-c-dev)  # ONNX export
pkgs+=(python3-pyarmnn libarmnn-cpuref-backend22 libarmnntfliteparser22 nodejs npm)  # checks
pkgs+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)  # C export: Cortex-M cross compile
pkgs+=(libunicorn-dev)  # emulated Cortex-M measurement (nas measure --backend emulator)
pkgs+=(clang libclang-rt-dev libomp-dev)  # make fuzz: libFuzzer, sanitizer runtimes, clang OpenMP
if [ "${1:-}" = "--with-reference" ]; then pkgs+=(python3-torch python3-torchaudio python3-numpy); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from outside Debian (a node binary already on PATH): accept that.
if command -v node >/dev/null && command -v npm >/dev/null; then
  m=(); for p in "${missing[@]}"; do [ "$p" = nodejs ] || [ "$p" = npm ] || m+=("$p"); done
  missing=("${m[@]+"${m[@]}"}")
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# onnxruntime for the ONNX export checks (npm; its CPU library ships inside the package).
ORT_DIR=${NAS_ORT_PREFIX:-/opt/nas-ort}
if [ ! -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
  echo "setup: installing onnxruntime-node into $ORT_DIR" >&2
  $SUDO mkdir -p "$ORT_DIR"
  (cd "$ORT_DIR" && ONNXRUNTIME_NODE_INSTALL=skip $SUDO npm install --silent --no-audit --no-fund \
     onnxruntime-node@1.30.0 >/dev/null) ||
    echo "setup: warning: onnxruntime-node could not be installed; ONNX runtime checks will be skipped" >&2
fi
# TensorFlow Lite 2.9 for the int8 import/export checks (tests/test_deploy_tflite.c): the npm
# package tfjs-tflite-node ships libtensorflowlite_c.so (TFLite's C API); its node-gyp build is
# not needed (--ignore-scripts), tests/fixtures/tflite_run.py drives the library via ctypes.
TFL_DIR=${NAS_TFLITE_PREFIX:-/opt/nas-tflite}
if [ ! -f "$TFL_DIR/node_modules/tfjs-tflite-node/cc_deps/linux_amd64/libtensorflowlite_c.so" ]; then
  echo "setup: installing tfjs-tflite-node (TensorFlow Lite 2.9 C library) into $TFL_DIR" >&2
  $SUDO mkdir -p "$TFL_DIR"
  (cd "$TFL_DIR" && $SUDO npm install --silent --no-audit --no-fund --ignore-scripts \
     tfjs-tflite-node@0.0.2 >/dev/null) ||
    echo "setup: warning: tfjs-tflite-node could not be installed; TensorFlow Lite checks will be skipped" >&2
fi
