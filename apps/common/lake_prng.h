/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The apps' seeded pseudo-random numbers: splitmix64 (Steele, Lea and Flood,
 * "Fast splittable pseudorandom number generators", OOPSLA 2014) used as a
 * counter-based generator, so that value i of a stream is computed directly
 * (in chunks, in any order, on CPU or GPU) and numpy reproduces it with
 * vectorised uint64 arithmetic (apps/common/lake_prng.py).
 *
 * Stream s under seed: start = seed ^ (s * LAKE_PRNG_STREAM); value i =
 * mix(start + (i + 1) * LAKE_PRNG_GOLDEN), which is the (i+1)-th output of a
 * splitmix64 generator seeded with start.  Integer-only: usable anywhere,
 * FPU regions or not.
 */
#ifndef LAKE_PRNG_H
#define LAKE_PRNG_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
#endif

#define LAKE_PRNG_GOLDEN	0x9e3779b97f4a7c15ull
#define LAKE_PRNG_STREAM	0xd1b54a32d192ed03ull

/* The splitmix64 output function. */
static inline uint64_t lake_prng_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Value @i of stream @stream under @seed. */
static inline uint64_t lake_prng_u64(uint64_t seed, uint32_t stream, uint64_t i)
{
	uint64_t start = seed ^ ((uint64_t)stream * LAKE_PRNG_STREAM);

	return lake_prng_mix(start + (i + 1) * LAKE_PRNG_GOLDEN);
}

/*
 * The top 24 bits of value @i as a signed integer m - 2^23 in
 * [-2^23, 2^23): exactly representable as a float, so a uniform float in
 * [-a, a) is (float)lake_prng_s24(...) * (a * 0x1p-23f), one rounding, the
 * same in C, CUDA and numpy.  (A uniform float in [0, 1) is
 * (lake_prng_u64(...) >> 40) * 0x1p-24f, exact.)
 */
static inline int32_t lake_prng_s24(uint64_t seed, uint32_t stream, uint64_t i)
{
	return (int32_t)(lake_prng_u64(seed, stream, i) >> 40) - (1 << 23);
}

#endif /* LAKE_PRNG_H */
