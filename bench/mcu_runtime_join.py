#!/usr/bin/env python3
"""bench/mcu_runtime_join.py: sets the engine's emulated runtime figures (JSON lines of
bench_mcu_runtime) beside the TFLM + CMSIS-NN corpus (ops.csv, models.csv) and prints the JSON
lines of bench/mcu_runtime.sh (see there for the method). Usage: mcu_runtime_join.py CORPUS OURS"""
import csv
import json
import statistics
import sys

CORE = {"cortex-m4": "cortex-m4", "cortex-m7": "cortex-m7", "cortex-m33": "cortex-m33"}


def tflm_cycles(rows, cpi, n_ops):
    """Cycles of TFLM's production Invoke from the corpus' per-operator classes."""
    cyc = 0.0
    for r in rows:
        g = lambda k: float(r[k])
        ldst = g("load") + g("store")
        other = g("simd") + g("it") + g("vfp") + g("div") + g("other")
        xfer = g("load_regs") + g("store_regs") - ldst
        c = (cpi["ldst"] * ldst + cpi["mul"] * g("mul") + cpi["branch"] * g("branch") +
             cpi["other"] * other + cpi["xfer"] * max(xfer, 0.0) + cpi["div_extra"] * g("div") +
             cpi["taken_extra"] * g("branch_taken"))
        insn = g("insn")
        cyc += c * (insn - 16) / insn  # the profiler hook out, at the operator's mean CPI
    return cyc + cpi["other"] * (31 * n_ops + 74)


def main():
    corpus, ours_path = sys.argv[1], sys.argv[2]
    ops, models = {}, {}
    with open(f"{corpus}/ops.csv") as f:
        for r in csv.DictReader(f):
            ops.setdefault((r["model_id"], r["core"]), []).append(r)
    with open(f"{corpus}/models.csv") as f:
        for r in csv.DictReader(f):
            models[(r["model_id"], r["core"])] = r
    by_core = {}
    for line in open(ours_path):
        o = json.loads(line)
        key = (o["model"], o["core"])
        out = {"bench": "mcu_runtime", "model": o["model"], "core": o["core"],
               "ours_insn": o["insn_ops"], "ours_cycles": o["cycles_ops"]}
        m = models.get(key)
        if m and key in ops:
            n = int(m["n_ops"])
            t_insn = sum(int(r["insn"]) - 16 for r in ops[key]) + 31 * n + 74
            t_cyc = tflm_cycles(ops[key], o["cpi"], n)
            out.update(tflm_insn=t_insn, ratio_insn=round(o["insn_ops"] / t_insn, 4),
                       tflm_cycles=round(t_cyc), ratio_cycles=round(o["cycles_ops"] / t_cyc, 4))
            by_core.setdefault(o["core"], []).append((out["ratio_insn"], out["ratio_cycles"]))
        else:
            out.update(tflm_insn=None, ratio_insn=None, tflm_cycles=None, ratio_cycles=None)
        any_core = models.get((o["model"], "cortex-m4"), {})
        out.update(ours_arena=o["arena"], ours_arena_tensors=o["arena_tensors"],
                   tflm_arena_host64=int(any_core["head_bytes_host64"]) if any_core else None,
                   tflm_arena_m32=int(any_core["head_bytes_m32"]) if any_core else None,
                   ours_data_bytes=o["data_bytes"], tflite_bytes=o["tflite_bytes"],
                   exact=o["exact"])
        print(json.dumps(out, separators=(",", ":")))
    for core, rs in sorted(by_core.items()):
        ri = [r[0] for r in rs]
        rc = [r[1] for r in rs]
        print(json.dumps({"bench": "mcu_runtime_summary", "core": core, "models": len(rs),
                          "median_ratio_insn": round(statistics.median(ri), 4),
                          "max_ratio_insn": max(ri),
                          "median_ratio_cycles": round(statistics.median(rc), 4),
                          "max_ratio_cycles": max(rc), "goal_max": 1.0, "goal_median": 0.8},
                         separators=(",", ":")))


if __name__ == "__main__":
    main()
