#!/usr/bin/env python3
"""Kleio's and KNN's benchmark report: bench/apps/run.sh's bench.csv (every
round), per size: the CPU path, GPU inference only and end to end (inputs in,
outputs out: "with transfers", the app's pick of copies or mapped memory),
through liblake and direct CUDA, CUDA-event device time, the fraction of the
GPU's limit the kernels reached, the paper's figures beside, and the targets.

usage: report_kleio_knn.py OUT_DIR PAPER_DIR
Reads OUT_DIR/bench.csv, OUT_DIR/machine.txt, PAPER_DIR/paper_kleio.csv and
paper_figures.csv; writes OUT_DIR/report_kleio_knn.csv and prints the tables.

Work counts (derived from the code, not measured):
  Kleio, per sample: layer 1 at t = 1..5 a 256 x 1024 product (t = 0 has
  h = 0 and is skipped), layer 2 a 256 x 1024 product at t = 0 and 512 x 1024
  at t = 1..5, the dense layer 256 x 621: 8.70 MFLOP executed (9.75 MFLOP if
  the zero products counted; ~11 GFLOP at n = 1160 as the issue counts).  The
  GPU path multiplies and adds separately (bit-exact with the CPU), so its
  limit is the FP32 instruction rate, half the FMA peak.
  KNN, per query: 4096 x 128 (subtract, multiply, add): 1.57 M FP32
  operations, no FMA possible for exactness: the limit is the FP32 instruction
  rate; and its memory traffic at least the 2 MiB of points once, the query
  (512 B), the distance row written and read back (2 x 16 KiB) and the output.
Both fractions use the device time of the whole inference (both kernels, or
all eight), so they are lower bounds for each kernel's.
"""
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import fmt, load_bench, med as median_of  # noqa: E402  (the apps' report)

KLEIO_N = list(range(20, 1161, 60))
KNN_B = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
KLEIO_FLOP = 2 * (5 * 256 * 1024 + 256 * 1024 + 5 * 512 * 1024 + 256 * 621)  # per sample
KNN_OPS = 3 * 4096 * 128  # per query
# GPU name -> (SMs, boost MHz, HBM GB/s): nominal figures of the vendor's data sheets.
GPUS = {"H200": (132, 1980, 4800), "H100": (132, 1980, 3350), "A100": (108, 1410, 2039)}
TARGETS = {("kleio", 1160): 1000.0, ("kleio", 20): 300.0, ("knn", 1024): 250.0, ("knn", 8): 100.0}


def gpu_limits(out):
    name = ""
    try:
        with open(os.path.join(out, "machine.txt")) as f:
            name = f.readline()
    except OSError:
        pass
    for key, (sms, mhz, gbs) in GPUS.items():
        if key in name:
            inst = sms * 128 * mhz * 1e6  # FP32 instructions per second
            return key, inst, gbs * 1e9
    return None, None, None


def paper(paper_dir):
    kleio, knn = {}, {}
    with open(os.path.join(paper_dir, "paper_kleio.csv")) as f:
        for r in csv.DictReader(l for l in f if not l.startswith("#")):
            kleio[int(r["n"])] = (float(r["cpu_ms"]) * 1000, float(r["gpu_ms"]) * 1000)
    with open(os.path.join(paper_dir, "paper_figures.csv")) as f:
        for r in csv.DictReader(l for l in f if not l.startswith("#")):
            if r["workload"] == "knn":
                for b in KNN_B:
                    if r.get(str(b)):
                        knn[(r["series"], b)] = float(r[str(b)])
    return kleio, knn


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    out, paper_dir = argv[1], argv[2]
    runs, details = load_bench(os.path.join(out, "bench.csv"))
    gpu, inst_rate, bw = gpu_limits(out)
    p_kleio, p_knn = paper(paper_dir)
    med = lambda k: median_of(runs, k)
    rows, verdicts = [], []

    for app, sizes in (("kleio", KLEIO_N), ("knn", KNN_B)):
        if not any(k[0] == app for k in runs):
            continue
        print(f"\n== {app}: times in us (medians over rounds); GPU limits: "
              f"{gpu or 'unknown GPU'}{'' if not gpu else f', {inst_rate / 1e12:.1f} T FP32 instr/s, {bw / 1e12:.2f} TB/s'}")
        print(f"{'size':>5} {'cpu':>9} {'infer':>7} {'infer_d':>7} {'e2e':>7} {'e2e_d':>7} {'L/D':>5}"
              f" {'dev':>7} {'dev_d':>7} {'TFLOP/s':>7} {'%inst':>5} {'GB/s':>6} {'%bw':>4}"
              f" {'p_gpu':>7} {'p_sync':>7} {'p_cpu':>8} {'e2e/p':>6}")
        for n in sizes:
            k = lambda build, m: (app, build, n, m)
            pick = details.get(k("lake", "gpu_xfer_pick"), "")
            pick_d = details.get(k("direct", "gpu_xfer_pick"), "")
            xm = lambda p: "gpu_xfer_" + (p.split()[0] if p else "copy")  # "copy default": xfer, variant
            e2e, e2e_d = med(k("lake", xm(pick))), med(k("direct", xm(pick_d)))
            dev, dev_d = med(k("lake", "device")), med(k("direct", "device"))
            cpu = med(k("lake", "cpu"))
            ld = e2e / e2e_d if e2e and e2e_d else None
            best_dev = min(v for v in (dev, dev_d) if v) if (dev or dev_d) else None
            ops = (KLEIO_FLOP if app == "kleio" else KNN_OPS) * n
            tflops = ops / (best_dev * 1e-6) / 1e12 if best_dev else None
            frac = tflops * 1e12 / inst_rate if tflops and inst_rate else None
            nbytes = (2 << 20) + n * (512 + 2 * 16384 + 132) if app == "knn" else None
            gbs = nbytes / (best_dev * 1e-6) / 1e9 if nbytes and best_dev else None
            bwf = gbs * 1e9 / bw if gbs and bw else None
            if app == "kleio":
                p_cpu, p_gpu = p_kleio.get(n, (None, None))
                p_sync = None
            else:
                p_gpu, p_sync, p_cpu = (p_knn.get((s, n)) for s in ("gpu", "gpu_data", "cpu"))
            p_ref = p_sync or p_gpu
            row = {"app": app, "size": n, "cpu_us": cpu,
                   "infer_lake_us": med(k("lake", "gpu_infer")), "infer_direct_us": med(k("direct", "gpu_infer")),
                   "e2e_lake_us": e2e, "e2e_direct_us": e2e_d, "pick_lake": pick, "pick_direct": pick_d,
                   "lake_over_direct": ld, "device_lake_us": dev, "device_direct_us": dev_d,
                   "device_xfer_lake_us": med(k("lake", "device_xfer")), "floor_us": med(k("lake", "floor")),
                   "auto_us": med(k("lake", "auto")), "auto_choice": (details.get(k("lake", "auto"), "").split() or [""])[0],
                   "ops": ops, "tflops": tflops, "fraction_fp32_instr": frac,
                   "min_bytes": nbytes, "gb_per_s": gbs, "fraction_bandwidth": bwf,
                   "paper_gpu_us": p_gpu, "paper_sync_us": p_sync, "paper_cpu_us": p_cpu,
                   "e2e_over_paper": e2e / p_ref if e2e and p_ref else None}
            rows.append(row)
            print(f"{n:>5} {fmt(cpu):>9} {fmt(row['infer_lake_us']):>7} {fmt(row['infer_direct_us']):>7}"
                  f" {fmt(e2e):>7} {fmt(e2e_d):>7} {fmt(ld, 2):>5} {fmt(dev):>7} {fmt(dev_d):>7}"
                  f" {fmt(tflops, 2):>7} {fmt(frac and 100 * frac, 0):>5} {fmt(gbs, 0):>6}"
                  f" {fmt(bwf and 100 * bwf, 0):>4} {fmt(p_gpu, 0):>7} {fmt(p_sync, 0):>7} {fmt(p_cpu, 0):>8}"
                  f" {fmt(row['e2e_over_paper'], 3):>6}")
            if e2e is not None and e2e_d is not None:
                verdicts.append(("through LAKE within 1.10 x direct CUDA (end to end)", ld <= 1.10,
                                 f"{app} {n}: {e2e:.1f} vs {e2e_d:.1f} us ({ld:.2f} x)"))
            if (app, n) in TARGETS:
                lim = TARGETS[(app, n)]
                verdicts.append((f"{app} at {n} end to end <= {lim:.0f} us", e2e is not None and e2e <= lim,
                                 f"{app} {n}: {fmt(e2e)} us through LAKE (direct {fmt(e2e_d)})"))

    with open(os.path.join(out, "report_kleio_knn.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["app"])
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()})

    print("\n== Kleio and KNN targets")
    names = []
    for name, _, _ in verdicts:
        if name not in names:
            names.append(name)
    for name in names:
        mine = [v for v in verdicts if v[0] == name]
        bad = [w for _, ok, w in mine if not ok]
        print(f"{'MET ' if not bad else 'MISS'} {name}: {len(mine) - len(bad)}/{len(mine)}")
        for w in (bad if bad else [w for _, _, w in mine])[:6]:
            print(f"       {'miss: ' if bad else ''}{w}")
    print("\ncpu: the CPU path; infer/infer_d: inference only (launches + cuCtxSynchronize), lake/direct;"
          " e2e/e2e_d: end to end (inputs in, outputs out), lake/direct; L/D: e2e / e2e_d;"
          " dev/dev_d: CUDA-event device time of the launches; TFLOP/s, %inst: the work counts over the"
          " better device time, and its fraction of the FP32 instruction rate; GB/s, %bw: KNN's minimum"
          " memory traffic over it, and its fraction of HBM bandwidth; p_*: the paper (A100; Kleio through"
          " TensorFlow); e2e/p: e2e over the paper's with-transfers (Kleio: its GPU) figure.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
