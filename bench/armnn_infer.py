#!/usr/bin/python3
"""bench/armnn_infer.py: batch-1 inference time of an int8 .tflite in Arm NN's CpuRef backend
(Debian python3-pyarmnn with libarmnn-cpuref-backend22; run with /usr/bin/python3), the peer
figure beside bench_infer8's "kws_ref_model int8" line (the deploy runtime on the same file).

Usage: /usr/bin/python3 bench/armnn_infer.py [--seconds S] [MODEL.tflite]
MODEL defaults to ../shared/models/kws_ref_model.tflite next to the source tree. The network is
parsed, optimised for CpuRef and loaded once; the input (zero point + the same LCG bytes as
bench_infer8) and output tensors are made once; then EnqueueWorkload alone is timed, one
inference at a time, after 3 warm-up runs, for at least S seconds (default 2) and 20 runs.
Prints one JSON line:
  {"bench":"infer8","model":"kws_ref_model","runtime":"armnn-cpuref","median_ms":M,
   "min_ms":m,"runs":N}
Exit 1 when pyarmnn is missing or the model does not load.
"""
import argparse
import json
import os
import sys
import time
import warnings

try:
    import numpy as np
    warnings.simplefilter("ignore")  # pyarmnn warns about parsers this build lacks
    import pyarmnn as ann
except ImportError as exc:
    sys.exit("armnn_infer.py: %s (install python3-pyarmnn, run with /usr/bin/python3)" % exc)


def lcg_bytes(n):
    """int8 bytes of bench_infer8's generator: s = 1; s = s*1664525 + 1013904223; byte = s>>24."""
    s, out = 1, np.empty(n, dtype=np.int8)
    for i in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        b = s >> 24
        out[i] = b - 256 if b >= 128 else b
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Arm NN CpuRef batch-1 inference time")
    ap.add_argument("model", nargs="?",
                    default=os.path.join(here, "..", "..", "shared", "models", "kws_ref_model.tflite"))
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    if not a.seconds > 0:
        ap.error("--seconds must be positive")
    if not os.path.isfile(a.model):
        sys.exit("armnn_infer.py: %s: no such file" % a.model)
    parser = ann.ITfLiteParser()
    net = parser.CreateNetworkFromBinaryFile(a.model)
    ib = parser.GetNetworkInputBindingInfo(0, parser.GetSubgraphInputTensorNames(0)[0])
    ob = parser.GetNetworkOutputBindingInfo(0, parser.GetSubgraphOutputTensorNames(0)[0])
    rt = ann.IRuntime(ann.CreationOptions())
    opt, _ = ann.Optimize(net, [ann.BackendId("CpuRef")], rt.GetDeviceSpec(),
                          ann.OptimizerOptions())
    nid, _ = rt.LoadNetwork(opt)
    x = lcg_bytes(ib[1].GetNumElements())
    inputs = ann.make_input_tensors([ib], [x])
    outputs = ann.make_output_tensors([ob])
    for _ in range(3):
        rt.EnqueueWorkload(nid, inputs, outputs)
    times = []
    start = time.perf_counter()
    while len(times) < 20 or time.perf_counter() - start < a.seconds:
        t0 = time.perf_counter()
        rt.EnqueueWorkload(nid, inputs, outputs)
        times.append(1e3 * (time.perf_counter() - t0))
    rt.UnloadNetwork(nid)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    name = os.path.splitext(os.path.basename(a.model))[0]
    print(json.dumps({"bench": "infer8", "model": name, "runtime": "armnn-cpuref",
                      "median_ms": round(med, 4), "min_ms": round(times[0], 4), "runs": n}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
