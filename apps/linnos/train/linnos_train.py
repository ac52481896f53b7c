#!/usr/bin/env python3
"""LinnOS training: an I/O trace -> features and fast/slow labels -> the
31-256-2 model (+1/+2: one or two extra 256-wide layers) -> a weights file
that lake-linnos / lake_linnos.ko load (weights=FILE).

  linnos_train.py train TRACE.csv -o WEIGHTS.txt [--extra 0|1|2] [--epochs N]
                  [--percentile 90] [--seed S] [--test-fraction 0.2]
  linnos_train.py features TRACE.csv -o FEATURES.npz
  linnos_train.py synth -o TRACE.csv [--count N] [--seed S]

TRACE.csv is linnos-trace's output (submit_us,op,offset,bytes,latency_us,
pending_4k); only reads are predicted.  Features of a read (31 decimal
digits, each a byte 0-9): the pending counts of the last 4 reads completed
before it was issued, at their own issue (3 digits each, oldest first,
clamped to 999), its own pending count (3 digits), then those 4 reads'
latencies in us (4 digits each, clamped to 9999); missing history is 0.
Label: slow when its latency >= the trace's --percentile of read latencies.

Training as the original LinnOS (Keras Dense(256, relu) -> Dense(2)):
categorical hinge loss, weight 5 on slow reads predicted fast, Adam, batch
128.  Output 0 is "fast": the app predicts fast when score[0] >= score[1].
The weights are written as integers the app computes with exactly: layer
weights x1000, biases x1000^(layer), so nothing is rescaled between layers
(bias_0 x10^3, bias_1 x10^6 for +0).  The file says "# model linnos+N",
so the app applies it to that model only.
"""
import argparse
import csv
import sys

import numpy as np

FEATURES = 31
HIDDEN = 256
SLOW_WEIGHT = 5.0          # the cost of a slow read predicted fast


# --- traces and features -----------------------------------------------------

def read_trace(path):
    """The trace's columns as numpy arrays (every I/O, reads and writes)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"{path}: no I/Os")
    need = {"submit_us", "op", "latency_us", "pending_4k"}
    if not need <= set(rows[0]):
        sys.exit(f"{path}: not a linnos-trace CSV (needs columns {sorted(need)})")
    return {
        "submit": np.array([float(r["submit_us"]) for r in rows]),
        "read": np.array([r["op"] == "R" for r in rows]),
        "latency": np.array([float(r["latency_us"]) for r in rows]),
        "pending": np.array([int(r["pending_4k"]) for r in rows]),
    }


def digits(v, n):
    """v (non-negative int, already clamped) as n decimal digits, most significant first."""
    return [(v // 10 ** (n - 1 - i)) % 10 for i in range(n)]


def features(trace):
    """(X, latency): X is reads x 31 digit bytes, latency their latencies in us."""
    reads = np.nonzero(trace["read"])[0]
    reads = reads[np.argsort(trace["submit"][reads], kind="stable")]
    done = trace["submit"][reads] + trace["latency"][reads]
    by_done = reads[np.argsort(done, kind="stable")]
    done_sorted = np.sort(done, kind="stable")
    X = np.zeros((len(reads), FEATURES), dtype=np.uint8)
    for k, i in enumerate(reads):
        # The last 4 reads completed by the time read i was issued.
        m = np.searchsorted(done_sorted, trace["submit"][i], side="right")
        hist = list(by_done[max(0, m - 4):m])
        hist = [None] * (4 - len(hist)) + hist          # oldest first; missing = 0
        row = []
        for h in hist:
            row += digits(0 if h is None else min(int(trace["pending"][h]), 999), 3)
        row += digits(min(int(trace["pending"][i]), 999), 3)
        for h in hist:
            lat = 0 if h is None else min(int(trace["latency"][h]), 9999)
            row += digits(lat, 4)
        X[k] = row
    return X, trace["latency"][reads]


def labels(latency, percentile):
    """1 = slow (latency >= the percentile), 0 = fast; and the threshold."""
    threshold = float(np.percentile(latency, percentile))
    return (latency >= threshold).astype(np.int64), threshold


# --- the model ---------------------------------------------------------------

def init_params(extra, rng):
    """Glorot-uniform weights (Keras's default), zero biases; W[l] is in x out."""
    sizes = [FEATURES] + [HIDDEN] * (1 + extra) + [2]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        lim = np.sqrt(6.0 / (a + b))
        params.append([rng.uniform(-lim, lim, size=(a, b)), np.zeros(b)])
    return params


def forward(params, x):
    acts = [x]
    for W, b in params[:-1]:
        acts.append(np.maximum(acts[-1] @ W + b, 0.0))
    W, b = params[-1]
    return acts, acts[-1] @ W + b


def hinge_loss(scores, y):
    """Categorical hinge, weighted: max(0, 1 + s_other - s_true), x5 for slow predicted fast."""
    n = len(y)
    s_true = scores[np.arange(n), y]
    s_other = scores[np.arange(n), 1 - y]
    margin = 1.0 + s_other - s_true
    pred_fast = scores[:, 0] >= scores[:, 1]
    w = np.where((y == 1) & pred_fast, SLOW_WEIGHT, 1.0)
    active = margin > 0
    grad = np.zeros_like(scores)
    g = (w * active) / n
    grad[np.arange(n), y] -= g
    grad[np.arange(n), 1 - y] += g
    return float((w * np.maximum(margin, 0)).mean()), grad


def train(X, y, extra, epochs, seed, lr=1e-3, batch=128):
    rng = np.random.default_rng(seed)
    params = init_params(extra, rng)
    m = [[np.zeros_like(p) for p in layer] for layer in params]
    v = [[np.zeros_like(p) for p in layer] for layer in params]
    b1, b2, eps, t = 0.9, 0.999, 1e-7, 0
    x = X.astype(np.float64)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch):
            idx = order[s:s + batch]
            acts, scores = forward(params, x[idx])
            _, g = hinge_loss(scores, y[idx])
            t += 1
            for l in range(len(params) - 1, -1, -1):
                W, _ = params[l]
                gW, gb = acts[l].T @ g, g.sum(0)
                if l:
                    g = (g @ W.T) * (acts[l] > 0)
                for j, gp in enumerate((gW, gb)):
                    m[l][j] = b1 * m[l][j] + (1 - b1) * gp
                    v[l][j] = b2 * v[l][j] + (1 - b2) * gp * gp
                    mh = m[l][j] / (1 - b1 ** t)
                    vh = v[l][j] / (1 - b2 ** t)
                    params[l][j] -= lr * mh / (np.sqrt(vh) + eps)
    return params


def quantize(params):
    """The app's integer model: weights x1000, layer k's bias x1000^(k+1)."""
    names = {}
    nl = len(params)
    for k, (W, b) in enumerate(params):
        wq = np.rint(W.T * 1000).astype(np.int64)            # out x in, as the file's *_T
        bq = np.rint(b * 1000.0 ** (k + 1)).astype(np.int64)[None, :]
        if k == 0:
            names["weight_0_T"], names["bias_0"] = wq, bq
        elif k == nl - 1:
            names["weight_1_T"], names["bias_1"] = wq, bq
        else:
            names[f"weight_M_{k}_T"], names[f"bias_M_{k}"] = wq, bq
    return names


def int_scores(q, X):
    """The app's arithmetic: int64 (wrapping), ReLU between layers."""
    u = lambda a: a.view(np.uint64)
    relu = lambda h: np.where(h.view(np.int64) < 0, np.uint64(0), h)
    h = relu(X.astype(np.uint64) @ u(q["weight_0_T"]).T + u(q["bias_0"]).ravel())
    k = 1
    while f"weight_M_{k}_T" in q:
        h = relu(h @ u(q[f"weight_M_{k}_T"]).T + u(q[f"bias_M_{k}"]).ravel())
        k += 1
    return (h @ u(q["weight_1_T"]).T + u(q["bias_1"]).ravel()).view(np.int64)


def predict_slow(scores):
    return (scores[:, 0] < scores[:, 1]).astype(np.int64)


def write_weights(path, q, extra, comments):
    order = ["weight_0_T", "bias_0", "weight_1_T", "bias_1"]
    order += [n for k in range(1, extra + 1) for n in (f"weight_M_{k}_T", f"bias_M_{k}")]
    with open(path, "w") as f:
        for c in comments:
            f.write(f"# {c}\n")
        f.write(f"# model linnos+{extra}\n")
        for name in order:
            a = q[name]
            f.write(f"# {name} {a.shape[0]}x{a.shape[1]}\n")
            for row in a:
                f.write(" ".join(str(int(v)) for v in row) + "\n")


def accuracy(pred, y):
    false_fast = int(((pred == 0) & (y == 1)).sum())
    return float((pred == y).mean()), false_fast


# --- the synthetic trace -----------------------------------------------------

def synth(count, seed):
    """A deterministic trace where a read's latency is 100 us + 2 us x pending
    (+ under 1 us of noise): slow and fast are separable on the features."""
    rng = np.random.default_rng(seed)
    t, pending, rows = 0.0, 0, []
    for _ in range(count):
        t += rng.exponential(200.0)
        pending = int(abs(pending + rng.normal(0, 40)))     # a walk reflected at 0 and 700
        if pending > 700:
            pending = 1400 - pending
        if rng.random() < 0.05:
            pending = int(rng.integers(0, 700))
        write = rng.random() < 0.3
        size = 4096 * max(1, int(np.ceil(np.exp(rng.normal(9.0, 1.0)) / 4096)))
        latency = 100.0 + 2.0 * pending + rng.random()
        offset = 4096 * int(rng.integers(0, 1 << 18))
        rows.append((t, "W" if write else "R", offset, size, latency, pending))
    return rows


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("train", help="train and write a weights file")
    p.add_argument("trace")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--extra", type=int, choices=(0, 1, 2), default=0)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--percentile", type=float, default=90.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--test-fraction", type=float, default=0.2)
    p = sub.add_parser("features", help="write features and labels (npz: X, latency, slow)")
    p.add_argument("trace")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--percentile", type=float, default=90.0)
    p = sub.add_parser("synth", help="write the deterministic synthetic trace")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--count", type=int, default=3000)
    p.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)

    if a.cmd == "synth":
        with open(a.out, "w") as f:
            f.write("submit_us,op,offset,bytes,latency_us,pending_4k\n")
            for r in synth(a.count, a.seed):
                f.write(f"{r[0]:.3f},{r[1]},{r[2]},{r[3]},{r[4]:.3f},{r[5]}\n")
        return 0

    X, lat = features(read_trace(a.trace))
    y, threshold = labels(lat, a.percentile)
    if a.cmd == "features":
        np.savez(a.out, X=X, latency=lat, slow=y)
        print(f"{len(X)} reads, slow >= {threshold:.1f} us ({y.mean():.1%})")
        return 0

    rng = np.random.default_rng(a.seed)
    order = rng.permutation(len(X))
    ntest = int(len(X) * a.test_fraction)
    test, tr = order[:ntest], order[ntest:]
    params = train(X[tr], y[tr], a.extra, a.epochs, a.seed)
    q = quantize(params)
    _, fscores = forward(params, X[test].astype(np.float64))
    facc, _ = accuracy(predict_slow(fscores), y[test])
    iacc, false_fast = accuracy(predict_slow(int_scores(q, X[test])), y[test])
    tacc, _ = accuracy(predict_slow(int_scores(q, X[tr])), y[tr])
    summary = (f"linnos+{a.extra}: {len(X)} reads, slow >= {threshold:.1f} us ({y.mean():.1%}); "
               f"held-out {ntest}: accuracy {iacc:.4f} as integers ({facc:.4f} as floats), "
               f"{false_fast} slow predicted fast; training accuracy {tacc:.4f}")
    write_weights(a.out, q, a.extra, [
        f"LinnOS weights trained by apps/linnos/train/linnos_train.py from {a.trace}",
        summary,
        "Layout: as apps/linnos/data/linnos_weights.txt (int64; weights x10^3, layer k's bias x10^(3k)).",
    ])
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
