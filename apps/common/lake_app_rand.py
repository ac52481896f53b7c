# SPDX-License-Identifier: GPL-2.0 OR MIT
"""numpy twin of lake_app_rand() (apps/common/lake_app.h): splitmix64, vectorised.

lake_app_rand(&s) adds GOLDEN to s and returns mix(s), so the i-th value (from 0) of a
generator started at s is mix(s + (i + 1) * GOLDEN): computed here for all i at once.
The apps' streams: stream k of a seed starts at lake_app_rand() of (seed ^ k), i.e.
s = mix((seed ^ k) + GOLDEN).  uint64 arithmetic wraps in numpy arrays exactly as in C.
"""
import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def u64(seed, stream, count):
    """Values 0..count-1 of stream @stream of @seed, as a uint64 array."""
    with np.errstate(over="ignore"):
        start = _mix(np.array([np.uint64(seed) ^ np.uint64(stream)]) + GOLDEN)[0]
        i = np.arange(1, count + 1, dtype=np.uint64)
        return _mix(start + i * GOLDEN)


def s24(seed, stream, count):
    """The top 24 bits of each value, minus 2^23: int64 in [-2^23, 2^23)."""
    return (u64(seed, stream, count) >> np.uint64(40)).astype(np.int64) - (1 << 23)


def uniform01(seed, stream, count):
    """Uniform float32 in [0, 1): (value >> 40) * 2^-24, exact."""
    return ((u64(seed, stream, count) >> np.uint64(40)).astype(np.float64) * 2.0**-24).astype(np.float32)


def uniform_sym(seed, stream, count, limit):
    """Uniform float32 in [-limit, limit): float(s24) * float32(limit * 2^-23), one rounding."""
    scale = np.float32(np.float32(limit) * np.float32(2.0**-23))
    return s24(seed, stream, count).astype(np.float32) * scale
