// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The server half of the protocol core (see lake_server.h): per-client
 * resource tables, sticky errors, and the checks behind every pointer and
 * handle a client sends.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include "lake_server.h"

/*
 * A resource a client holds: a handle (found by token) or a tracked scalar
 * such as a device pointer (found by value).  Tokens are (gen << 32) | (i + 1)
 * so a freed slot's old token never matches its next occupant.
 */
struct lake_res {
	__u64 value;
	__u64 parent;		/* token of the resource this one dies with */
	__u64 birth;		/* creation order, for cleanup in reverse */
	struct lake_kparam_layout *layout;
	__u32 gen;
	__u16 type;		/* LAKE_RT_NONE: free */
	bool owned;		/* destroy it when the client goes away */
};

struct lake_sticky {
	__u32 client;
	unsigned int spec;
	int error;
};

struct lake_srv_conn {
	const struct lake_vendors *vendors;
	__u8 *arena;
	__u64 arena_size;
	struct lake_res *res;
	__u32 nres, res_cap, nfree;
	__u32 *free_idx;
	__u32 *hash;		/* (type, value) -> index + 1; 0 empty, TOMB deleted */
	__u32 hash_cap, hash_used;
	__u64 births;
	__u32 gen_base;		/* random: tokens of an earlier connection never match */
	struct lake_sticky *sticky;
	unsigned int nsticky, sticky_cap;
};

#define LAKE_TOMB	UINT32_MAX

struct lake_srv_conn *lake_srv_conn_new(const struct lake_vendors *vendors,
					void *arena, __u64 arena_size)
{
	struct lake_srv_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->vendors = vendors;
	c->arena = arena;
	c->arena_size = arena ? arena_size : 0;
	if (getrandom(&c->gen_base, sizeof(c->gen_base), GRND_NONBLOCK) != sizeof(c->gen_base))
		c->gen_base = (__u32)time(NULL) ^ (__u32)(uintptr_t)c;
	return c;
}

const struct lake_vendors *lake_srv_vendors(struct lake_srv_conn *c)
{
	return c->vendors;
}

static __u32 lake_hash_of(unsigned int type, __u64 value, __u32 cap)
{
	__u64 h = (value ^ ((__u64)type << 56)) * 0x9E3779B97F4A7C15ull;

	return (__u32)(h >> 32) & (cap - 1);
}

static __u32 *lake_hash_find(struct lake_srv_conn *c, unsigned int type, __u64 value)
{
	__u32 i, n;

	if (!c->hash_cap)
		return NULL;
	for (i = lake_hash_of(type, value, c->hash_cap), n = 0; n < c->hash_cap;
	     i = (i + 1) & (c->hash_cap - 1), n++) {
		__u32 e = c->hash[i];

		if (!e)
			return NULL;
		if (e != LAKE_TOMB && c->res[e - 1].type == type && c->res[e - 1].value == value)
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
		__u32 j;

		if (c->res[i].type == LAKE_RT_NONE)
			continue;
		for (j = lake_hash_of(c->res[i].type, c->res[i].value, cap); h[j];
		     j = (j + 1) & (cap - 1))
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

	if ((c->hash_used + 1) * 2 > c->hash_cap && lake_hash_grow(c))
		return -1;
	for (j = lake_hash_of(r->type, r->value, c->hash_cap);
	     c->hash[j] && c->hash[j] != LAKE_TOMB; j = (j + 1) & (c->hash_cap - 1))
		;
	if (!c->hash[j])
		c->hash_used++;
	c->hash[j] = index + 1;
	return 0;
}

static struct lake_res *lake_res_by_token(struct lake_srv_conn *c, __u64 token)
{
	__u32 index = (__u32)token - 1;

	if ((__u32)token == 0 || index >= c->nres)
		return NULL;
	if (c->res[index].type == LAKE_RT_NONE || c->res[index].gen != (__u32)(token >> 32))
		return NULL;
	return &c->res[index];
}

static __u64 lake_token_of(struct lake_srv_conn *c, struct lake_res *r)
{
	return ((__u64)r->gen << 32) | (__u64)(r - c->res + 1);
}

static struct lake_res *lake_res_new(struct lake_srv_conn *c, unsigned int type, __u64 value)
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
	r->value = value;
	r->parent = 0;
	r->owned = false;
	r->layout = NULL;
	r->birth = ++c->births;
	if (lake_hash_insert(c, index)) {
		r->type = LAKE_RT_NONE;
		c->free_idx[c->nfree++] = index;
		return NULL;
	}
	return r;
}

static void lake_res_free(struct lake_srv_conn *c, struct lake_res *r)
{
	__u32 *slot = lake_hash_find(c, r->type, r->value);

	if (slot)
		*slot = LAKE_TOMB;
	free(r->layout);
	r->layout = NULL;
	r->type = LAKE_RT_NONE;
	r->gen++;
	c->free_idx[c->nfree++] = (__u32)(r - c->res);
}

int lake_srv_handle_get(struct lake_srv_conn *c, __u64 token, unsigned int type, void **real)
{
	struct lake_res *r;

	if (!token) {
		*real = NULL;	/* NULL handles (the default stream) are the vendor's to judge */
		return 0;
	}
	r = lake_res_by_token(c, token);
	if (!r || r->type != type)
		return -1;
	*real = (void *)(uintptr_t)r->value;
	return 0;
}

int lake_srv_handle_add(struct lake_srv_conn *c, unsigned int type, void *real, __u64 parent,
			bool owned, __u64 *token)
{
	__u32 *slot = lake_hash_find(c, type, (uintptr_t)real);
	struct lake_res *r;

	if (!real) {
		*token = 0;
		return 0;
	}
	r = slot ? &c->res[*slot - 1] : lake_res_new(c, type, (uintptr_t)real);
	if (!r)
		return -1;
	if (parent && !r->parent)
		r->parent = parent;
	r->owned |= owned;
	*token = lake_token_of(c, r);
	return 0;
}

void lake_srv_handle_del(struct lake_srv_conn *c, __u64 token)
{
	struct lake_res *r = lake_res_by_token(c, token);
	__u32 i;

	if (!r)
		return;
	/* Its children (a module's functions) die with it. */
	for (i = 0; i < c->nres; i++)
		if (c->res[i].type != LAKE_RT_NONE && c->res[i].parent == token)
			lake_res_free(c, &c->res[i]);
	lake_res_free(c, r);
}

bool lake_srv_res_has(struct lake_srv_conn *c, unsigned int type, __u64 value)
{
	return lake_hash_find(c, type, value) != NULL;
}

int lake_srv_res_add(struct lake_srv_conn *c, unsigned int type, __u64 value)
{
	struct lake_res *r;

	if (lake_hash_find(c, type, value))
		return 0;
	r = lake_res_new(c, type, value);
	if (!r)
		return -1;
	r->owned = true;
	return 0;
}

void lake_srv_res_del(struct lake_srv_conn *c, unsigned int type, __u64 value)
{
	__u32 *slot = lake_hash_find(c, type, value);

	if (slot)
		lake_res_free(c, &c->res[*slot - 1]);
}

unsigned int lake_srv_res_count(struct lake_srv_conn *c, unsigned int type)
{
	unsigned int n = 0;
	__u32 i;

	for (i = 0; i < c->nres; i++)
		if (c->res[i].type != LAKE_RT_NONE && (type == LAKE_RT_NONE || c->res[i].type == type))
			n++;
	return n;
}

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
		if (off < LAKE_ARGS_OFFSET || off > LAKE_SLOT_SIZE || n > LAKE_SLOT_SIZE - off)
			return -1;
		*ptr = slot + off;
		break;
	default:
		return -1;
	}
	*len = n;
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
	/* The client can still write its slot: the generated dispatch copies
	 * the string into private memory before the vendor reads it. */
	if (*len == 0 || *len > max || memchr(s, 0, *len) == NULL)
		return -1;
	return 0;
}

int lake_srv_kparams(struct lake_srv_conn *c, __u64 func, __u8 *slot,
		     const struct lake_buf_ref *ref, void ***params)
{
	struct lake_res *r = lake_res_by_token(c, func);
	void *base;
	__u64 len;
	__u32 i;

	if (lake_srv_buf(c, slot, ref, &base, &len))
		return -1;
	if (!base) {
		*params = NULL;
		return 0;
	}
	if (!r || !r->layout || len != r->layout->size)
		return -1;
	for (i = 0; i < r->layout->count; i++)
		(*params)[i] = (__u8 *)base + r->layout->offset[i];
	return 0;
}

int lake_srv_kparams_learn(struct lake_srv_conn *c, __u64 func, void *real,
			   struct lake_kparam_layout *layout)
{
	struct lake_res *r = lake_res_by_token(c, func);
	struct lake_kparam_layout *l;
	__u64 off, size;
	__u32 i;

	if (!r)
		return -1;
	if (r->layout) {
		memcpy(layout, r->layout, sizeof(*layout));
		return 0;
	}
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
	r->layout = l;
	memcpy(layout, l, sizeof(*l));
	return 0;
fail:
	free(l);
	return -1;
}

static int lake_sticky_take(struct lake_srv_conn *c, __u32 client, unsigned int spec)
{
	unsigned int i;

	for (i = 0; i < c->nsticky; i++) {
		if (c->sticky[i].client == client && c->sticky[i].spec == spec) {
			int e = c->sticky[i].error;

			c->sticky[i] = c->sticky[--c->nsticky];
			return e;
		}
	}
	return 0;
}

static void lake_sticky_set(struct lake_srv_conn *c, __u32 client, unsigned int spec, int error)
{
	unsigned int i;

	for (i = 0; i < c->nsticky; i++)
		if (c->sticky[i].client == client && c->sticky[i].spec == spec)
			return;	/* the first error sticks, as in CUDA */
	if (c->nsticky == c->sticky_cap) {
		unsigned int cap = c->sticky_cap ? c->sticky_cap * 2 : 16;
		struct lake_sticky *s = realloc(c->sticky, cap * sizeof(*s));

		if (!s)
			return;
		c->sticky = s;
		c->sticky_cap = cap;
	}
	c->sticky[c->nsticky].client = client;
	c->sticky[c->nsticky].spec = spec;
	c->sticky[c->nsticky].error = error;
	c->nsticky++;
}

void lake_srv_process(struct lake_srv_conn *c, __u8 *slot)
{
	struct lake_msg_hdr *h = (struct lake_msg_hdr *)slot;
	__u32 api = h->api, flags = h->flags, client = h->client;
	__u32 args_len = h->args_len, present = h->present;
	const struct lake_srv_api *d;
	int r;

	if (api == LAKE_API_NOP) {
		struct lake_nop nop;

		if (args_len < sizeof(nop)) {
			h->result = LAKE_RESULT_PROTOCOL;
			h->reply_len = 0;
			return;
		}
		memcpy(&nop, slot + LAKE_ARGS_OFFSET, sizeof(nop));
		memcpy(slot + LAKE_OUTS_OFFSET, &nop, sizeof(nop));
		h->result = 0;
		h->reply_len = sizeof(nop);
		return;
	}
	if (api == 0 || api > LAKE_API_MAX || !lake_srv_apis[api].run ||
	    (flags & ~(LAKE_MSG_ASYNC | LAKE_MSG_STAGED)) ||
	    args_len < lake_srv_apis[api].args_size || args_len > LAKE_ARGS_MAX) {
		h->result = LAKE_RESULT_PROTOCOL;
		h->reply_len = 0;
		return;
	}
	d = &lake_srv_apis[api];
	if (d->outs_size)
		memset(slot + LAKE_OUTS_OFFSET, 0, d->outs_size);
	r = d->run(c, slot, flags, present);
	if (flags & LAKE_MSG_ASYNC) {
		if (r)
			lake_sticky_set(c, client, d->spec, r);
	} else if (r == 0) {
		r = lake_sticky_take(c, client, d->spec);
	}
	h->result = r;
	h->reply_len = d->outs_size;
}

static int lake_birth_desc(const void *a, const void *b)
{
	const struct lake_res *x = *(struct lake_res *const *)a;
	const struct lake_res *y = *(struct lake_res *const *)b;

	return x->birth < y->birth ? 1 : x->birth > y->birth ? -1 : 0;
}

void lake_srv_conn_free(struct lake_srv_conn *c)
{
	struct lake_res **owned;
	__u32 i, n = 0;

	if (!c)
		return;
	/* Destroy what the client left behind, newest first (an event before
	 * its context, a graph exec before its graph). */
	owned = calloc(c->nres ? c->nres : 1, sizeof(*owned));
	if (owned) {
		for (i = 0; i < c->nres; i++)
			if (c->res[i].type != LAKE_RT_NONE && c->res[i].owned)
				owned[n++] = &c->res[i];
		qsort(owned, n, sizeof(*owned), lake_birth_desc);
		for (i = 0; i < n; i++)
			lake_srv_destroy(c, owned[i]->type, owned[i]->value);
		free(owned);
	}
	for (i = 0; i < c->nres; i++)
		free(c->res[i].layout);
	free(c->res);
	free(c->free_idx);
	free(c->hash);
	free(c->sticky);
	free(c);
}
