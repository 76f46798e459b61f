#!/usr/bin/python3
"""Training throughput of the two reference architectures in PyTorch (the peer figure for
bench/bench_train.c; bench/run.sh runs both and prints the ratio).

    /usr/bin/python3 bench/torch_train.py [--model dscnn-s|fmnist-cnn|all] [--seconds S]
                                          [--threads T] [--seed N]

Models mirror search_spaces/reference/*.json, in PyTorch's preferred NCHW layout:
  dscnn-s     input 49x10x1: conv 64 k10x4 s2 "same" (TF padding) + BN + ReLU,
              4 x [dw 3x3 same + BN + ReLU + pw 64 + BN + ReLU], GAP, fc 12; batch 100
  fmnist-cnn  input 28x28x1: conv 16 k3 same + BN + ReLU, dsconv 32 s2, dsconv 64 s2, GAP,
              fc 10; batch 128
Convolutions followed by BN have no bias. Adam lr 0.002, cross-entropy on random data
(fixed seed). After a warm-up, steps are timed for at least --seconds seconds; one JSON
object per model is printed: {"model": "dscnn-s", "pytorch": <samples/s>, ...}.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SamePad(nn.Module):
    """Zero padding of TensorFlow's "same" rule (the odd pixel goes after)."""

    def __init__(self, k, s):
        super().__init__()
        self.kh, self.kw = (k, k) if isinstance(k, int) else k
        self.sh, self.sw = (s, s) if isinstance(s, int) else s

    @staticmethod
    def _pads(n, k, s):
        out = (n + s - 1) // s
        total = max((out - 1) * s + k - n, 0)
        return total // 2, total - total // 2

    def forward(self, x):
        top, bottom = self._pads(x.shape[2], self.kh, self.sh)
        left, right = self._pads(x.shape[3], self.kw, self.sw)
        if top == bottom == left == right == 0:
            return x
        return F.pad(x, (left, right, top, bottom))


def conv_bn_relu(cin, cout, k, s):
    """conv (TF "same", no bias) + BN + ReLU."""
    return nn.Sequential(SamePad(k, s), nn.Conv2d(cin, cout, k, s, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def dsconv(cin, cout, s=1):
    """Depthwise 3x3 (same, stride s) + BN + ReLU + pointwise + BN + ReLU."""
    return nn.Sequential(SamePad(3, s), nn.Conv2d(cin, cin, 3, s, groups=cin, bias=False),
                         nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
                         nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Net(nn.Module):
    def __init__(self, features, channels, classes):
        super().__init__()
        self.features = features
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        x = self.features(x)
        x = x.mean(dim=(2, 3))          # global average pool
        return self.fc(x)


def build(name):
    """Returns (model, input shape CHW, classes, batch)."""
    if name == "dscnn-s":
        feats = nn.Sequential(conv_bn_relu(1, 64, (10, 4), (2, 2)),
                              *[dsconv(64, 64) for _ in range(4)])
        return Net(feats, 64, 12), (1, 49, 10), 12, 100
    if name == "fmnist-cnn":
        feats = nn.Sequential(conv_bn_relu(1, 16, 3, 1), dsconv(16, 32, 2), dsconv(32, 64, 2))
        return Net(feats, 64, 10), (1, 28, 28), 10, 128
    raise ValueError("unknown model " + name)


MODELS = ["dscnn-s", "fmnist-cnn"]


def bench(name, seconds, seed, warmup=5):
    torch.manual_seed(seed)
    model, chw, classes, batch = build(name)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    gen = torch.Generator().manual_seed(seed)
    nbatches = 4
    xs = [torch.randn(batch, *chw, generator=gen) for _ in range(nbatches)]
    ys = [torch.randint(0, classes, (batch,), generator=gen) for _ in range(nbatches)]

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xs[i % nbatches]), ys[i % nbatches])
        loss.backward()
        opt.step()
        return loss

    for i in range(warmup):
        step(i)
    steps = 0
    t0 = time.perf_counter()
    while True:
        loss = step(steps)
        steps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and steps >= 3:
            break
    return {"model": name, "pytorch": round(steps * batch / elapsed, 1), "batch": batch,
            "steps": steps, "seconds": round(elapsed, 3), "threads": torch.get_num_threads(),
            "final_loss": round(float(loss), 4)}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="all", help="dscnn-s, fmnist-cnn or all")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per model")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    if a.model != "all" and a.model not in MODELS:
        ap.error("unknown model '%s' (expected %s or all)" % (a.model, ", ".join(MODELS)))
    if a.seconds <= 0 or a.threads <= 0:
        ap.error("--seconds and --threads must be positive")
    torch.set_num_threads(a.threads)
    for name in (MODELS if a.model == "all" else [a.model]):
        print(json.dumps(bench(name, a.seconds, a.seed)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
