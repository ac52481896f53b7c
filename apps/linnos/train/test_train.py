"""LinnOS training (linnos_train.py) and trace collection (linnos-trace):
features of a hand-made trace digit by digit; the shipped synthetic trace
is the generator's; training learns it (held-out accuracy >= 95 %, measured
97 %); the app computes exactly the trained integer model from the weights
file; the collector's trace on a real file.  Part of CTest unit_apps.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
BUILD = os.environ.get("LAKE_APPS_BUILD", os.path.join(SRC, "build"))
SYNTH = os.path.join(HERE, "data", "synthetic_trace.csv")
sys.path.insert(0, HERE)
import linnos_train as L  # noqa: E402

OUT = np.dtype([("score", "<i8", (2,))])


def trace(rows):
    return {
        "submit": np.array([r[0] for r in rows], dtype=float),
        "read": np.array([r[1] == "R" for r in rows]),
        "latency": np.array([r[2] for r in rows], dtype=float),
        "pending": np.array([r[3] for r in rows]),
    }


def test_features_by_hand():
    # Four reads done by t=100 (latencies 10, 9, 9, 9 us, pending 0 at their
    # issue), a write, then a read issued at t=100 with 0 pending: the
    # paper's fixed input.  A fifth read finishing after 100 is not history.
    rows = [(0, "R", 10, 0), (20, "R", 9, 0), (40, "R", 9, 0), (60, "R", 9, 0),
            (70, "W", 5, 3), (95, "R", 50, 1234), (100, "R", 7, 0)]
    X, lat = L.features(trace(rows))
    assert len(X) == 6 and list(lat) == [10, 9, 9, 9, 50, 7]
    assert list(X[5]) == [0] * 15 + [0, 0, 1, 0, 0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 0, 9]
    # The first read has no history; the read at 95 has 999 pending (clamped).
    assert list(X[0]) == [0] * 31
    assert list(X[4][12:15]) == [9, 9, 9]
    # History is oldest first: the second read saw only the first (10 us).
    assert list(X[1][:12]) == [0] * 12 and list(X[1][27:31]) == [0, 0, 1, 0]


def test_shipped_trace_is_the_generators(tmp_path):
    out = tmp_path / "t.csv"
    assert L.main(["synth", "-o", str(out), "--count", "3000", "--seed", "1"]) == 0
    assert out.read_bytes() == open(SYNTH, "rb").read()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "w0.txt"
    assert L.main(["train", SYNTH, "-o", str(path)]) == 0
    return path


def test_training_learns_the_synthetic_trace(trained):
    text = open(trained).read()
    assert "# model linnos+0\n" in text
    acc = float(text.split("accuracy ")[1].split()[0])
    train_acc = float(text.split("training accuracy ")[1].split()[0])
    assert acc >= 0.95 and train_acc >= 0.98, (acc, train_acc)
    # Much better than always answering "fast" (90 %).
    assert acc > 0.92


def test_app_computes_the_trained_model(tmp_path, trained):
    """lake-linnos with the weights file: the scores of the Python integer model, exactly."""
    X, lat = L.features(L.read_trace(SYNTH))
    q = {}
    for name, (r, c, vals) in _arrays(trained).items():
        q[name] = np.array([int(v) for v in vals], dtype=np.int64).reshape(r, c)
    fin, fout = tmp_path / "in.bin", tmp_path / "out.bin"
    fin.write_bytes(X.tobytes())
    prog = os.path.join(BUILD, "apps", "linnos", "lake-linnos")
    subprocess.run([prog, "gpu=0", "quiet=1", f"weights={trained}", "predict", "app=linnos+0",
                    "mode=cpu", f"in={fin}", f"out={fout}"], check=True, timeout=120)
    got = np.frombuffer(fout.read_bytes(), dtype=OUT)["score"]
    assert (got == L.int_scores(q, X)).all()
    y, _ = L.labels(lat, 90)
    assert (L.predict_slow(got) == y).mean() > 0.95


def _arrays(path):
    arrays, cur = {}, None
    for line in open(path):
        if line.startswith("# ") and "x" in line.split()[-1] and line.split()[-1].replace("x", "").isdigit():
            name, dims = line.split()[1], line.split()[2]
            r, c = map(int, dims.split("x"))
            arrays[name] = (r, c, [])
            cur = name
        elif not line.startswith("#") and cur:
            arrays[cur][2].extend(line.split())
    return arrays


def test_deeper_model_file(tmp_path):
    """+1: trained extra layer, biases x10^6 and x10^9; applies to linnos+1 only."""
    path = tmp_path / "w1.txt"
    assert L.main(["train", SYNTH, "-o", str(path), "--extra", "1", "--epochs", "15"]) == 0
    a = _arrays(path)
    assert set(a) == {"weight_0_T", "bias_0", "weight_1_T", "bias_1", "weight_M_1_T", "bias_M_1"}
    assert "# model linnos+1\n" in open(path).read()
    prog = os.path.join(BUILD, "apps", "linnos", "lake-linnos")
    r = subprocess.run([prog, "gpu=0", f"weights={path}", "info"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0
    assert f"linnos+1: weights from {path}" in r.stderr
    assert "linnos+0: CPU path on the fixed input: 272198 543598 slow" in r.stderr


def test_collector_on_a_file(tmp_path):
    prog = os.path.join(BUILD, "apps", "linnos", "linnos-trace")
    target = os.path.join(BUILD, "linnos-trace-test.bin")     # not tmpfs: O_DIRECT
    with open(target, "wb") as f:
        f.write(os.urandom(4 << 20))
    out = tmp_path / "trace.csv"
    try:
        r = subprocess.run([prog, "-n", "400", "-r", "4000", "-d", "8", "--seed", "3", target,
                            str(out)], capture_output=True, text=True, timeout=120)
        if r.returncode and "no O_DIRECT" in r.stderr:
            r = subprocess.run([prog, "-n", "400", "-r", "4000", "-d", "8", "--no-direct", target,
                                str(out)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        t = L.read_trace(str(out))
        assert len(t["submit"]) == 400 and t["read"].all()
        assert (np.diff(t["submit"]) >= 0).all() and (t["latency"] > 0).all()
        rows = open(out).read().splitlines()[1:]
        assert all(int(l.split(",")[2]) % 4096 == 0 and int(l.split(",")[3]) % 4096 == 0 for l in rows)
        assert (t["pending"] >= 0).all() and t["pending"].max() < 8 * 256
        X, _ = L.features(t)
        assert X.shape == (400, 31) and X.max() <= 9
        # Writes to a block device are refused; a bad target is reported.
        r = subprocess.run([prog, "-w", "0.5", "/dev/null", str(out)], capture_output=True, text=True)
        assert r.returncode != 0
    finally:
        os.unlink(target)
