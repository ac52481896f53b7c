# SPDX-License-Identifier: GPL-2.0 OR MIT
"""Kleio's CPU path against an independent numpy reference (float64).

Run by CTest (unit_kleio) with KLEIO_CPU_RUN set to the kleio-cpu-run
program: the CPU path's own code (apps/kleio/kleio_cpu.c, kleio_io.c) on
inputs and weights made here.

Tolerance, stated: every probability within 1e-5 relative plus 1e-7
absolute of numpy's float64 forward pass; the predicted class identical
wherever numpy's top two probabilities differ by more than 1e-6 relative,
i.e. the top two logits by more than ~1e-6 (closer calls are counted and
must be rare; float32 logits are good to ~1e-7 of their size).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import kleio_weights as kw  # noqa: E402

T, V, H = kw.T, kw.V, kw.H
VALUES = [60, 500, 560, 60, 320, 620, 440, 180, 60, 620, 560, 240, 60,
          360, 620, 380, 180, 120, 620, 620, 100, 60, 420, 620, 340, 140]
RTOL, ATOL = 1e-5, 1e-7
CLASS_MARGIN = 1e-6


def fixed_inputs(n):
    return np.array([[VALUES[s % 20 + t] for t in range(T)] for s in range(n)], dtype=np.int32)


def reference(arrays, cls):
    """Keras semantics in float64: LSTM(256, sequences) -> LSTM(256) -> Dense(621) -> softmax."""
    k1, r1, b1, k2, r2, b2, kd, bd = [a.astype(np.float64) for a in arrays]

    def sig(x):
        return 1.0 / (1.0 + np.exp(-x))

    def lstm(xs, kernel, rec, bias):
        h = np.zeros((xs[0].shape[0], H))
        c = np.zeros_like(h)
        out = []
        for x in xs:
            z = x @ kernel + h @ rec + bias
            i, f, g, o = sig(z[:, :H]), sig(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sig(z[:, 3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
            out.append(h)
        return out

    onehot = np.eye(V + 1)[:, :V]  # row V: a class outside 0..620 encodes as zeros (tf.one_hot)
    valid = np.where((cls >= 0) & (cls < V), cls, V)
    h1 = lstm([onehot[valid[:, t]] for t in range(T)], k1, r1, b1)
    h2 = lstm(h1, k2, r2, b2)[-1]
    logits = h2 @ kd + bd
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def run_cpu(tmp_path, weights, cls, dump=None):
    inp, out = tmp_path / "in.bin", tmp_path / "out.bin"
    cls.astype("<i4").tofile(inp)
    args = [os.environ["KLEIO_CPU_RUN"], str(weights), str(inp), str(out)]
    if dump:
        args.append("dump=%s" % dump)
    subprocess.run(args, check=True)
    raw = np.fromfile(out, dtype=np.uint8).reshape(len(cls), 8 + 4 * V)
    got_cls = raw[:, :4].copy().view("<i4")[:, 0]
    got_prob = raw[:, 4:8].copy().view("<f4")[:, 0]
    probs = raw[:, 8:].copy().view("<f4")
    return got_cls, got_prob, probs


def check(ref, got_cls, got_prob, probs, rtol=RTOL):
    err = np.abs(probs - ref)
    assert np.all(err <= rtol * ref + ATOL), "max error %g (relative %g at p >= 1e-3)" % (
        err.max(), (err / ref)[ref >= 1e-3].max())
    order = np.sort(ref, axis=1)
    clear = (order[:, -1] - order[:, -2]) > CLASS_MARGIN * order[:, -1]
    assert np.array_equal(got_cls[clear], ref.argmax(axis=1)[clear])
    # The reported class is the row's own argmax, and its probability is that row's.
    assert np.array_equal(got_cls, probs.argmax(axis=1))
    assert np.array_equal(got_prob, probs[np.arange(len(probs)), got_cls])
    return int(np.count_nonzero(~clear))


def random_arrays(seed, scale):
    """Random weights and biases: uniform, scaled, the dense kernel 8 times more (the softmax spreads)."""
    rng = np.random.default_rng(seed)
    factors = [1, 1, 4, 1, 1, 4, 8, 4]
    return [(rng.uniform(-1, 1, s) * scale * f).astype(np.float32) for s, f in zip(kw.SHAPES, factors)]


def test_default_weights_are_the_stated_prng(tmp_path):
    """The app's default weights are Glorot-uniform from the stated splitmix64 streams."""
    dump = tmp_path / "params.bin"
    run_cpu(tmp_path, "seed=42", fixed_inputs(1), dump=dump)
    got = np.fromfile(dump, dtype="<f4")
    want = np.concatenate([a.ravel() for a in kw.default_arrays(42)])
    assert np.array_equal(got, want)
    # Glorot-uniform bounds: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).
    for a, shape in zip(kw.default_arrays(42), kw.SHAPES):
        if len(shape) == 2:
            limit = np.sqrt(6.0 / sum(shape))
            assert a.min() >= -limit and a.max() < limit and abs(a.mean()) < limit / 50


def test_fixed_inputs_default_weights(tmp_path):
    cls = fixed_inputs(80)
    got_cls, got_prob, probs = run_cpu(tmp_path, "seed=42", cls)
    ref = reference(kw.default_arrays(42), cls)
    assert check(ref, got_cls, got_prob, probs) == 0
    # The 20 windows repeat: every replica gives its window's result exactly.
    assert np.array_equal(probs[20:], np.tile(probs[:20], (3, 1)))


# Logits reach about +-5, +-15 and +-100: in the last case float32 rounding of
# the logits alone moves probabilities by ~1e-4 relative, so the tolerance is
# 1e-3 there (the classes must still agree).
@pytest.mark.parametrize("seed,scale,rtol", [(1, 0.05, RTOL), (2, 0.2, RTOL), (3, 0.1, RTOL),
                                             (6, 0.5, 1e-3)])
def test_random_weights_and_inputs(tmp_path, seed, scale, rtol):
    arrays = random_arrays(seed, scale)
    wfile = tmp_path / "w.kleio"
    wfile.write_bytes(kw.pack(arrays))
    rng = np.random.default_rng(100 + seed)
    cls = rng.integers(0, V, size=(37, T), dtype=np.int32)  # not a multiple of the block
    cls[0] = 0
    cls[1] = V - 1
    got_cls, got_prob, probs = run_cpu(tmp_path, wfile, cls)
    ref = reference(arrays, cls)
    assert check(ref, got_cls, got_prob, probs, rtol) <= 1
    if scale >= 0.2:
        assert ref.max() > 0.5  # a confident softmax: errors in any layer would show


def test_weights_file_round_trip(tmp_path):
    arrays = random_arrays(4, 0.1)
    npz = tmp_path / "model.npz"
    np.savez(npz, *arrays)  # as np.savez(f, *model.get_weights()) writes a Keras model
    wfile, back = tmp_path / "w.kleio", tmp_path / "back.npz"
    tool = os.path.join(HERE, "..", "kleio_weights.py")
    subprocess.run([sys.executable, tool, "--npz", str(npz), "-o", str(wfile)], check=True)
    subprocess.run([sys.executable, tool, "--to-npz", str(wfile), "-o", str(back)], check=True)
    z = np.load(back)
    for name, a in zip(kw.NAMES, arrays):
        assert np.array_equal(z[name], a)
    dump = tmp_path / "params.bin"
    run_cpu(tmp_path, wfile, fixed_inputs(1), dump=dump)
    assert np.array_equal(np.fromfile(dump, dtype="<f4"), np.concatenate([a.ravel() for a in arrays]))
    default = tmp_path / "default.kleio"
    subprocess.run([sys.executable, tool, "--seed", "42", "-o", str(default)], check=True)
    run_cpu(tmp_path, default, fixed_inputs(1), dump=dump)
    assert np.array_equal(np.fromfile(dump, dtype="<f4"),
                          np.concatenate([a.ravel() for a in kw.default_arrays(42)]))


def bad_file(data, tmp_path, name):
    f = tmp_path / name
    f.write_bytes(data)
    r = subprocess.run([os.environ["KLEIO_CPU_RUN"], str(f), "/dev/null", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    return r.stderr


def test_bad_weights_files_are_refused(tmp_path):
    good = kw.pack(random_arrays(5, 0.1))
    assert "wrong size" in bad_file(good[:-4], tmp_path, "short")
    assert "magic" in bad_file(b"X" + good[1:], tmp_path, "magic")
    shape = bytearray(good)
    shape[16] = 0x6c  # V = 620
    assert "shape" in bad_file(bytes(shape), tmp_path, "shape")
    nan = bytearray(good)
    nan[64 + 4 * 1000:64 + 4 * 1001] = np.array([np.nan], dtype="<f4").tobytes()
    assert "NaN" in bad_file(bytes(nan), tmp_path, "nan")
    with pytest.raises(ValueError):
        kw.pack(random_arrays(5, 0.1)[:7])
    arrays = random_arrays(5, 0.1)
    arrays[3] = arrays[3][:, :100]
    with pytest.raises(ValueError):
        kw.pack(arrays)


def test_out_of_range_classes_encode_as_zeros(tmp_path):
    """An input class outside 0..620 is an all-zero one-hot vector, as tf.one_hot makes it."""
    arrays = random_arrays(7, 0.2)
    wfile = tmp_path / "w.kleio"
    wfile.write_bytes(kw.pack(arrays))
    cls = fixed_inputs(8)
    cls[1, 2] = V
    cls[3, 0] = -1
    cls[5] = [2**31 - 1, -2**31, V + 7, 1000, -5, V]
    got_cls, got_prob, probs = run_cpu(tmp_path, wfile, cls)
    ref = reference(arrays, cls)
    check(ref, got_cls, got_prob, probs)
    ref_valid = reference(arrays, fixed_inputs(8))
    assert not np.allclose(ref[1], ref_valid[1])  # the zero vector changed the result


def test_the_program_runs_the_same_cpu_path(tmp_path):
    """lake-kleio (the kit's program, CPU mode) gives kleio-cpu-run's outputs bit for bit."""
    arrays = random_arrays(8, 0.2)
    wfile = tmp_path / "w.kleio"
    wfile.write_bytes(kw.pack(arrays))
    rng = np.random.default_rng(9)
    cls = rng.integers(0, V, size=(29, T), dtype=np.int32)
    cls[4, 1] = V + 3
    got_cls, got_prob, _ = run_cpu(tmp_path, wfile, cls)
    inp, out = tmp_path / "rows.in", tmp_path / "rows.out"
    cls.astype("<i4").tofile(inp)
    subprocess.run([os.environ["LAKE_KLEIO"], "gpu=0", "quiet=1", "weights=%s" % wfile, "predict",
                    "app=kleio", "mode=cpu", "batch=13", "in=%s" % inp, "out=%s" % out], check=True)
    rows = np.fromfile(out, dtype=[("cls", "<i4"), ("prob", "<f4")])
    assert np.array_equal(rows["cls"], got_cls)
    assert np.array_equal(rows["prob"].view("<u4"), got_prob.view("<u4"))


def test_the_program_refuses_a_bad_weights_file(tmp_path):
    bad = tmp_path / "bad.kleio"
    bad.write_bytes(kw.pack(random_arrays(5, 0.1))[:-8])
    r = subprocess.run([os.environ["LAKE_KLEIO"], "gpu=0", "weights=%s" % bad, "info"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "wrong size" in r.stderr
    r = subprocess.run([os.environ["LAKE_KLEIO"], "gpu=0", "weights=%s" % (tmp_path / "none"), "info"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "cannot read weights file" in r.stderr
