/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The VM bridge: lake.ko in a guest served by the host's lakeD across QEMU's
 * ivshmem device (ivshmem-plain, BAR 2 = a shared file on the host).  One
 * header, shared by kmod/lake_ivshmem.c (the guest), daemon/lake_vchan.c (the
 * host) and the test tools.  Design and reasons: docs/vm-bridge.md.
 *
 * The shared memory (the BAR in the guest, the file on the host):
 *
 *   0            struct lake_ivshmem_hdr              one page
 *   cq_offset    struct lake_completion[cq_entries]   page aligned: completions
 *   ring_offset  the region of <linux/lake.h>          page aligned: ctrl page,
 *                (layout.* are relative to it)         queue, slots, arena
 *
 * Every word has one writer: the guest writes the layout, its state and
 * heartbeat and cq_head; lakeD writes its session, heartbeat and cq_tail.
 * Commands go as on /dev/lake (slot, queue entry, sq_tail; lakeD consumes
 * from sq_head and stores each reply's done_seq last).  Completions, which
 * /dev/lake takes by ioctl, come back through the completion queue: lakeD
 * writes {slot, seq} entries and release-stores cq_tail; lake.ko consumes
 * them from cq_head and checks each against its private slot state and
 * sequence number, exactly as it checks LAKE_IOC_COMPLETE.  Neither side
 * trusts anything the other writes.
 *
 * Attaching: the guest lays the region out and sets guest_state READY.
 * lakeD resets its own words (cq_tail = 0, sq_head = 0), then stores a new,
 * non-zero host_session.  The guest resets its side of the ring, writes the
 * layout again (a previous host may have scribbled on it), stores
 * guest_ack = host_session and guest_state ATTACHED; lakeD then reads the
 * layout once, checks it, and serves.
 *
 * Going away: either side ends the session by changing its word (lakeD:
 * host_session = 0 or a new one; lake.ko: guest_ack = 0 on unload or after
 * losing the host).  A side that dies changes nothing: each sees the other
 * die when its heartbeat stops (lake.ko: host_timeout_ms; lakeD:
 * vm_guest_timeout_ms).  A session id is never reused, so a dead lakeD's
 * leftover host_session is not mistaken for a new one.
 */
#ifndef LAKE_IVSHMEM_H
#define LAKE_IVSHMEM_H

#include <linux/types.h>
#include <linux/lake.h>
#include "lake_proto_gen.h"	/* LAKE_SPEC_HASH */

#define LAKE_IVSHMEM_VENDOR	0x1af4		/* Red Hat, Inc. (QEMU's ivshmem) */
#define LAKE_IVSHMEM_DEVICE	0x1110
#define LAKE_IVSHMEM_MAGIC	0x31304d56454b414cull	/* "LAKEVM01", little endian */
#define LAKE_IVSHMEM_VERSION	1

#define LAKE_IVSHMEM_PAGE	4096u
/*
 * Smaller devices are not LAKE's (the tests' mailbox, other users); nor is
 * one whose header page holds anything but zeros (a fresh file), LAKE's
 * magic (a previous lake.ko) or lakeD's host_magic: lake.ko does not take
 * over somebody else's shared memory unless told to (vm=ADDRESS).
 */
#define LAKE_IVSHMEM_MIN_SIZE	(2u << 20)
#define LAKE_IVSHMEM_MAX_SLOTS	4096u

/* Both heartbeats tick this often. */
#define LAKE_IVSHMEM_BEAT_MS	100u

/* guest_state */
#define LAKE_IVSHMEM_GUEST_ABSENT	0u	/* no lake.ko */
#define LAKE_IVSHMEM_GUEST_READY	1u	/* laid out, waiting for lakeD */
#define LAKE_IVSHMEM_GUEST_ATTACHED	2u	/* served in session guest_ack */

struct lake_ivshmem_hdr {
	/* Written by the guest (lake.ko). */
	__u64 magic;		/* LAKE_IVSHMEM_MAGIC */
	__u32 version;		/* LAKE_IVSHMEM_VERSION */
	__u32 proto_version;	/* LAKE_PROTO_VERSION */
	__u64 spec_hash;	/* LAKE_SPEC_HASH */
	__u32 guest_state;	/* LAKE_IVSHMEM_GUEST_* */
	__u32 guest_epoch;	/* bumped at each load and each lost session */
	__u32 guest_ack;	/* the host_session served, 0: none */
	__u32 guest_beat;	/* bumped every LAKE_IVSHMEM_BEAT_MS */
	__u64 cq_offset;
	__u32 cq_entries;	/* a power of two, at least layout.nslots */
	__u32 guest_reserved0;	/* zero */
	__u64 ring_offset;	/* where the <linux/lake.h> region starts */
	struct lake_attach layout;	/* of that region; map_size is its size */
	__u8 guest_pad0[256 - 160];

	__u32 cq_head;		/* guest: completions before it are consumed */
	__u8 guest_pad1[64 - 4];

	/* Written by the host (lakeD). */
	__u32 host_session;	/* non-zero: lakeD serves (or offers) this session */
	__u32 host_beat;	/* bumped every LAKE_IVSHMEM_BEAT_MS */
	__u32 host_proto_version;	/* LAKE_PROTO_VERSION of lakeD */
	__u32 host_pid;		/* for messages only */
	__u64 host_spec_hash;	/* LAKE_SPEC_HASH of lakeD */
	__u64 host_magic;	/* LAKE_IVSHMEM_MAGIC: lakeD serves this file */
	__u8 host_pad0[64 - 32];

	__u32 cq_tail;		/* host: completions before it are written */
	__u8 host_pad1[64 - 4];
};

/* The standard placement of the parts for @nslots slots. */
static inline __u64 lake_ivshmem_cq_offset(void)
{
	return LAKE_IVSHMEM_PAGE;
}

static inline __u32 lake_ivshmem_cq_entries(__u32 nslots)
{
	return 2 * nslots;	/* room for every slot's completion, twice */
}

static inline __u64 lake_ivshmem_ring_offset(__u32 cq_entries)
{
	__u64 end = lake_ivshmem_cq_offset() + (__u64)cq_entries * sizeof(struct lake_completion);

	return (end + LAKE_IVSHMEM_PAGE - 1) & ~(__u64)(LAKE_IVSHMEM_PAGE - 1);
}

/*
 * The layout lake.ko makes for @nslots slots in @size bytes (pages of
 * LAKE_IVSHMEM_PAGE bytes, the arena everything after the slots): for
 * programs that play the guest (tests, tools).  lake.ko computes the same
 * with its channel's own helpers.
 */
static inline void lake_ivshmem_std_layout(struct lake_ivshmem_hdr *h, __u32 nslots, __u64 size)
{
	const __u64 page = LAKE_IVSHMEM_PAGE;
	__u64 ro = lake_ivshmem_ring_offset(lake_ivshmem_cq_entries(nslots));
	__u64 slots = page + ((nslots * 4ull + page - 1) & ~(page - 1));
	__u64 arena = ((slots + (__u64)nslots * LAKE_SLOT_SIZE) + page - 1) & ~(page - 1);

	h->magic = LAKE_IVSHMEM_MAGIC;
	h->version = LAKE_IVSHMEM_VERSION;
	h->proto_version = LAKE_PROTO_VERSION;
	h->spec_hash = LAKE_SPEC_HASH;
	h->cq_offset = lake_ivshmem_cq_offset();
	h->cq_entries = lake_ivshmem_cq_entries(nslots);
	h->guest_reserved0 = 0;
	h->ring_offset = ro;
	h->layout = (struct lake_attach){
		.version = LAKE_PROTO_VERSION,
		.spec_hash = LAKE_SPEC_HASH,
		.nslots = nslots,
		.slot_size = LAKE_SLOT_SIZE,
		.sq_offset = page,
		.slots_offset = slots,
		.arena_offset = arena,
		.arena_size = (size - ro - arena) & ~(page - 1),
	};
	h->layout.map_size = arena + h->layout.arena_size;
}

#ifdef __STDC_VERSION__
_Static_assert(sizeof(struct lake_attach) == 96, "lake_attach layout");
_Static_assert(__builtin_offsetof(struct lake_ivshmem_hdr, cq_head) == 256, "guest's index line");
_Static_assert(__builtin_offsetof(struct lake_ivshmem_hdr, host_session) == 320, "host's line");
_Static_assert(__builtin_offsetof(struct lake_ivshmem_hdr, cq_tail) == 384, "host's index line");
_Static_assert(sizeof(struct lake_ivshmem_hdr) == 448, "header layout");
_Static_assert(sizeof(struct lake_completion) == 16, "completion entries");
#endif

#endif /* LAKE_IVSHMEM_H */
