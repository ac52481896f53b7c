#!/usr/bin/env python3
"""The apps' benchmark report: bench/apps/run.sh's bench.csv (every round)
with the paper's figures beside it, the ratios of one run, and the
performance targets checked.

usage: report.py OUT_DIR PAPER_FIGURES.csv
Writes OUT_DIR/report.csv and prints the tables and the verdicts.

Per app, batch and build, each measure's median over the rounds of each
round's median (and the mean over rounds of each round's mean, the paper's
statistic).  Ratios are of those medians.  "with transfers" is the app's
pick at that batch size (gpu_xfer_pick: "TRANSFER VARIANT", the transfer
one of copy, mapped, poll, copy_poll; its measure gpu_xfer_TRANSFER).
"""
import csv
import os
import statistics
import sys

PAPER_NAME = {"linnos+0": "linnos+0", "linnos+1": "linnos+1", "linnos+2": "linnos+2",
              "mllb": "mllb", "kml": "kml"}
BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


def load_bench(path):
    runs = {}      # (app, build, batch, measure) -> [(median, mean), ...]
    details = {}   # (app, build, batch, measure) -> detail of the last round
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            key = (r["app"], r["build"], int(r["batch"]), r["measure"])
            details[key] = r["detail"] or ""
            if r["median_us"] and r["mean_us"]:	# (tune rows: a median only)
                runs.setdefault(key, []).append((float(r["median_us"]), float(r["mean_us"])))
            elif r["detail"].startswith("error"):
                runs.setdefault(key, [])
    return runs, details


def load_paper(path):
    paper = {}
    with open(path) as f:
        rows = [l for l in f if not l.startswith("#")]
    for r in csv.DictReader(rows):
        for b in BATCHES:
            v = r.get(str(b), "")
            if v:
                paper[(r["workload"], r["series"], b)] = float(v)
    return paper


def med(runs, key):
    v = runs.get(key)
    return statistics.median(x[0] for x in v) if v else None


def mean(runs, key):
    v = runs.get(key)
    return statistics.mean(x[1] for x in v) if v else None


def xfer_measure(pick):
    """gpu_xfer_pick's detail ("poll default": transfer, variant) -> its measure."""
    return "gpu_xfer_" + (pick.split()[0] if pick else "copy")


def fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    out, paper_path = argv[1], argv[2]
    runs, details = load_bench(os.path.join(out, "bench.csv"))
    paper = load_paper(paper_path)
    apps = sorted({k[0] for k in runs} | {k[0] for k in details},
                  key=lambda a: list(PAPER_NAME).index(a) if a in PAPER_NAME else 99)
    report, verdicts = [], []
    misses = {}

    def check(name, ok, what):
        verdicts.append((name, ok, what))
        if not ok:
            misses.setdefault(name, []).append(what)

    for app in apps:
        if app in ("kleio", "knn"):  # their own sizes and targets: report_kleio_knn.py
            continue
        pol = {b: details.get((app, b, 0, "policy"), "") for b in ("lake", "direct")}
        print(f"\n== {app}  (lake: {pol['lake']}; direct: {pol['direct']})")
        print(f"{'batch':>5} {'cpu':>8} {'floor':>6} {'infer':>7} {'infer_d':>7} {'copy':>7} {'mapped':>7} {'poll':>7}"
              f" {'xfer':>7} {'pick':>9} {'xfer_d':>7} {'L/D':>5} {'x/flr':>5} {'dev':>6} {'auto':>7}"
              f" {'choice':>6} {'a/best':>6} {'p_gpu':>5} {'p_xfer':>6} {'p_cpu':>6} {'x/p':>5}")
        for b in BATCHES:
            k = lambda build, m: (app, build, b, m)
            cpu = med(runs, k("lake", "cpu"))
            floor = med(runs, k("lake", "floor"))
            infer, infer_d = med(runs, k("lake", "gpu_infer")), med(runs, k("direct", "gpu_infer"))
            copy, mapped = med(runs, k("lake", "gpu_xfer_copy")), med(runs, k("lake", "gpu_xfer_mapped"))
            poll = med(runs, k("lake", "gpu_xfer_poll"))
            pick = details.get(k("lake", "gpu_xfer_pick"), "")
            xfer = med(runs, k("lake", xfer_measure(pick)))
            pick_d = details.get(k("direct", "gpu_xfer_pick"), "")
            xfer_d = med(runs, k("direct", xfer_measure(pick_d)))
            dev = med(runs, k("lake", "device"))
            auto = med(runs, k("lake", "auto"))
            choice = (details.get(k("lake", "auto"), "").split() or [""])[0]  # "cpu|gpu paired_us=..."
            best = min(v for v in (cpu, xfer) if v is not None) if (cpu or xfer) else None
            pname = PAPER_NAME.get(app, app)
            p_gpu, p_xfer, p_cpu = (paper.get((pname, s, b)) for s in ("gpu", "gpu_data", "cpu"))
            xfer_mean = mean(runs, k("lake", xfer_measure(pick)))
            row = {
                "app": app, "batch": b, "cpu_us": cpu, "cpu_mean_us": mean(runs, k("lake", "cpu")),
                "floor_us": floor, "floor_direct_us": med(runs, k("direct", "floor")),
                "infer_lake_us": infer, "infer_direct_us": infer_d,
                "xfer_copy_lake_us": copy, "xfer_mapped_lake_us": mapped,
                "xfer_copy_direct_us": med(runs, k("direct", "gpu_xfer_copy")),
                "xfer_mapped_direct_us": med(runs, k("direct", "gpu_xfer_mapped")),
                "xfer_poll_lake_us": poll, "xfer_poll_direct_us": med(runs, k("direct", "gpu_xfer_poll")),
                "xfer_copy_poll_lake_us": med(runs, k("lake", "gpu_xfer_copy_poll")),
                "xfer_copy_poll_direct_us": med(runs, k("direct", "gpu_xfer_copy_poll")),
                "xfer_lake_us": xfer, "xfer_lake_mean_us": xfer_mean, "pick_lake": pick,
                "xfer_direct_us": xfer_d, "pick_direct": pick_d,
                "lake_over_direct": ratio(xfer, xfer_d), "xfer_over_floor": ratio(xfer, floor),
                "device_us": dev, "device_xfer_us": med(runs, k("lake", "device_xfer")),
                "auto_us": auto, "auto_choice": choice, "auto_over_best": ratio(auto, best),
                "paper_gpu_us": p_gpu, "paper_xfer_us": p_xfer, "paper_cpu_us": p_cpu,
                "xfer_over_paper": ratio(xfer, p_xfer), "xfer_mean_over_paper": ratio(xfer_mean, p_xfer),
            }
            report.append(row)
            print(f"{b:>5} {fmt(cpu):>8} {fmt(floor):>6} {fmt(infer):>7} {fmt(infer_d):>7} {fmt(copy):>7}"
                  f" {fmt(mapped):>7} {fmt(poll):>7} {fmt(xfer):>7} {pick.split()[0] if pick else '-':>9} {fmt(xfer_d):>7}"
                  f" {fmt(row['lake_over_direct'], 2):>5} {fmt(row['xfer_over_floor'], 2):>5} {fmt(dev):>6}"
                  f" {fmt(auto):>7} {choice or '-':>6} {fmt(row['auto_over_best'], 2):>6} {fmt(p_gpu, 0):>5}"
                  f" {fmt(p_xfer, 0):>6} {fmt(p_cpu, 0):>6} {fmt(row['xfer_over_paper'], 2):>5}")
            # The targets (docs/apps.md).
            if xfer is not None and xfer_d is not None:
                check("lake within 1.10 x direct (with transfers)", xfer <= 1.10 * xfer_d,
                      f"{app} b{b}: {xfer:.1f} vs {xfer_d:.1f} us ({xfer / xfer_d:.2f} x)")
            if xfer is not None and p_xfer is not None:
                lim = 0.5 if b <= 64 else 0.7
                check(f"<= {lim} x the paper's with-transfers figure", xfer <= lim * p_xfer,
                      f"{app} b{b}: {xfer:.1f} vs paper {p_xfer:.0f} us ({xfer / p_xfer:.2f} x)")
            if b == 1 and xfer is not None and floor is not None:
                check("batch 1 within 1.6 x the empty launch + sync", xfer <= 1.6 * floor,
                      f"{app}: {xfer:.1f} vs floor {floor:.1f} us ({xfer / floor:.2f} x)")
            if auto is not None and best is not None:
                check("auto within 1.10 x the better of cpu/gpu", auto <= 1.10 * best,
                      f"{app} b{b}: auto {auto:.1f} ({choice}) vs best {best:.1f} us ({auto / best:.2f} x)")
            if copy is not None and infer is not None:
                # Copies add work to the launch + sync; mapped memory is that same
                # launch + sync, so jitter may put it on either side.
                check("with transfers (copies) never below inference only", copy >= infer,
                      f"{app} b{b}: {copy:.1f} < {infer:.1f} us")
        if app == "linnos+0":
            c1 = med(runs, (app, "lake", 1, "cpu"))
            if c1 is not None:
                check("LinnOS+0 CPU at batch 1 under 7 us", c1 < 7.0, f"{c1:.2f} us (mean {mean(runs, (app, 'lake', 1, 'cpu')):.2f})")

    with open(os.path.join(out, "report.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(report[0]) if report else ["app"])
        w.writeheader()
        for r in report:
            w.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in r.items()})

    print("\n== targets (medians over rounds; 'x/p' uses the median, the paper's figures are means)")
    names = []
    for n, _, _ in verdicts:
        if n not in names:
            names.append(n)
    for n in names:
        total = sum(1 for m, _, _ in verdicts if m == n)
        bad = misses.get(n, [])
        print(f"{'MET ' if not bad else 'MISS'} {n}: {total - len(bad)}/{total}")
        for wmsg in bad[:12]:
            print(f"       miss: {wmsg}")
        if len(bad) > 12:
            print(f"       ... {len(bad) - 12} more")
    columns = ("cpu: CPU path; floor: empty launch + cuCtxSynchronize (lake); infer/infer_d: inference only, "
               "lake/direct; copy, mapped, poll: with transfers by copies / mapped memory / mapped memory with the "
               "completion polled (lake); xfer/pick: the app's "
               "choice; xfer_d: direct's; L/D: xfer / xfer_d; x/flr: xfer / floor; dev: CUDA-event device time; "
               "auto: auto mode and what it chose; a/best: auto / min(cpu, xfer); p_*: the paper (A100); "
               "x/p: xfer / paper's with transfers.  All in us.")
    print("\n" + columns)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
