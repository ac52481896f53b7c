"""The apps' CPU paths (the user build, lake-<app> gpu=0) against reference
outputs computed here, independently, with numpy: the fixed inputs and the
paper's reference values, and thousands of random rows per app.  Also the
weights-file path of LinnOS (int64 wrap-around) and the run interface's
errors.  CTest: unit_apps (LAKE_APPS_BUILD = the CMake build directory).
"""
import os
import re
import subprocess

import numpy as np
import pytest

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("LAKE_APPS_BUILD", os.path.join(SRC, "build"))


def prog(app):
    p = os.path.join(BUILD, "apps", app, "lake-" + app)
    if not os.access(p, os.X_OK):
        pytest.fail(f"{p} is not built (cmake --build {BUILD})")
    return p


def run(app, *args, check=True):
    r = subprocess.run([prog(app), "gpu=0", "quiet=1", *args], capture_output=True, text=True,
                       timeout=300)
    if check and r.returncode:
        pytest.fail(f"lake-{app} {' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def predict(tmp_path, app, model, rows, out_dtype, batch=None, settings=()):
    """Runs rows (a numpy array) through the program's CPU path; its output rows."""
    fin, fout = tmp_path / "in.bin", tmp_path / "out.bin"
    fin.write_bytes(np.ascontiguousarray(rows).tobytes())
    args = [*settings, "predict", f"app={model}", "mode=cpu", f"in={fin}", f"out={fout}"]
    if batch:
        args.append(f"batch={batch}")
    run(app, *args)
    return np.frombuffer(fout.read_bytes(), dtype=out_dtype)


def weights(path):
    """A weights text file: {name: 2-D array of the numbers as written}."""
    arrays, cur = {}, None
    for line in open(path):
        m = re.match(r"^# (\S+) (\d+)x(\d+)\s*$", line)
        if m:
            cur = m.group(1)
            arrays[cur] = (int(m.group(2)), int(m.group(3)), [])
        elif cur and line.strip() and not line.startswith("#"):
            arrays[cur][2].extend(line.split())
    return {k: (r, c, v) for k, (r, c, v) in arrays.items()}


def as_int(w, name):
    r, c, v = w[name]
    return np.array([int(x) for x in v], dtype=np.int64).reshape(r, c)


def as_f32(w, name):
    r, c, v = w[name]
    return np.array([np.float32(x) for x in v], dtype=np.float32).reshape(r, c)


# --- LinnOS ------------------------------------------------------------------

LINNOS_W = os.path.join(SRC, "apps", "linnos", "data", "linnos_weights.txt")
LINNOS_OUT = np.dtype([("score", "<i8", (2,))])
LINNOS_FIXED = np.array([0] * 15 + [0, 0, 1, 0, 0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 0, 9], dtype=np.uint8)


def linnos_ref(w, x, extra):
    """int64 with wrap-around: numpy's uint64 arithmetic wraps modulo 2^64."""
    u = lambda a: a.astype(np.int64).view(np.uint64)
    relu = lambda h: np.where(h.view(np.int64) < 0, np.uint64(0), h)
    h = relu(x.astype(np.uint64) @ u(w["weight_0_T"]).T + u(w["bias_0"]).ravel())
    for layer in range(1, extra + 1):
        h = relu(h @ u(w[f"weight_M_{layer}_T"]).T + u(w[f"bias_M_{layer}"]).ravel())
    return (h @ u(w["weight_1_T"]).T + u(w["bias_1"]).ravel()).view(np.int64)


@pytest.fixture(scope="module")
def linnos_w():
    w = weights(LINNOS_W)
    return {k: as_int(w, k) for k in w}


@pytest.mark.parametrize("extra,scores,slow", [
    (0, (272198, 543598), True),
    (1, (201373958, 301403755), True),
    (2, (303775520388, 116550011269), False),
])
def test_linnos_fixed_input(tmp_path, linnos_w, extra, scores, slow):
    for batch in (1, 2, 1024):
        out = predict(tmp_path, "linnos", f"linnos+{extra}", np.tile(LINNOS_FIXED, (batch, 1)),
                      LINNOS_OUT)
        assert out.shape == (batch,)
        assert (out["score"] == scores).all(), out["score"][:2]
        assert ((out["score"][:, 0] < out["score"][:, 1]) == slow).all()
    assert tuple(linnos_ref(linnos_w, LINNOS_FIXED[None, :], extra)[0]) == scores


def linnos_random(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 10, size=(n, 31), dtype=np.uint8)
    wide = rng.random(n) < 1 / 16          # beyond the digits: bytes 0-255
    x[wide] = rng.integers(0, 256, size=(wide.sum(), 31), dtype=np.uint8)
    return x


@pytest.mark.parametrize("extra", [0, 1, 2])
def test_linnos_random(tmp_path, linnos_w, extra):
    x = linnos_random(1500, 10 + extra)
    out = predict(tmp_path, "linnos", f"linnos+{extra}", x, LINNOS_OUT, batch=97)
    ref = linnos_ref(linnos_w, x, extra)
    bad = np.nonzero((out["score"] != ref).any(axis=1))[0]
    assert bad.size == 0, f"{bad.size} of {len(x)} rows differ, first row {bad[:1]}"


def write_weights(path, arrays, model=None):
    with open(path, "w") as f:
        f.write("# a LinnOS weights file written by test_apps.py\n")
        if model:
            f.write(f"# model {model}\n")
        for name, a in arrays.items():
            f.write(f"# {name} {a.shape[0]}x{a.shape[1]}\n")
            for row in a:
                f.write(" ".join(str(int(v)) for v in row) + "\n")


def test_linnos_weights_file_wraps(tmp_path, linnos_w):
    """Weights over the whole int64 range: every product and sum wraps, identically."""
    rng = np.random.default_rng(7)
    big = {k: rng.integers(-2**63, 2**63 - 1, size=v.shape, dtype=np.int64, endpoint=True)
           for k, v in linnos_w.items()}
    path = tmp_path / "big.txt"
    write_weights(path, big)
    x = linnos_random(1000, 8)
    for extra in (0, 2):
        out = predict(tmp_path, "linnos", f"linnos+{extra}", x, LINNOS_OUT,
                      settings=[f"weights={path}"])
        ref = linnos_ref(big, x, extra)
        assert (out["score"] == ref).all()
        # The reference really wrapped: a float64 product of these is far beyond int64.
        assert np.abs(big["weight_0_T"].astype(np.float64)).max() > 2**60


def test_linnos_weights_file_for_one_model(tmp_path, linnos_w):
    """A '# model linnos+1' file applies to linnos+1 only; the others keep the built-in weights."""
    w1 = dict(linnos_w)
    w1["bias_1"] = np.array([[5, -5]], dtype=np.int64)
    path = tmp_path / "plus1.txt"
    write_weights(path, w1, model="linnos+1")
    x = LINNOS_FIXED[None, :]
    out1 = predict(tmp_path, "linnos", "linnos+1", x, LINNOS_OUT, settings=[f"weights={path}"])
    assert tuple(out1["score"][0]) == tuple(linnos_ref(w1, x, 1)[0])
    out0 = predict(tmp_path, "linnos", "linnos+0", x, LINNOS_OUT, settings=[f"weights={path}"])
    assert tuple(out0["score"][0]) == (272198, 543598)


@pytest.mark.parametrize("text,why", ids=["short", "dims", "word", "range", "missing"], argvalues=[
    ("# weight_0_T 256x31\n1 2 3\n", "fewer numbers"),
    ("# weight_0_T 10x31\n" + "1 " * 310 + "\n", "dimensions"),
    ("# weight_0_T 256x31\n" + "1 x " * 4000 + "\n", "not an integer"),
    ("# weight_0_T 256x31\n" + "99999999999999999999 " * 7936 + "\n", "out of range"),
    ("nothing here\n", "no such array"),
])
def test_linnos_bad_weights_file(tmp_path, text, why):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    r = run("linnos", f"weights={path}", "info", check=False)
    assert r.returncode == 1
    assert why in r.stderr and "weight_0_T" in r.stderr, r.stderr


def test_linnos_missing_weights_file(tmp_path):
    r = run("linnos", f"weights={tmp_path}/absent.txt", "info", check=False)
    assert r.returncode == 1 and "cannot read weights file" in r.stderr


# --- MLLB --------------------------------------------------------------------

MLLB_W = os.path.join(SRC, "apps", "mllb", "data", "mllb_weights.txt")
MLLB_OUT = np.dtype([("score", "<f4"), ("cls", "<i4")])
MLLB_PATTERN = np.array([1036831949, 1045220557, 1050253722, -1110651699], dtype=np.int32).view(np.float32)


def mllb_ref(x):
    w = weights(MLLB_W)
    f = lambda n: as_f32(w, n).astype(np.float64)
    h = np.maximum(x.astype(np.float64) @ f("w1") + f("b1").ravel(), 0.0)
    return (h @ f("w2")).ravel() + f("b2")[0, 0]


def test_mllb_fixed_input(tmp_path):
    batch = 1024
    x = MLLB_PATTERN[np.arange(batch * 15) % 4].reshape(batch, 15)
    out = predict(tmp_path, "mllb", "mllb", x, MLLB_OUT)
    expect = [0.500133, 1.494835, 1.883352, 1.803902]
    for row in range(batch):
        assert abs(out["score"][row] - expect[row % 4]) < 5e-7, (row, out["score"][row])
    assert (out["cls"] == 1).all()
    assert np.allclose(mllb_ref(x[:4]), expect, atol=5e-7)


def test_mllb_random(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, size=(3000, 15)).astype(np.float32)
    out = predict(tmp_path, "mllb", "mllb", x, MLLB_OUT, batch=333)
    ref = mllb_ref(x)
    # float32 sums against a float64 reference: 1e-5 of max(1, |y|).
    err = np.abs(out["score"] - ref) / np.maximum(1.0, np.abs(ref))
    assert err.max() < 1e-5, err.max()
    sure = np.abs(ref - 0.5) > 1e-5
    assert (out["cls"][sure] == (ref[sure] > 0.5)).all()
    assert ((out["cls"] == 0) | (out["cls"] == 1)).all() and 0 < out["cls"].sum() < len(x)


# --- KML ---------------------------------------------------------------------

KML_W = os.path.join(SRC, "apps", "kml", "data", "kml_weights.txt")
KML_OUT = np.dtype([("score", "<f4", (4,)), ("cls", "<i4")])
# float32 against float64: the batch sums of 1024 values of order 1e5 and
# two sigmoids cost up to ~2e-4 of a score; 1e-3 of max(1, |score|).
KML_TOL = 1e-3
KML_FIXED = np.array([-0.586797, 5.456822, 5.456966, -0.297318, -1.184651], dtype=np.float32)


def kml_ref(x):
    """One batch: the running normalisation (k1 = 10, k2 = 9, last = 0), the network."""
    w = weights(KML_W)
    f = lambda n: as_f32(w, n).astype(np.float64)
    x = x.astype(np.float64)
    n, stats = 9 + len(x), f("intial_stats").ravel()
    mean = stats * 10 / n + x.sum(0) / n
    var = stats * 10 / n + ((0 - x) ** 2).sum(0) / n
    xn = (x - mean) / np.sqrt(var)
    sig = lambda v: 1 / (1 + np.exp(-np.clip(v, -500, 500)))
    h0 = sig(xn @ f("w0_arr").T + f("b0_arr").ravel())
    h1 = sig(h0 @ f("w1_arr").T + f("b1_arr").ravel())
    return h1 @ f("w2_arr").T + f("b2_arr").ravel(), xn


def test_kml_fixed_input(tmp_path):
    for batch in (1, 2, 1024):
        x = np.tile(KML_FIXED, (batch, 1))
        out = predict(tmp_path, "kml", "kml", x, KML_OUT)
        assert np.allclose(out["score"], [2.99, -11.38, 19.11, -11.09], atol=0.005), out["score"][0]
        assert (out["cls"] == 2).all()
    _, xn = kml_ref(np.tile(KML_FIXED, (1, 1)))
    assert np.allclose(xn[0], [-225.32, -22.37, -22.37, -8.19, -1.98], atol=0.005)
    _, xn = kml_ref(np.tile(KML_FIXED, (1024, 1)))
    assert np.allclose(xn[0], [-22.16, -0.84, -0.84, -0.76, -0.01], atol=0.005)


@pytest.mark.parametrize("batch", [1, 7, 100, 1024])
def test_kml_random(tmp_path, batch):
    rng = np.random.default_rng(batch)
    n = max(1000, batch * 2)
    n -= n % batch
    # On the scale of the initial statistics (far below them every row
    # normalises to nearly the same values at small batch sizes).
    stats = as_f32(weights(KML_W), "intial_stats").ravel()
    x = (stats * rng.uniform(0, 2, size=(n, 5))).astype(np.float32)
    out = predict(tmp_path, "kml", "kml", x, KML_OUT, batch=batch)
    worst, ties = 0.0, 0
    for b in range(0, n, batch):
        ref, _ = kml_ref(x[b:b + batch])
        got = out[b:b + batch]
        worst = max(worst, (np.abs(got["score"] - ref) / np.maximum(1.0, np.abs(ref))).max())
        top2 = np.sort(ref, axis=1)[:, -2:]
        sure = top2[:, 1] - top2[:, 0] > 2 * KML_TOL * np.maximum(1.0, np.abs(top2[:, 1]))
        ties += (~sure).sum()
        assert (got["cls"][sure] == ref.argmax(1)[sure]).all()
    assert worst < KML_TOL, worst
    assert ties < n // 100
    # The inputs matter: the classes vary.
    assert len(set(out["cls"])) > 1


# --- the run interface -------------------------------------------------------

@pytest.mark.parametrize("cmd,why", [
    ("bench batch=2048", "above linnos+0's maximum"),
    ("bench app=nope", "no app 'nope'"),
    ("bench mode=fast", "mode must be"),
    ("bench batch=0", "bad batch size"),
    ("bench batch=8..2", "bad batch range"),
    ("bench iters=0", "iters must be"),
    ("frobnicate", "unknown command"),
    ("bench color=red", "unknown key 'color'"),
])
def test_bad_commands(cmd, why):
    r = run("linnos", *cmd.split(), check=False)
    assert r.returncode == 2, r
    assert why in r.stdout, r.stdout


def test_commands_without_gpu():
    """No GPU: bench runs the CPU and auto (CPU) measures only; verify says why it skipped."""
    r = run("mllb", "bench", "batch=1,4", "iters=5")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("app,build,batch,measure,")
    measures = [l.split(",")[3] for l in lines[1:]]
    assert measures == ["policy", "cpu", "auto", "cpu", "auto"]
    # auto rows name the path they took: "cpu paired_us=..." (and the calls per sample)
    assert all(l.split(",")[9].startswith("cpu paired_us=") for l in lines[1:] if ",auto," in l)
    r = run("mllb", "verify", "batch=1")
    assert "skipped: GPU path off: disabled by the gpu=0 setting" in r.stdout
    r = run("kml", "info")
    assert "kml,gpu,disabled by the gpu=0 setting" in r.stdout
    assert "kml,crossover,0 (no GPU)" in r.stdout


def test_hash_is_deterministic():
    a = run("kml", "hash", "batch=1..64", "rows=200", "seed=5").stdout
    b = run("kml", "hash", "batch=1..64", "rows=200", "seed=5").stdout
    c = run("kml", "hash", "batch=1..64", "rows=200", "seed=6").stdout
    assert a == b and a != c
