/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The server half of the protocol core: executing one command slot for one
 * client connection.  lakeD runs it for the kernel's channel and for each
 * liblake client; the generated dispatch table (lake_dispatch.c) calls back
 * into the helpers below to check everything a client sent.
 */
#ifndef LAKE_SERVER_H
#define LAKE_SERVER_H

#include <stdbool.h>
#include <linux/lake.h>
#include "lake_proto_gen.h"
#include "lake_size.h"
#include "lake_vendor_gen.h"

struct lake_srv_conn;

struct lake_srv_api {
	const char *name;
	int (*run)(struct lake_srv_conn *c, __u8 *slot, __u32 flags, __u32 present);
	__u32 args_size;
	__u32 outs_size;
	unsigned int spec;	/* index of the spec, for sticky errors */
	bool async;
	int protocol_error;	/* the spec's code for a malformed command */
};

extern const struct lake_srv_api lake_srv_apis[LAKE_API_MAX + 1];

/*
 * A client connection: its arena (where LAKE_BUF_ARENA offsets point), its
 * resources and its sticky errors.  @arena may be NULL (no arena).
 */
struct lake_srv_conn *lake_srv_conn_new(const struct lake_vendors *vendors,
					void *arena, __u64 arena_size);
/* Frees every resource the client still holds (vendor destroy calls), then @c. */
void lake_srv_conn_free(struct lake_srv_conn *c);

/* Executes the command in @slot (LAKE_SLOT_SIZE bytes) and writes its reply. */
void lake_srv_process(struct lake_srv_conn *c, __u8 *slot);

/* Number of live resources of @type (all types when LAKE_RT_NONE). */
unsigned int lake_srv_res_count(struct lake_srv_conn *c, unsigned int type);

/* --- helpers for the generated dispatch --- */
const struct lake_vendors *lake_srv_vendors(struct lake_srv_conn *c);
int lake_srv_handle_get(struct lake_srv_conn *c, __u64 token, unsigned int type, void **real);
int lake_srv_handle_add(struct lake_srv_conn *c, unsigned int type, void *real, __u64 parent,
			bool owned, __u64 *token);
void lake_srv_handle_del(struct lake_srv_conn *c, __u64 token);
bool lake_srv_res_has(struct lake_srv_conn *c, unsigned int type, __u64 value);
int lake_srv_res_add(struct lake_srv_conn *c, unsigned int type, __u64 value);
void lake_srv_res_del(struct lake_srv_conn *c, unsigned int type, __u64 value);
int lake_srv_buf(struct lake_srv_conn *c, __u8 *slot, const struct lake_buf_ref *ref,
		 void **ptr, __u64 *len);
int lake_srv_string(struct lake_srv_conn *c, __u8 *slot, const struct lake_buf_ref *ref,
		    __u32 max, void **ptr, __u64 *len);
int lake_srv_kparams(struct lake_srv_conn *c, __u64 func, __u8 *slot,
		     const struct lake_buf_ref *ref, void ***params);
int lake_srv_kparams_learn(struct lake_srv_conn *c, __u64 func, void *real,
			   struct lake_kparam_layout *layout);
/* Generated: the vendor calls behind resource cleanup and layout learning. */
int lake_srv_destroy(struct lake_srv_conn *c, unsigned int type, __u64 value);
int lake_srv_param_info(struct lake_srv_conn *c, void *func, __u64 index,
			__u64 *offset, __u64 *size);

#endif /* LAKE_SERVER_H */
