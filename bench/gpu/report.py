#!/usr/bin/env python3
"""Prints bench.csv (from bench/gpu/run.sh) as a table: LAKE beside direct
CUDA, with the ratio of the medians, and the targets of the remoting issue.
With several rounds, each figure is the median over rounds of that round's
median (or p99)."""
import csv
import statistics
import sys

TARGETS = {
    "null_call": ("median <= 2 us, p99 <= 10 us", lambda l, d: l["median"] <= 2 and l["p99"] <= 10),
    "MLP 31-256-2 batch 1": ("<= 1.10 x direct", lambda l, d: d and l["median"] <= 1.10 * d["median"]),
    "MLP 31-256-2 batch 1024": ("<= 1.10 x direct", lambda l, d: d and l["median"] <= 1.10 * d["median"]),
    "HtoD 64 MiB bandwidth": (">= 95 % of pinned", lambda l, d: d and l["median"] >= 0.95 * d["median"]),
    "idle lakeD CPU (5 s after its spin window)": ("< 1 % of a core", lambda l, d: l["median"] < 1),
}

samples = {}
order = []
with open(sys.argv[1]) as f:
    for r in csv.DictReader(f):
        key = r["test"]
        if key not in order:
            order.append(key)
        samples.setdefault((key, r["variant"]), []).append(r)
rows = {}
for k, rs in samples.items():
    p99s = [float(r["p99"]) for r in rs if r["p99"]]
    rows[k] = {"unit": rs[0]["unit"], "rounds": len(rs),
               "median": statistics.median(float(r["median"]) for r in rs),
               "p99": statistics.median(p99s) if p99s else None}

fmt = "{:<44} {:>7} {:>10} {:>10} {:>10} {:>10} {:>8} {:>11}  {}"
print(fmt.format("test", "unit", "direct", "direct p99", "LAKE", "LAKE p99", "ratio",
                 "direct reg.", "target"))
for key in order:
    d, l = rows.get((key, "direct")), rows.get((key, "lake"))
    dr = rows.get((key, "direct_registered"))
    ratio = f"{l['median'] / d['median']:.2f}" if d and l and d["median"] else ""
    target, ok = TARGETS.get(key, ("", None))
    verdict = ""
    if ok and l:
        verdict = f"{target}: {'met' if ok(l, d) else 'MISSED'}"
    p99 = lambda r: f"{r['p99']:.2f}" if r and r["p99"] is not None else ""
    print(fmt.format(key, (l or d)["unit"], f"{d['median']:.2f}" if d else "", p99(d),
                     f"{l['median']:.2f}" if l else "", p99(l), ratio,
                     f"{dr['median']:.2f}" if dr else "", verdict))
print("ratio: LAKE median / direct median (direct copies from cuMemHostAlloc memory);")
print("direct reg.: direct CUDA copying from cuMemHostRegister'ed pages, as lakeD does from the arena.")
