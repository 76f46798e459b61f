#!/usr/bin/python3
"""Training throughput of lstm-kws in PyTorch (the peer figure for bench/bench_lstm.c).

    /usr/bin/python3 bench/torch_lstm.py [--seconds S] [--threads T] [--seed N]

lstm-kws: input 49x10 MFCC read as 49 steps of 10 features (batch first), one torch.nn.LSTM
of 118 units, the last step's output, nn.Linear(118, 12); batch 100, Adam lr 0.002,
cross-entropy on random data (normal inputs, uniform labels, fixed seed, four batches
cycled). torch.set_num_threads(T) (default 2). After a warm-up, steps are timed for at least
--seconds seconds; prints one JSON object: {"model": "lstm-kws", "pytorch": <samples/s>, ...}.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH, STEPS, FEATURES, UNITS, CLASSES = 100, 49, 10, 118, 12


class LstmKws(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, UNITS, batch_first=True)
        self.fc = nn.Linear(UNITS, CLASSES)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


def bench(seconds, seed, warmup=5):
    torch.manual_seed(seed)
    model = LstmKws()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn(BATCH, STEPS, FEATURES, generator=gen) for _ in range(4)]
    ys = [torch.randint(0, CLASSES, (BATCH,), generator=gen) for _ in range(4)]

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xs[i % 4]), ys[i % 4])
        loss.backward()
        opt.step()
        return loss

    for i in range(warmup):
        step(i)
    steps, t0 = 0, time.perf_counter()
    while True:
        loss = step(steps)
        steps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and steps >= 3:
            break
    return {"model": "lstm-kws", "pytorch": round(steps * BATCH / elapsed, 1), "batch": BATCH,
            "steps": steps, "seconds": round(elapsed, 3), "threads": torch.get_num_threads(),
            "final_loss": round(float(loss), 4)}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    if a.seconds <= 0 or a.threads <= 0:
        ap.error("--seconds and --threads must be positive")
    torch.set_num_threads(a.threads)
    print(json.dumps(bench(a.seconds, a.seed)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
