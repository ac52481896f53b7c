/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The client half of the protocol core: how a generated stub turns one API
 * call into a command in a slot, and its reply back into outputs.
 *
 * Used unchanged by lake.ko (kernel callers) and liblake (user callers); each
 * provides a struct lake_transport that moves slots to and from lakeD.
 */
#ifndef LAKE_CALL_H
#define LAKE_CALL_H

#include "lake_os.h"
#include "lake_size.h"
#include "lake_image.h"
#include <linux/lake.h>

/* What went wrong before or around a vendor call; stubs map these to the
 * spec's result codes (result.errors in api-spec/). */
enum lake_status {
	LAKE_OK = 0,
	LAKE_E_UNAVAILABLE,	/* no daemon, or it went away */
	LAKE_E_TIMEOUT,		/* no reply in time */
	LAKE_E_INTERRUPTED,	/* the wait was killed */
	LAKE_E_INVALID,		/* an argument that cannot be marshalled */
	LAKE_E_UNSUPPORTED,	/* a form LAKE does not remote */
	LAKE_E_NOMEM,		/* no room to stage a buffer */
	LAKE_E_PROTOCOL,	/* a malformed reply */
	LAKE_E_BAD_HANDLE,	/* a handle the client side cannot use */
	LAKE_E_NO_FILE,		/* a module file the caller cannot open */
};

/* Buffers one call may stage (cuLibraryLoadData has five). */
#define LAKE_MAX_STAGED		8

struct lake_transport;
struct lake_call;

struct lake_transport_ops {
	/* Reserve a slot for @call (may wait for one: backpressure). */
	int (*begin)(struct lake_transport *t, struct lake_call *call);
	/* Publish the command; a sync call returns once its reply is in the slot. */
	int (*submit)(struct lake_transport *t, struct lake_call *call);
	/* Give the slot back (an async call's slot is the transport's to reclaim). */
	void (*end)(struct lake_transport *t, struct lake_call *call);
	/* Is [p, p+len) inside the arena?  Set its offset and return true. */
	bool (*arena_find)(struct lake_transport *t, const void *p, __u64 len, __u64 *off);
	/* Staging memory in the arena; NULL when full. */
	void *(*arena_alloc)(struct lake_transport *t, __u64 len, __u64 *off);
	void (*arena_free)(struct lake_transport *t, void *p, __u64 len);
	/* The sticky-error domain of the caller (its thread). */
	__u32 (*client_id)(struct lake_transport *t);
};

/*
 * Kernel parameter layouts, from the images the caller itself loaded
 * (lake_image.h): each image's kernels under lakeD's token for the module,
 * and each kernel bound to the function token cuModuleGetFunction returned
 * for it.  Bounded by what the caller loaded, never by what lakeD says.
 */
#define LAKE_KPARAM_BUCKETS	64u

struct lake_kparam_cache {
	lake_os_lock_t lock;
	struct lake_module *modules[LAKE_KPARAM_BUCKETS];
	struct lake_kernel *funcs[LAKE_KPARAM_BUCKETS];
	__u32 epoch;		/* bumped by lake_transport_reset(): a new daemon */
	__u32 nmodules;		/* modules kept */
	__u32 nbound;		/* kernels bound to a function token */
};

struct lake_transport {
	const struct lake_transport_ops *ops;
	struct lake_kparam_cache kparams;
};

struct lake_staged {
	void *user;		/* the caller's buffer */
	void *stage;		/* where its bytes travel */
	__u64 len;
	__u64 arena_len;	/* non-zero: stage is arena memory to free */
	bool copy_out;
};

struct lake_call {
	struct lake_transport *t;
	__u8 *slot;		/* the command slot (shared memory) */
	__u32 slot_index;	/* transport's use */
	__u64 deadline;		/* transport's use: when the call's waiting ends */
	__u32 api;		/* LAKE_API_*: never read back from the slot */
	__u32 epoch;		/* the cache's epoch when the call began */
	__u32 seq;
	bool async;		/* caller does not wait */
	bool staged_any;
	__u32 tail;		/* bytes used at LAKE_ARGS_OFFSET */
	__u32 outs_size;
	__s32 result;		/* the reply's result */
	unsigned int nstaged;
	struct lake_staged staged[LAKE_MAX_STAGED];
	struct lake_module *image;	/* the kernels of an image being loaded */
	void *file;			/* a module file read for the call */
};

static inline struct lake_msg_hdr *lake_call_hdr(struct lake_call *c)
{
	return (struct lake_msg_hdr *)c->slot;
}

static inline void *lake_call_args(struct lake_call *c)
{
	return c->slot + LAKE_ARGS_OFFSET;
}

static inline void *lake_call_outs(struct lake_call *c)
{
	return c->slot + LAKE_OUTS_OFFSET;
}

/* The transport generated stubs use: lake.ko's channel, liblake's
 * connection, or a test's loopback.  Provided by the host. */
struct lake_transport *lake_transport_get(void);

void lake_transport_init(struct lake_transport *t, const struct lake_transport_ops *ops);
void lake_transport_destroy(struct lake_transport *t);
/* The daemon went away: its handles, and so every layout bound to them, die. */
void lake_transport_reset(struct lake_transport *t);
/* What the layout cache holds (statistics, tests). */
void lake_transport_layouts(struct lake_transport *t, __u32 *modules, __u32 *bound);

int lake_call_begin(struct lake_call *c, struct lake_transport *t, __u32 api,
		    __u32 args_size, __u32 outs_size, bool async);
int lake_call_buf(struct lake_call *c, struct lake_buf_ref *ref, const void *p,
		  __u64 len, bool overflow, bool in, bool out);
int lake_call_string(struct lake_call *c, struct lake_buf_ref *ref, const char *s,
		     __u32 max);
int lake_call_kparams(struct lake_call *c, struct lake_buf_ref *ref, __u64 func,
		      void **params);
int lake_call_launch_extra(struct lake_call *c, struct lake_buf_ref *ref, void **extra,
			   void **kernel_params);
int lake_call_file(struct lake_call *c, struct lake_buf_ref *ref, const char *path, __u32 max,
		   const void **image, __u64 *len);
int lake_call_submit(struct lake_call *c);
int lake_call_end(struct lake_call *c, int status);

/* A null round trip (LAKE_API_NOP): the transport's cost alone.  The
 * daemon echoes @cookie; a reply without it is LAKE_E_PROTOCOL. */
int lake_call_nop(struct lake_transport *t, __u64 cookie);

/* A transport status as a negative errno (lake_null_call() and friends). */
int lake_status_errno(int st);

/* Reads the kernels of the image a call is loading (before submitting). */
int lake_call_image(struct lake_call *c, const void *image, __u64 len);
/* The load succeeded: keep its kernels under lakeD's token @module. */
int lake_call_module_loaded(struct lake_call *c, __u64 module);
/* cuModuleGetFunction succeeded: bind kernel @name of @module to @func,
 * after checking lakeD's view of its layout (@shared) against the image's. */
int lake_call_learn(struct lake_call *c, __u64 func, __u64 module, const char *name,
		    const struct lake_kparam_layout *shared);
void lake_call_forget(struct lake_call *c, __u64 handle);
/* A string output lakeD wrote into @len bytes ends within them. */
void lake_call_terminate(char *s, __u64 len);

#endif /* LAKE_CALL_H */
