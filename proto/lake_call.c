// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The client half of the protocol core (see lake_call.h): building a command
 * in a slot, staging buffers that are not in the arena, packing kernel
 * parameters and checking the reply.  Shared by lake.ko and liblake.
 */
#include "lake_call.h"

struct lake_kparam_entry {
	struct lake_kparam_entry *next;
	__u64 func;
	__u64 parent;
	struct lake_kparam_layout layout;
};

static unsigned int lake_kparam_bucket(__u64 func)
{
	return (unsigned int)((func * 0x9E3779B97F4A7C15ull) >> 58);
}

void lake_transport_init(struct lake_transport *t, const struct lake_transport_ops *ops)
{
	unsigned int i;

	t->ops = ops;
	lake_os_lock_init(&t->kparams.lock);
	for (i = 0; i < 64; i++)
		t->kparams.bucket[i] = NULL;
}

void lake_transport_destroy(struct lake_transport *t)
{
	struct lake_kparam_entry *e, *next;
	unsigned int i;

	for (i = 0; i < 64; i++) {
		for (e = t->kparams.bucket[i]; e; e = next) {
			next = e->next;
			lake_os_free(e);
		}
		t->kparams.bucket[i] = NULL;
	}
}

static __u32 lake_align8(__u32 v)
{
	return (v + 7u) & ~7u;
}

int lake_call_begin(struct lake_call *c, struct lake_transport *t, __u32 api,
		    __u32 args_size, __u32 outs_size, bool async)
{
	struct lake_msg_hdr *h;
	int st;

	c->t = t;
	c->async = async;
	c->staged_any = false;
	c->nstaged = 0;
	c->outs_size = outs_size;
	c->tail = lake_align8(args_size);
	c->result = 0;
	st = t->ops->begin(t, c);
	if (st)
		return st;
	h = lake_call_hdr(c);
	h->api = api;
	h->flags = async ? LAKE_MSG_ASYNC : 0;
	h->client = t->ops->client_id(t);
	h->seq = c->seq;
	h->args_len = 0;
	h->present = 0;
	h->result = 0;
	h->reply_len = 0;
	h->done_seq = ~c->seq;	/* anything but seq */
	h->waiting = 0;
	memset(h->reserved, 0, sizeof(h->reserved));
	/* Reserved fields and padding must read as zero. */
	memset(lake_call_args(c), 0, c->tail);
	return LAKE_OK;
}

/* Room in the slot's tail for @len bytes, 16-byte aligned; NULL if none. */
static void *lake_call_tail(struct lake_call *c, __u64 len, __u64 *off)
{
	__u32 start = (c->tail + 15u) & ~15u;

	if (start > LAKE_ARGS_MAX || len > LAKE_ARGS_MAX - start)
		return NULL;
	c->tail = start + (__u32)len;
	*off = LAKE_ARGS_OFFSET + start;
	return c->slot + LAKE_ARGS_OFFSET + start;
}

int lake_call_buf(struct lake_call *c, struct lake_buf_ref *ref, const void *p,
		  __u64 len, bool overflow, bool in, bool out)
{
	struct lake_transport *t = c->t;
	struct lake_staged *s;
	__u64 off;
	void *stage;

	ref->reserved = 0;
	if (!p) {
		ref->where = LAKE_BUF_NULL;
		ref->off = 0;
		ref->len = 0;
		return LAKE_OK;
	}
	if (overflow)
		return LAKE_E_INVALID;
	ref->len = len;
	if (t->ops->arena_find(t, p, len, &off)) {
		ref->where = LAKE_BUF_ARENA;
		ref->off = off;
		return LAKE_OK;
	}
	/* Not in the arena: stage a copy, in the slot if it fits. */
	if (c->nstaged == LAKE_MAX_STAGED)
		return LAKE_E_INVALID;
	s = &c->staged[c->nstaged];
	s->arena_len = 0;
	stage = lake_call_tail(c, len, &off);
	if (stage) {
		ref->where = LAKE_BUF_SLOT;
	} else {
		stage = t->ops->arena_alloc(t, len, &off);
		if (!stage)
			return LAKE_E_NOMEM;
		s->arena_len = len;
		ref->where = LAKE_BUF_ARENA;
	}
	ref->off = off;
	s->user = (void *)p;
	s->stage = stage;
	s->len = len;
	s->copy_out = out;
	c->nstaged++;
	c->staged_any = true;
	if (in)
		memcpy(stage, p, len);
	return LAKE_OK;
}

int lake_call_string(struct lake_call *c, struct lake_buf_ref *ref, const char *s,
		     __u32 max)
{
	__u64 n, off;
	void *dst;

	ref->reserved = 0;
	if (!s) {
		ref->where = LAKE_BUF_NULL;
		ref->off = 0;
		ref->len = 0;
		return LAKE_OK;
	}
	n = strnlen(s, max);
	if (n == max)
		return LAKE_E_INVALID;	/* longer than the spec allows */
	dst = lake_call_tail(c, n + 1, &off);
	if (!dst)
		return LAKE_E_INVALID;
	memcpy(dst, s, n + 1);
	ref->where = LAKE_BUF_SLOT;
	ref->off = off;
	ref->len = n + 1;
	return LAKE_OK;
}

int lake_call_kparams(struct lake_call *c, struct lake_buf_ref *ref, __u64 func,
		      void **params)
{
	struct lake_kparam_cache *kc = &c->t->kparams;
	struct lake_kparam_entry *e;
	int st = LAKE_E_BAD_HANDLE;
	__u32 i;
	__u64 off;
	__u8 *dst;

	ref->reserved = 0;
	if (!params) {
		ref->where = LAKE_BUF_NULL;
		ref->off = 0;
		ref->len = 0;
		return LAKE_OK;
	}
	lake_os_lock(&kc->lock);
	for (e = kc->bucket[lake_kparam_bucket(func)]; e; e = e->next)
		if (e->func == func)
			break;
	if (e) {
		dst = lake_call_tail(c, e->layout.size, &off);
		if (!dst) {
			st = LAKE_E_INVALID;
		} else {
			for (i = 0; i < e->layout.count; i++)
				memcpy(dst + e->layout.offset[i], params[i], e->layout.psize[i]);
			ref->where = LAKE_BUF_SLOT;
			ref->off = off;
			ref->len = e->layout.size;
			st = LAKE_OK;
		}
	}
	lake_os_unlock(&kc->lock);
	return st;
}

int lake_call_submit(struct lake_call *c)
{
	struct lake_msg_hdr *h = lake_call_hdr(c);
	__s32 result;
	int st;

	if (c->staged_any) {
		/* Staged memory is reused once we return: an async call with a
		 * staged buffer completes before returning, as CUDA does for
		 * pageable memory. */
		c->async = false;
		h->flags = LAKE_MSG_STAGED;
	}
	h->args_len = c->tail;
	st = c->t->ops->submit(c->t, c);
	if (st || c->async)
		return st;
	/* The reply is in shared memory: read each field once, then check it. */
	result = LAKE_READ_ONCE(h->result);
	if (LAKE_READ_ONCE(h->seq) != c->seq || result < 0 ||
	    LAKE_READ_ONCE(h->reply_len) != c->outs_size)
		return LAKE_E_PROTOCOL;
	c->result = result;
	return LAKE_OK;
}

int lake_call_end(struct lake_call *c, int status)
{
	unsigned int i;

	for (i = 0; i < c->nstaged; i++) {
		struct lake_staged *s = &c->staged[i];

		/* Results 0 is success in every spec (checked by the generator). */
		if (s->copy_out && status == LAKE_OK && c->result == 0)
			memcpy(s->user, s->stage, s->len);
		if (s->arena_len)
			c->t->ops->arena_free(c->t, s->stage, s->arena_len);
	}
	c->t->ops->end(c->t, c);
	return status;
}

int lake_call_nop(struct lake_transport *t, __u64 cookie)
{
	struct lake_nop *nop;
	struct lake_call c;
	int st = lake_call_begin(&c, t, LAKE_API_NOP, sizeof(*nop), sizeof(*nop), false);

	if (st)
		return st;
	nop = lake_call_args(&c);
	nop->cookie = cookie;
	st = lake_call_submit(&c);
	if (!st && (c.result ||
		    LAKE_READ_ONCE(((struct lake_nop *)lake_call_outs(&c))->cookie) != cookie))
		st = LAKE_E_PROTOCOL;	/* not our reply */
	return lake_call_end(&c, st);
}

int lake_status_errno(int st)
{
	switch (st) {
	case LAKE_OK:
		return 0;
	case LAKE_E_UNAVAILABLE:
		return -ENODEV;
	case LAKE_E_TIMEOUT:
		return -ETIMEDOUT;
	case LAKE_E_INTERRUPTED:
		return -EINTR;
	case LAKE_E_NOMEM:
		return -ENOMEM;
	case LAKE_E_INVALID:
	case LAKE_E_UNSUPPORTED:
	case LAKE_E_BAD_HANDLE:
		return -EINVAL;
	default:
		return -EPROTO;
	}
}

void lake_call_learn(struct lake_call *c, __u64 func, __u64 parent,
		     const struct lake_kparam_layout *shared)
{
	struct lake_kparam_cache *kc = &c->t->kparams;
	struct lake_kparam_entry *e, **pp;
	__u32 i;

	e = lake_os_zalloc(sizeof(*e));
	if (!e)
		return;	/* launches of @func will fail with a bad handle */
	/* Copy first, then check: the daemon may still be writing the slot. */
	memcpy(&e->layout, shared, sizeof(e->layout));
	if (e->layout.count > LAKE_MAX_KPARAMS || e->layout.size > LAKE_KPARAMS_MAX_SIZE)
		goto bad;
	for (i = 0; i < e->layout.count; i++)
		if ((__u32)e->layout.offset[i] + e->layout.psize[i] > e->layout.size)
			goto bad;
	e->func = func;
	e->parent = parent;
	lake_os_lock(&kc->lock);
	for (pp = &kc->bucket[lake_kparam_bucket(func)]; *pp; pp = &(*pp)->next) {
		if ((*pp)->func == func) {
			struct lake_kparam_entry *old = *pp;

			*pp = old->next;
			lake_os_free(old);
			break;
		}
	}
	pp = &kc->bucket[lake_kparam_bucket(func)];
	e->next = *pp;
	*pp = e;
	lake_os_unlock(&kc->lock);
	return;
bad:
	lake_os_free(e);
}

void lake_call_forget(struct lake_call *c, __u64 handle)
{
	struct lake_kparam_cache *kc = &c->t->kparams;
	struct lake_kparam_entry *e, **pp;
	struct lake_kparam_entry *dead = NULL;
	unsigned int i;

	lake_os_lock(&kc->lock);
	for (i = 0; i < 64; i++) {
		pp = &kc->bucket[i];
		while ((e = *pp)) {
			if (e->func == handle || e->parent == handle) {
				*pp = e->next;
				e->next = dead;
				dead = e;
			} else {
				pp = &e->next;
			}
		}
	}
	lake_os_unlock(&kc->lock);
	while (dead) {
		e = dead->next;
		lake_os_free(dead);
		dead = e;
	}
}

/* Little-endian loads that tolerate any alignment. */
static __u64 lake_le(const __u8 *p, unsigned int n)
{
	__u64 v = 0;

	while (n--)
		v = (v << 8) | p[n];
	return v;
}

#define LAKE_FATBIN_MAGIC	0xBA55ED50u
#define LAKE_ELF_NOBITS		8u

static __u64 lake_elf64_size(const __u8 *p, __u64 max)
{
	__u64 end, shoff, phoff, off, size;
	__u32 shentsize, shnum, phentsize, phnum, i;
	bool ovf = false;

	if (max < 64)
		return 0;
	phoff = lake_le(p + 0x20, 8);
	shoff = lake_le(p + 0x28, 8);
	phentsize = (__u32)lake_le(p + 0x36, 2);
	phnum = (__u32)lake_le(p + 0x38, 2);
	shentsize = (__u32)lake_le(p + 0x3A, 2);
	shnum = (__u32)lake_le(p + 0x3C, 2);
	end = 64;
	size = lake_sz_add(&ovf, phoff, lake_sz_mul(&ovf, phnum, phentsize));
	if (size > end)
		end = size;
	size = lake_sz_add(&ovf, shoff, lake_sz_mul(&ovf, shnum, shentsize));
	if (ovf || size > max)
		return 0;
	if (size > end)
		end = size;
	if (shentsize < 64)
		return shnum ? 0 : end;
	for (i = 0; i < shnum; i++) {
		const __u8 *sh = p + shoff + (__u64)i * shentsize;

		if (lake_le(sh + 4, 4) == LAKE_ELF_NOBITS)
			continue;
		off = lake_le(sh + 0x18, 8);
		size = lake_sz_add(&ovf, off, lake_le(sh + 0x20, 8));
		if (ovf)
			return 0;
		if (size > end)
			end = size;
	}
	return end <= max ? end : 0;
}

__u64 lake_module_image_size(const void *image, __u64 max)
{
	const __u8 *p = image;
	__u64 n;

	if (!p)
		return 0;
	if (max >= 4 && lake_le(p, 4) == LAKE_FATBIN_MAGIC) {
		bool ovf = false;

		if (max < 16)
			return 0;	/* a truncated fatbin header */
		n = lake_sz_add(&ovf, lake_le(p + 6, 2), lake_le(p + 8, 8));
		return (!ovf && n <= max) ? n : 0;
	}
	if (max >= 4 && p[0] == 0x7f && p[1] == 'E' && p[2] == 'L' && p[3] == 'F')
		return (max >= 64 && p[4] == 2) ? lake_elf64_size(p, max) : 0;
	/* PTX text: up to and including its NUL. */
	for (n = 0; n < max; n++)
		if (!p[n])
			return n + 1;
	return 0;
}
