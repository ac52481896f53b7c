/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The channel between kernel callers and lakeD: command slots, the
 * submission queue, and the waits of callers (see docs/kernel-api.md).
 */
#ifndef LAKE_CHAN_H
#define LAKE_CHAN_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/lake.h>
#include "lake_call.h"
#include "lake_proto_gen.h"

enum lake_slot_state {
	LAKE_SLOT_FREE,
	LAKE_SLOT_RESERVED,	/* a caller is writing its command */
	LAKE_SLOT_SYNC,		/* published; its caller waits */
	LAKE_SLOT_SYNC_DONE,	/* completed; its caller reads the reply */
	LAKE_SLOT_ASYNC,	/* published; nobody waits */
	LAKE_SLOT_ABANDONED,	/* published; its caller timed out or was killed */
};

struct lake_kslot {
	wait_queue_head_t wq;
	u32 seq;		/* unique per reservation */
	u16 api;
	u8 state;		/* enum lake_slot_state, under lake_chan.lock */
	bool done;		/* the reply is in (SYNC -> SYNC_DONE) */
	bool failed;		/* the daemon went away while in flight */
	u8 nheld;		/* arena staging held for an abandoned call */
	struct {
		void *p;
		u64 len;
	} held[LAKE_MAX_STAGED];	/* freed when the slot is */
};

struct lake_stats {
	atomic64_t calls[LAKE_API_MAX + 2];	/* last one: NOP */
	atomic64_t errors[LAKE_API_MAX + 2];
	atomic64_t timeouts;
	atomic64_t interrupted;
	atomic64_t unavailable;
	atomic64_t attaches;
	atomic64_t bad_completions;
};

struct lake_chan {
	void *region;			/* vmalloc_user(): what lakeD maps */
	size_t region_size;
	struct lake_ring_ctrl *ctrl;
	u32 *sq;
	u8 *slots;
	void *arena;
	size_t arena_size;
	size_t sq_offset, slots_offset, arena_offset;
	u32 nslots;

	spinlock_t lock;		/* slot states, free stack, producer index */
	struct lake_kslot *kslots;
	u32 *free_stack;
	u32 nfree;
	u32 sq_tail;			/* the producer index (the shared copy is a mirror) */
	u32 next_seq;
	struct file *daemon;		/* the attached lakeD, or NULL */
	struct pid *daemon_tgid;	/* the process that attached: only it maps */
	bool attached;
	atomic_t inflight;

	wait_queue_head_t slot_wq;	/* callers waiting for a free slot */
	wait_queue_head_t daemon_wq;	/* lakeD's poll */
	struct lake_completion *cbuf;	/* LAKE_IOC_COMPLETE's copy, under cbuf_lock */
	struct mutex cbuf_lock;

	struct lake_transport transport;
	struct lake_stats stats;
};

extern struct lake_chan lake_chan;
extern unsigned int lake_timeout_ms;
extern unsigned int lake_spin_us;

int lake_chan_init(u32 nslots, size_t arena_size);
void lake_chan_exit(void);
int lake_chan_attach(struct file *daemon);
void lake_chan_detach(struct file *daemon);
bool lake_chan_is_daemon(struct file *file);
/* The daemon's file, used by the process that may map the region: the one
 * that attached it or the one it handed the channel to (not a child that
 * inherited the descriptor). */
bool lake_chan_is_daemon_process(struct file *file);
int lake_chan_handoff(struct file *file, pid_t nr);
bool lake_chan_pending(void);
int lake_chan_complete(const struct lake_complete __user *arg);

#endif /* LAKE_CHAN_H */
