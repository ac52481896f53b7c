#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR MIT
"""KNN's data files (the reference points and their labels): write one, or read one back.

    knn_data.py --npz points.npz -o knn.data   # arrays refs [4096][128] float32, labels [4096] (0 or 1)
    knn_data.py --seed 42 -o knn.data          # the app's default data set
    knn_data.py --to-npz knn.data -o points.npz

The file format is described in apps/knn/knn_model.h.  The default data set
and queries come from the splitmix64 streams of apps/common/lake_app_rand.py.
"""
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import lake_app_files  # noqa: E402
import lake_app_rand  # noqa: E402

NREF, DIM, K, NLABELS = 4096, 128, 16, 2
STREAM_REFS, STREAM_LABELS, STREAM_QUERIES = 0, 1, 2
MAGIC = b"KNNREF01"
HEADER = 32


def default_data(seed):
    refs = lake_app_rand.uniform01(seed, STREAM_REFS, NREF * DIM).reshape(NREF, DIM)
    labels = (lake_app_rand.u64(seed, STREAM_LABELS, NREF) >> np.uint64(63)).astype(np.uint8)
    return refs, labels


def default_queries(seed, nq):
    return lake_app_rand.uniform01(seed, STREAM_QUERIES, nq * DIM).reshape(nq, DIM)


def pack(refs, labels):
    refs = np.asarray(refs)
    labels = np.asarray(labels)
    if refs.shape != (NREF, DIM):
        raise ValueError("refs: shape %s, expected (%d, %d)" % (refs.shape, NREF, DIM))
    if labels.shape != (NREF,):
        raise ValueError("labels: shape %s, expected (%d,)" % (labels.shape, NREF))
    if not np.all(np.isfinite(refs)):
        raise ValueError("refs: has NaN or infinite values")
    if labels.min() < 0 or labels.max() >= NLABELS:
        raise ValueError("labels: must be 0..%d" % (NLABELS - 1))
    header = MAGIC + struct.pack("<6I", HEADER, NREF, DIM, NLABELS, 0, 0)
    return header + refs.astype("<f4").tobytes() + labels.astype(np.uint8).tobytes()


def unpack(data):
    if len(data) != HEADER + 4 * NREF * DIM + NREF or data[:8] != MAGIC:
        raise ValueError("not a KNN data file")
    refs = np.frombuffer(data[HEADER:HEADER + 4 * NREF * DIM], dtype="<f4").reshape(NREF, DIM)
    labels = np.frombuffer(data[HEADER + 4 * NREF * DIM:], dtype=np.uint8)
    return refs, labels


def load_npz(path):
    z = np.load(path)
    return z["refs"], z["labels"]


def to_npz(data, out):
    refs, labels = unpack(data)
    np.savez(out, refs=refs, labels=labels)


def main():
    return lake_app_files.tool(
        "knn_data", __doc__, "data set",
        from_npz=lambda path: pack(*load_npz(path)),
        from_seed=lambda seed: pack(*default_data(seed)),
        to_npz=to_npz)


if __name__ == "__main__":
    sys.exit(main())
