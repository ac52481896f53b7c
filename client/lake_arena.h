/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * liblake's arena allocator: first fit over a free list of extents, sorted
 * by offset, coalescing on free; thread-safe (one mutex).
 *
 * Why not a library: the arena is a fixed region we did not get from the
 * allocator (a memfd shared with lakeD), and its bookkeeping must live
 * outside it -- lakeD can write every byte of the arena, and so can a
 * caller's buffer overrun, neither of which may corrupt the allocator.
 * glibc malloc cannot be pointed at a caller's region; jemalloc's extent
 * hooks and memkind's kinds bring a whole general-purpose heap (per-thread
 * caches, size classes, their own mapping policy) for what is a handful of
 * large, long-lived tensors and short staging buffers; the kernel side uses
 * genalloc, which has no user-space twin.  The free list is a few dozen
 * lines with out-of-band metadata, and frees take the size (like genalloc's
 * gen_pool_free and lake.ko's lake_shm_free), so there are no headers.
 */
#ifndef LAKE_ARENA_H
#define LAKE_ARENA_H

#include <pthread.h>
#include <stdbool.h>
#include <linux/types.h>

#define LAKE_ARENA_ALIGN	64u	/* every allocation starts and ends on this */

struct lake_extent;

struct lake_arena {
	pthread_mutex_t lock;
	__u8 *base;
	__u64 size;
	__u64 used;			/* bytes allocated (rounded) */
	struct lake_extent *free;	/* free extents, sorted by offset, never adjacent */
	struct lake_extent *spare;	/* recycled list nodes */
	unsigned int nfree;		/* free extents (for tests) */
};

/* @size is rounded down to LAKE_ARENA_ALIGN; @base must be aligned to it. */
int lake_arena_init(struct lake_arena *a, void *base, __u64 size);
void lake_arena_destroy(struct lake_arena *a);

/* First fit; NULL when @len is 0 or nothing fits.  Sets *@off if non-NULL. */
void *lake_arena_alloc(struct lake_arena *a, __u64 len, __u64 *off);
/* Returns 0, or -1 when [@p, @p+@len) is not allocated memory of the arena
 * (outside it, misaligned, or overlapping free space: a double free); then
 * nothing changes. */
int lake_arena_free(struct lake_arena *a, void *p, __u64 len);
/* Is [@p, @p+@len) inside the arena?  Sets *@off if non-NULL.  No lock. */
bool lake_arena_find(const struct lake_arena *a, const void *p, __u64 len, __u64 *off);

#endif /* LAKE_ARENA_H */
