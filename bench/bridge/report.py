#!/usr/bin/env python3
"""The VM bridge's benchmark table (scripts/gpu-vm-run.sh runs this).

Reads the guest's results (vmbench.csv: round,measurement,n,median_ns,p99_ns;
mlp.txt: lake_kbench.ko's result lines) and, from a GPU machine, the host's
rows (host.csv from bench/gpu/lake_bench: variant,test,unit,median,p99,n in
microseconds).  Prints the table, writes table.txt and ratios.csv, and checks
the MLP's first outputs from kernel context against a CPU reference.

Guest times are emulated time under TCG: only ratios within the guest's own
run mean anything (docs/vm-bridge.md); the host's rows are native.
Exit status 1 when the MLP outputs do not match.
"""
import argparse
import csv
import os
import re
import struct
import sys

TARGET_NULL_OVER_GETPPID = 3.0


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def f32_round(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def mlp_reference():
    """y[0], y[1] of sample 0: lake_bench.c's inputs and weights, ReLU, 31-256-2."""
    inp, hid, out = 31, 256, 2
    x = [f32_round((i % 13) / 13.0) for i in range(inp)]
    w = [f32_round(f32_round(((i * 37) % 19) / 19.0) - 0.5) for i in range(hid * inp)]
    h = []
    for o in range(hid):
        acc = sum(w[o * inp + k] * x[k] for k in range(inp))
        h.append(max(acc, 0.0))
    return [sum(w[o * hid + j] * h[j] for j in range(hid)) for o in range(out)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--guest", required=True, help="the guest's /out/bench")
    ap.add_argument("--host", help="host.csv (lake_bench rows)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--accel", default="tcg")
    ap.add_argument("--gpu", default="none")
    ap.add_argument("--fake", action="store_true",
                    help="lakeD-fake served the guest: MLP outputs are not computed")
    a = ap.parse_args()

    rows = {}
    with open(os.path.join(a.guest, "vmbench.csv")) as f:
        for r in csv.DictReader(f):
            rows.setdefault(r["measurement"], []).append(
                (int(r["n"]), float(r["median_ns"]) / 1000, float(r["p99_ns"]) / 1000))
    clock = "?"
    try:
        with open(os.path.join(a.guest, "clocksource")) as f:
            clock = f.read().strip()
    except OSError:
        pass
    host = {}
    if a.host and os.path.exists(a.host):
        with open(a.host) as f:
            for r in csv.DictReader(f):
                host[(r["variant"], r["test"])] = (float(r["median"]), float(r["p99"]), int(r["n"]))

    lines = []
    say = lines.append
    rounds = len(rows.get("null_spin", []))
    say("VM bridge benchmark: guest kernel -> lake.ko -> ivshmem -> host lakeD "
        f"(QEMU {a.accel}, guest clocksource {clock}, {rounds} rounds; host GPU: {a.gpu})")
    say(f"  {'measurement (guest, emulated time)':<52} {'n':>7} {'median us':>10} {'p99 us':>10}")
    desc = {"null_spin": "null round trip from guest kernel context (spinning)",
            "getppid": "getppid() in the guest, per call"}
    for k in ("null_spin", "getppid"):
        if k in rows:
            say(f"  {desc[k]:<52} {rows[k][0][0]:>7} {median([r[1] for r in rows[k]]):>10.2f} "
                f"{median([r[2] for r in rows[k]]):>10.2f}")
    ratios = []
    if "null_spin" in rows and "getppid" in rows:
        per = [n[1] / g[1] for n, g in zip(rows["null_spin"], rows["getppid"])]
        v = median([r[1] for r in rows["null_spin"]]) / median([r[1] for r in rows["getppid"]])
        verdict = "MET" if v <= TARGET_NULL_OVER_GETPPID else \
            f"MISSED by {(v / TARGET_NULL_OVER_GETPPID - 1) * 100:.0f}%"
        say(f"  null round trip / getppid: {v:.2f}x (rounds {min(per):.2f}..{max(per):.2f}), "
            f"target <= {TARGET_NULL_OVER_GETPPID:.0f}x: {verdict}")
        ratios.append(("null RT / getppid (guest, same run)", v, min(per), max(per),
                       TARGET_NULL_OVER_GETPPID, verdict))

    mlp_ok = True
    results = {}
    try:
        with open(os.path.join(a.guest, "mlp.txt")) as f:
            for line in f:
                m = re.match(r"mlp batch=(\d+) n=(\d+) median_ns=(\d+) p99_ns=(\d+) "
                             r"y0=0x([0-9a-f]+) y1=0x([0-9a-f]+)", line.strip())
                if m:
                    results[int(m.group(1))] = m
                else:
                    say(f"  MLP from guest kernel context: {line.strip()}")
    except OSError:
        pass
    if results:
        say("")
        say("  MLP 31-256-2 (HtoD, 2 launches, DtoH, sync), us median / p99:")
        say(f"  {'':<12} {'guest kernel via bridge (emulated)':>36} {'host liblake':>18} {'direct CUDA':>18}")
        for batch in (1, 1024):
            m = results.get(batch)
            if not m:
                continue
            g = f"{int(m.group(3)) / 1000:.1f} / {int(m.group(4)) / 1000:.1f}"
            test = f"MLP 31-256-2 batch {batch}"
            cols = []
            for variant in ("lake", "direct"):
                h = host.get((variant, test))
                cols.append(f"{h[0]:.1f} / {h[1]:.1f}" if h else "-")
            say(f"  batch {batch:<6} {g:>36} {cols[0]:>18} {cols[1]:>18}")
        ref = mlp_reference()
        for batch, m in sorted(results.items()) if not a.fake else []:
            got = [f32(int(m.group(5), 16)), f32(int(m.group(6), 16))]
            ok = all(abs(g - r) <= 1e-4 * max(1.0, abs(r)) for g, r in zip(got, ref))
            mlp_ok &= ok
            say(f"  MLP batch {batch} output check, sample 0: guest kernel y = "
                f"[{got[0]:.6f}, {got[1]:.6f}], CPU reference [{ref[0]:.6f}, {ref[1]:.6f}]: "
                f"{'MATCH' if ok else 'MISMATCH'}")
        if a.fake:
            say("  MLP outputs not checked: lakeD-fake (the TEST DOUBLE) computes nothing")
        say("  (guest rows: emulated time under TCG, not comparable to the host's in absolute terms)")

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "table.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(a.out, "ratios.csv"), "w") as f:
        w = csv.writer(f)
        w.writerow(["ratio", "median_ratio", "min_round", "max_round", "target", "verdict"])
        for r in ratios:
            w.writerow([r[0], f"{r[1]:.3f}", f"{r[2]:.3f}", f"{r[3]:.3f}", r[4], r[5]])
    print("\n".join("   " + line for line in lines))
    return 0 if mlp_ok else 1


if __name__ == "__main__":
    sys.exit(main())
