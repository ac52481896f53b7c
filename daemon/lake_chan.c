// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Rings and the loop that serves a channel (see lake_chan.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include "lake_chan.h"
#include "lake_log.h"

#define LAKE_PAGE	4096ull

static __u64 lake_align(__u64 v, __u64 a)
{
	return (v + a - 1) & ~(a - 1);
}

int lake_ring_layout(__u32 nslots, __u64 arena_size, struct lake_attach *l)
{
	if (!nslots || nslots > LAKE_RING_MAX_SLOTS)
		return -EINVAL;
	if (arena_size > (1ull << 46))
		return -EINVAL;
	memset(l, 0, sizeof(*l));
	l->version = LAKE_PROTO_VERSION;
	l->spec_hash = LAKE_SPEC_HASH;
	l->nslots = nslots;
	l->slot_size = LAKE_SLOT_SIZE;
	l->sq_offset = LAKE_PAGE;
	l->slots_offset = lake_align(l->sq_offset + (__u64)nslots * sizeof(__u32), LAKE_PAGE);
	l->arena_offset = lake_align(l->slots_offset + (__u64)nslots * LAKE_SLOT_SIZE, LAKE_PAGE);
	l->arena_size = lake_align(arena_size, LAKE_PAGE);
	l->map_size = l->arena_offset + l->arena_size;
	return 0;
}

/* Is [off, off + len) inside [0, size)? */
static bool lake_within(__u64 off, __u64 len, __u64 size)
{
	return off <= size && len <= size - off;
}

#define LAKE_BAD(...)	do { snprintf(why, whylen, __VA_ARGS__); return -EPROTO; } while (0)

int lake_ring_init(struct lake_ring *r, void *base, __u64 map_size,
		   const struct lake_attach *l, char *why, size_t whylen)
{
	__u64 sq_len, slots_len;

	memset(r, 0, sizeof(*r));
	if (l->slot_size != LAKE_SLOT_SIZE)
		LAKE_BAD("slot_size %u, expected %u", l->slot_size, LAKE_SLOT_SIZE);
	if (!l->nslots || l->nslots > LAKE_RING_MAX_SLOTS)
		LAKE_BAD("nslots %u is not in 1..%u", l->nslots, LAKE_RING_MAX_SLOTS);
	if (l->map_size != map_size)
		LAKE_BAD("map_size %llu, but %llu bytes are mapped",
			 (unsigned long long)l->map_size, (unsigned long long)map_size);
	sq_len = (__u64)l->nslots * sizeof(__u32);
	slots_len = (__u64)l->nslots * LAKE_SLOT_SIZE;
	if (l->sq_offset < sizeof(struct lake_ring_ctrl) || l->sq_offset % sizeof(__u32) ||
	    !lake_within(l->sq_offset, sq_len, map_size))
		LAKE_BAD("submission queue at %llu (+%llu) is misplaced",
			 (unsigned long long)l->sq_offset, (unsigned long long)sq_len);
	if (l->slots_offset < l->sq_offset + sq_len || l->slots_offset % 64 ||
	    !lake_within(l->slots_offset, slots_len, map_size))
		LAKE_BAD("slots at %llu (+%llu) are misplaced",
			 (unsigned long long)l->slots_offset, (unsigned long long)slots_len);
	if (l->arena_size) {
		if (l->arena_offset < l->slots_offset + slots_len || l->arena_offset % LAKE_PAGE ||
		    !lake_within(l->arena_offset, l->arena_size, map_size))
			LAKE_BAD("arena at %llu (+%llu) is misplaced",
				 (unsigned long long)l->arena_offset,
				 (unsigned long long)l->arena_size);
	}
	r->ctrl = base;
	r->sq = (__u32 *)((__u8 *)base + l->sq_offset);
	r->slots = (__u8 *)base + l->slots_offset;
	r->nslots = l->nslots;
	r->arena = l->arena_size ? (__u8 *)base + l->arena_offset : NULL;
	r->arena_size = l->arena_size;
	return 0;
}

static const char *lake_api_name(__u32 api)
{
	if (api == LAKE_API_NOP)
		return "NOP";
	if (api && api <= LAKE_API_MAX && lake_srv_apis[api].name)
		return lake_srv_apis[api].name;
	return "?";
}

/* How long an idle lazy_reports channel keeps completions unreported. */
#define LAKE_LAZY_REPORT_NS	2000u

/* Publishes our head, then reports the completions gathered so far. */
static int lake_flush(struct lake_chan *ch, __u32 head, struct lake_completion *done,
		      unsigned int *n, struct lake_serve_stats *st)
{
	int rc;

	__atomic_store_n(&ch->ring.ctrl->sq_head, head, __ATOMIC_RELEASE);
	if (!*n)
		return 0;
	rc = ch->ops->complete(ch, done, *n);
	*n = 0;
	st->completes++;
	return rc;
}

/*
 * Runs the command in slot @idx and stores its done_seq.  Returns whether a
 * caller waits for it now (it must be reported before anything slow).
 */
static bool lake_run_one(struct lake_chan *ch, struct lake_srv_conn *conn, __u32 idx,
			 struct lake_completion *done)
{
	struct lake_msg_hdr *h = (struct lake_msg_hdr *)(ch->ring.slots + (size_t)idx * LAKE_SLOT_SIZE);
	struct lake_srv_cmd cmd;

	lake_srv_process_cmd(conn, (__u8 *)h, &cmd);
	/* The reply is complete: a spinning caller may take it now. */
	__atomic_store_n(&h->done_seq, cmd.seq, __ATOMIC_RELEASE);
	if (lake_log_debug_on())
		lake_debug("%s: slot %u seq %u client %u: %s%s -> %d", ch->name, idx, cmd.seq,
			   cmd.client, lake_api_name(cmd.api),
			   (cmd.flags & LAKE_MSG_ASYNC) ? " (async)" : "",
			   __atomic_load_n(&h->result, __ATOMIC_RELAXED));
	done->slot = idx;
	done->seq = cmd.seq;
	done->status = 0;
	done->reserved = 0;
	if (cmd.flags & LAKE_MSG_ASYNC)
		return false;
	if (!ch->lazy_reports)
		return true;
	/* Pairs with the caller's store of waiting, fence, load of done_seq:
	 * one of us sees the other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&h->waiting, __ATOMIC_RELAXED) != 0;
}

/* One serving thread: the loop described in lake_chan.h. */
static int lake_serve_one(struct lake_chan *ch, struct lake_srv_conn *conn,
			  const struct lake_serve_opts *opts, struct lake_serve_stats *st)
{
	struct lake_ring *r = &ch->ring;
	const __u64 spin_ns = (__u64)opts->spin_us * 1000u;
	struct lake_completion *done;
	unsigned int n = 0;
	__u64 last;
	__u32 head;
	int ret = 0, rc;

	done = calloc(r->nslots, sizeof(*done));
	if (!done) {
		lake_err("%s: no memory for %u completions", ch->name, r->nslots);
		return -ENOMEM;
	}
	head = __atomic_load_n(&r->ctrl->sq_head, __ATOMIC_RELAXED);
	last = lake_now_ns();
	for (;;) {
		bool waiter = false;
		__u32 tail;

		if (opts->stop && atomic_load_explicit(opts->stop, memory_order_relaxed))
			break;
		tail = __atomic_load_n(&r->ctrl->sq_tail, __ATOMIC_ACQUIRE);
		if (tail == head) {
			/* Idle: report what is still unreported (lazy_reports) once the
			 * callers had time to come back, then spin for the window
			 * after the last command, then sleep. */
			if (n && (!spin_ns || lake_now_ns() - last >= LAKE_LAZY_REPORT_NS)) {
				rc = lake_flush(ch, head, done, &n, st);
				if (rc < 0)
					goto dead;
				continue;
			}
			if (spin_ns && lake_now_ns() - last < spin_ns) {
				lake_cpu_relax();
				continue;
			}
			st->waits++;
			rc = ch->ops->wait(ch);
			if (rc == LAKE_CHAN_STOP)
				break;
			if (rc < 0) {
				lake_err("%s: waiting for commands failed: %s", ch->name, strerror(-rc));
				ret = rc;
				break;
			}
			continue;
		}
		if (tail - head > r->nslots) {
			lake_err("%s: the submission queue claims %u entries but has %u slots "
				 "(head %u, tail %u): ring corrupted", ch->name, tail - head,
				 r->nslots, head, tail);
			ret = -EPROTO;
			break;
		}
		while (head != tail) {
			/* The producer's mapping of its free-running counter. */
			__u32 idx = __atomic_load_n(&r->sq[head % r->nslots], __ATOMIC_RELAXED);

			head++;
			if (idx >= r->nslots) {
				if (++st->bad_index <= 10)
					lake_warn("%s: queue entry %u names slot %u of %u: skipped%s",
						  ch->name, head - 1, idx, r->nslots,
						  st->bad_index == 10 ? " (no more of these reported)" : "");
				continue;
			}
			waiter |= lake_run_one(ch, conn, idx, &done[n++]);
			st->commands++;
			/*
			 * A caller waits for this batch: wake it before running
			 * the next command, which may take long (a synchronize).
			 * Completions of async commands alone are batched.
			 */
			if (waiter && head != tail) {
				waiter = false;
				rc = lake_flush(ch, head, done, &n, st);
				if (rc < 0)
					goto dead;
			}
		}
		if (!ch->lazy_reports || waiter || n >= r->nslots / 4) {
			rc = lake_flush(ch, head, done, &n, st);
			if (rc < 0)
				goto dead;
		} else {
			__atomic_store_n(&r->ctrl->sq_head, head, __ATOMIC_RELEASE);
		}
		last = lake_now_ns();
	}
	free(done);
	return ret;
dead:
	lake_err("%s: reporting completions failed: %s", ch->name, strerror(-rc));
	free(done);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Several serving threads                                                  */

/*
 * One thread at a time holds the reader role: it consumes the queue and runs
 * every command itself, in queue order, as the single loop does -- no thread
 * switch on the fast path.  When a synchronous command (one that may block,
 * as a synchronize does) has run for LAKE_POOL_STEAL_NS with commands waiting
 * behind it, a follower takes the reader role over and goes on with the
 * queue; the blocked thread finishes its command (and whatever of the same
 * calling thread was queued behind it, in order) and becomes a follower.
 * One follower, the watchdog, looks every LAKE_POOL_STEAL_NS while the
 * channel is busy (every 100 ms when it is idle); the others sleep.  So a
 * blocking call holds up other callers for about that long, not for as long
 * as it blocks, and nothing spins but the reader.
 */
#define LAKE_POOL_STEAL_NS	(1000ull * 1000)	/* 1 ms */
#define LAKE_POOL_IDLE_NS	(100ull * 1000 * 1000)

struct lake_pool_thread {
	struct lake_pool *pool;
	unsigned int i;
	pthread_t th;
	bool in_cmd;		/* in a synchronous command (under the pool's lock) */
	__u64 cmd_seq;		/* ...bumped as each one starts */
	bool busy;		/* running a command of @client (and then its queue) */
	__u32 client;
	__u32 *queue;		/* slot indexes for @client, nslots entries */
	__u32 qhead, qtail;
};

struct lake_pool {
	struct lake_chan *ch;
	struct lake_srv_conn *conn;
	const struct lake_serve_opts *opts;
	unsigned int nthreads;
	struct lake_pool_thread *t;
	pthread_mutex_t lock;		/* busy/client/queues, the lazy batch, stats */
	int reader;			/* the thread holding the reader role, -1: none (atomic) */
	__u32 role_seq;			/* futex: bumped when the role changes hands */
	int watchdog;			/* a follower watches the reader (atomic) */
	__u32 watch_seq;		/* futex the watchdog sleeps on */
	bool watch_idle;		/* ...for long: wake it when a command may block (lock) */
	int stop;			/* atomic: every thread returns */
	int ret;
	__u32 head;			/* the queue position (the reader's) */
	__u64 last;			/* when the reader ran its last command (atomic) */
	struct lake_completion *lazy;	/* unreported completions (lazy_reports) */
	unsigned int nlazy;		/* (written under lock, peeked at without) */
	bool reader_sleeping;		/* the reader is in wait(): nobody reports the batch */
	struct lake_serve_stats st;
};

static void lake_pool_wake(__u32 *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static void lake_pool_fail(struct lake_pool *p, int rc)
{
	pthread_mutex_lock(&p->lock);
	if (!p->ret)
		p->ret = rc;
	pthread_mutex_unlock(&p->lock);
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&p->role_seq, 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&p->watch_seq, 1, __ATOMIC_RELEASE);
	lake_pool_wake(&p->role_seq, INT_MAX);
	lake_pool_wake(&p->watch_seq, INT_MAX);
}

static bool lake_pool_stopped(struct lake_pool *p)
{
	return __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE) ||
	       (p->opts->stop && atomic_load_explicit(p->opts->stop, memory_order_relaxed));
}

/* Reports the lazy batch (when @force, or when it is due).  Lock not held. */
static void lake_pool_flush(struct lake_pool *p, bool force)
{
	struct lake_chan *ch = p->ch;
	struct lake_completion *batch;
	unsigned int n;
	int rc;

	if (!__atomic_load_n(&p->nlazy, __ATOMIC_RELAXED))
		return;	/* (a stale look only delays a report to the next look) */
	pthread_mutex_lock(&p->lock);
	n = p->nlazy;
	if (!n || (!force && n < ch->ring.nslots / 4 &&
		   lake_now_ns() - __atomic_load_n(&p->last, __ATOMIC_RELAXED) < LAKE_LAZY_REPORT_NS)) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	batch = malloc(n * sizeof(*batch));
	if (batch)
		memcpy(batch, p->lazy, n * sizeof(*batch));
	__atomic_store_n(&p->nlazy, 0, __ATOMIC_RELAXED);
	p->st.completes++;
	pthread_mutex_unlock(&p->lock);
	rc = batch ? ch->ops->complete(ch, batch, n) : -ENOMEM;
	free(batch);
	if (rc < 0) {
		lake_err("%s: reporting completions failed: %s", ch->name, strerror(-rc));
		lake_pool_fail(p, rc);
	}
}

/* Runs slot @idx and reports it (at once if its caller waits). */
static void lake_pool_run(struct lake_pool *p, __u32 idx)
{
	struct lake_completion done;
	bool now = lake_run_one(p->ch, p->conn, idx, &done);
	int rc;

	pthread_mutex_lock(&p->lock);
	p->st.commands++;
	/* Batched while a reader is up to report the batch; else now. */
	if (!now && p->ch->lazy_reports && !p->reader_sleeping &&
	    __atomic_load_n(&p->reader, __ATOMIC_ACQUIRE) >= 0) {
		p->lazy[p->nlazy] = done;	/* at most one per slot: nslots entries */
		__atomic_store_n(&p->nlazy, p->nlazy + 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->st.completes++;
	pthread_mutex_unlock(&p->lock);
	rc = p->ch->ops->complete(p->ch, &done, 1);
	if (rc < 0) {
		lake_err("%s: reporting completions failed: %s", p->ch->name, strerror(-rc));
		lake_pool_fail(p, rc);
	}
}

/* The thread running commands of @client, or NULL.  Lock held. */
static struct lake_pool_thread *lake_pool_busy_with(struct lake_pool *p, __u32 client)
{
	unsigned int i;

	for (i = 0; i < p->nthreads; i++)
		if (p->t[i].busy && p->t[i].client == client)
			return &p->t[i];
	return NULL;
}

/*
 * Runs a synchronous command on @t, which holds the reader role unless it
 * is taken over meanwhile; then what queued up behind it for the same
 * calling thread.  Returns whether @t still holds the role.
 */
static bool lake_pool_run_sync(struct lake_pool *p, struct lake_pool_thread *t, __u32 idx,
			       __u32 client)
{
	const __u32 n = p->ch->ring.nslots;

	bool still, wake;

	/* in_cmd and the role change hands under the lock (see lake_pool_follow). */
	pthread_mutex_lock(&p->lock);
	t->busy = true;
	t->client = client;
	t->cmd_seq++;
	t->in_cmd = true;
	wake = p->watch_idle;	/* the watchdog sleeps long: it must watch this one */
	if (wake) {
		p->watch_idle = false;
		__atomic_add_fetch(&p->watch_seq, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&p->lock);
	if (wake)
		lake_pool_wake(&p->watch_seq, 1);
	lake_pool_run(p, idx);
	pthread_mutex_lock(&p->lock);
	t->in_cmd = false;
	still = __atomic_load_n(&p->reader, __ATOMIC_ACQUIRE) == (int)t->i;
	while (t->qhead != t->qtail) {
		idx = t->queue[t->qhead++ % n];
		pthread_mutex_unlock(&p->lock);
		lake_pool_run(p, idx);
		pthread_mutex_lock(&p->lock);
	}
	t->busy = false;
	pthread_mutex_unlock(&p->lock);
	return still;
}

/* The reader: consumes the queue until a stop or until the role is taken. */
static void lake_pool_read(struct lake_pool *p, struct lake_pool_thread *t)
{
	struct lake_chan *ch = p->ch;
	struct lake_ring *r = &ch->ring;
	const __u64 spin_ns = (__u64)p->opts->spin_us * 1000u;
	int rc;

	for (;;) {
		__u32 tail, head = p->head;

		if (lake_pool_stopped(p)) {
			lake_pool_fail(p, 0);
			return;
		}
		tail = __atomic_load_n(&r->ctrl->sq_tail, __ATOMIC_ACQUIRE);
		if (tail == head) {
			if (spin_ns && lake_now_ns() - __atomic_load_n(&p->last, __ATOMIC_RELAXED) < spin_ns) {
				lake_pool_flush(p, false);
				lake_cpu_relax();
				continue;
			}
			/* About to sleep: report everything first (nobody else will). */
			pthread_mutex_lock(&p->lock);
			p->reader_sleeping = true;
			p->st.waits++;
			pthread_mutex_unlock(&p->lock);
			lake_pool_flush(p, true);
			rc = ch->ops->wait(ch);
			pthread_mutex_lock(&p->lock);
			p->reader_sleeping = false;
			pthread_mutex_unlock(&p->lock);
			if (rc == LAKE_CHAN_STOP) {
				lake_pool_fail(p, 0);
				return;
			}
			if (rc < 0) {
				lake_err("%s: waiting for commands failed: %s", ch->name, strerror(-rc));
				lake_pool_fail(p, rc);
				return;
			}
			continue;
		}
		if (tail - head > r->nslots) {
			lake_err("%s: the submission queue claims %u entries but has %u slots "
				 "(head %u, tail %u): ring corrupted", ch->name, tail - head,
				 r->nslots, head, tail);
			lake_pool_fail(p, -EPROTO);
			return;
		}
		while (head != tail) {
			__u32 idx = __atomic_load_n(&r->sq[head % r->nslots], __ATOMIC_RELAXED);
			struct lake_pool_thread *q;
			struct lake_msg_hdr *h;
			__u32 client, flags, api;

			head++;
			p->head = head;
			if (idx >= r->nslots) {
				pthread_mutex_lock(&p->lock);
				if (++p->st.bad_index <= 10)
					lake_warn("%s: queue entry %u names slot %u of %u: skipped%s",
						  ch->name, head - 1, idx, r->nslots,
						  p->st.bad_index == 10 ? " (no more of these reported)" : "");
				pthread_mutex_unlock(&p->lock);
				continue;
			}
			/* Routing only (lakeD's private copy is made when it runs):
			 * a client that rewrites these merely reorders its own calls. */
			h = (struct lake_msg_hdr *)(r->slots + (size_t)idx * LAKE_SLOT_SIZE);
			client = __atomic_load_n(&h->client, __ATOMIC_RELAXED);
			flags = __atomic_load_n(&h->flags, __ATOMIC_RELAXED);
			api = __atomic_load_n(&h->api, __ATOMIC_RELAXED);
			pthread_mutex_lock(&p->lock);
			q = lake_pool_busy_with(p, client);
			if (q) {
				/* Its previous command still runs: after it, in order. */
				q->queue[q->qtail++ % r->nslots] = idx;
				pthread_mutex_unlock(&p->lock);
				continue;
			}
			pthread_mutex_unlock(&p->lock);
			if ((flags & LAKE_MSG_ASYNC) || api == LAKE_API_NOP) {
				lake_pool_run(p, idx);	/* in queue order, never blocks */
				continue;
			}
			/* May block: what is consumed so far is published first, so
			 * that a follower can take over from here. */
			__atomic_store_n(&r->ctrl->sq_head, head, __ATOMIC_RELEASE);
			if (!lake_pool_run_sync(p, t, idx, client))
				return;	/* taken over while it ran */
		}
		__atomic_store_n(&r->ctrl->sq_head, head, __ATOMIC_RELEASE);
		__atomic_store_n(&p->last, lake_now_ns(), __ATOMIC_RELAXED);
		lake_pool_flush(p, false);
	}
}

/*
 * A follower sleeps until the reader role is free.  The watchdog among them
 * wakes every LAKE_POOL_STEAL_NS while the channel is busy and takes the role
 * over from a reader that has been in the same synchronous command since its
 * last look, with commands waiting behind it.  Returns whether it now holds
 * the role.
 */
static bool lake_pool_follow(struct lake_pool *p, struct lake_pool_thread *t)
{
	__u32 seq = __atomic_load_n(&p->role_seq, __ATOMIC_SEQ_CST), *word = &p->role_seq;
	__u64 seen = 0, wait_ns = LAKE_POOL_IDLE_NS;
	int zero = 0, holder = -1;
	bool watch = false, took = false;

	if (__atomic_load_n(&p->reader, __ATOMIC_ACQUIRE) < 0 || lake_pool_stopped(p))
		return false;
	if (__atomic_compare_exchange_n(&p->watchdog, &zero, 1, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE)) {
		/* Which thread reads, and which of its commands it is in. */
		watch = true;
		pthread_mutex_lock(&p->lock);
		holder = __atomic_load_n(&p->reader, __ATOMIC_ACQUIRE);
		if (holder >= 0) {
			seen = p->t[holder].cmd_seq;
			if (p->t[holder].in_cmd ||
			    lake_now_ns() - __atomic_load_n(&p->last, __ATOMIC_RELAXED) < LAKE_POOL_IDLE_NS)
				wait_ns = LAKE_POOL_STEAL_NS;
		}
		p->watch_idle = wait_ns == LAKE_POOL_IDLE_NS;
		seq = __atomic_load_n(&p->watch_seq, __ATOMIC_RELAXED);
		word = &p->watch_seq;
		pthread_mutex_unlock(&p->lock);
	}
	if (__atomic_load_n(&p->reader, __ATOMIC_ACQUIRE) >= 0 && !lake_pool_stopped(p)) {
		struct timespec ts = {
			.tv_sec = (time_t)(wait_ns / 1000000000ull),
			.tv_nsec = (long)(wait_ns % 1000000000ull),
		};

		syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seq, &ts, NULL, 0);
	}
	if (!watch)
		return false;
	/* Under the lock: the reader sets and clears in_cmd, and looks whether
	 * it still holds the role, under it too.  The same reader, still in the
	 * same command since before the sleep, with commands waiting. */
	pthread_mutex_lock(&p->lock);
	p->watch_idle = false;
	if (holder >= 0 && __atomic_load_n(&p->reader, __ATOMIC_ACQUIRE) == holder &&
	    p->t[holder].in_cmd && p->t[holder].cmd_seq == seen &&
	    __atomic_load_n(&p->ch->ring.ctrl->sq_tail, __ATOMIC_ACQUIRE) != p->head) {
		__atomic_store_n(&p->reader, (int)t->i, __ATOMIC_RELEASE);
		took = true;
	}
	pthread_mutex_unlock(&p->lock);
	__atomic_store_n(&p->watchdog, 0, __ATOMIC_RELEASE);
	if (took)
		__atomic_add_fetch(&p->role_seq, 1, __ATOMIC_SEQ_CST);
	return took;
}

static void *lake_pool_main(void *arg)
{
	struct lake_pool_thread *t = arg;
	struct lake_pool *p = t->pool;

	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		int me = -1;

		if (__atomic_compare_exchange_n(&p->reader, &me, (int)t->i, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ||
		    lake_pool_follow(p, t)) {
			lake_pool_read(p, t);
			/* A stop, or taken over: let the role go if it is still ours. */
			me = (int)t->i;
			__atomic_compare_exchange_n(&p->reader, &me, -1, false, __ATOMIC_ACQ_REL,
						    __ATOMIC_ACQUIRE);
		}
	}
	return NULL;
}

static int lake_serve_pool(struct lake_chan *ch, struct lake_srv_conn *conn,
			   const struct lake_serve_opts *opts, struct lake_serve_stats *st)
{
	struct lake_pool p;
	sigset_t all, old;
	unsigned int i, started = 1;
	int err;

	memset(&p, 0, sizeof(p));
	p.ch = ch;
	p.conn = conn;
	p.opts = opts;
	p.nthreads = opts->threads;
	p.reader = -1;
	p.head = __atomic_load_n(&ch->ring.ctrl->sq_head, __ATOMIC_RELAXED);
	p.last = lake_now_ns();
	pthread_mutex_init(&p.lock, NULL);
	p.t = calloc(p.nthreads, sizeof(*p.t));
	p.lazy = calloc(ch->ring.nslots, sizeof(*p.lazy));
	if (!p.t || !p.lazy)
		goto nomem;
	for (i = 0; i < p.nthreads; i++) {
		p.t[i].pool = &p;
		p.t[i].i = i;
		p.t[i].queue = calloc(ch->ring.nslots, sizeof(__u32));
		if (!p.t[i].queue)
			goto nomem;
	}
	lake_srv_conn_set_shared(conn);
	/* Signals are the calling thread's: the others only serve. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 1; i < p.nthreads; i++) {
		err = pthread_create(&p.t[i].th, NULL, lake_pool_main, &p.t[i]);
		if (err) {
			lake_warn("%s: %u serving threads instead of %u: %s", ch->name, i,
				  p.nthreads, strerror(err));
			break;
		}
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	lake_pool_main(&p.t[0]);
	for (i = 1; i < started; i++)
		pthread_join(p.t[i].th, NULL);
	lake_pool_flush(&p, true);
	st->commands += p.st.commands;
	st->completes += p.st.completes;
	st->waits += p.st.waits;
	st->bad_index += p.st.bad_index;
	err = p.ret;
	goto out;
nomem:
	lake_err("%s: no memory for %u serving threads", ch->name, p.nthreads);
	err = -ENOMEM;
out:
	for (i = 0; p.t && i < p.nthreads; i++)
		free(p.t[i].queue);
	free(p.t);
	free(p.lazy);
	pthread_mutex_destroy(&p.lock);
	return err;
}

int lake_serve(struct lake_chan *ch, struct lake_srv_conn *conn,
	       const struct lake_serve_opts *opts, struct lake_serve_stats *stats)
{
	struct lake_serve_stats local = { 0 };

	if (opts->threads > 1)
		return lake_serve_pool(ch, conn, opts, stats ? stats : &local);
	return lake_serve_one(ch, conn, opts, stats ? stats : &local);
}
