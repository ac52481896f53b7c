/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * LAKE wire format: what a command and its reply look like in a command slot.
 *
 * Shared unchanged by lake.ko, lakeD and liblake.  Everything here is fixed
 * width and naturally aligned so that the kernel, the daemon and user clients
 * agree on it; the per-function argument and output layouts are generated
 * from api-spec/ into lake_proto_gen.h.
 */
#ifndef _UAPI_LINUX_LAKE_H
#define _UAPI_LINUX_LAKE_H

#include <linux/types.h>
#include <linux/ioctl.h>

/*
 * 2: cuModuleLoad carries the file's contents, not its path; cuLaunchKernel's
 * extra carries an explicitly packed parameter buffer; LAKE_MSG_THREAD_GONE;
 * the header's client names the calling thread, whose deferred error and
 * current context the daemon keeps.
 */
#define LAKE_PROTO_VERSION	2

/*
 * A command slot: [header][outputs][arguments + variable tail].
 * Outputs have their own area so that a reply never overwrites arguments or
 * buffers staged in the tail that the vendor call is still reading.
 */
#define LAKE_SLOT_SIZE		8192u
#define LAKE_OUTS_OFFSET	64u
#define LAKE_OUTS_MAX		1216u
#define LAKE_ARGS_OFFSET	(LAKE_OUTS_OFFSET + LAKE_OUTS_MAX)
#define LAKE_ARGS_MAX		(LAKE_SLOT_SIZE - LAKE_ARGS_OFFSET)

/* Flags of a command. */
#define LAKE_MSG_ASYNC		(1u << 0)	/* the caller does not wait */
#define LAKE_MSG_STAGED		(1u << 1)	/* a buffer was copied: finish before replying */
#define LAKE_MSG_THREAD_GONE	(1u << 2)	/* on a NOP: the calling thread exited; the
						 * daemon forgets its state (deferred errors,
						 * current context) */

/*
 * A reply whose result is LAKE_RESULT_PROTOCOL means the daemon could not
 * decode the command at all (unknown API, bad lengths); it is never a vendor
 * result, all of which are non-negative.
 */
#define LAKE_RESULT_PROTOCOL	(-71)

struct lake_msg_hdr {
	__u32 api;		/* LAKE_API_*, from lake_proto_gen.h */
	__u32 flags;		/* LAKE_MSG_* */
	__u32 client;		/* sticky-error domain (the calling thread) */
	__u32 seq;		/* the caller's sequence number, echoed back */
	__u32 args_len;		/* bytes at LAKE_ARGS_OFFSET: arguments + tail */
	__u32 present;		/* bit i set: output i is wanted (non-NULL) */
	__s32 result;		/* reply: the vendor's result */
	__u32 reply_len;	/* reply: bytes of outputs written */
	/*
	 * Written last by the daemon (a release store of seq) once the reply
	 * is complete: a caller that is still spinning takes the reply from
	 * here without waiting for the daemon's report of the completion.
	 */
	__u32 done_seq;
	/* Set by a caller before it sleeps: the daemon must then report the
	 * completion at once (LAKE_IOC_COMPLETE wakes it), not in a batch. */
	__u32 waiting;
	__u32 reserved[6];	/* zero */
};

/* Where a buffer lies. */
#define LAKE_BUF_NULL		0u	/* the caller passed NULL */
#define LAKE_BUF_ARENA		1u	/* off is an offset into lakeShm */
#define LAKE_BUF_SLOT		2u	/* off is an offset into this command slot */

struct lake_buf_ref {
	__u64 off;
	__u64 len;
	__u32 where;		/* LAKE_BUF_* */
	__u32 reserved;		/* must be zero */
};

/*
 * A kernel's parameter layout, learned by the daemon (cuFuncGetParamInfo) and
 * returned with the function handle, so that callers can pack kernelParams.
 */
#define LAKE_MAX_KPARAMS	128u
#define LAKE_KPARAMS_MAX_SIZE	4096u

struct lake_kparam_layout {
	__u32 count;		/* number of parameters */
	__u32 size;		/* bytes of the packed parameter buffer */
	__u16 offset[LAKE_MAX_KPARAMS];
	__u16 psize[LAKE_MAX_KPARAMS];
};

/*
 * The client reads layouts from the module image itself and only compares
 * the daemon's with them.  A caller can also pack the parameters itself:
 * CUDA's extra list { CU_LAUNCH_PARAM_BUFFER_POINTER, buf,
 * CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END } travels as the
 * buffer (at most LAKE_KPARAMS_MAX_SIZE bytes), and the daemon passes it on
 * with these keys, cuda.h's values.
 */
#define LAKE_LAUNCH_PARAM_END			0x00
#define LAKE_LAUNCH_PARAM_BUFFER_POINTER	0x01
#define LAKE_LAUNCH_PARAM_BUFFER_SIZE		0x02

/*
 * A command with api == LAKE_API_NOP is answered by the daemon itself, with
 * result 0, without touching the vendor library: a null round trip.  Its
 * argument, a cookie, comes back as its output, so callers can check that
 * the reply they got is theirs.
 */
#define LAKE_API_NOP		0xFFFFu

struct lake_nop {
	__u64 cookie;
};

/* ---- /dev/lake: the channel between lake.ko and lakeD ---- */

/*
 * The shared region lakeD maps (offset 0, map_size bytes, MAP_SHARED):
 *
 *   [ctrl: struct lake_ring_ctrl, one page]
 *   [submission queue: nslots __u32 slot indexes, page aligned]
 *   [slots: nslots * LAKE_SLOT_SIZE bytes]
 *   [arena: lakeShm, arena_size bytes]
 *
 * The kernel writes commands into slots and their indexes into the
 * submission queue, then advances sq_tail; lakeD consumes entries from
 * sq_head, writes each reply into its slot and reports completions with
 * LAKE_IOC_COMPLETE.  Nothing lakeD writes here is trusted by the kernel.
 *
 * sq_tail and sq_head run freely (wrapping at 2^32); an entry's index is
 * counter % nslots, and nslots is a power of two.
 */
struct lake_ring_ctrl {
	__u32 sq_tail;		/* written by the kernel: entries before it are published */
	__u32 pad0[15];
	__u32 sq_head;		/* written by lakeD: entries before it are consumed */
	__u32 pad1[15];
};

struct lake_attach {
	/* in */
	__u32 version;		/* LAKE_PROTO_VERSION */
	__u32 flags;		/* must be zero */
	__u64 spec_hash;	/* LAKE_SPEC_HASH of the daemon's build */
	/* out */
	__u32 nslots;
	__u32 slot_size;	/* LAKE_SLOT_SIZE */
	__u64 map_size;
	__u64 sq_offset;
	__u64 slots_offset;
	__u64 arena_offset;
	__u64 arena_size;
	__u64 reserved[4];	/* must be zero */
};

struct lake_completion {
	__u32 slot;
	__u32 seq;		/* the command's hdr.seq */
	__s32 status;		/* out: 0, or -EINVAL (no such slot) / -ENOENT (not in flight) */
	__u32 reserved;		/* must be zero */
};

struct lake_complete {
	__u32 count;		/* entries, at most nslots */
	__u32 reserved;		/* must be zero */
	__u64 entries;		/* user pointer to struct lake_completion[count] */
};

#define LAKE_IOC_MAGIC		0xB7
/* Become the daemon (CAP_SYS_ADMIN; one at a time). */
#define LAKE_IOC_ATTACH		_IOWR(LAKE_IOC_MAGIC, 0x01, struct lake_attach)
/* Report replies written into slots; wakes their callers.  Every entry is
 * processed and its status set; the ioctl returns 0 when all were good, else
 * -EINVAL if any entry was malformed, else -ENOENT. */
#define LAKE_IOC_COMPLETE	_IOWR(LAKE_IOC_MAGIC, 0x02, struct lake_complete)
/* The attached daemon names the one process that may map the region from now
 * on (a pid, by value in a __s32): a privileged supervisor attaches, the
 * process it starts to serve the channel maps.  Only the process that may map
 * it now may hand it on. */
#define LAKE_IOC_HANDOFF	_IOW(LAKE_IOC_MAGIC, 0x03, __s32)

#endif /* _UAPI_LINUX_LAKE_H */
