/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The server half of the protocol core: executing one command slot for one
 * client connection.  lakeD runs it for the kernel's channel and for each
 * liblake client; the generated dispatch table (lake_dispatch.c) calls back
 * into the helpers below to check everything a client sent.
 *
 * What a connection holds, and what it may name:
 *  - handles (tokens lakeD issues; generation-checked), each with the
 *    resource it dies with (a function with its module, anything created in
 *    a context the client created with that context);
 *  - device ranges: every allocation (base, size), address range
 *    reservation and module global it looked up.  Each call that takes a
 *    device address is checked against them: [ptr, ptr + extent) must lie
 *    inside one range of this connection;
 *  - tracked values (allocation handles of virtual memory management);
 *  - counted references (primary contexts it retained), dropped for it when
 *    it goes away, never below zero;
 *  - per calling thread (the header's client field, bounded, least recently
 *    used evicted): its deferred async errors, its current context and the
 *    contexts pushed below it.
 *
 * The command slot is copied into private memory once (header, then the
 * arguments and tail the header says were sent) before anything is checked
 * or used; module images are copied too.  The reply is written back last.
 */
#ifndef LAKE_SERVER_H
#define LAKE_SERVER_H

#include <stdbool.h>
#include <linux/lake.h>
#include "lake_proto_gen.h"
#include "lake_size.h"
#include "lake_vendor_gen.h"

struct lake_srv_conn;

/* The most specs a build may have (deferred errors are kept per spec). */
#define LAKE_SRV_MAX_SPECS	4
/* The deepest context stack of one calling thread (cuCtxPushCurrent). */
#define LAKE_SRV_MAX_CTX_DEPTH	64

struct lake_srv_api {
	const char *name;
	int (*run)(struct lake_srv_conn *c, __u8 *slot, __u32 flags, __u32 present);
	__u32 args_size;
	__u32 outs_size;
	unsigned int spec;	/* index of the spec, for deferred errors */
	bool async;
	/* A successful call that produces nothing (no output, no resource made,
	 * dropped or counted): it may report a deferred error instead. */
	bool reports_deferred;
	int protocol_error;	/* the spec's code for a malformed command */
};

extern const struct lake_srv_api lake_srv_apis[LAKE_API_MAX + 1];

/* --- process-wide settings (a lakeD worker sets them before serving) --- */

struct lake_srv_limits {
	__u64 conn_gpu_bytes;		/* device memory per connection; 0: no limit */
	__u64 total_gpu_bytes;		/* ...of all connections of this process; 0: no limit */
	unsigned int max_threads;	/* calling threads with state per connection; 0: default */
};

#define LAKE_SRV_DEFAULT_MAX_THREADS	1024u

void lake_srv_set_limits(const struct lake_srv_limits *l);
/* Device memory all connections of this process hold now. */
__u64 lake_srv_total_gpu_bytes(void);

/*
 * How lakeD makes a calling thread's current context current on the
 * serving thread: @set_current (lakeD's own call, outside the spec) and the
 * context a thread has until it sets another (@default_ctx: lakeD's primary
 * context).  Without it (NULL), contexts are not switched.
 */
void lake_srv_set_context_ops(int (*set_current)(void *ctx), void *default_ctx);
/* The serving thread was bound to @ctx by lakeD itself. */
void lake_srv_thread_bound(void *ctx);

/* --- connections --- */

/*
 * A client connection: its arena (where LAKE_BUF_ARENA offsets point), its
 * resources, ranges, references and per-thread state.  @arena may be NULL.
 */
struct lake_srv_conn *lake_srv_conn_new(const struct lake_vendors *vendors,
					void *arena, __u64 arena_size);
/* Serve @c from several threads at once (locks its tables). */
void lake_srv_conn_set_shared(struct lake_srv_conn *c);
/* Frees every resource the client still holds (vendor destroy calls) and
 * drops its references, then @c. */
void lake_srv_conn_free(struct lake_srv_conn *c);

struct lake_srv_conn_stats {
	unsigned int resources;		/* live handles and ranges */
	unsigned int owned;		/* ...of which the client made (freed when it goes) */
	unsigned int refs;		/* counted references held */
	__u64 gpu_bytes;		/* device memory allocated */
	unsigned int threads;		/* calling threads with state */
	__u64 threads_evicted;		/* states dropped for room (least recently used) */
	__u64 deferred_dropped;		/* deferred errors lost with an evicted state */
	__u64 quota_refusals;		/* allocations refused by a limit */
};
void lake_srv_conn_stats(struct lake_srv_conn *c, struct lake_srv_conn_stats *st);

/* What a command was, as lakeD read it (once) from the slot. */
struct lake_srv_cmd {
	__u32 api, flags, client, seq;
};

/* Executes the command in @slot (LAKE_SLOT_SIZE bytes of shared memory) and
 * writes its reply there; @cmd (may be NULL) gets the header as read. */
void lake_srv_process_cmd(struct lake_srv_conn *c, __u8 *slot, struct lake_srv_cmd *cmd);
static inline void lake_srv_process(struct lake_srv_conn *c, __u8 *slot)
{
	lake_srv_process_cmd(c, slot, NULL);
}

/* Number of live resources of @type (all types when LAKE_RT_NONE): handles
 * and allocations (a module global is part of its module). */
unsigned int lake_srv_res_count(struct lake_srv_conn *c, unsigned int type);

/* --- helpers for the generated dispatch (and tests) --- */
const struct lake_vendors *lake_srv_vendors(struct lake_srv_conn *c);
int lake_srv_handle_get(struct lake_srv_conn *c, __u64 token, unsigned int type, void **real);
/* The same, for a handle this connection created (destroying one needs that). */
int lake_srv_handle_get_owned(struct lake_srv_conn *c, __u64 token, unsigned int type,
			      void **real);
int lake_srv_handle_add(struct lake_srv_conn *c, unsigned int type, void *real, __u64 parent,
			bool owned, __u64 *token);
/* Forgets a handle and everything that dies with it. */
void lake_srv_handle_del(struct lake_srv_conn *c, __u64 token);

/* Device ranges.  add: 0, -1 (no memory, or it overlaps another range),
 * or LAKE_SRV_OVER_QUOTA (an owned allocation beyond a limit: not added).
 * An owned range is device memory the connection holds (quotas); a
 * reservation is owned address space that holds none itself. */
#define LAKE_SRV_OVER_QUOTA	(-2)
int lake_srv_range_add(struct lake_srv_conn *c, unsigned int type, __u64 base, __u64 size,
		       __u64 parent, bool owned);
int lake_srv_range_reserve(struct lake_srv_conn *c, unsigned int type, __u64 base, __u64 size,
			   __u64 parent);
/* 0 when [p, p + n) lies inside one range of the connection (n 0: always). */
int lake_srv_range_check(struct lake_srv_conn *c, __u64 p, __u64 n);
/* Is @base the start of an allocation (of @type) this connection owns? */
bool lake_srv_range_is_alloc(struct lake_srv_conn *c, unsigned int type, __u64 base);
/* The size of the range of @type starting at @base; 0: none. */
__u64 lake_srv_range_size(struct lake_srv_conn *c, unsigned int type, __u64 base);
void lake_srv_range_del(struct lake_srv_conn *c, unsigned int type, __u64 base);

/* Tracked values: add (0, -1, LAKE_SRV_OVER_QUOTA: @bytes of device memory
 * it holds beyond a limit); has (held), owned (made by this connection). */
int lake_srv_value_add(struct lake_srv_conn *c, unsigned int type, __u64 value, __u64 bytes,
		       __u64 parent, bool owned);
bool lake_srv_res_has(struct lake_srv_conn *c, unsigned int type, __u64 value);
bool lake_srv_res_owned(struct lake_srv_conn *c, unsigned int type, __u64 value);
/* An owned tracked value (tests). */
int lake_srv_res_add(struct lake_srv_conn *c, unsigned int type, __u64 value);
void lake_srv_res_del(struct lake_srv_conn *c, unsigned int type, __u64 value);

/* Counted references: take one; drop one (-1 when the client holds none). */
int lake_srv_ref_take(struct lake_srv_conn *c, unsigned int reftype, __u64 value);
int lake_srv_ref_drop(struct lake_srv_conn *c, unsigned int reftype, __u64 value);
unsigned int lake_srv_ref_count(struct lake_srv_conn *c, unsigned int reftype, __u64 value);

/* Contexts (the spec's set-current type). */
__u64 lake_srv_ctx_parent(struct lake_srv_conn *c);	/* caller's context, if it created it */
void lake_srv_ctx_switched(struct lake_srv_conn *c, __u64 token, void *real);
/* Push @token over the calling thread's current context: 0, or -1 (no
 * memory, or LAKE_SRV_MAX_CTX_DEPTH reached).  Pop: the context it had
 * (the default one when it had none), the one below becoming current. */
int lake_srv_ctx_push(struct lake_srv_conn *c, __u64 token, void *real);
void *lake_srv_ctx_pop(struct lake_srv_conn *c);
void lake_srv_ctx_forget(struct lake_srv_conn *c, __u64 token);

int lake_srv_buf(struct lake_srv_conn *c, __u8 *slot, const struct lake_buf_ref *ref,
		 void **ptr, __u64 *len);
/* An output buffer: one staged in the slot is copied back with the reply. */
int lake_srv_buf_out(struct lake_srv_conn *c, __u8 *slot, const struct lake_buf_ref *ref,
		     void **ptr, __u64 *len);
int lake_srv_string(struct lake_srv_conn *c, __u8 *slot, const struct lake_buf_ref *ref,
		    __u32 max, void **ptr, __u64 *len);
/* @n bytes of @p in private memory, freed after the command; NULL: none left. */
void *lake_srv_private_copy(struct lake_srv_conn *c, const void *p, __u64 n);
int lake_srv_kparams(struct lake_srv_conn *c, __u64 func, __u8 *slot,
		     const struct lake_buf_ref *ref, void ***params);
int lake_srv_kparams_learn(struct lake_srv_conn *c, __u64 func, void *real,
			   struct lake_kparam_layout *layout);
/* Generated: the vendor calls behind resource cleanup and layout learning
 * (@size: a range's, for a reservation's release). */
int lake_srv_destroy(struct lake_srv_conn *c, unsigned int type, __u64 value, __u64 size);
int lake_srv_release(struct lake_srv_conn *c, unsigned int reftype, __u64 value);
int lake_srv_param_info(struct lake_srv_conn *c, void *func, __u64 index,
			__u64 *offset, __u64 *size);

#endif /* LAKE_SERVER_H */
