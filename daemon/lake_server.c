// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The server half of the protocol core (see lake_server.h): per-client
 * resource tables, device ranges, counted references, per-thread state
 * (deferred errors, current context), and the checks behind every pointer
 * and handle a client sends.
 */
#define _GNU_SOURCE	/* tdestroy */
#include <errno.h>
#include <pthread.h>
#include <search.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include "lake_server.h"

/*
 * A resource a client holds: a handle (found by token), a device range
 * (found by value, and by address in the range tree) or a counted reference.
 * Tokens are (gen << 32) | (i + 1) so a freed slot's old token never matches
 * its next occupant.  Resources form a tree (parent, first child, siblings:
 * indexes + 1) so that one dies with its parent in time proportional to
 * what dies.
 */
enum lake_res_kind {
	LAKE_RES_HANDLE = 0,
	LAKE_RES_RANGE,		/* a device range: an allocation, a reservation, a module global */
	LAKE_RES_REF,		/* a counted reference (type is a LAKE_REF_*) */
	LAKE_RES_VALUE,		/* a tracked opaque value (an allocation handle): no range */
};

struct lake_range {
	__u64 base, size;
};

struct lake_res {
	__u64 value;
	__u64 birth;		/* creation order, for cleanup in reverse */
	__u64 bytes;		/* device memory it holds (owned: counted against the quotas) */
	struct lake_kparam_layout *layout;
	struct lake_range *range;	/* LAKE_RES_RANGE: its node in the range tree */
	__u32 gen;
	__u32 parent, child, next, prev;	/* index + 1; 0: none */
	__u32 refs;		/* LAKE_RES_REF: references held */
	__u16 type;		/* LAKE_RT_NONE: free */
	__u8 kind;
	bool owned;		/* the client made it: destroy it when the client goes away */
};

/* State of one calling thread (the header's client field). */
struct lake_tstate {
	__u32 client;
	__u32 hnext;		/* hash chain: index + 1 */
	__u32 older, newer;	/* LRU list: index + 1 */
	int deferred[LAKE_SRV_MAX_SPECS];	/* the first async error not yet reported, per spec */
	__u64 ctx_token;	/* its current context, when ctx_set */
	void *ctx_real;
	/* The contexts below the current one (cuCtxPushCurrent), oldest first. */
	struct lake_ctx_frame *stack;
	unsigned int depth, stack_cap;
	bool ctx_set;
	bool used;
};

struct lake_ctx_frame {
	__u64 token;	/* 0: the default context */
	void *real;
};

struct lake_srv_conn {
	const struct lake_vendors *vendors;
	__u8 *arena;
	__u64 arena_size;
	struct lake_res *res;
	__u32 nres, res_cap, nfree;
	__u32 *free_idx;
	__u32 *hash;		/* (kind, type, value) -> index + 1; 0 empty, TOMB deleted */
	__u32 hash_cap, hash_used;
	__u64 births;
	__u32 gen_base;		/* random: tokens of an earlier connection never match */
	void *ranges;		/* tsearch tree of struct lake_range */
	__u64 gpu_bytes;	/* owned allocations */
	/* per-thread states: a fixed pool, a hash on client, an LRU list */
	struct lake_tstate *ts;
	__u32 *ts_hash, *ts_free;
	__u32 ts_cap, ts_n, ts_newest, ts_oldest;
	__u64 ts_evicted, deferred_dropped, quota_refusals;
	bool shared;
	pthread_mutex_t lock;
};

#define LAKE_TOMB	UINT32_MAX

static struct lake_srv_limits lake_limits;
static __u64 lake_total_gpu_bytes;	/* atomic: all connections of this process */
static int (*lake_set_current)(void *ctx);
static void *lake_default_ctx;

/* The serving thread's current context as lakeD last set it. */
static _Thread_local void *lake_thread_ctx;
static _Thread_local bool lake_thread_ctx_known;

/* The command this thread executes (its private copy of the slot and what
 * must happen once it is done). */
#define LAKE_SRV_MAX_WRITEBACK	8
#define LAKE_SRV_MAX_PRIVATE	4
struct lake_srv_call {
	struct lake_srv_conn *conn;
	__u32 client;
	__u32 args_len;
	unsigned int nwb, npriv;
	struct {
		__u32 off, len;
	} wb[LAKE_SRV_MAX_WRITEBACK];
	void *priv[LAKE_SRV_MAX_PRIVATE];
};

static _Thread_local struct lake_srv_call lake_cur;
static _Thread_local __u8 lake_scratch[LAKE_SLOT_SIZE] __attribute__((aligned(64)));

__u64 lake_srv_total_gpu_bytes(void)
{
	return __atomic_load_n(&lake_total_gpu_bytes, __ATOMIC_RELAXED);
}

void lake_srv_set_limits(const struct lake_srv_limits *l)
{
	lake_limits = *l;
}

void lake_srv_set_context_ops(int (*set_current)(void *ctx), void *default_ctx)
{
	lake_set_current = set_current;
	lake_default_ctx = default_ctx;
}

void lake_srv_thread_bound(void *ctx)
{
	lake_thread_ctx = ctx;
	lake_thread_ctx_known = true;
}

static bool lake_dies_with_ancestor(struct lake_srv_conn *c, struct lake_res *r);

static void lake_lock(struct lake_srv_conn *c)
{
	if (c->shared)
		pthread_mutex_lock(&c->lock);
}

static void lake_unlock(struct lake_srv_conn *c)
{
	if (c->shared)
		pthread_mutex_unlock(&c->lock);
}

struct lake_srv_conn *lake_srv_conn_new(const struct lake_vendors *vendors,
					void *arena, __u64 arena_size)
{
	struct lake_srv_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->vendors = vendors;
	c->arena = arena;
	c->arena_size = arena ? arena_size : 0;
	pthread_mutex_init(&c->lock, NULL);
	if (getrandom(&c->gen_base, sizeof(c->gen_base), GRND_NONBLOCK) != sizeof(c->gen_base))
		c->gen_base = (__u32)time(NULL) ^ (__u32)(uintptr_t)c;
	return c;
}

void lake_srv_conn_set_shared(struct lake_srv_conn *c)
{
	c->shared = true;
}

const struct lake_vendors *lake_srv_vendors(struct lake_srv_conn *c)
{
	return c->vendors;
}

/* ------------------------------------------------------------------------ */
/* The resource table                                                       */

static __u32 lake_hash_of(unsigned int kind, unsigned int type, __u64 value, __u32 cap)
{
	__u64 h = (value ^ ((__u64)type << 56) ^ ((__u64)kind << 48)) * 0x9E3779B97F4A7C15ull;

	return (__u32)(h >> 32) & (cap - 1);
}

static __u32 *lake_hash_find(struct lake_srv_conn *c, unsigned int kind, unsigned int type,
			     __u64 value)
{
	__u32 i, n;

	if (!c->hash_cap)
		return NULL;
	for (i = lake_hash_of(kind, type, value, c->hash_cap), n = 0; n < c->hash_cap;
	     i = (i + 1) & (c->hash_cap - 1), n++) {
		__u32 e = c->hash[i];
		struct lake_res *r;

		if (!e)
			return NULL;
		if (e == LAKE_TOMB)
			continue;
		r = &c->res[e - 1];
		if (r->kind == kind && r->type == type && r->value == value)
			return &c->hash[i];
	}
	return NULL;
}

static int lake_hash_grow(struct lake_srv_conn *c)
{
	__u32 cap = c->hash_cap ? c->hash_cap * 2 : 64, i;
	__u32 *h = calloc(cap, sizeof(*h));

	if (!h)
		return -1;
	free(c->hash);
	c->hash = h;
	c->hash_cap = cap;
	c->hash_used = 0;
	for (i = 0; i < c->nres; i++) {
		struct lake_res *r = &c->res[i];
		__u32 j;

		if (r->type == LAKE_RT_NONE)
			continue;
		for (j = lake_hash_of(r->kind, r->type, r->value, cap); h[j]; j = (j + 1) & (cap - 1))
			;
		h[j] = i + 1;
		c->hash_used++;
	}
	return 0;
}

static int lake_hash_insert(struct lake_srv_conn *c, __u32 index)
{
	struct lake_res *r = &c->res[index];
	__u32 j;

	/* Tombstones count as used: growing (a rehash) clears them. */
	if ((c->hash_used + 1) * 2 > c->hash_cap && lake_hash_grow(c))
		return -1;
	for (j = lake_hash_of(r->kind, r->type, r->value, c->hash_cap);
	     c->hash[j] && c->hash[j] != LAKE_TOMB; j = (j + 1) & (c->hash_cap - 1))
		;
	if (!c->hash[j])
		c->hash_used++;
	c->hash[j] = index + 1;
	return 0;
}

static struct lake_res *lake_res_at(struct lake_srv_conn *c, __u32 ix1)
{
	return ix1 ? &c->res[ix1 - 1] : NULL;
}

static __u32 lake_ix1(struct lake_srv_conn *c, struct lake_res *r)
{
	return (__u32)(r - c->res) + 1;
}

static struct lake_res *lake_res_by_token(struct lake_srv_conn *c, __u64 token)
{
	__u32 index = (__u32)token - 1;

	if ((__u32)token == 0 || index >= c->nres)
		return NULL;
	if (c->res[index].type == LAKE_RT_NONE || c->res[index].kind != LAKE_RES_HANDLE ||
	    c->res[index].gen != (__u32)(token >> 32))
		return NULL;
	return &c->res[index];
}

static __u64 lake_token_of(struct lake_srv_conn *c, struct lake_res *r)
{
	return ((__u64)r->gen << 32) | lake_ix1(c, r);
}

static struct lake_res *lake_res_new(struct lake_srv_conn *c, unsigned int kind, unsigned int type,
				     __u64 value)
{
	struct lake_res *r;
	__u32 index;

	if (c->nfree) {
		index = c->free_idx[--c->nfree];
	} else {
		if (c->nres == c->res_cap) {
			__u32 cap = c->res_cap ? c->res_cap * 2 : 64;
			struct lake_res *res;
			__u32 *fi;

			if (cap > (1u << 30))
				return NULL;
			res = realloc(c->res, cap * sizeof(*res));
			if (!res)
				return NULL;
			c->res = res;
			fi = realloc(c->free_idx, cap * sizeof(*fi));
			if (!fi)
				return NULL;
			c->free_idx = fi;
			memset(&c->res[c->res_cap], 0, (cap - c->res_cap) * sizeof(*res));
			c->res_cap = cap;
		}
		index = c->nres++;
		c->res[index].gen = c->gen_base + index;
	}
	r = &c->res[index];
	r->type = (__u16)type;
	r->kind = (__u8)kind;
	r->value = value;
	r->parent = r->child = r->next = r->prev = 0;
	r->refs = 0;
	r->owned = false;
	r->bytes = 0;
	r->layout = NULL;
	r->range = NULL;
	r->birth = ++c->births;
	if (lake_hash_insert(c, index)) {
		r->type = LAKE_RT_NONE;
		c->free_idx[c->nfree++] = index;
		return NULL;
	}
	return r;
}

static void lake_res_link(struct lake_srv_conn *c, struct lake_res *r, struct lake_res *parent)
{
	struct lake_res *first = lake_res_at(c, parent->child);

	r->parent = lake_ix1(c, parent);
	r->prev = 0;
	r->next = parent->child;
	if (first)
		first->prev = lake_ix1(c, r);
	parent->child = lake_ix1(c, r);
}

static void lake_res_unlink(struct lake_srv_conn *c, struct lake_res *r)
{
	struct lake_res *parent = lake_res_at(c, r->parent);

	if (!parent)
		return;
	if (r->prev)
		c->res[r->prev - 1].next = r->next;
	else
		parent->child = r->next;
	if (r->next)
		c->res[r->next - 1].prev = r->prev;
	r->parent = r->next = r->prev = 0;
}

static int lake_range_cmp(const void *a, const void *b)
{
	const struct lake_range *x = a, *y = b;

	/* Ranges in the tree never overlap: "equal" means "overlaps". */
	if (x->base + x->size <= y->base)
		return -1;
	if (y->base + y->size <= x->base)
		return 1;
	return 0;
}

static void lake_gpu_account(struct lake_srv_conn *c, struct lake_res *r, bool add)
{
	if (!r->owned || !r->bytes)
		return;
	if (add) {
		c->gpu_bytes += r->bytes;
		__atomic_add_fetch(&lake_total_gpu_bytes, r->bytes, __ATOMIC_RELAXED);
	} else {
		c->gpu_bytes -= r->bytes;
		__atomic_sub_fetch(&lake_total_gpu_bytes, r->bytes, __ATOMIC_RELAXED);
	}
}

/*
 * A new range's or value's ownership: its bytes counted against the quota
 * when the connection owns it, and its life tied to @parent's.  Lock held.
 */
static void lake_res_adopt(struct lake_srv_conn *c, struct lake_res *r, bool owned, __u64 bytes,
			   __u64 parent)
{
	struct lake_res *p;

	r->owned = owned;
	r->bytes = bytes;
	lake_gpu_account(c, r, true);
	p = parent ? lake_res_by_token(c, parent) : NULL;
	if (p)
		lake_res_link(c, r, p);
}

/* May this connection hold @bytes more device memory?  Lock held. */
static bool lake_quota_allows(struct lake_srv_conn *c, __u64 bytes)
{
	__u64 total = __atomic_load_n(&lake_total_gpu_bytes, __ATOMIC_RELAXED);

	if ((lake_limits.conn_gpu_bytes && bytes > lake_limits.conn_gpu_bytes - c->gpu_bytes) ||
	    (lake_limits.total_gpu_bytes && (total > lake_limits.total_gpu_bytes ||
					     bytes > lake_limits.total_gpu_bytes - total))) {
		c->quota_refusals++;
		return false;
	}
	return true;
}

/* Frees @r and everything that dies with it (its subtree). */
static void lake_res_free(struct lake_srv_conn *c, struct lake_res *r)
{
	__u32 *slot;

	while (r->child)
		lake_res_free(c, &c->res[r->child - 1]);
	lake_res_unlink(c, r);
	slot = lake_hash_find(c, r->kind, r->type, r->value);
	if (slot)
		*slot = LAKE_TOMB;
	lake_gpu_account(c, r, false);
	if (r->range) {
		tdelete(r->range, &c->ranges, lake_range_cmp);
		free(r->range);
		r->range = NULL;
	}
	free(r->layout);
	r->layout = NULL;
	r->type = LAKE_RT_NONE;
	r->gen++;
	c->free_idx[c->nfree++] = (__u32)(r - c->res);
}

static int lake_handle_get_locked(struct lake_srv_conn *c, __u64 token, unsigned int type,
				  bool must_own, void **real)
{
	struct lake_res *r;

	if (!token) {
		*real = NULL;	/* NULL handles (the default stream) are the vendor's to judge */
		return must_own ? -1 : 0;
	}
	r = lake_res_by_token(c, token);
	if (!r || r->type != type || (must_own && !r->owned))
		return -1;
	*real = (void *)(uintptr_t)r->value;
	return 0;
}

int lake_srv_handle_get(struct lake_srv_conn *c, __u64 token, unsigned int type, void **real)
{
	int rc;

	lake_lock(c);
	rc = lake_handle_get_locked(c, token, type, false, real);
	lake_unlock(c);
	return rc;
}

int lake_srv_handle_get_owned(struct lake_srv_conn *c, __u64 token, unsigned int type,
			      void **real)
{
	int rc;

	lake_lock(c);
	rc = lake_handle_get_locked(c, token, type, true, real);
	lake_unlock(c);
	return rc;
}

int lake_srv_handle_add(struct lake_srv_conn *c, unsigned int type, void *real, __u64 parent,
			bool owned, __u64 *token)
{
	struct lake_res *r, *p;
	__u32 *slot;
	int rc = 0;

	if (!real) {
		*token = 0;
		return 0;
	}
	lake_lock(c);
	slot = lake_hash_find(c, LAKE_RES_HANDLE, type, (uintptr_t)real);
	r = slot ? &c->res[*slot - 1] : lake_res_new(c, LAKE_RES_HANDLE, type, (uintptr_t)real);
	if (!r) {
		rc = -1;
		goto out;
	}
	p = parent ? lake_res_by_token(c, parent) : NULL;
	if (p && !r->parent && p != r)
		lake_res_link(c, r, p);
	r->owned |= owned;
	*token = lake_token_of(c, r);
out:
	lake_unlock(c);
	return rc;
}

void lake_srv_handle_del(struct lake_srv_conn *c, __u64 token)
{
	struct lake_res *r;

	lake_lock(c);
	r = lake_res_by_token(c, token);
	if (r)
		lake_res_free(c, r);
	lake_unlock(c);
}

/* ------------------------------------------------------------------------ */
/* Device ranges                                                            */

static int lake_range_add(struct lake_srv_conn *c, unsigned int type, __u64 base, __u64 size,
			  __u64 parent, bool owned, __u64 bytes)
{
	struct lake_range *node, **found;
	struct lake_res *r;
	__u32 *slot;
	int rc = -1;

	if (!size || base + size < base)
		return -1;
	lake_lock(c);
	slot = lake_hash_find(c, LAKE_RES_RANGE, type, base);
	if (slot) {
		/* The same global looked up again: nothing new. */
		r = &c->res[*slot - 1];
		rc = (r->range->size == size && !owned && !r->owned) ? 0 : -1;
		goto out;
	}
	if (bytes && !lake_quota_allows(c, bytes)) {
		rc = LAKE_SRV_OVER_QUOTA;
		goto out;
	}
	node = malloc(sizeof(*node));
	if (!node)
		goto out;
	node->base = base;
	node->size = size;
	found = tsearch(node, &c->ranges, lake_range_cmp);
	if (!found || *found != node) {
		free(node);	/* no memory, or it overlaps a range we know: refuse it */
		goto out;
	}
	r = lake_res_new(c, LAKE_RES_RANGE, type, base);
	if (!r) {
		tdelete(node, &c->ranges, lake_range_cmp);
		free(node);
		goto out;
	}
	r->range = node;
	lake_res_adopt(c, r, owned, bytes, parent);
	rc = 0;
out:
	lake_unlock(c);
	return rc;
}

int lake_srv_range_add(struct lake_srv_conn *c, unsigned int type, __u64 base, __u64 size,
		       __u64 parent, bool owned)
{
	/* An allocation the client owns is device memory it holds. */
	return lake_range_add(c, type, base, size, parent, owned, owned ? size : 0);
}

int lake_srv_range_reserve(struct lake_srv_conn *c, unsigned int type, __u64 base, __u64 size,
			   __u64 parent)
{
	/* Address space only: the memory mapped into it is counted by its handle. */
	return lake_range_add(c, type, base, size, parent, true, 0);
}

int lake_srv_range_check(struct lake_srv_conn *c, __u64 p, __u64 n)
{
	struct lake_range probe = { .base = p, .size = n }, **found;
	int rc = -1;

	if (!n)
		return 0;	/* nothing is read or written */
	if (p + n < p)
		return -1;
	lake_lock(c);
	found = tfind(&probe, &c->ranges, lake_range_cmp);
	/* An overlapping range; the access must lie inside it. */
	if (found && p >= (*found)->base && n <= (*found)->size - (p - (*found)->base))
		rc = 0;
	lake_unlock(c);
	return rc;
}

/* Whether this connection holds @value (of @kind and @type) as its own. */
static bool lake_res_is_owned(struct lake_srv_conn *c, unsigned int kind, unsigned int type,
			      __u64 value)
{
	__u32 *slot;
	bool ok;

	lake_lock(c);
	slot = lake_hash_find(c, kind, type, value);
	ok = slot && c->res[*slot - 1].owned;
	lake_unlock(c);
	return ok;
}

bool lake_srv_range_is_alloc(struct lake_srv_conn *c, unsigned int type, __u64 base)
{
	return lake_res_is_owned(c, LAKE_RES_RANGE, type, base);
}

__u64 lake_srv_range_size(struct lake_srv_conn *c, unsigned int type, __u64 base)
{
	__u32 *slot;
	__u64 n = 0;

	lake_lock(c);
	slot = lake_hash_find(c, LAKE_RES_RANGE, type, base);
	if (slot)
		n = c->res[*slot - 1].range->size;
	lake_unlock(c);
	return n;
}

/* Forgets @value (of @kind and @type) and what dies with it, if held. */
static void lake_res_del(struct lake_srv_conn *c, unsigned int kind, unsigned int type, __u64 value)
{
	__u32 *slot;

	lake_lock(c);
	slot = lake_hash_find(c, kind, type, value);
	if (slot)
		lake_res_free(c, &c->res[*slot - 1]);
	lake_unlock(c);
}

void lake_srv_range_del(struct lake_srv_conn *c, unsigned int type, __u64 base)
{
	lake_res_del(c, LAKE_RES_RANGE, type, base);
}

/* ------------------------------------------------------------------------ */
/* Tracked values (opaque numbers the vendor hands out: allocation handles) */

int lake_srv_value_add(struct lake_srv_conn *c, unsigned int type, __u64 value, __u64 bytes,
		       __u64 parent, bool owned)
{
	struct lake_res *r;
	__u32 *slot;
	int rc = 0;

	lake_lock(c);
	slot = lake_hash_find(c, LAKE_RES_VALUE, type, value);
	if (slot) {
		/* Handed out again (a retained handle of ours): one record. */
		c->res[*slot - 1].owned |= owned;
		goto out;
	}
	if (owned && bytes && !lake_quota_allows(c, bytes)) {
		rc = LAKE_SRV_OVER_QUOTA;
		goto out;
	}
	r = lake_res_new(c, LAKE_RES_VALUE, type, value);
	if (!r) {
		rc = -1;
		goto out;
	}
	lake_res_adopt(c, r, owned, bytes, parent);
out:
	lake_unlock(c);
	return rc;
}

bool lake_srv_res_has(struct lake_srv_conn *c, unsigned int type, __u64 value)
{
	bool ok;

	lake_lock(c);
	ok = lake_hash_find(c, LAKE_RES_VALUE, type, value) != NULL;
	lake_unlock(c);
	return ok;
}

bool lake_srv_res_owned(struct lake_srv_conn *c, unsigned int type, __u64 value)
{
	return lake_res_is_owned(c, LAKE_RES_VALUE, type, value);
}

int lake_srv_res_add(struct lake_srv_conn *c, unsigned int type, __u64 value)
{
	return lake_srv_value_add(c, type, value, 0, 0, true);
}

void lake_srv_res_del(struct lake_srv_conn *c, unsigned int type, __u64 value)
{
	lake_res_del(c, LAKE_RES_VALUE, type, value);
}

/* ------------------------------------------------------------------------ */
/* Counted references                                                       */

int lake_srv_ref_take(struct lake_srv_conn *c, unsigned int reftype, __u64 value)
{
	struct lake_res *r;
	__u32 *slot;
	int rc = 0;

	lake_lock(c);
	slot = lake_hash_find(c, LAKE_RES_REF, reftype, value);
	r = slot ? &c->res[*slot - 1] : lake_res_new(c, LAKE_RES_REF, reftype, value);
	if (r && r->refs < UINT32_MAX)
		r->refs++;
	else
		rc = -1;
	lake_unlock(c);
	return rc;
}

int lake_srv_ref_drop(struct lake_srv_conn *c, unsigned int reftype, __u64 value)
{
	__u32 *slot;
	int rc = -1;

	lake_lock(c);
	slot = lake_hash_find(c, LAKE_RES_REF, reftype, value);
	if (slot) {
		struct lake_res *r = &c->res[*slot - 1];

		if (!--r->refs)
			lake_res_free(c, r);
		rc = 0;
	}
	lake_unlock(c);
	return rc;
}

unsigned int lake_srv_ref_count(struct lake_srv_conn *c, unsigned int reftype, __u64 value)
{
	__u32 *slot;
	unsigned int n = 0;

	lake_lock(c);
	slot = lake_hash_find(c, LAKE_RES_REF, reftype, value);
	if (slot)
		n = c->res[*slot - 1].refs;
	lake_unlock(c);
	return n;
}

unsigned int lake_srv_res_count(struct lake_srv_conn *c, unsigned int type)
{
	unsigned int n = 0;
	__u32 i;

	lake_lock(c);
	for (i = 0; i < c->nres; i++)
		if (c->res[i].type != LAKE_RT_NONE && c->res[i].kind != LAKE_RES_REF &&
		    (c->res[i].kind != LAKE_RES_RANGE || c->res[i].owned) &&
		    (type == LAKE_RT_NONE || c->res[i].type == type))
			n++;	/* (a module global is part of its module) */
	lake_unlock(c);
	return n;
}

/* ------------------------------------------------------------------------ */
/* Calling threads: deferred errors and current contexts                   */

static __u32 lake_ts_bucket(struct lake_srv_conn *c, __u32 client)
{
	return (__u32)(((__u64)client * 0x9E3779B97F4A7C15ull) >> 32) & (2 * c->ts_cap - 1);
}

static void lake_ts_unlist(struct lake_srv_conn *c, struct lake_tstate *t)
{
	if (t->older)
		c->ts[t->older - 1].newer = t->newer;
	else
		c->ts_oldest = t->newer;
	if (t->newer)
		c->ts[t->newer - 1].older = t->older;
	else
		c->ts_newest = t->older;
	t->older = t->newer = 0;
}

static void lake_ts_list_newest(struct lake_srv_conn *c, struct lake_tstate *t)
{
	__u32 ix = (__u32)(t - c->ts) + 1;

	t->older = c->ts_newest;
	t->newer = 0;
	if (c->ts_newest)
		c->ts[c->ts_newest - 1].newer = ix;
	else
		c->ts_oldest = ix;
	c->ts_newest = ix;
}

static void lake_ts_unhash(struct lake_srv_conn *c, struct lake_tstate *t)
{
	__u32 *pp = &c->ts_hash[lake_ts_bucket(c, t->client)], ix = (__u32)(t - c->ts) + 1;

	while (*pp && *pp != ix)
		pp = &c->ts[*pp - 1].hnext;
	if (*pp)
		*pp = t->hnext;
	t->hnext = 0;
}

/* The state of @client, or NULL; a hit becomes the most recently used. */
static struct lake_tstate *lake_ts_find(struct lake_srv_conn *c, __u32 client)
{
	__u32 ix;

	if (!c->ts_n)
		return NULL;
	for (ix = c->ts_hash[lake_ts_bucket(c, client)]; ix; ix = c->ts[ix - 1].hnext) {
		struct lake_tstate *t = &c->ts[ix - 1];

		if (t->client == client) {
			if (c->ts_newest != ix) {
				lake_ts_unlist(c, t);
				lake_ts_list_newest(c, t);
			}
			return t;
		}
	}
	return NULL;
}

static void lake_ts_drop(struct lake_srv_conn *c, struct lake_tstate *t, bool evicted)
{
	unsigned int i;

	for (i = 0; evicted && i < LAKE_SRV_MAX_SPECS; i++)
		if (t->deferred[i])
			c->deferred_dropped++;
	lake_ts_unhash(c, t);
	lake_ts_unlist(c, t);
	free(t->stack);
	memset(t, 0, sizeof(*t));
	c->ts_n--;
	c->ts_free[c->ts_cap - c->ts_n - 1] = (__u32)(t - c->ts);
}

/*
 * The state of @client, made if needed.  The pool is bounded: when it is
 * full the least recently used state is dropped (its deferred errors are
 * lost and counted; its context reverts to the default).  O(1).
 */
static struct lake_tstate *lake_ts_get(struct lake_srv_conn *c, __u32 client)
{
	struct lake_tstate *t = lake_ts_find(c, client);
	__u32 i, b;

	if (t)
		return t;
	if (!c->ts) {
		__u32 cap = lake_limits.max_threads ? lake_limits.max_threads :
			    LAKE_SRV_DEFAULT_MAX_THREADS, pow = 1;

		while (pow < cap)
			pow <<= 1;
		c->ts = calloc(pow, sizeof(*c->ts));
		c->ts_hash = calloc(2 * (size_t)pow, sizeof(*c->ts_hash));
		c->ts_free = calloc(pow, sizeof(*c->ts_free));
		if (!c->ts || !c->ts_hash || !c->ts_free) {
			free(c->ts);
			free(c->ts_hash);
			free(c->ts_free);
			c->ts = NULL;
			c->ts_hash = c->ts_free = NULL;
			return NULL;
		}
		c->ts_cap = pow;
		/* Free entries: ts_free[0 .. cap - n), taken from the end. */
		for (i = 0; i < pow; i++)
			c->ts_free[i] = pow - 1 - i;
	}
	if (c->ts_n == c->ts_cap) {
		lake_ts_drop(c, &c->ts[c->ts_oldest - 1], true);
		c->ts_evicted++;
	}
	t = &c->ts[c->ts_free[c->ts_cap - c->ts_n - 1]];
	t->client = client;
	t->used = true;
	b = lake_ts_bucket(c, client);
	t->hnext = c->ts_hash[b];
	c->ts_hash[b] = (__u32)(t - c->ts) + 1;
	lake_ts_list_newest(c, t);
	c->ts_n++;
	return t;
}

/* A state with nothing in it is dropped: only threads with state take room. */
static void lake_ts_maybe_drop(struct lake_srv_conn *c, struct lake_tstate *t)
{
	unsigned int i;

	if (t->ctx_set || t->depth)
		return;
	for (i = 0; i < LAKE_SRV_MAX_SPECS; i++)
		if (t->deferred[i])
			return;
	lake_ts_drop(c, t, false);
}

static void lake_defer(struct lake_srv_conn *c, __u32 client, unsigned int spec, int error)
{
	struct lake_tstate *t;

	lake_lock(c);
	t = lake_ts_get(c, client);
	if (t && !t->deferred[spec])
		t->deferred[spec] = error;	/* the first error sticks, as in CUDA */
	lake_unlock(c);
}

static int lake_take_deferred(struct lake_srv_conn *c, __u32 client, unsigned int spec)
{
	struct lake_tstate *t;
	int e = 0;

	lake_lock(c);
	t = lake_ts_find(c, client);
	if (t && t->deferred[spec]) {
		e = t->deferred[spec];
		t->deferred[spec] = 0;
		lake_ts_maybe_drop(c, t);
	}
	lake_unlock(c);
	return e;
}

static void lake_thread_gone(struct lake_srv_conn *c, __u32 client)
{
	struct lake_tstate *t;

	lake_lock(c);
	t = lake_ts_find(c, client);
	if (t)
		lake_ts_drop(c, t, false);	/* its errors went with it, as a thread's would */
	lake_unlock(c);
}

/* Makes the calling thread's context current on this serving thread. */
static void lake_apply_context(struct lake_srv_conn *c, __u32 client)
{
	struct lake_tstate *t;
	void *want = lake_default_ctx;

	if (!lake_set_current)
		return;
	lake_lock(c);
	t = lake_ts_find(c, client);
	if (t && t->ctx_set)
		want = t->ctx_real;
	lake_unlock(c);
	if (lake_thread_ctx_known && lake_thread_ctx == want)
		return;
	lake_thread_ctx_known = lake_set_current(want) == 0;
	lake_thread_ctx = want;
}

__u64 lake_srv_ctx_parent(struct lake_srv_conn *c)
{
	struct lake_tstate *t;
	__u64 token = 0;

	lake_lock(c);
	t = lake_ts_find(c, lake_cur.client);
	if (t && t->ctx_set && t->ctx_token) {
		struct lake_res *r = lake_res_by_token(c, t->ctx_token);

		if (r && r->owned)
			token = t->ctx_token;
	}
	lake_unlock(c);
	return token;
}

void lake_srv_ctx_switched(struct lake_srv_conn *c, __u64 token, void *real)
{
	struct lake_tstate *t;

	lake_lock(c);
	t = lake_ts_get(c, lake_cur.client);
	if (t) {
		t->ctx_set = true;
		t->ctx_token = token;
		t->ctx_real = real;
	}
	lake_unlock(c);
	/* The vendor call made it current here. */
	lake_thread_ctx = real;
	lake_thread_ctx_known = true;
}

/*
 * The calling thread's current context becomes the one below it on its
 * stack: the newest frame that still names a live context other than
 * @gone (0: none), else the default.  Lock held.
 */
static void lake_ctx_restore(struct lake_srv_conn *c, struct lake_tstate *t, __u64 gone)
{
	t->ctx_set = false;
	while (t->depth) {
		struct lake_ctx_frame *f = &t->stack[--t->depth];

		if (!f->token)
			return;		/* the default context */
		if (f->token != gone && lake_res_by_token(c, f->token)) {
			t->ctx_set = true;
			t->ctx_token = f->token;
			t->ctx_real = f->real;
			return;
		}
	}
}

int lake_srv_ctx_push(struct lake_srv_conn *c, __u64 token, void *real)
{
	struct lake_tstate *t;
	int rc = -1;

	lake_lock(c);
	t = lake_ts_get(c, lake_cur.client);
	if (!t)
		goto out;
	if (t->depth == t->stack_cap) {
		unsigned int cap = t->stack_cap ? 2 * t->stack_cap : 4;
		struct lake_ctx_frame *st;

		if (cap > LAKE_SRV_MAX_CTX_DEPTH)
			goto out;
		st = realloc(t->stack, cap * sizeof(*st));
		if (!st)
			goto out;
		t->stack = st;
		t->stack_cap = cap;
	}
	t->stack[t->depth].token = t->ctx_set ? t->ctx_token : 0;
	t->stack[t->depth].real = t->ctx_set ? t->ctx_real : lake_default_ctx;
	t->depth++;
	t->ctx_set = true;
	t->ctx_token = token;
	t->ctx_real = real;
	rc = 0;
out:
	lake_unlock(c);
	return rc;
}

void *lake_srv_ctx_pop(struct lake_srv_conn *c)
{
	struct lake_tstate *t;
	void *popped = lake_default_ctx;

	lake_lock(c);
	t = lake_ts_find(c, lake_cur.client);
	if (t) {
		if (t->ctx_set)
			popped = t->ctx_real;
		lake_ctx_restore(c, t, 0);
		lake_ts_maybe_drop(c, t);
	}
	lake_unlock(c);
	return popped;
}

void lake_srv_ctx_forget(struct lake_srv_conn *c, __u64 token)
{
	__u32 i;

	lake_lock(c);
	/* Threads whose current context it was go back to the one below it on
	 * their stacks (as a thread whose context stack loses its top). */
	for (i = 0; c->ts && i < c->ts_cap; i++) {
		struct lake_tstate *t = &c->ts[i];

		if (t->used && t->ctx_set && t->ctx_token == token) {
			lake_ctx_restore(c, t, token);
			lake_ts_maybe_drop(c, t);
		}
	}
	lake_unlock(c);
	lake_thread_ctx_known = false;	/* what the driver left current here: unknown */
}

/* ------------------------------------------------------------------------ */
/* Buffers, strings, kernel parameters                                      */

int lake_srv_buf(struct lake_srv_conn *c, __u8 *slot, const struct lake_buf_ref *ref,
		 void **ptr, __u64 *len)
{
	__u64 off = ref->off, n = ref->len;

	if (ref->reserved)
		return -1;
	switch (ref->where) {
	case LAKE_BUF_NULL:
		*ptr = NULL;
		*len = 0;
		return 0;
	case LAKE_BUF_ARENA:
		if (!c->arena || off > c->arena_size || n > c->arena_size - off)
			return -1;
		*ptr = c->arena + off;
		break;
	case LAKE_BUF_SLOT:
		/* Inside what the client sent (the private copy holds no more). */
		if (off < LAKE_ARGS_OFFSET || off - LAKE_ARGS_OFFSET > lake_cur.args_len ||
		    n > lake_cur.args_len - (off - LAKE_ARGS_OFFSET))
			return -1;
		*ptr = slot + off;
		break;
	default:
		return -1;
	}
	*len = n;
	return 0;
}

int lake_srv_buf_out(struct lake_srv_conn *c, __u8 *slot, const struct lake_buf_ref *ref,
		     void **ptr, __u64 *len)
{
	if (lake_srv_buf(c, slot, ref, ptr, len))
		return -1;
	if (*ptr && ref->where == LAKE_BUF_SLOT && *len) {
		if (lake_cur.nwb == LAKE_SRV_MAX_WRITEBACK)
			return -1;
		lake_cur.wb[lake_cur.nwb].off = (__u32)ref->off;
		lake_cur.wb[lake_cur.nwb].len = (__u32)*len;
		lake_cur.nwb++;
	}
	return 0;
}

int lake_srv_string(struct lake_srv_conn *c, __u8 *slot, const struct lake_buf_ref *ref,
		    __u32 max, void **ptr, __u64 *len)
{
	char *s;

	if (lake_srv_buf(c, slot, ref, ptr, len))
		return -1;
	if (!*ptr)
		return 0;
	s = *ptr;
	/* An arena string can still change: the generated dispatch copies it
	 * into private memory before the vendor reads it. */
	if (*len == 0 || *len > max || memchr(s, 0, *len) == NULL)
		return -1;
	return 0;
}

void *lake_srv_private_copy(struct lake_srv_conn *c, const void *p, __u64 n)
{
	void *q;

	(void)c;
	if (lake_cur.npriv == LAKE_SRV_MAX_PRIVATE || n > (1ull << 32))
		return NULL;
	/* A zeroed page beyond: a parser that overruns what was measured
	 * reads zeros, not the heap. */
	q = calloc(1, n + 4096);
	if (!q)
		return NULL;
	memcpy(q, p, n);
	lake_cur.priv[lake_cur.npriv++] = q;
	return q;
}

int lake_srv_kparams(struct lake_srv_conn *c, __u64 func, __u8 *slot,
		     const struct lake_buf_ref *ref, void ***params)
{
	struct lake_res *r;
	void *base;
	__u64 len;
	__u32 i;
	int rc = -1;

	if (lake_srv_buf(c, slot, ref, &base, &len))
		return -1;
	if (!base) {
		*params = NULL;
		return 0;
	}
	lake_lock(c);
	r = lake_res_by_token(c, func);
	if (r && r->layout && len == r->layout->size) {
		for (i = 0; i < r->layout->count; i++)
			(*params)[i] = (__u8 *)base + r->layout->offset[i];
		rc = 0;
	}
	lake_unlock(c);
	return rc;
}

int lake_srv_kparams_learn(struct lake_srv_conn *c, __u64 func, void *real,
			   struct lake_kparam_layout *layout)
{
	struct lake_kparam_layout *l;
	struct lake_res *r;
	__u64 off, size;
	bool known = false;
	__u32 i;

	lake_lock(c);
	r = lake_res_by_token(c, func);
	if (r && r->layout) {
		memcpy(layout, r->layout, sizeof(*layout));
		known = true;
	}
	lake_unlock(c);
	if (!r)
		return -1;
	if (known)
		return 0;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -1;
	/* The vendor answers an error past the last parameter. */
	for (i = 0; i <= LAKE_MAX_KPARAMS; i++) {
		if (lake_srv_param_info(c, real, i, &off, &size))
			break;
		if (i == LAKE_MAX_KPARAMS || off + size > LAKE_KPARAMS_MAX_SIZE || size > 0xffff)
			goto fail;
		l->offset[i] = (__u16)off;
		l->psize[i] = (__u16)size;
		if (off + size > l->size)
			l->size = (__u32)(off + size);
	}
	l->count = i;
	memcpy(layout, l, sizeof(*l));
	lake_lock(c);
	r = lake_res_by_token(c, func);
	if (r && !r->layout) {
		r->layout = l;
		l = NULL;
	}
	lake_unlock(c);
	free(l);
	return 0;
fail:
	free(l);
	return -1;
}

/* ------------------------------------------------------------------------ */
/* Executing a command                                                      */

static void lake_reply(__u8 *shared, __s32 result, __u32 reply_len)
{
	struct lake_msg_hdr *h = (struct lake_msg_hdr *)shared;

	__atomic_store_n(&h->result, result, __ATOMIC_RELAXED);
	__atomic_store_n(&h->reply_len, reply_len, __ATOMIC_RELAXED);
}

void lake_srv_process_cmd(struct lake_srv_conn *c, __u8 *shared, struct lake_srv_cmd *cmd)
{
	__u8 *slot = lake_scratch;
	struct lake_msg_hdr *h = (struct lake_msg_hdr *)slot;
	const struct lake_srv_api *d;
	__u32 api, flags, client, args_len;
	unsigned int i;
	int r;

	/*
	 * One fetch of everything the client sent: the header, then as many
	 * argument bytes as it says it wrote.  Checks and the vendor see only
	 * this private copy; a client rewriting its slot meanwhile changes
	 * nothing here.
	 */
	memcpy(h, shared, sizeof(*h));
	api = h->api;
	flags = h->flags;
	client = h->client;
	args_len = h->args_len;
	if (cmd) {
		cmd->api = api;
		cmd->flags = flags;
		cmd->client = client;
		cmd->seq = h->seq;
	}
	if (args_len > LAKE_ARGS_MAX) {
		lake_reply(shared, LAKE_RESULT_PROTOCOL, 0);
		return;
	}
	memcpy(slot + LAKE_ARGS_OFFSET, shared + LAKE_ARGS_OFFSET, args_len);

	if (api == LAKE_API_NOP) {
		struct lake_nop nop;

		if (args_len < sizeof(nop)) {
			lake_reply(shared, LAKE_RESULT_PROTOCOL, 0);
			return;
		}
		if (flags & LAKE_MSG_THREAD_GONE)
			lake_thread_gone(c, client);
		memcpy(&nop, slot + LAKE_ARGS_OFFSET, sizeof(nop));
		memcpy(shared + LAKE_OUTS_OFFSET, &nop, sizeof(nop));
		lake_reply(shared, 0, sizeof(nop));
		return;
	}
	if (api == 0 || api > LAKE_API_MAX || !lake_srv_apis[api].run ||
	    (flags & ~(LAKE_MSG_ASYNC | LAKE_MSG_STAGED)) ||
	    args_len < lake_srv_apis[api].args_size) {
		lake_reply(shared, LAKE_RESULT_PROTOCOL, 0);
		return;
	}
	d = &lake_srv_apis[api];
	memset(&lake_cur, 0, sizeof(lake_cur));
	lake_cur.conn = c;
	lake_cur.client = client;
	lake_cur.args_len = args_len;
	if (d->outs_size)
		memset(slot + LAKE_OUTS_OFFSET, 0, d->outs_size);
	lake_apply_context(c, client);
	r = d->run(c, slot, flags, h->present);
	if (flags & LAKE_MSG_ASYNC) {
		/* The caller has returned: report it later (to this thread). */
		if (r)
			lake_defer(c, client, d->spec, r);
	} else if (r == 0 && d->reports_deferred) {
		/* Only a call that produced nothing reports a deferred error:
		 * no output or resource is lost by replacing its success. */
		r = lake_take_deferred(c, client, d->spec);
	}
	/* The reply, last: outputs, output buffers staged in the slot, result. */
	if (d->outs_size)
		memcpy(shared + LAKE_OUTS_OFFSET, slot + LAKE_OUTS_OFFSET, d->outs_size);
	for (i = 0; i < lake_cur.nwb; i++)
		memcpy(shared + lake_cur.wb[i].off, slot + lake_cur.wb[i].off, lake_cur.wb[i].len);
	for (i = 0; i < lake_cur.npriv; i++)
		free(lake_cur.priv[i]);
	lake_cur.npriv = 0;
	lake_reply(shared, r, d->outs_size);
}

/* ------------------------------------------------------------------------ */
/* The end of a connection                                                  */

static int lake_birth_desc(const void *a, const void *b)
{
	const struct lake_res *x = *(struct lake_res *const *)a;
	const struct lake_res *y = *(struct lake_res *const *)b;

	return x->birth < y->birth ? 1 : x->birth > y->birth ? -1 : 0;
}

/* Does @r die with an owned ancestor (so its destroy call must not be made)? */
static bool lake_dies_with_ancestor(struct lake_srv_conn *c, struct lake_res *r)
{
	struct lake_res *p;

	for (p = lake_res_at(c, r->parent); p; p = lake_res_at(c, p->parent))
		if (p->owned)
			return true;
	return false;
}

static void lake_range_node_free(void *node)
{
	(void)node;	/* owned by their resources, freed below */
}

void lake_srv_conn_free(struct lake_srv_conn *c)
{
	struct lake_res **owned;
	__u32 i, n = 0;

	if (!c)
		return;
	/* The client's allocations and modules in the default context are
	 * destroyed there. */
	if (lake_set_current && lake_set_current(lake_default_ctx) == 0)
		lake_srv_thread_bound(lake_default_ctx);
	else
		lake_thread_ctx_known = false;
	/* Destroy what the client left behind, newest first (an event before
	 * its context, a graph exec before its graph); what dies with a parent
	 * the client made (a stream with its context) goes with that parent. */
	owned = calloc(c->nres ? c->nres : 1, sizeof(*owned));
	if (owned) {
		for (i = 0; i < c->nres; i++)
			if (c->res[i].type != LAKE_RT_NONE && c->res[i].owned &&
			    !lake_dies_with_ancestor(c, &c->res[i]))
				owned[n++] = &c->res[i];
		qsort(owned, n, sizeof(*owned), lake_birth_desc);
		for (i = 0; i < n; i++)
			lake_srv_destroy(c, owned[i]->type, owned[i]->value,
					 owned[i]->range ? owned[i]->range->size : 0);
		free(owned);
	}
	/* Then the references it still holds, each as often as it took it. */
	for (i = 0; i < c->nres; i++) {
		struct lake_res *r = &c->res[i];

		while (r->type != LAKE_RT_NONE && r->kind == LAKE_RES_REF && r->refs) {
			lake_srv_release(c, r->type, r->value);
			r->refs--;
		}
	}
	for (i = 0; i < c->nres; i++) {
		if (c->res[i].type != LAKE_RT_NONE)
			lake_gpu_account(c, &c->res[i], false);
		free(c->res[i].layout);
		free(c->res[i].range);
	}
	tdestroy(c->ranges, lake_range_node_free);
	free(c->res);
	free(c->free_idx);
	free(c->hash);
	for (i = 0; c->ts && i < c->ts_cap; i++)
		free(c->ts[i].stack);
	free(c->ts);
	free(c->ts_hash);
	free(c->ts_free);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void lake_srv_conn_stats(struct lake_srv_conn *c, struct lake_srv_conn_stats *st)
{
	__u32 i;

	memset(st, 0, sizeof(*st));
	lake_lock(c);
	for (i = 0; i < c->nres; i++) {
		if (c->res[i].type == LAKE_RT_NONE)
			continue;
		if (c->res[i].kind == LAKE_RES_REF) {
			st->refs += c->res[i].refs;
		} else {
			st->resources++;
			st->owned += c->res[i].owned && !lake_dies_with_ancestor(c, &c->res[i]);
		}
	}
	st->gpu_bytes = c->gpu_bytes;
	st->threads = c->ts_n;
	st->threads_evicted = c->ts_evicted;
	st->deferred_dropped = c->deferred_dropped;
	st->quota_refusals = c->quota_refusals;
	lake_unlock(c);
}
