// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The client half of the protocol core (see lake_call.h): building a command
 * in a slot, staging buffers that are not in the arena, packing kernel
 * parameters and checking the reply.  Shared by lake.ko and liblake.
 */
#include "lake_call.h"

static unsigned int lake_kparam_bucket(__u64 token)
{
	return (unsigned int)((token * 0x9E3779B97F4A7C15ull) >> 58);
}

void lake_transport_init(struct lake_transport *t, const struct lake_transport_ops *ops)
{
	struct lake_kparam_cache *kc = &t->kparams;

	t->ops = ops;
	lake_os_lock_init(&kc->lock);
	memset(kc->modules, 0, sizeof(kc->modules));
	memset(kc->funcs, 0, sizeof(kc->funcs));
	kc->epoch = 0;
	kc->nmodules = 0;
	kc->nbound = 0;
}

/* Drops the table's reference to @m (lock held); returns @m if it is to be
 * freed now (no launch is packing from it). */
static struct lake_module *lake_module_unref(struct lake_module *m)
{
	return --m->refs ? NULL : m;
}

static void lake_kernel_unbind(struct lake_kparam_cache *kc, struct lake_kernel *k)
{
	struct lake_kernel **pp;

	if (!k->func)
		return;
	for (pp = &kc->funcs[lake_kparam_bucket(k->func)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == k) {
			*pp = k->hnext;
			break;
		}
	}
	k->hnext = NULL;
	k->func = 0;
	kc->nbound--;
}

/* Takes @m out of the table (lock held): its kernels are unbound, and it
 * goes on @dead (through ->next) if nobody packs from it. */
static void lake_module_remove(struct lake_kparam_cache *kc, struct lake_module **pp,
			       struct lake_module **dead)
{
	struct lake_module *m = *pp;
	__u32 i;

	*pp = m->next;
	m->next = NULL;
	kc->nmodules--;
	for (i = 0; i < m->nkernels; i++)
		lake_kernel_unbind(kc, &m->kernels[i]);
	if (lake_module_unref(m)) {
		m->next = *dead;
		*dead = m;
	}
}

static void lake_modules_free(struct lake_module *dead)
{
	while (dead) {
		struct lake_module *next = dead->next;

		lake_module_free(dead);
		dead = next;
	}
}

void lake_transport_reset(struct lake_transport *t)
{
	struct lake_kparam_cache *kc = &t->kparams;
	struct lake_module *dead = NULL;
	unsigned int i;

	lake_os_lock(&kc->lock);
	kc->epoch++;
	for (i = 0; i < LAKE_KPARAM_BUCKETS; i++)
		while (kc->modules[i])
			lake_module_remove(kc, &kc->modules[i], &dead);
	lake_os_unlock(&kc->lock);
	lake_modules_free(dead);
}

void lake_transport_destroy(struct lake_transport *t)
{
	lake_transport_reset(t);
}

void lake_transport_layouts(struct lake_transport *t, __u32 *modules, __u32 *bound)
{
	struct lake_kparam_cache *kc = &t->kparams;

	lake_os_lock(&kc->lock);
	*modules = kc->nmodules;
	*bound = kc->nbound;
	lake_os_unlock(&kc->lock);
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
	c->api = api;
	c->epoch = LAKE_READ_ONCE(t->kparams.epoch);
	c->image = NULL;
	c->file = NULL;
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
	else
		memset(stage, 0, len);	/* never the bytes of an earlier command */
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

/* The kernel bound to function token @func (lock held), or NULL. */
static struct lake_kernel *lake_kernel_of(struct lake_kparam_cache *kc, __u64 func)
{
	struct lake_kernel *k;

	for (k = kc->funcs[lake_kparam_bucket(func)]; k; k = k->hnext)
		if (k->func == func)
			return k;
	return NULL;
}

static void lake_ref_null(struct lake_buf_ref *ref)
{
	ref->where = LAKE_BUF_NULL;
	ref->off = 0;
	ref->len = 0;
	ref->reserved = 0;
}

/*
 * Packs kernelParams by the layout read from the caller's own image: exactly
 * count parameters of their sizes, never more.  The cache's lock is not
 * held while the caller's memory is read: the module is pinned by a
 * reference instead, so that an unload or a detach cannot free the layout.
 */
int lake_call_kparams(struct lake_call *c, struct lake_buf_ref *ref, __u64 func,
		      void **params)
{
	struct lake_kparam_cache *kc = &c->t->kparams;
	struct lake_module *m, *dead = NULL;
	struct lake_kernel *k;
	__u32 i;
	__u64 off;
	__u8 *dst;
	int st = LAKE_OK;

	lake_ref_null(ref);
	if (!params)
		return LAKE_OK;
	lake_os_lock(&kc->lock);
	k = lake_kernel_of(kc, func);
	if (k)
		k->mod->refs++;
	lake_os_unlock(&kc->lock);
	if (!k)
		return LAKE_E_UNSUPPORTED;	/* no layout LAKE can trust: use extra */
	m = k->mod;
	dst = lake_call_tail(c, k->size, &off);
	if (!dst) {
		st = LAKE_E_INVALID;
	} else {
		memset(dst, 0, k->size);
		for (i = 0; i < k->count; i++)
			memcpy(dst + k->offset[i], params[i], k->psize[i]);
		ref->where = LAKE_BUF_SLOT;
		ref->off = off;
		ref->len = k->size;
	}
	lake_os_lock(&kc->lock);
	dead = lake_module_unref(m);
	lake_os_unlock(&kc->lock);
	lake_module_free(dead);
	return st;
}

/*
 * cuLaunchKernel's explicit form: extra = { CU_LAUNCH_PARAM_BUFFER_POINTER,
 * buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END }.  The
 * caller's buffer travels as it is, @size bytes, so kernels of images LAKE
 * cannot read can still be launched.
 */
int lake_call_launch_extra(struct lake_call *c, struct lake_buf_ref *ref, void **extra,
			   void **kernel_params)
{
	const void *buf = NULL;
	const size_t *sizep = NULL;
	bool have_buf = false;
	__u64 size, off;
	unsigned int i;
	void *dst;

	lake_ref_null(ref);
	if (!extra)
		return LAKE_OK;
	if (kernel_params)
		return LAKE_E_INVALID;	/* both forms at once: CUDA says invalid */
	/* Each key at most once: the walk ends within five entries. */
	for (i = 0; extra[i] != (void *)LAKE_LAUNCH_PARAM_END; i += 2) {
		if (extra[i] == (void *)LAKE_LAUNCH_PARAM_BUFFER_POINTER && !have_buf) {
			buf = extra[i + 1];
			have_buf = true;
		} else if (extra[i] == (void *)LAKE_LAUNCH_PARAM_BUFFER_SIZE && !sizep) {
			sizep = extra[i + 1];
			if (!sizep)
				return LAKE_E_INVALID;
		} else if (extra[i] == (void *)LAKE_LAUNCH_PARAM_BUFFER_POINTER ||
			   extra[i] == (void *)LAKE_LAUNCH_PARAM_BUFFER_SIZE) {
			return LAKE_E_INVALID;	/* given twice */
		} else {
			return LAKE_E_UNSUPPORTED;	/* a key LAKE does not remote */
		}
	}
	if (!sizep)
		return LAKE_OK;	/* a buffer without its size has no effect */
	size = *sizep;
	if (size && !buf)
		return LAKE_E_INVALID;
	if (size > LAKE_KPARAMS_MAX_SIZE)
		return LAKE_E_INVALID;
	dst = lake_call_tail(c, size, &off);
	if (!dst)
		return LAKE_E_INVALID;
	if (size)
		memcpy(dst, buf, size);
	ref->where = LAKE_BUF_SLOT;
	ref->off = off;
	ref->len = size;
	return LAKE_OK;
}

/*
 * cuModuleLoad(path): the caller's side opens and reads the file (lakeD
 * never opens caller paths), and its contents travel as a module image.
 * *@image and *@len are what was read (with a NUL after it, for PTX), to be
 * parsed like any image; the call frees it.
 */
int lake_call_file(struct lake_call *c, struct lake_buf_ref *ref, const char *path, __u32 max,
		   const void **image, __u64 *len)
{
	void *buf = NULL;
	__u64 n = 0, size;
	int err;

	lake_ref_null(ref);
	*image = NULL;
	*len = 0;
	if (!path)
		return LAKE_OK;
	if (strnlen(path, max) == max)
		return LAKE_E_INVALID;	/* longer than the spec allows */
	err = lake_os_read_file(path, LAKE_IMAGE_MAX_BYTES, &buf, &n);
	if (err)
		return err == -ENOMEM ? LAKE_E_NOMEM :
		       err == -EINVAL || err == -EFBIG || err == -EIO ? LAKE_E_INVALID : LAKE_E_NO_FILE;
	c->file = buf;
	size = lake_module_image_size(buf, n + 1);	/* PTX: its NUL included */
	if (!size)
		return LAKE_E_INVALID;
	*image = buf;
	*len = size;
	return lake_call_buf(c, ref, buf, size, false, true, false);
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
	lake_module_free(c->image);
	c->image = NULL;
	lake_os_free(c->file);
	c->file = NULL;
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

int lake_call_image(struct lake_call *c, const void *image, __u64 len)
{
	if (!image)
		return LAKE_OK;
	return lake_image_parse(image, len, &c->image);
}

int lake_call_module_loaded(struct lake_call *c, __u64 module)
{
	struct lake_kparam_cache *kc = &c->t->kparams;
	struct lake_module *m = c->image, **pp;
	int st = LAKE_OK;

	if (!m || !module)
		return LAKE_OK;
	lake_os_lock(&kc->lock);
	pp = &kc->modules[lake_kparam_bucket(module)];
	while (*pp && (*pp)->token != module)
		pp = &(*pp)->next;
	if (c->epoch != kc->epoch) {
		/* The daemon that loaded it is gone, and the module with it. */
	} else if (*pp && lake_module_same(*pp, m)) {
		(*pp)->loads++;	/* the same image again (a test double does this) */
	} else if (*pp) {
		/* A live module's token for another image: a kernel looked up
		 * under it could get the other image's layout. */
		st = LAKE_E_PROTOCOL;
	} else {
		m->token = module;
		m->refs = 1;
		m->loads = 1;
		m->next = NULL;
		*pp = m;
		kc->nmodules++;
		c->image = NULL;
	}
	lake_os_unlock(&kc->lock);
	if (st)
		lake_os_warn("lakeD answered a module load with the handle of another loaded module: refused\n");
	return st;
}

/* Does lakeD's layout (in the shared slot: each field read once) agree
 * with the image's? */
static bool lake_layout_agrees(const struct lake_kernel *k,
			       const struct lake_kparam_layout *shared)
{
	__u32 i;

	if (LAKE_READ_ONCE(shared->count) != k->count || LAKE_READ_ONCE(shared->size) != k->size)
		return false;
	for (i = 0; i < k->count; i++)
		if (LAKE_READ_ONCE(shared->offset[i]) != k->offset[i] ||
		    LAKE_READ_ONCE(shared->psize[i]) != k->psize[i])
			return false;
	return true;
}

int lake_call_learn(struct lake_call *c, __u64 func, __u64 module, const char *name,
		    const struct lake_kparam_layout *shared)
{
	struct lake_kparam_cache *kc = &c->t->kparams;
	struct lake_module *m;
	struct lake_kernel *k = NULL, *other;
	int st = LAKE_OK;
	bool disagree = false, reused = false;

	if (!func || !name)
		return LAKE_OK;
	lake_os_lock(&kc->lock);
	for (m = kc->modules[lake_kparam_bucket(module)]; m; m = m->next)
		if (m->token == module)
			break;
	if (m && c->epoch == kc->epoch)
		k = lake_module_kernel(m, name);
	if (k && k->layout == LAKE_LAYOUT_KNOWN) {
		other = lake_kernel_of(kc, func);
		if (other && other != k) {
			reused = true;	/* lakeD named another kernel so */
		} else if (!lake_layout_agrees(k, shared)) {
			disagree = true;
		} else if (!other) {
			lake_kernel_unbind(kc, k);	/* a new token for it: the old one dies */
			k->func = func;
			k->hnext = kc->funcs[lake_kparam_bucket(func)];
			kc->funcs[lake_kparam_bucket(func)] = k;
			kc->nbound++;
		}
	}
	lake_os_unlock(&kc->lock);
	if (disagree || reused) {
		lake_os_warn("lakeD's %s for kernel %.64s differs from the module image's: cuModuleGetFunction refused\n",
			     reused ? "handle (another kernel's)" : "parameter layout", name);
		st = LAKE_E_PROTOCOL;
	}
	return st;
}

void lake_call_forget(struct lake_call *c, __u64 handle)
{
	struct lake_kparam_cache *kc = &c->t->kparams;
	struct lake_module **pp, *dead = NULL;

	lake_os_lock(&kc->lock);
	for (pp = &kc->modules[lake_kparam_bucket(handle)]; *pp; pp = &(*pp)->next) {
		if ((*pp)->token == handle) {
			if (!--(*pp)->loads)
				lake_module_remove(kc, pp, &dead);
			break;
		}
	}
	lake_os_unlock(&kc->lock);
	lake_modules_free(dead);
}

void lake_call_terminate(char *s, __u64 len)
{
	if (s && len && !memchr(s, 0, len))
		s[len - 1] = 0;
}
