/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The user ring: how a user-space client (liblake) and lakeD share a command
 * ring, and the hello that sets it up.  One header, shared by client/ and
 * daemon/lake_uchan.c.
 *
 * The client creates a memfd holding the same layout as the kernel's region
 * (<linux/lake.h>: control page, submission queue, slots, arena) plus what
 * completion needs without a kernel in between:
 *
 *   offset 0        struct lake_ring_ctrl            sq_tail (client), sq_head (lakeD)
 *   uctrl_offset    struct lake_uring_ctrl           in the control page, after it
 *   sq_offset       __u32 sq[nslots]                 page aligned
 *   done_offset     struct lake_uring_done[nslots]   page aligned: per-slot completion
 *   slots_offset    nslots * LAKE_SLOT_SIZE          page aligned
 *   arena_offset    arena_size bytes                 page aligned (lakeShm of this client)
 *
 * and sends it to lakeD over a UNIX socket (SOCK_SEQPACKET) with a
 * struct lake_uhello, the memfd attached (SCM_RIGHTS).  lakeD checks every
 * field, maps it and answers a struct lake_uhello_reply.  The client keeps
 * the memfd for its whole life: after a daemon restart it resets the ring
 * part and sends the same memfd again, so arena buffers stay valid.
 *
 * Submission (as the kernel's): the client writes a command into a slot it
 * owns, stores its index at sq[sq_tail % nslots] and release-stores sq_tail + 1.
 * lakeD consumes from sq_head.  When lakeD is about to sleep it sets
 * uctrl.daemon_sleeping and FUTEX_WAITs on sq_tail; a client that published
 * and then sees daemon_sleeping set does FUTEX_WAKE on sq_tail.
 *
 * Completion (user space only): lakeD writes the reply into the slot, then
 * release-stores the command's sequence number into done[slot].seq; if
 * done[slot].waiting is set it FUTEX_WAKEs that word.  A waiting caller
 * spins on done[slot].seq, then sets .waiting and FUTEX_WAITs on it.  After
 * each batch lakeD also adds the batch size to uctrl.cq_count and wakes it
 * when uctrl.slot_waiters is set: callers waiting for a free slot
 * (backpressure) sleep there, since async slots are reclaimed only once
 * their completion shows up.
 *
 * Both sides use the Dekker pattern (store own flag, full fence, load the
 * other's word) so no wake-up is lost, and every futex wait is bounded, so a
 * lost wake-up would cost latency, never a hang.  All futexes are shared
 * (not FUTEX_PRIVATE): the words live in the memfd.
 *
 * Nothing in the region is trusted by lakeD: each side only writes its own
 * words, and lakeD treats every value it reads as hostile (lake_serve()
 * checks queue entries, the server core every slot field).
 */
#ifndef LAKE_URING_H
#define LAKE_URING_H

#include <linux/types.h>
#include <linux/lake.h>

/* The version of this file's layout and messages (independent of
 * LAKE_PROTO_VERSION, which versions the slot format). */
#define LAKE_URING_VERSION	2

#define LAKE_URING_PAGE		4096ull
#define LAKE_URING_MAX_SLOTS	4096u
#define LAKE_URING_MAX_ARENA	(16ull << 30)	/* 16 GiB */

/* The default socket of lakeD (config key socket, lakeD --socket; liblake:
 * LAKE_SOCKET). */
#define LAKE_URING_DEFAULT_SOCKET	"/run/lake/lakeD.sock"

/* In the control page, after struct lake_ring_ctrl. */
struct lake_uring_ctrl {
	__u32 daemon_sleeping;	/* lakeD: 1 while it (may) sleep on sq_tail */
	__u32 pad0[15];
	__u32 cq_count;		/* lakeD (and liblake): bumped per completion batch / freed slot */
	__u32 slot_waiters;	/* liblake: non-zero while a caller sleeps on cq_count */
	__u32 pad1[14];
};

#define LAKE_URING_CTRL_OFFSET	128u

/* One per slot, one cache line each: the caller spinning on its slot's word
 * shares the line with nobody. */
struct lake_uring_done {
	__u32 seq;		/* lakeD: the sequence number of the last command completed here */
	__u32 waiting;		/* liblake: a caller may be sleeping on seq */
	__u32 pad[14];
};

/* ---- the hello (client -> lakeD, with the memfd) ---- */

#define LAKE_UHELLO_MAGIC	0x4c414b55u	/* "LAKU" */
#define LAKE_UREPLY_MAGIC	0x4c414b52u	/* "LAKR" */

struct lake_uhello {
	__u32 magic;		/* LAKE_UHELLO_MAGIC */
	__u32 version;		/* LAKE_PROTO_VERSION */
	__u64 spec_hash;	/* LAKE_SPEC_HASH of the client's build */
	__u32 uring_version;	/* LAKE_URING_VERSION */
	__u32 flags;		/* must be zero */
	__u32 nslots;		/* a power of two, 1..LAKE_URING_MAX_SLOTS */
	__u32 slot_size;	/* LAKE_SLOT_SIZE */
	__u64 map_size;		/* bytes to map from offset 0 (the memfd is at least this big) */
	__u64 uctrl_offset;
	__u64 sq_offset;
	__u64 done_offset;
	__u64 slots_offset;
	__u64 arena_offset;
	__u64 arena_size;
	__u64 reserved[4];	/* must be zero */
};

#define LAKE_UREPLY_REASON	256

struct lake_uhello_reply {
	__u32 magic;		/* LAKE_UREPLY_MAGIC */
	__s32 status;		/* 0: served; else a negative errno, and reason says why */
	__u32 client;		/* lakeD's number for this client (its logs name it) */
	__u32 version;		/* lakeD's LAKE_PROTO_VERSION */
	__u64 spec_hash;	/* lakeD's LAKE_SPEC_HASH */
	__u32 uring_version;	/* lakeD's LAKE_URING_VERSION */
	__u32 server_pid;	/* the lakeD process that serves this client (0: refused) */
	char reason[LAKE_UREPLY_REASON];	/* NUL-terminated */
};

/*
 * Instead of a hello, a connection may ask for lakeD's status (lakeD
 * --status): lakeD answers one message of text (NUL-terminated) and closes.
 * Root sees every user's row; others see the totals and their own.
 */
#define LAKE_USTATUS_MAGIC	0x4c414b53u	/* "LAKS" */
#define LAKE_USTATUS_MAX	65536

struct lake_ustatus_req {
	__u32 magic;		/* LAKE_USTATUS_MAGIC */
	__u32 reserved;		/* zero */
};

/* ---- the standard layout ---- */

static inline __u64 lake_uring_align(__u64 v, __u64 a)
{
	return (v + a - 1) & ~(a - 1);
}

/*
 * Fills the layout fields of @h for @nslots slots and an arena of
 * @arena_size bytes (rounded up to a page).  Returns 0, or -1 when the
 * values are out of range.
 */
static inline int lake_uring_layout(struct lake_uhello *h, __u32 nslots, __u64 arena_size)
{
	if (!nslots || nslots > LAKE_URING_MAX_SLOTS || (nslots & (nslots - 1)) ||
	    arena_size > LAKE_URING_MAX_ARENA)
		return -1;
	h->magic = LAKE_UHELLO_MAGIC;
	h->version = LAKE_PROTO_VERSION;
	h->uring_version = LAKE_URING_VERSION;
	h->flags = 0;
	h->nslots = nslots;
	h->slot_size = LAKE_SLOT_SIZE;
	h->uctrl_offset = LAKE_URING_CTRL_OFFSET;
	h->sq_offset = LAKE_URING_PAGE;
	h->done_offset = lake_uring_align(h->sq_offset + (__u64)nslots * sizeof(__u32),
					  LAKE_URING_PAGE);
	h->slots_offset = lake_uring_align(h->done_offset +
					   (__u64)nslots * sizeof(struct lake_uring_done),
					   LAKE_URING_PAGE);
	h->arena_offset = lake_uring_align(h->slots_offset + (__u64)nslots * LAKE_SLOT_SIZE,
					   LAKE_URING_PAGE);
	h->arena_size = lake_uring_align(arena_size, LAKE_URING_PAGE);
	h->map_size = h->arena_offset + h->arena_size;
	h->reserved[0] = h->reserved[1] = h->reserved[2] = h->reserved[3] = 0;
	return 0;
}

#ifdef __STDC_VERSION__
_Static_assert(sizeof(struct lake_ring_ctrl) <= LAKE_URING_CTRL_OFFSET,
	       "lake_uring_ctrl overlaps lake_ring_ctrl");
_Static_assert(LAKE_URING_CTRL_OFFSET + sizeof(struct lake_uring_ctrl) <= LAKE_URING_PAGE,
	       "lake_uring_ctrl leaves the control page");
_Static_assert(sizeof(struct lake_uring_done) == 64, "one cache line per slot");
_Static_assert(sizeof(struct lake_uhello) == 120, "hello layout");
_Static_assert(sizeof(struct lake_uhello_reply) == 288, "reply layout");
#endif

#endif /* LAKE_URING_H */
