/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * What the GPU tests and the benchmark share: host memory of the right kind
 * for each variant, and reading the kernels' fatbin.  Each program is built
 * twice: with -DLAKE_DIRECT against libcuda, without it against liblake.
 */
#ifndef LAKE_GPU_UTIL_H
#define LAKE_GPU_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#ifdef LAKE_DIRECT
#include <cuda.h>
#include <string.h>
#define LAKE_VARIANT (lake_host_registered() ? "direct_registered" : "direct")

/*
 * Pinned host memory (cuMemHostAlloc): what a careful direct-CUDA program
 * copies from.  With LAKE_HOSTMEM=registered, ordinary pages registered
 * with cuMemHostRegister instead: what lakeD does with the arena, to tell
 * the cost of the memory kind from the cost of remoting.
 */
static inline int lake_host_registered(void)
{
	const char *m = getenv("LAKE_HOSTMEM");

	return m && !strcmp(m, "registered");
}

static inline void *lake_host_alloc(size_t n)
{
	void *p = NULL;

	if (lake_host_registered()) {
		size_t len = (n + 4095) & ~(size_t)4095;

		p = aligned_alloc(4096, len);
		if (p && cuMemHostRegister(p, len, CU_MEMHOSTREGISTER_PORTABLE) != CUDA_SUCCESS) {
			free(p);
			p = NULL;
		}
		return p;
	}
	return cuMemHostAlloc(&p, n, 0) == CUDA_SUCCESS ? p : NULL;
}

static inline void lake_host_free(void *p, size_t n)
{
	(void)n;
	if (lake_host_registered()) {
		cuMemHostUnregister(p);
		free(p);
		return;
	}
	cuMemFreeHost(p);
}
#else
#include "lake_cuda.h"
#include "liblake.h"
#define LAKE_VARIANT "lake"

/* The arena: passed by offset, and lakeD has pinned it. */
static inline void *lake_host_alloc(size_t n)
{
	return lake_shm_alloc(n);
}

static inline void lake_host_free(void *p, size_t n)
{
	lake_shm_free(p, n);
}
#endif

#include "lake_read_file.h"

#endif /* LAKE_GPU_UTIL_H */
