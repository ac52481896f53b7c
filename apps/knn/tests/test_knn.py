# SPDX-License-Identifier: GPL-2.0 OR MIT
"""KNN's CPU path against an independent numpy reference, exactly.

Run by CTest (unit_knn) with KNN_CPU_RUN set to the knn-cpu-run program: the
CPU path's own code (apps/knn/knn_cpu.c, knn_io.c) on data made here.

numpy computes the squared distances in float32 in the order knn_model.h
fixes (d = q - r; acc = acc + d * d over the features in order), sorts
(distance, index) pairs, and takes sqrt: indices, distances and majority
labels must equal the CPU path's bit for bit.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import knn_data as kd  # noqa: E402

NREF, DIM, K = kd.NREF, kd.DIM, kd.K
OUT = np.dtype([("idx", "<i4", K), ("dist", "<f4", K), ("label", "<i4")])


def reference(refs, labels, q):
    refs = refs.astype(np.float32)
    q = q.astype(np.float32)
    acc = np.zeros((len(q), NREF), dtype=np.float32)
    for k in range(DIM):
        d = q[:, k, None] - refs[None, :, k]
        acc = acc + d * d
    order = np.lexsort((np.broadcast_to(np.arange(NREF), acc.shape), acc), axis=1)[:, :K]
    dist = np.sqrt(np.take_along_axis(acc, order, axis=1))
    label = []
    for row in order:
        lab = labels[row].astype(int)
        count = np.bincount(lab, minlength=kd.NLABELS)
        # the most frequent; on a tie, the label of the nearer point
        label.append(next(l for l in lab if count[l] == count.max()))
    return order, dist, np.array(label)


def run_cpu(tmp_path, data, queries, dump=None):
    out = tmp_path / "out.bin"
    if not isinstance(queries, str):
        qfile = tmp_path / "q.bin"
        queries.astype("<f4").tofile(qfile)
        queries = str(qfile)
    args = [os.environ["KNN_CPU_RUN"], str(data), queries, str(out)]
    if dump:
        args.append("dump=%s" % dump)
    subprocess.run(args, check=True)
    return np.fromfile(out, dtype=OUT)


def check(got, refs, labels, q):
    idx, dist, label = reference(refs, labels, q)
    assert np.array_equal(got["idx"], idx)
    assert np.array_equal(got["dist"].view("<u4"), dist.view("<u4"))  # bit for bit
    assert np.array_equal(got["label"], label)


def test_default_data_is_the_stated_prng(tmp_path):
    dump = tmp_path / "dump.bin"
    run_cpu(tmp_path, "seed=42", "queries=64", dump=dump)
    raw = np.fromfile(dump, dtype=np.uint8)
    refs, labels = kd.default_data(42)
    n = 4 * NREF * DIM
    assert np.array_equal(raw[:n].view("<f4").reshape(NREF, DIM), refs)
    assert np.array_equal(raw[n:n + NREF], labels)
    assert np.array_equal(raw[n + NREF:].view("<f4").reshape(64, DIM), kd.default_queries(42, 64))
    assert 0.45 < labels.mean() < 0.55 and refs.min() >= 0 and refs.max() < 1


@pytest.mark.parametrize("nq", [1, 3, 64])
def test_default_data_and_queries(tmp_path, nq):
    got = run_cpu(tmp_path, "seed=42", "queries=%d" % nq)
    refs, labels = kd.default_data(42)
    check(got, refs, labels, kd.default_queries(42, nq))


def test_random_data_with_ties(tmp_path):
    """Small integer features and duplicated points: many equal distances, broken by index."""
    rng = np.random.default_rng(7)
    refs = rng.integers(0, 3, size=(NREF, DIM)).astype(np.float32)
    refs[1000:1100] = refs[0]  # exact duplicates
    refs[2000:2050] = refs[5]
    labels = rng.integers(0, 2, size=NREF).astype(np.uint8)
    q = rng.integers(0, 3, size=(21, DIM)).astype(np.float32)
    q[0] = refs[0]  # 101 points at distance 0: the 16 lowest indices win
    q[1] = refs[5] + 0.5
    data = tmp_path / "ties.knn"
    data.write_bytes(kd.pack(refs, labels))
    got = run_cpu(tmp_path, data, q)
    check(got, refs, labels, q)
    assert list(got["idx"][0]) == [0] + list(range(1000, 1015))
    assert not got["dist"][0].any()


def test_random_data_wide_range(tmp_path):
    rng = np.random.default_rng(8)
    refs = (rng.standard_normal((NREF, DIM)) * 10.0 ** rng.integers(-3, 3, size=(NREF, 1))).astype(np.float32)
    labels = rng.integers(0, 2, size=NREF).astype(np.uint8)
    q = rng.standard_normal((17, DIM)).astype(np.float32) * 3
    data = tmp_path / "wide.knn"
    data.write_bytes(kd.pack(refs, labels))
    check(run_cpu(tmp_path, data, q), refs, labels, q)


def test_data_file_round_trip(tmp_path):
    refs, labels = kd.default_data(9)
    npz, data, back = tmp_path / "p.npz", tmp_path / "p.knn", tmp_path / "b.npz"
    np.savez(npz, refs=refs, labels=labels)
    tool = os.path.join(HERE, "..", "knn_data.py")
    subprocess.run([sys.executable, tool, "--npz", str(npz), "-o", str(data)], check=True)
    subprocess.run([sys.executable, tool, "--to-npz", str(data), "-o", str(back)], check=True)
    z = np.load(back)
    assert np.array_equal(z["refs"], refs) and np.array_equal(z["labels"], labels)
    seeded = tmp_path / "s.knn"
    subprocess.run([sys.executable, tool, "--seed", "9", "-o", str(seeded)], check=True)
    assert seeded.read_bytes() == data.read_bytes()
    q = kd.default_queries(9, 5)
    assert np.array_equal(run_cpu(tmp_path, data, q), run_cpu(tmp_path, "seed=9", "queries=5"))


def refused(tmp_path, data, queries="queries=1"):
    f = tmp_path / "bad"
    f.write_bytes(data)
    r = subprocess.run([os.environ["KNN_CPU_RUN"], str(f), queries, str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    return r.stderr


def test_bad_data_is_refused(tmp_path):
    refs, labels = kd.default_data(1)
    good = kd.pack(refs, labels)
    assert "wrong size" in refused(tmp_path, good[:-1])
    assert "magic" in refused(tmp_path, b"Y" + good[1:])
    shape = bytearray(good)
    shape[16] = 64  # DIM = 64
    assert "shape" in refused(tmp_path, bytes(shape))
    bad = bytearray(good)
    bad[-1] = 2
    assert "label" in refused(tmp_path, bytes(bad))
    inf = bytearray(good)
    inf[32:36] = np.array([np.inf], dtype="<f4").tobytes()
    assert "NaN" in refused(tmp_path, bytes(inf))
    with pytest.raises(ValueError):
        kd.pack(refs[:, :64], labels)


def test_the_program_runs_the_same_cpu_path(tmp_path):
    """lake-knn (the kit's program, CPU mode) on a data file equals knn-cpu-run and numpy."""
    rng = np.random.default_rng(11)
    refs = rng.integers(0, 4, size=(NREF, DIM)).astype(np.float32)
    labels = rng.integers(0, 2, size=NREF).astype(np.uint8)
    q = rng.integers(0, 4, size=(23, DIM)).astype(np.float32)
    data = tmp_path / "p.knn"
    data.write_bytes(kd.pack(refs, labels))
    want = run_cpu(tmp_path, data, q)
    inp, out = tmp_path / "rows.in", tmp_path / "rows.out"
    q.astype("<f4").tofile(inp)
    subprocess.run([os.environ["LAKE_KNN"], "gpu=0", "quiet=1", "weights=%s" % data, "predict",
                    "app=knn", "mode=cpu", "batch=6", "in=%s" % inp, "out=%s" % out], check=True)
    got = np.fromfile(out, dtype=OUT)
    assert got.tobytes() == want.tobytes()
    check(got, refs, labels, q)


def test_the_program_refuses_a_bad_data_file(tmp_path):
    refs, labels = kd.default_data(1)
    bad = tmp_path / "bad.knn"
    bad.write_bytes(b"Z" + kd.pack(refs, labels)[1:])
    r = subprocess.run([os.environ["LAKE_KNN"], "gpu=0", "weights=%s" % bad, "info"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "magic" in r.stderr
