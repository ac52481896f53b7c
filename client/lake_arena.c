// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * liblake's arena allocator (see lake_arena.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lake_arena.h"

struct lake_extent {
	struct lake_extent *next;
	__u64 off;
	__u64 len;
};

static __u64 lake_round(__u64 len)
{
	return (len + LAKE_ARENA_ALIGN - 1) & ~(__u64)(LAKE_ARENA_ALIGN - 1);
}

static struct lake_extent *lake_extent_get(struct lake_arena *a)
{
	struct lake_extent *e = a->spare;

	if (e) {
		a->spare = e->next;
		return e;
	}
	return malloc(sizeof(*e));
}

static void lake_extent_put(struct lake_arena *a, struct lake_extent *e)
{
	e->next = a->spare;
	a->spare = e;
}

int lake_arena_init(struct lake_arena *a, void *base, __u64 size)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	a->base = base;
	a->size = size & ~(__u64)(LAKE_ARENA_ALIGN - 1);
	if (!base || !a->size)
		return 0;	/* an empty arena: every allocation fails */
	if ((uintptr_t)base % LAKE_ARENA_ALIGN)
		return -1;
	a->free = malloc(sizeof(*a->free));
	if (!a->free)
		return -1;
	a->free->next = NULL;
	a->free->off = 0;
	a->free->len = a->size;
	a->nfree = 1;
	return 0;
}

static void lake_extents_free(struct lake_extent *e)
{
	while (e) {
		struct lake_extent *next = e->next;

		free(e);
		e = next;
	}
}

void lake_arena_destroy(struct lake_arena *a)
{
	lake_extents_free(a->free);
	lake_extents_free(a->spare);
	a->free = a->spare = NULL;
	pthread_mutex_destroy(&a->lock);
}

bool lake_arena_find(const struct lake_arena *a, const void *p, __u64 len, __u64 *off)
{
	uintptr_t b = (uintptr_t)a->base, x = (uintptr_t)p;

	if (!a->base || x < b || x - b >= a->size || len > a->size - (x - b))
		return false;
	if (off)
		*off = x - b;
	return true;
}

void *lake_arena_alloc(struct lake_arena *a, __u64 len, __u64 *off)
{
	struct lake_extent **pp, *e;
	__u64 at = 0;
	bool found = false;

	if (!len || len > a->size)
		return NULL;
	len = lake_round(len);
	pthread_mutex_lock(&a->lock);
	for (pp = &a->free; (e = *pp); pp = &e->next) {
		if (e->len < len)
			continue;
		at = e->off;
		e->off += len;
		e->len -= len;
		if (!e->len) {
			*pp = e->next;
			lake_extent_put(a, e);
			a->nfree--;
		}
		a->used += len;
		found = true;
		break;
	}
	pthread_mutex_unlock(&a->lock);
	if (!found)
		return NULL;
	if (off)
		*off = at;
	return a->base + at;
}

int lake_arena_free(struct lake_arena *a, void *p, __u64 len)
{
	struct lake_extent **pp, *prev = NULL, *next, *e;
	__u64 off;
	int ret = 0;

	if (!len || !lake_arena_find(a, p, len, &off) || off % LAKE_ARENA_ALIGN)
		return -1;
	len = lake_round(len);
	if (len > a->size - off)
		return -1;
	pthread_mutex_lock(&a->lock);
	/* prev: the last free extent before off; next: the first at or after. */
	for (pp = &a->free; (next = *pp) && next->off < off; pp = &next->next)
		prev = next;
	/* Overlapping free space: a double free or a wrong size. */
	if ((prev && prev->off + prev->len > off) || (next && off + len > next->off)) {
		ret = -1;
		goto out;
	}
	if (prev && prev->off + prev->len == off) {
		prev->len += len;
		if (next && prev->off + prev->len == next->off) {
			prev->len += next->len;
			prev->next = next->next;
			lake_extent_put(a, next);
			a->nfree--;
		}
	} else if (next && off + len == next->off) {
		next->off = off;
		next->len += len;
	} else {
		e = lake_extent_get(a);
		if (!e) {
			/* Out of memory for a list node: the range stays allocated
			 * (leaked), which is safe. */
			ret = 0;
			goto out;
		}
		e->off = off;
		e->len = len;
		e->next = next;
		*pp = e;
		a->nfree++;
	}
	a->used -= len;
out:
	pthread_mutex_unlock(&a->lock);
	return ret;
}
