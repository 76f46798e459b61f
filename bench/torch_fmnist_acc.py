#!/usr/bin/python3
"""Test accuracy of fmnist-cnn trained in PyTorch on Fashion-MNIST with the protocol of
`nas train` (the peer figure for the accuracy line of bench/run.sh).

    /usr/bin/python3 bench/torch_fmnist_acc.py [--epochs N] [--seed S] [--threads T]
                                               [--data DIR]

Protocol: the four IDX files from DIR (default /usr/share/datasets/fashion-mnist, gzip or
raw); 10% of the training files held out for validation (a fixed permutation drawn with
--split-seed); pixels scaled to [0,1] and normalised with the mean/std of the remaining
training images; Adam lr 0.002 with a per-step cosine schedule decaying to 0 over all steps;
batch 128 (the last, partial batch of an epoch included); shuffled every epoch; no
augmentation. Prints one JSON object:
  {"model":"fmnist-cnn","epochs":N,"pytorch_test_acc":A,"pytorch_val_acc":V,"seconds":T}
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import build  # noqa: E402  (the same model definition as the speed bench)


def read_idx(path):
    """Reads an IDX file (gzip or raw) into a uint8 numpy array."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4:
        raise ValueError("%s: truncated header" % path)
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08 or ndim not in (1, 3):
        raise ValueError("%s: bad magic (expected unsigned-byte IDX with 1 or 3 dims)" % path)
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    n = int(np.prod(dims))
    data = np.frombuffer(raw, dtype=np.uint8, count=n, offset=4 + 4 * ndim)
    return data.reshape(dims)


def find(d, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError("%s: neither %s nor %s.gz" % (d, stem, stem))


def load(d):
    xtr = read_idx(find(d, "train-images-idx3-ubyte"))
    ytr = read_idx(find(d, "train-labels-idx1-ubyte"))
    xte = read_idx(find(d, "t10k-images-idx3-ubyte"))
    yte = read_idx(find(d, "t10k-labels-idx1-ubyte"))
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError("%s: image and label counts differ" % d)
    return xtr, ytr, xte, yte


def accuracy(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1, help="initialisation and shuffling")
    ap.add_argument("--split-seed", type=int, default=0, help="train/validation split")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args(argv)
    if a.epochs <= 0 or a.batch <= 0 or a.threads <= 0:
        ap.error("--epochs, --batch and --threads must be positive")
    torch.set_num_threads(a.threads)

    xtr, ytr, xte, yte = load(a.data)
    perm = np.random.default_rng(a.split_seed).permutation(len(xtr))
    nval = int(round(len(xtr) * 0.1))
    val_idx, tr_idx = perm[:nval], perm[nval:]
    xtr_f = xtr[tr_idx].astype(np.float32) / 255.0
    mean, std = float(xtr_f.mean()), float(xtr_f.std())

    def prep(x):
        x = (x.astype(np.float32) / 255.0 - mean) / std
        return torch.from_numpy(np.ascontiguousarray(x[:, None, :, :]))

    x_train, y_train = prep(xtr[tr_idx]), torch.from_numpy(ytr[tr_idx].astype(np.int64))
    x_val, y_val = prep(xtr[val_idx]), torch.from_numpy(ytr[val_idx].astype(np.int64))
    x_test, y_test = prep(xte), torch.from_numpy(yte.astype(np.int64))

    torch.manual_seed(a.seed)
    model, _, _, _ = build("fmnist-cnn")
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    n = len(x_train)
    steps_per_epoch = (n + a.batch - 1) // a.batch
    total = steps_per_epoch * a.epochs
    gen = torch.Generator().manual_seed(a.seed)

    t0 = time.perf_counter()
    step = 0
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        for i in range(0, n, a.batch):
            for grp in opt.param_groups:
                grp["lr"] = 0.5 * a.lr * (1.0 + math.cos(math.pi * step / total))
            idx = order[i:i + a.batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            step += 1
        val = accuracy(model, x_val, y_val)
        print("epoch %d/%d loss %.4f val_acc %.4f (%.1f s)" % (
            epoch + 1, a.epochs, loss_sum / steps_per_epoch, val, time.perf_counter() - t0),
            file=sys.stderr, flush=True)
    seconds = time.perf_counter() - t0
    test = accuracy(model, x_test, y_test)
    print(json.dumps({"model": "fmnist-cnn", "epochs": a.epochs,
                      "pytorch_test_acc": round(test, 4), "pytorch_val_acc": round(val, 4),
                      "seconds": round(seconds, 1), "train": n, "val": nval,
                      "test": len(x_test)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
