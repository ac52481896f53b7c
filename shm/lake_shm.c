// SPDX-License-Identifier: GPL-2.0
/*
 * lakeShm: the arena that kernel callers and lakeD share.
 *
 * The arena is part of the region lake.ko allocates with vmalloc_user() at
 * load and lakeD maps (see kmod/lake_chan.c): ordinary pages, so lakeD can
 * pin it with cuMemHostRegister, and no CMA or boot parameter is needed.
 * Allocation is the kernel's genalloc, which is safe under concurrency.
 */
#include <linux/bitmap.h>
#include <linux/genalloc.h>
#include <linux/module.h>
#include "lake_shm.h"
#include "lake_kernel.h"

#define LAKE_SHM_MIN_ORDER	6	/* 64-byte granules: cache-line aligned */

static struct gen_pool *lake_pool;
static unsigned long lake_base;
static size_t lake_size;

int lake_shm_init(void *base, size_t size)
{
	int ret;

	lake_pool = gen_pool_create(LAKE_SHM_MIN_ORDER, NUMA_NO_NODE);
	if (!lake_pool)
		return -ENOMEM;
	ret = gen_pool_add(lake_pool, (unsigned long)base, size, NUMA_NO_NODE);
	if (ret) {
		gen_pool_destroy(lake_pool);
		lake_pool = NULL;
		return ret;
	}
	lake_base = (unsigned long)base;
	lake_size = size;
	return 0;
}

/* Counts and clears what is still allocated in @chunk (gen_pool_destroy()
 * would BUG on it). */
static void lake_shm_reclaim_chunk(struct gen_pool *pool, struct gen_pool_chunk *chunk,
				   void *data)
{
	unsigned long bits = (chunk->end_addr - chunk->start_addr + 1) >> pool->min_alloc_order;
	size_t *leaked = data;

	*leaked += (size_t)bitmap_weight(chunk->bits, bits) << pool->min_alloc_order;
	bitmap_zero(chunk->bits, bits);
}

void lake_shm_exit(void)
{
	size_t leaked = 0;

	if (!lake_pool)
		return;
	/* Nothing can use the arena now (lakeD and every module using LAKE are
	 * gone), but a module may have left allocations behind: take them back
	 * and say so, instead of BUG()ing in gen_pool_destroy(). */
	gen_pool_for_each_chunk(lake_pool, lake_shm_reclaim_chunk, &leaked);
	if (leaked)
		pr_warn("lake: %zu bytes of lakeShm were never freed (a module using LAKE leaked them): reclaimed at unload\n",
			leaked);
	gen_pool_destroy(lake_pool);
	lake_pool = NULL;
}

void *lake_shm_alloc(size_t size)
{
	if (!lake_pool || !size)
		return NULL;
	return (void *)gen_pool_alloc(lake_pool, size);
}
EXPORT_SYMBOL_GPL(lake_shm_alloc);

void lake_shm_free(void *ptr, size_t size)
{
	if (!ptr)
		return;
	if (WARN_ON_ONCE(!lake_shm_contains(ptr, size)))
		return;
	gen_pool_free(lake_pool, (unsigned long)ptr, size);
}
EXPORT_SYMBOL_GPL(lake_shm_free);

bool lake_shm_offset(const void *ptr, u64 len, u64 *off)
{
	unsigned long p = (unsigned long)ptr;

	if (p < lake_base || p - lake_base > lake_size || len > lake_size - (p - lake_base))
		return false;
	*off = p - lake_base;
	return true;
}

bool lake_shm_contains(const void *ptr, size_t len)
{
	u64 off;

	return lake_shm_offset(ptr, len, &off);
}
EXPORT_SYMBOL_GPL(lake_shm_contains);

size_t lake_shm_size(void)
{
	return lake_size;
}

size_t lake_shm_avail(void)
{
	return lake_pool ? gen_pool_avail(lake_pool) : 0;
}
