// SPDX-License-Identifier: GPL-2.0
/*
 * The channel: how a kernel caller's command reaches lakeD and its reply
 * comes back.
 *
 * A caller reserves a slot (waiting, killably and bounded, when all are in
 * use), writes its command there through the protocol core, and publishes
 * the slot's index on the submission queue.  lakeD consumes the queue from
 * shared memory, writes each reply into its slot and reports it with
 * LAKE_IOC_COMPLETE.  Everything about a slot's life — which caller owns
 * it, whether it is in flight, its sequence number — lives here in kernel
 * memory; lakeD only ever names a slot and a sequence number, both checked.
 */
#include <linux/delay.h>
#include <linux/errno.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include "lake_chan.h"
#include "lake_shm.h"
#include "lake_kernel.h"

#define CREATE_TRACE_POINTS
#include "lake_trace.h"

struct lake_chan lake_chan;

/*
 * One bound for the whole call: the wait for a slot and the wait for the
 * reply share timeout_ms, counted from the call's start (0: forever).
 */
static void lake_call_set_deadline(struct lake_call *call)
{
	unsigned int ms = READ_ONCE(lake_timeout_ms);

	call->deadline = ms ? get_jiffies_64() + msecs_to_jiffies(ms) : 0;
}

/* What is left of the call's wait, in jiffies (0: none). */
static long lake_call_remaining(const struct lake_call *call)
{
	u64 now = get_jiffies_64();

	if (!call->deadline)
		return MAX_SCHEDULE_TIMEOUT;
	return time_before64(now, call->deadline) ? (long)(call->deadline - now) : 0;
}

static unsigned int lake_stat_index(u32 api)
{
	return api == LAKE_API_NOP ? LAKE_API_MAX + 1 : min_t(u32, api, LAKE_API_MAX + 1);
}

/* Takes a free slot, or returns -1.  Called with the lock held. */
static int lake_slot_pop(struct lake_chan *ch)
{
	if (!ch->nfree)
		return -1;
	return ch->free_stack[--ch->nfree];
}

static void lake_slot_push(struct lake_chan *ch, u32 idx)
{
	struct lake_kslot *ks = &ch->kslots[idx];

	/* lakeD is done with the slot: so with what an abandoned call staged. */
	while (ks->nheld) {
		ks->nheld--;
		lake_shm_free(ks->held[ks->nheld].p, ks->held[ks->nheld].len);
	}
	ks->state = LAKE_SLOT_FREE;
	ch->free_stack[ch->nfree++] = idx;
	atomic_dec(&ch->inflight);
}

static bool lake_try_reserve(struct lake_chan *ch, int *idx)
{
	bool stop;

	spin_lock(&ch->lock);
	stop = !ch->attached;
	*idx = stop ? -1 : lake_slot_pop(ch);
	if (*idx >= 0) {
		struct lake_kslot *ks = &ch->kslots[*idx];

		ks->state = LAKE_SLOT_RESERVED;
		ks->seq = ++ch->next_seq;
		ks->done = false;
		ks->failed = false;
		atomic_inc(&ch->inflight);
	}
	spin_unlock(&ch->lock);
	return stop || *idx >= 0;
}

static int lake_k_begin(struct lake_transport *t, struct lake_call *call)
{
	struct lake_chan *ch = &lake_chan;
	long ret;
	int idx;

	lake_call_set_deadline(call);
	if (!READ_ONCE(ch->attached)) {
		atomic64_inc(&ch->stats.unavailable);
		return LAKE_E_UNAVAILABLE;
	}
	if (!lake_try_reserve(ch, &idx) || idx < 0) {
		/* Every slot is in flight: wait for one (backpressure). */
		ret = wait_event_killable_timeout(ch->slot_wq, lake_try_reserve(ch, &idx),
						  lake_call_remaining(call));
		if (ret == 0) {
			atomic64_inc(&ch->stats.timeouts);
			return LAKE_E_TIMEOUT;
		}
		if (ret < 0) {
			atomic64_inc(&ch->stats.interrupted);
			return LAKE_E_INTERRUPTED;
		}
		if (idx < 0) {
			atomic64_inc(&ch->stats.unavailable);
			return LAKE_E_UNAVAILABLE;
		}
	}
	call->slot = ch->slots + (size_t)idx * LAKE_SLOT_SIZE;
	call->slot_index = idx;
	call->seq = ch->kslots[idx].seq;
	return LAKE_OK;
}

/*
 * A caller gives up on a published command (timeout, fatal signal): lakeD
 * may still read the buffers staged for it in the arena and write the reply
 * there, so they stay allocated until the slot is freed (late completion or
 * detach) instead of going back to the arena when the caller returns, where
 * another caller could get them and receive the late reply.  Lock held.
 */
static void lake_slot_hold_staging(struct lake_kslot *ks, struct lake_call *call)
{
	unsigned int i;

	for (i = 0; i < call->nstaged && ks->nheld < ARRAY_SIZE(ks->held); i++) {
		struct lake_staged *st = &call->staged[i];

		if (!st->arena_len)
			continue;
		ks->held[ks->nheld].p = st->stage;
		ks->held[ks->nheld].len = st->arena_len;
		ks->nheld++;
		st->arena_len = 0;	/* not lake_call_end()'s to free any more */
	}
}

/*
 * Has lakeD written the whole reply?  Its release store of the sequence
 * number is the last thing it writes; a daemon that lies here only hurts its
 * own caller, whose reply is checked like any other.
 */
static bool lake_reply_in(struct lake_call *call)
{
	return smp_load_acquire(&lake_call_hdr(call)->done_seq) == call->seq;
}

/* Spins briefly for a reply before sleeping: a round trip to a spinning
 * daemon is far cheaper than two wake-ups. */
static bool lake_spin_for_reply(struct lake_kslot *ks, struct lake_call *call)
{
	unsigned int i, spin_us = READ_ONCE(lake_spin_us);
	u64 end;

	if (!spin_us)
		return lake_reply_in(call) || smp_load_acquire(&ks->done) || READ_ONCE(ks->failed);
	end = ktime_get_ns() + (u64)spin_us * NSEC_PER_USEC;
	for (i = 1;; i++) {
		if (lake_reply_in(call) || smp_load_acquire(&ks->done) || READ_ONCE(ks->failed))
			return true;
		if (need_resched())
			return false;
		cpu_relax();
		/* The clock costs more than a check: read it now and then. */
		if (!(i % 32) && ktime_get_ns() >= end)
			return false;
	}
}

static int lake_k_submit(struct lake_transport *t, struct lake_call *call)
{
	struct lake_chan *ch = &lake_chan;
	struct lake_kslot *ks = &ch->kslots[call->slot_index];
	u32 api = call->api;	/* ours: the slot is lakeD's to scribble on */
	long ret;

	spin_lock(&ch->lock);
	if (!ch->attached) {
		spin_unlock(&ch->lock);
		atomic64_inc(&ch->stats.unavailable);
		return LAKE_E_UNAVAILABLE;
	}
	ks->api = (u16)api;
	ks->state = call->async ? LAKE_SLOT_ASYNC : LAKE_SLOT_SYNC;
	WRITE_ONCE(ch->sq[ch->sq_tail % ch->nslots], call->slot_index);
	ch->sq_tail++;
	/* The command and queue entry are visible before the new tail. */
	smp_store_release(&ch->ctrl->sq_tail, ch->sq_tail);
	spin_unlock(&ch->lock);

	atomic64_inc(&ch->stats.calls[lake_stat_index(api)]);
	trace_lake_submit(api, call->slot_index, call->seq, call->async);
	/* Pairs with the smp_mb() after poll_wait() in lake_poll(): either
	 * lakeD sees the new tail in lake_chan_pending(), or we see it waiting. */
	smp_mb();
	if (wq_has_sleeper(&ch->daemon_wq))
		wake_up_interruptible_poll(&ch->daemon_wq, EPOLLIN | EPOLLRDNORM);
	if (call->async)
		return LAKE_OK;

	if (!lake_spin_for_reply(ks, call)) {
		/* Going to sleep: lakeD must report this completion at once.
		 * Either it sees the flag, or we see its done_seq (both sides
		 * store, fence, load). */
		WRITE_ONCE(lake_call_hdr(call)->waiting, 1);
		smp_mb();
		ret = wait_event_killable_timeout(ks->wq, lake_reply_in(call) ||
						  smp_load_acquire(&ks->done) ||
						  READ_ONCE(ks->failed), lake_call_remaining(call));
		if (ret <= 0) {
			bool gave_up;

			spin_lock(&ch->lock);
			gave_up = !ks->done && !ks->failed && !lake_reply_in(call);
			if (gave_up) {	/* in flight until lakeD answers or goes */
				ks->state = LAKE_SLOT_ABANDONED;
				lake_slot_hold_staging(ks, call);
			}
			spin_unlock(&ch->lock);
			if (gave_up) {
				if (ret == 0) {
					atomic64_inc(&ch->stats.timeouts);
					return LAKE_E_TIMEOUT;
				}
				atomic64_inc(&ch->stats.interrupted);
				return LAKE_E_INTERRUPTED;
			}
		}
	}
	if (!smp_load_acquire(&ks->done) && !lake_reply_in(call)) {
		atomic64_inc(&ch->stats.unavailable);
		return LAKE_E_UNAVAILABLE;	/* lakeD went away */
	}
	if (READ_ONCE(lake_call_hdr(call)->result))
		atomic64_inc(&ch->stats.errors[lake_stat_index(api)]);
	return LAKE_OK;
}

static void lake_k_end(struct lake_transport *t, struct lake_call *call)
{
	struct lake_chan *ch = &lake_chan;
	struct lake_kslot *ks = &ch->kslots[call->slot_index];
	bool freed = false;

	spin_lock(&ch->lock);
	/* A published async slot is freed by its completion, maybe already
	 * reused: touch it only if it is still this call's and ours. */
	if (ks->seq == call->seq) {
		if (ks->state == LAKE_SLOT_SYNC && !ks->failed) {
			/* The reply came through done_seq and lakeD has not
			 * reported it yet: its report frees the slot, as for an
			 * async call. */
			ks->state = LAKE_SLOT_ASYNC;
		} else if (ks->state == LAKE_SLOT_RESERVED || ks->state == LAKE_SLOT_SYNC ||
			   ks->state == LAKE_SLOT_SYNC_DONE) {
			lake_slot_push(ch, call->slot_index);
			freed = true;
		}
	}
	spin_unlock(&ch->lock);
	if (freed && wq_has_sleeper(&ch->slot_wq))
		wake_up(&ch->slot_wq);
}

static bool lake_k_arena_find(struct lake_transport *t, const void *p, __u64 len, __u64 *off)
{
	return lake_shm_offset(p, len, off);
}

static void *lake_k_arena_alloc(struct lake_transport *t, __u64 len, __u64 *off)
{
	void *p = lake_shm_alloc(len);

	if (p && !lake_shm_offset(p, len, off)) {
		lake_shm_free(p, len);
		return NULL;
	}
	return p;
}

static void lake_k_arena_free(struct lake_transport *t, void *p, __u64 len)
{
	lake_shm_free(p, len);
}

static __u32 lake_k_client_id(struct lake_transport *t)
{
	/* Sticky async errors belong to the calling thread. */
	return (__u32)task_pid_nr(current);
}

static const struct lake_transport_ops lake_kernel_transport_ops = {
	.begin = lake_k_begin,
	.submit = lake_k_submit,
	.end = lake_k_end,
	.arena_find = lake_k_arena_find,
	.arena_alloc = lake_k_arena_alloc,
	.arena_free = lake_k_arena_free,
	.client_id = lake_k_client_id,
};

struct lake_transport *lake_transport_get(void)
{
	return &lake_chan.transport;
}

int lake_null_call(void)
{
	static atomic64_t cookie;

	return lake_status_errno(lake_call_nop(&lake_chan.transport, atomic64_inc_return(&cookie)));
}
EXPORT_SYMBOL_GPL(lake_null_call);

bool lake_chan_pending(void)
{
	struct lake_chan *ch = &lake_chan;

	return READ_ONCE(ch->ctrl->sq_head) != READ_ONCE(ch->sq_tail);
}

bool lake_chan_is_daemon(struct file *file)
{
	return file && READ_ONCE(lake_chan.daemon) == file;
}

bool lake_chan_is_daemon_process(struct file *file)
{
	struct lake_chan *ch = &lake_chan;
	bool same;

	spin_lock(&ch->lock);
	same = file && ch->daemon == file && ch->daemon_tgid == task_tgid(current);
	spin_unlock(&ch->lock);
	return same;
}

/**
 * lake_chan_handoff() - name the process that may map the region from now on
 * @file: the file it is asked on (must be the attached daemon's)
 * @nr: the process, as a pid in the caller's namespace
 *
 * A privileged supervisor attaches and hands the channel to the process it
 * started to serve it; that process alone maps the region afterwards (and
 * may hand it on in turn). Mappings made before stay valid.
 *
 * Return: 0; -EPERM unless current is the process that may map the region
 * now, with the daemon's file; -ESRCH if @nr names no process.
 */
int lake_chan_handoff(struct file *file, pid_t nr)
{
	struct lake_chan *ch = &lake_chan;
	struct pid *to, *old = NULL;
	int ret = -EPERM;

	to = nr > 0 ? find_get_pid(nr) : NULL;
	if (!to || !pid_has_task(to, PIDTYPE_TGID)) {
		put_pid(to);
		return -ESRCH;	/* (a thread's id is not a process) */
	}
	spin_lock(&ch->lock);
	if (file && ch->daemon == file && ch->daemon_tgid == task_tgid(current)) {
		old = ch->daemon_tgid;
		ch->daemon_tgid = to;
		to = NULL;
		ret = 0;
	}
	spin_unlock(&ch->lock);
	put_pid(old);
	put_pid(to);
	return ret;
}

int lake_chan_attach(struct file *daemon)
{
	struct lake_chan *ch = &lake_chan;
	int ret = 0;

	spin_lock(&ch->lock);
	if (ch->daemon) {
		ret = -EBUSY;
	} else {
		ch->daemon = daemon;
		ch->daemon_tgid = get_pid(task_tgid(current));
		ch->sq_tail = 0;
		WRITE_ONCE(ch->ctrl->sq_tail, 0);
		WRITE_ONCE(ch->ctrl->sq_head, 0);
		WRITE_ONCE(ch->attached, true);
	}
	spin_unlock(&ch->lock);
	if (!ret)
		atomic64_inc(&ch->stats.attaches);
	return ret;
}

/*
 * lakeD's file is released (exit, crash, kill -9): every call in flight
 * fails now with "unavailable", later ones fail fast until a daemon
 * attaches again.
 */
void lake_chan_detach(struct file *daemon)
{
	struct lake_chan *ch = &lake_chan;
	u32 i;

	spin_lock(&ch->lock);
	if (ch->daemon != daemon) {
		spin_unlock(&ch->lock);
		return;
	}
	ch->daemon = NULL;
	put_pid(ch->daemon_tgid);
	ch->daemon_tgid = NULL;
	WRITE_ONCE(ch->attached, false);
	for (i = 0; i < ch->nslots; i++) {
		struct lake_kslot *ks = &ch->kslots[i];

		switch (ks->state) {
		case LAKE_SLOT_SYNC:
			WRITE_ONCE(ks->failed, true);
			wake_up(&ks->wq);
			break;
		case LAKE_SLOT_ASYNC:
		case LAKE_SLOT_ABANDONED:
			lake_slot_push(ch, i);
			break;
		default:
			break;	/* free, or owned by a caller that will free it */
		}
	}
	spin_unlock(&ch->lock);
	wake_up_all(&ch->slot_wq);
	wake_up_all(&ch->daemon_wq);
	/* Its handles die with it, and every layout bound to them. */
	lake_transport_reset(&ch->transport);
}

/* One completion from lakeD; returns its status.  Lock held. */
static int lake_complete_one(struct lake_chan *ch, const struct lake_completion *c, bool *wake_slots)
{
	struct lake_kslot *ks;
	u32 api;

	if (c->slot >= ch->nslots || c->reserved)
		return -EINVAL;
	ks = &ch->kslots[c->slot];
	if (ks->seq != c->seq)
		return -ENOENT;
	api = ks->api;
	switch (ks->state) {
	case LAKE_SLOT_SYNC:
		ks->state = LAKE_SLOT_SYNC_DONE;
		smp_store_release(&ks->done, true);
		wake_up(&ks->wq);
		break;
	case LAKE_SLOT_ASYNC:
	case LAKE_SLOT_ABANDONED:
		if (READ_ONCE(((struct lake_msg_hdr *)(ch->slots + (size_t)c->slot * LAKE_SLOT_SIZE))->result))
			atomic64_inc(&ch->stats.errors[lake_stat_index(api)]);
		lake_slot_push(ch, c->slot);
		*wake_slots = true;
		break;
	default:
		return -ENOENT;	/* not in flight, or already completed */
	}
	trace_lake_complete(api, c->slot, c->seq,
			    READ_ONCE(((struct lake_msg_hdr *)(ch->slots + (size_t)c->slot * LAKE_SLOT_SIZE))->result));
	return 0;
}

int lake_chan_complete(const struct lake_complete __user *arg)
{
	struct lake_chan *ch = &lake_chan;
	struct lake_complete req;
	bool wake_slots = false;
	int ret = 0;
	u32 i;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (req.reserved || req.count > ch->nslots)
		return -EINVAL;
	if (!req.count)
		return 0;
	mutex_lock(&ch->cbuf_lock);
	if (copy_from_user(ch->cbuf, u64_to_user_ptr(req.entries),
			   req.count * sizeof(*ch->cbuf))) {
		ret = -EFAULT;
		goto out;
	}
	spin_lock(&ch->lock);
	for (i = 0; i < req.count; i++) {
		int st = lake_complete_one(ch, &ch->cbuf[i], &wake_slots);

		ch->cbuf[i].status = st;
		if (st) {
			atomic64_inc(&ch->stats.bad_completions);
			if (!ret || st == -EINVAL)
				ret = st;
		}
	}
	spin_unlock(&ch->lock);
	if (wake_slots && wq_has_sleeper(&ch->slot_wq))
		wake_up(&ch->slot_wq);
	if (copy_to_user(u64_to_user_ptr(req.entries), ch->cbuf, req.count * sizeof(*ch->cbuf)))
		ret = -EFAULT;
out:
	mutex_unlock(&ch->cbuf_lock);
	return ret;
}

int lake_chan_init(u32 nslots, size_t arena_size)
{
	struct lake_chan *ch = &lake_chan;
	size_t sq_bytes = PAGE_ALIGN(nslots * sizeof(u32));
	u32 i;
	int ret;

	ch->nslots = nslots;
	ch->sq_offset = PAGE_SIZE;
	ch->slots_offset = ch->sq_offset + sq_bytes;
	ch->arena_offset = PAGE_ALIGN(ch->slots_offset + (size_t)nslots * LAKE_SLOT_SIZE);
	ch->arena_size = arena_size;
	ch->region_size = ch->arena_offset + arena_size;
	ch->region = vmalloc_user(ch->region_size);
	if (!ch->region)
		return -ENOMEM;
	ch->ctrl = ch->region;
	ch->sq = ch->region + ch->sq_offset;
	ch->slots = ch->region + ch->slots_offset;
	ch->arena = ch->region + ch->arena_offset;

	ret = -ENOMEM;
	ch->kslots = kcalloc(nslots, sizeof(*ch->kslots), GFP_KERNEL);
	ch->free_stack = kcalloc(nslots, sizeof(*ch->free_stack), GFP_KERNEL);
	ch->cbuf = kcalloc(nslots, sizeof(*ch->cbuf), GFP_KERNEL);
	if (!ch->kslots || !ch->free_stack || !ch->cbuf)
		goto fail;
	spin_lock_init(&ch->lock);
	mutex_init(&ch->cbuf_lock);
	init_waitqueue_head(&ch->slot_wq);
	init_waitqueue_head(&ch->daemon_wq);
	for (i = 0; i < nslots; i++) {
		init_waitqueue_head(&ch->kslots[i].wq);
		ch->free_stack[i] = nslots - 1 - i;
	}
	ch->nfree = nslots;
	atomic_set(&ch->inflight, 0);
	ret = lake_shm_init(ch->arena, arena_size);
	if (ret)
		goto fail;
	lake_transport_init(&ch->transport, &lake_kernel_transport_ops);
	return 0;
fail:
	kfree(ch->cbuf);
	kfree(ch->free_stack);
	kfree(ch->kslots);
	vfree(ch->region);
	return ret;
}

void lake_chan_exit(void)
{
	struct lake_chan *ch = &lake_chan;

	lake_transport_destroy(&ch->transport);
	lake_shm_exit();
	kfree(ch->cbuf);
	kfree(ch->free_stack);
	kfree(ch->kslots);
	vfree(ch->region);
}
