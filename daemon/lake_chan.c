// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Rings and the loop that serves a channel (see lake_chan.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* How long an idle lazy_reports channel keeps completions unreported. */
#define LAKE_LAZY_REPORT_NS	2000u

int lake_serve(struct lake_chan *ch, struct lake_srv_conn *conn,
	       const struct lake_serve_opts *opts, struct lake_serve_stats *stats)
{
	struct lake_ring *r = &ch->ring;
	const __u64 spin_ns = (__u64)opts->spin_us * 1000u;
	struct lake_serve_stats local = { 0 }, *st = stats ? stats : &local;
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
			struct lake_msg_hdr *h;
			__u32 seq, flags, api;

			head++;
			if (idx >= r->nslots) {
				if (++st->bad_index <= 10)
					lake_warn("%s: queue entry %u names slot %u of %u: skipped%s",
						  ch->name, head - 1, idx, r->nslots,
						  st->bad_index == 10 ? " (no more of these reported)" : "");
				continue;
			}
			h = (struct lake_msg_hdr *)(r->slots + (size_t)idx * LAKE_SLOT_SIZE);
			seq = __atomic_load_n(&h->seq, __ATOMIC_RELAXED);
			flags = __atomic_load_n(&h->flags, __ATOMIC_RELAXED);
			api = __atomic_load_n(&h->api, __ATOMIC_RELAXED);
			lake_srv_process(conn, (__u8 *)h);
			/* The reply is complete: a spinning caller may take it now. */
			__atomic_store_n(&h->done_seq, seq, __ATOMIC_RELEASE);
			st->commands++;
			if (lake_log_debug_on())
				lake_debug("%s: slot %u seq %u client %u: %s%s -> %d", ch->name, idx,
					   seq, h->client, lake_api_name(api),
					   (flags & LAKE_MSG_ASYNC) ? " (async)" : "", h->result);
			done[n].slot = idx;
			done[n].seq = seq;
			done[n].status = 0;
			done[n].reserved = 0;
			n++;
			if (!(flags & LAKE_MSG_ASYNC) && !ch->lazy_reports) {
				waiter = true;
			} else if (!(flags & LAKE_MSG_ASYNC)) {
				/* Pairs with the caller's store of waiting, fence, load
				 * of done_seq: one of us sees the other. */
				__atomic_thread_fence(__ATOMIC_SEQ_CST);
				waiter = __atomic_load_n(&h->waiting, __ATOMIC_RELAXED) != 0;
			}
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
