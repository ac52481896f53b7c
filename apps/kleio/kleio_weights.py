#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR MIT
"""Kleio's weights files: write one from a Keras-style .npz, or the seeded default.

    kleio_weights.py --npz model.npz -o kleio.weights    # a trained model
    kleio_weights.py --seed 42 -o kleio.weights           # the app's default weights
    kleio_weights.py --to-npz kleio.weights -o model.npz  # back to arrays

The .npz holds the 8 arrays of the Keras model LSTM(256, return_sequences) ->
LSTM(256) -> Dense(621) in Keras order and layout: either as np.savez(f, *model.get_weights())
writes them (arr_0 .. arr_7), or under the names lstm/kernel, lstm/recurrent_kernel,
lstm/bias, lstm_1/kernel, lstm_1/recurrent_kernel, lstm_1/bias, dense/kernel, dense/bias.
The file format is described in apps/kleio/kleio_model.h.
"""
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import lake_app_files  # noqa: E402
import lake_app_rand  # noqa: E402

T, V, H = 6, 621, 256
G = 4 * H
NAMES = ["lstm/kernel", "lstm/recurrent_kernel", "lstm/bias",
         "lstm_1/kernel", "lstm_1/recurrent_kernel", "lstm_1/bias",
         "dense/kernel", "dense/bias"]
SHAPES = [(V, G), (H, G), (G,), (H, G), (H, G), (G,), (H, V), (V,)]
MAGIC = b"KLEIOW01"
HEADER = 64
NPARAMS = sum(int(np.prod(s)) for s in SHAPES)


def default_arrays(seed):
    """The app's default weights: Glorot-uniform kernels, Keras biases (apps/kleio/kleio_cpu.h)."""
    arrays = []
    for a, shape in enumerate(SHAPES):
        n = int(np.prod(shape))
        if len(shape) == 2:
            # in float32, as the app: sqrt(float(6) / float(fans)), each rounded once
            limit = np.sqrt(np.float32(6.0) / np.float32(shape[0] + shape[1]))
            arrays.append(lake_app_rand.uniform_sym(seed, a, n, limit).reshape(shape))
        else:
            b = np.zeros(shape, dtype=np.float32)
            if a in (2, 5):
                b[H:2 * H] = 1.0  # unit_forget_bias
            arrays.append(b)
    return arrays


def check_arrays(arrays):
    if len(arrays) != len(SHAPES):
        raise ValueError("expected %d arrays (Keras order %s), got %d" % (len(SHAPES), NAMES, len(arrays)))
    out = []
    for name, shape, arr in zip(NAMES, SHAPES, arrays):
        arr = np.asarray(arr)
        if arr.shape != shape:
            raise ValueError("%s: shape %s, expected %s" % (name, arr.shape, shape))
        arr = arr.astype("<f4")
        if not np.all(np.isfinite(arr)):
            raise ValueError("%s: has NaN or infinite values" % name)
        out.append(arr)
    return out


def load_npz(path):
    z = np.load(path)
    if all(n in z for n in NAMES):
        return [z[n] for n in NAMES]
    if all("arr_%d" % i in z for i in range(len(NAMES))):
        return [z["arr_%d" % i] for i in range(len(NAMES))]
    raise ValueError("%s: needs arrays %s or arr_0..arr_7 (np.savez(f, *model.get_weights()))" % (path, NAMES))


def pack(arrays):
    arrays = check_arrays(arrays)
    payload = b"".join(a.tobytes() for a in arrays)
    header = MAGIC + struct.pack("<6I", HEADER, T, V, H, NPARAMS, 0)
    header += struct.pack("<8I", *[a.size for a in arrays])
    assert len(header) == HEADER
    return header + payload


def unpack(data):
    if len(data) != HEADER + 4 * NPARAMS or data[:8] != MAGIC:
        raise ValueError("not a Kleio weights file")
    flat = np.frombuffer(data[HEADER:], dtype="<f4")
    out, off = [], 0
    for shape in SHAPES:
        n = int(np.prod(shape))
        out.append(flat[off:off + n].reshape(shape))
        off += n
    return out


def main():
    return lake_app_files.tool(
        "kleio_weights", __doc__, "weights",
        from_npz=lambda path: pack(load_npz(path)),
        from_seed=lambda seed: pack(default_arrays(seed)),
        to_npz=lambda data, out: np.savez(out, **dict(zip(NAMES, unpack(data)))))


if __name__ == "__main__":
    sys.exit(main())
