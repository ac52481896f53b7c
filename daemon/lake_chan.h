/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * A channel, and the loop that serves one.
 *
 * A channel is a command ring in shared memory (the layout of <linux/lake.h>:
 * ctrl page, submission queue, slots, arena) plus two operations its
 * transport supplies: complete() reports finished slots to the submitter and
 * wakes its callers; wait() sleeps until the submitter may have published
 * more.  The kernel's /dev/lake channel (lake_kchan.c) is one; a user-space
 * client of liblake (a memfd ring and a UNIX socket, each served by its own
 * thread) will be another, and a test's in-memory ring a third.
 *
 * lake_serve() is the consumer: it takes commands from the ring, executes
 * each with lake_srv_process() for that channel's client connection, and
 * reports completions -- spinning briefly after the last command, then
 * sleeping in wait().
 */
#ifndef LAKE_CHAN_H
#define LAKE_CHAN_H

#include <stdatomic.h>
#include <stddef.h>
#include <linux/lake.h>
#include "lake_server.h"

/* The most slots a ring may have. */
#define LAKE_RING_MAX_SLOTS	65536u

/* A ring mapped into lakeD. */
struct lake_ring {
	struct lake_ring_ctrl *ctrl;
	__u32 *sq;		/* nslots slot indexes */
	__u8 *slots;		/* nslots * LAKE_SLOT_SIZE bytes */
	__u32 nslots;		/* entry i of the queue is sq[i % nslots] */
	__u8 *arena;		/* NULL when arena_size is 0 */
	__u64 arena_size;
};

/*
 * Points @r into the region at @base of @map_size bytes, laid out as
 * @layout says (what LAKE_IOC_ATTACH returned, or lake_ring_layout()).
 * Checks the layout first: sizes, alignment, no overlaps, all inside the
 * mapping.  Returns 0, or -EPROTO with @why.
 */
int lake_ring_init(struct lake_ring *r, void *base, __u64 map_size,
		   const struct lake_attach *layout, char *why, size_t whylen);

/*
 * A standard layout for a ring of @nslots and an arena of
 * @arena_size bytes: every part page aligned.  For rings lakeD creates itself
 * (user clients' memfds, tests).  Returns 0, or -EINVAL.
 */
int lake_ring_layout(__u32 nslots, __u64 arena_size, struct lake_attach *layout);

struct lake_chan;

/* What wait() returns, besides a negative errno when the channel is dead. */
#define LAKE_CHAN_AGAIN	0	/* look at the ring again */
#define LAKE_CHAN_STOP	1	/* asked to stop: return from lake_serve() */

struct lake_chan_ops {
	/*
	 * Reports @n finished commands (n >= 1, in the order executed) and
	 * wakes whoever waits for them.  The replies are in their slots: the
	 * transport must make them visible before the submitter sees the
	 * completion (a syscall does; a shared-memory completion queue needs
	 * a release store).  It may write each entry's status.  Returns 0, or
	 * a negative errno: the channel is dead.
	 */
	int (*complete)(struct lake_chan *ch, struct lake_completion *done, unsigned int n);
	/*
	 * Sleeps until the ring may hold new commands, or until a stop is
	 * requested.  Called with the ring seen empty and sq_head published;
	 * may return LAKE_CHAN_AGAIN spuriously.  Returns LAKE_CHAN_AGAIN,
	 * LAKE_CHAN_STOP, or a negative errno (e.g. -ENODEV: submitter gone).
	 */
	int (*wait)(struct lake_chan *ch);
};

struct lake_chan {
	const char *name;		/* for messages: "/dev/lake", "client 42" */
	struct lake_ring ring;
	const struct lake_chan_ops *ops;
	/*
	 * Callers take their reply from the slot's done_seq while they spin,
	 * so complete() is only urgent for a caller that sleeps (hdr.waiting):
	 * the others are reported in batches, off the round trip's path.
	 */
	bool lazy_reports;
};

struct lake_serve_opts {
	unsigned int spin_us;		/* spin this long after the last command; 0: never */
	atomic_int *stop;		/* non-NULL: the loop returns 0 once it is non-zero */
	/*
	 * Serving threads (0 or 1: the calling thread alone).  With more, the
	 * thread reading the queue runs every command; when one synchronous
	 * command has blocked it for about a millisecond with more waiting,
	 * another thread takes the queue over, so one caller's blocking call
	 * does not hold up the others'.  Order: commands of one calling thread
	 * (the header's client) run one at a time, in queue order; async
	 * commands run in queue order before anything queued after them.
	 */
	unsigned int threads;
};

struct lake_serve_stats {
	__u64 commands;			/* executed */
	__u64 completes;		/* complete() calls */
	__u64 waits;			/* wait() calls (sleeps) */
	__u64 bad_index;		/* queue entries naming no slot: skipped */
};

/*
 * Serves @ch for the client @conn until a stop (returns 0) or until the
 * channel fails (returns a negative errno, already logged).  @stats may be
 * NULL.  Allocates one completion array at start; nothing per command.
 */
int lake_serve(struct lake_chan *ch, struct lake_srv_conn *conn,
	       const struct lake_serve_opts *opts, struct lake_serve_stats *stats);

#endif /* LAKE_CHAN_H */
