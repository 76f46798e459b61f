#!/usr/bin/env bash
# The main job on the default dataset: train the reference CNN on Fashion-MNIST, save a
# checkpoint, and evaluate it again from the file.
set -euo pipefail
NAS=${1:-build/nas}
mkdir -p runs
"$NAS" train --arch search_spaces/reference/fmnist-cnn.json --dataset fashion-mnist \
  --epochs 10 --save runs/fmnist-cnn.ckpt
"$NAS" eval --checkpoint runs/fmnist-cnn.ckpt
