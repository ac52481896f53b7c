// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * lakeD's unit tests, without /dev/lake: the serve loop over rings set up in
 * memory (a test channel whose complete() records and whose wait() stops when
 * the ring is empty, or publishes more), the generated client stubs driven
 * through that ring, ring layout checks and the config parser.
 *
 * Vendor: the recording TEST DOUBLE (lake_fake.c) -- except the "gpu" case,
 * which loads the real libcuda with lakeD's loader, registers an arena and
 * moves data through the ring.  It skips where there is no GPU; with
 * LAKE_TEST_GPU_ONLY=1 only it runs, and "no GPU" exits 77 (CTest: skipped).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include "lake_chan.h"
#include "lake_config.h"
#include "lake_log.h"
#include "lake_vendor.h"
#include "lake_fake.h"
#include "lake_call.h"
#include "lake_cuda.h"

/* ------------------------------------------------------------------------ */
/* A channel over memory                                                    */

#define T_MAXLOG	1024

struct tchan {
	struct lake_chan chan;
	void *mem;
	size_t size;
	struct lake_attach layout;
	struct lake_completion log[T_MAXLOG];
	unsigned int nlog;
	unsigned int batch[T_MAXLOG];	/* sizes of complete() calls */
	unsigned int nbatch;
	unsigned int waits;
	unsigned int waits_at_first_complete;
	int complete_error;		/* complete() returns it when non-zero */
	int (*on_wait)(struct tchan *t);	/* NULL: LAKE_CHAN_STOP */
	__u32 next_seq;
	__u32 tail;			/* our producer index */
	unsigned int calls;		/* for on_wait hooks */
};

#define tchan_of(ch)	((struct tchan *)((char *)(ch) - offsetof(struct tchan, chan)))

static pthread_mutex_t t_complete_lock = PTHREAD_MUTEX_INITIALIZER;

static int t_complete_locked(struct lake_chan *ch, struct lake_completion *done, unsigned int n);

/* Several serving threads report at once. */
static int t_complete(struct lake_chan *ch, struct lake_completion *done, unsigned int n)
{
	int rc;

	pthread_mutex_lock(&t_complete_lock);
	rc = t_complete_locked(ch, done, n);
	pthread_mutex_unlock(&t_complete_lock);
	return rc;
}

static int t_complete_locked(struct lake_chan *ch, struct lake_completion *done, unsigned int n)
{
	struct tchan *t = tchan_of(ch);
	unsigned int i;

	if (t->complete_error)
		return t->complete_error;
	if (!t->nbatch)
		t->waits_at_first_complete = t->waits;
	ck_assert_uint_ge(n, 1);
	ck_assert_uint_lt(t->nbatch, T_MAXLOG);
	t->batch[t->nbatch++] = n;
	for (i = 0; i < n; i++) {
		ck_assert_uint_lt(t->nlog, T_MAXLOG);
		ck_assert_int_eq(done[i].status, 0);
		ck_assert_uint_eq(done[i].reserved, 0);
		t->log[t->nlog++] = done[i];
	}
	return 0;
}

static int t_wait(struct lake_chan *ch)
{
	struct tchan *t = tchan_of(ch);

	/* Called with the ring seen empty and our head published. */
	ck_assert_uint_eq(__atomic_load_n(&ch->ring.ctrl->sq_head, __ATOMIC_ACQUIRE),
			  __atomic_load_n(&ch->ring.ctrl->sq_tail, __ATOMIC_ACQUIRE));
	t->waits++;
	return t->on_wait ? t->on_wait(t) : LAKE_CHAN_STOP;
}

static const struct lake_chan_ops t_ops = {
	.complete = t_complete,
	.wait = t_wait,
};

static struct tchan *tchan_new(__u32 nslots, __u64 arena_size)
{
	struct tchan *t = calloc(1, sizeof(*t));
	char why[256];

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(lake_ring_layout(nslots, arena_size, &t->layout), 0);
	t->size = t->layout.map_size;
	/* A page nobody may touch right after the arena: reading past it faults. */
	t->mem = mmap(NULL, t->size + 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	ck_assert(t->mem != MAP_FAILED);
	ck_assert_int_eq(mprotect((__u8 *)t->mem + t->size, 4096, PROT_NONE), 0);
	ck_assert_int_eq(lake_ring_init(&t->chan.ring, t->mem, t->size, &t->layout, why,
					sizeof(why)), 0);
	t->chan.name = "test ring";
	t->chan.ops = &t_ops;
	return t;
}

static void tchan_free(struct tchan *t)
{
	munmap(t->mem, t->size + 4096);
	free(t);
}

/* Sets both counters (an empty ring whose counters stand at @at). */
static void tchan_set_counters(struct tchan *t, __u32 at)
{
	t->tail = at;
	t->chan.ring.ctrl->sq_tail = at;
	t->chan.ring.ctrl->sq_head = at;
}

static struct lake_msg_hdr *tslot(struct tchan *t, __u32 idx)
{
	return (struct lake_msg_hdr *)(t->chan.ring.slots + (size_t)idx * LAKE_SLOT_SIZE);
}

/* Writes a command header into slot @idx; returns its seq. */
static __u32 tcmd(struct tchan *t, __u32 idx, __u32 api, __u32 flags, __u32 args_len)
{
	struct lake_msg_hdr *h = tslot(t, idx);

	memset(h, 0, LAKE_SLOT_SIZE);
	h->api = api;
	h->flags = flags;
	h->client = 1;
	h->seq = ++t->next_seq;
	h->args_len = args_len;
	h->result = -12345;	/* must be overwritten */
	return h->seq;
}

static __u32 tnop(struct tchan *t, __u32 idx, __u32 flags, __u64 cookie)
{
	struct lake_nop nop = { .cookie = cookie };
	__u32 seq = tcmd(t, idx, LAKE_API_NOP, flags, sizeof(nop));

	memcpy((__u8 *)tslot(t, idx) + LAKE_ARGS_OFFSET, &nop, sizeof(nop));
	return seq;
}

/* Puts @idx on the submission queue (not yet visible). */
static void tqueue(struct tchan *t, __u32 idx)
{
	t->chan.ring.sq[t->tail % t->chan.ring.nslots] = idx;
	t->tail++;
}

/* Makes everything queued visible, as the producer's release store does. */
static void tpublish(struct tchan *t)
{
	__atomic_store_n(&t->chan.ring.ctrl->sq_tail, t->tail, __ATOMIC_RELEASE);
}

static struct lake_srv_conn *tconn(struct tchan *t)
{
	struct lake_srv_conn *c = lake_srv_conn_new(&lake_fake_vendors, t->chan.ring.arena,
						    t->chan.ring.arena_size);

	ck_assert_ptr_nonnull(c);
	lake_fake_reset();
	return c;
}

static int tserve(struct tchan *t, struct lake_srv_conn *c, unsigned int spin_us,
		  atomic_int *stop, struct lake_serve_stats *st)
{
	struct lake_serve_opts o = { .spin_us = spin_us, .stop = stop };

	memset(st, 0, sizeof(*st));
	return lake_serve(&t->chan, c, &o, st);
}

static void check_nop_reply(struct tchan *t, __u32 idx, __u64 cookie)
{
	struct lake_msg_hdr *h = tslot(t, idx);
	struct lake_nop out;

	ck_assert_int_eq(h->result, 0);
	ck_assert_uint_eq(h->reply_len, sizeof(out));
	memcpy(&out, (__u8 *)h + LAKE_OUTS_OFFSET, sizeof(out));
	ck_assert_uint_eq(out.cookie, cookie);
}

/* ------------------------------------------------------------------------ */
/* The serve loop                                                           */

START_TEST(test_serve_sync_nops)
{
	struct tchan *t = tchan_new(8, 1 << 16);
	struct lake_srv_conn *c = tconn(t);
	struct lake_serve_stats st;
	__u32 seq[3], i;

	for (i = 0; i < 3; i++) {
		seq[i] = tnop(t, 5 - i, 0, 100 + i);
		tqueue(t, 5 - i);
	}
	tpublish(t);
	ck_assert_int_eq(tserve(t, c, 0, NULL, &st), 0);
	ck_assert_uint_eq(st.commands, 3);
	ck_assert_uint_eq(t->nlog, 3);
	for (i = 0; i < 3; i++) {
		ck_assert_uint_eq(t->log[i].slot, 5 - i);
		ck_assert_uint_eq(t->log[i].seq, seq[i]);
		check_nop_reply(t, 5 - i, 100 + i);
	}
	/* Each caller waits: each is woken before the next command runs. */
	ck_assert_uint_eq(t->nbatch, 3);
	ck_assert_uint_eq(t->chan.ring.ctrl->sq_head, 3);
	ck_assert_uint_eq(t->waits, 1);
	ck_assert_uint_eq(st.waits, 1);
	lake_srv_conn_free(c);
	tchan_free(t);
}
END_TEST

START_TEST(test_serve_async_batched)
{
	struct tchan *t = tchan_new(8, 0);
	struct lake_srv_conn *c = tconn(t);
	struct lake_serve_stats st;
	__u32 i;

	for (i = 0; i < 4; i++) {
		tnop(t, i, LAKE_MSG_ASYNC, i);
		tqueue(t, i);
	}
	tpublish(t);
	ck_assert_int_eq(tserve(t, c, 0, NULL, &st), 0);
	ck_assert_uint_eq(t->nlog, 4);
	ck_assert_uint_eq(t->nbatch, 1);	/* nobody waits: one report */
	ck_assert_uint_eq(t->batch[0], 4);
	ck_assert_uint_eq(st.completes, 1);
	lake_srv_conn_free(c);
	tchan_free(t);
}
END_TEST

START_TEST(test_serve_mixed_batches)
{
	struct tchan *t = tchan_new(8, 0);
	struct lake_srv_conn *c = tconn(t);
	struct lake_serve_stats st;
	const __u32 flags[5] = { LAKE_MSG_ASYNC, LAKE_MSG_ASYNC, 0, LAKE_MSG_ASYNC, 0 };
	__u32 i;

	for (i = 0; i < 5; i++) {
		tnop(t, i, flags[i], i);
		tqueue(t, i);
	}
	tpublish(t);
	ck_assert_int_eq(tserve(t, c, 0, NULL, &st), 0);
	ck_assert_uint_eq(t->nlog, 5);
	ck_assert_uint_eq(t->nbatch, 2);
	ck_assert_uint_eq(t->batch[0], 3);	/* A A S: flushed before the next runs */
	ck_assert_uint_eq(t->batch[1], 2);	/* A S */
	for (i = 0; i < 5; i++)
		ck_assert_uint_eq(t->log[i].slot, i);
	lake_srv_conn_free(c);
	tchan_free(t);
}
END_TEST

START_TEST(test_serve_bad_index)
{
	struct tchan *t = tchan_new(4, 0);
	struct lake_srv_conn *c = tconn(t);
	struct lake_serve_stats st;

	tnop(t, 0, 0, 1);
	tqueue(t, 0);
	tqueue(t, 4);		/* no such slot */
	tqueue(t, 0xFFFFFFFFu);
	tnop(t, 3, 0, 2);
	tqueue(t, 3);
	tpublish(t);
	ck_assert_int_eq(tserve(t, c, 0, NULL, &st), 0);
	ck_assert_uint_eq(st.bad_index, 2);
	ck_assert_uint_eq(st.commands, 2);
	ck_assert_uint_eq(t->nlog, 2);
	ck_assert_uint_eq(t->log[0].slot, 0);
	ck_assert_uint_eq(t->log[1].slot, 3);
	ck_assert_uint_eq(t->chan.ring.ctrl->sq_head, 4);	/* all consumed */
	lake_srv_conn_free(c);
	tchan_free(t);
}
END_TEST

START_TEST(test_serve_vendor_call)
{
	struct tchan *t = tchan_new(4, 0);
	struct lake_srv_conn *c = tconn(t);
	struct lake_outs_cuDriverGetVersion out;
	struct lake_serve_stats st;
	__u32 seq;

	seq = tcmd(t, 1, LAKE_API_cuDriverGetVersion, 0,
		   sizeof(struct lake_args_cuDriverGetVersion));
	tslot(t, 1)->present = 1;
	tqueue(t, 1);
	tcmd(t, 2, LAKE_API_MAX + 7, 0, 0);	/* unknown: answered, as a protocol error */
	tqueue(t, 2);
	tpublish(t);
	lake_log_level = LAKE_LOG_DEBUG;	/* the per-command trace, too */
	ck_assert_int_eq(tserve(t, c, 0, NULL, &st), 0);
	lake_log_level = LAKE_LOG_WARN;
	ck_assert_uint_eq(t->nlog, 2);
	ck_assert_uint_eq(t->log[0].seq, seq);
	ck_assert_int_eq(tslot(t, 1)->result, 0);
	ck_assert_uint_eq(tslot(t, 1)->reply_len, sizeof(out));
	memcpy(&out, (__u8 *)tslot(t, 1) + LAKE_OUTS_OFFSET, sizeof(out));
	ck_assert_int_eq(out.driverVersion, (int)lake_fake_out(LAKE_API_cuDriverGetVersion, 0));
	ck_assert_ptr_nonnull(lake_fake_find("cuDriverGetVersion"));
	ck_assert_int_eq(tslot(t, 2)->result, LAKE_RESULT_PROTOCOL);
	lake_srv_conn_free(c);
	tchan_free(t);
}
END_TEST

START_TEST(test_serve_counter_wrap)
{
	struct tchan *t = tchan_new(8, 0);
	struct lake_srv_conn *c = tconn(t);
	struct lake_serve_stats st;
	__u32 i;

	tchan_set_counters(t, 0xFFFFFFFEu);
	for (i = 0; i < 5; i++) {
		tnop(t, i, 0, i);
		tqueue(t, i);
	}
	tpublish(t);
	ck_assert_int_eq(tserve(t, c, 0, NULL, &st), 0);
	ck_assert_uint_eq(t->nlog, 5);
	for (i = 0; i < 5; i++)
		ck_assert_uint_eq(t->log[i].slot, i);
	ck_assert_uint_eq(t->chan.ring.ctrl->sq_head, 3);
	lake_srv_conn_free(c);
	tchan_free(t);
}
END_TEST

/* The producer publishes one more command each of the first three sleeps. */
static int t_wait_publish(struct tchan *t)
{
	if (t->calls >= 3)
		return LAKE_CHAN_STOP;
	t->calls++;
	tnop(t, t->calls % 4, 0, t->calls);
	tqueue(t, t->calls % 4);
	tpublish(t);
	return LAKE_CHAN_AGAIN;
}

/* A spurious wake-up: nothing new, the loop must go back to sleep. */
static int t_wait_spurious(struct tchan *t)
{
	return ++t->calls < 3 ? LAKE_CHAN_AGAIN : LAKE_CHAN_STOP;
}

START_TEST(test_serve_wakeups)
{
	struct tchan *t = tchan_new(4, 0);
	struct lake_srv_conn *c = tconn(t);
	struct lake_serve_stats st;

	tnop(t, 0, 0, 0);
	tqueue(t, 0);
	tpublish(t);
	t->on_wait = t_wait_publish;
	ck_assert_int_eq(tserve(t, c, 0, NULL, &st), 0);
	ck_assert_uint_eq(st.commands, 4);
	ck_assert_uint_eq(t->waits, 4);
	ck_assert_uint_eq(t->nlog, 4);
	check_nop_reply(t, 3, 3);

	t->on_wait = t_wait_spurious;
	t->calls = 0;
	t->waits = 0;
	ck_assert_int_eq(tserve(t, c, 0, NULL, &st), 0);
	ck_assert_uint_eq(st.commands, 0);
	ck_assert_uint_eq(t->waits, 3);
	lake_srv_conn_free(c);
	tchan_free(t);
}
END_TEST

static int t_wait_dead(struct tchan *t)
{
	(void)t;
	return -ENODEV;
}

START_TEST(test_serve_stop_and_errors)
{
	struct tchan *t = tchan_new(4, 0);
	struct lake_srv_conn *c = tconn(t);
	struct lake_serve_stats st;
	atomic_int stop = 1;

	/* A stop already asked: nothing runs, not even with work queued. */
	tnop(t, 0, 0, 0);
	tqueue(t, 0);
	tpublish(t);
	ck_assert_int_eq(tserve(t, c, 0, &stop, &st), 0);
	ck_assert_uint_eq(st.commands, 0);
	ck_assert_uint_eq(t->waits, 0);

	/* complete() fails: the channel is dead. */
	t->complete_error = -EPIPE;
	ck_assert_int_eq(tserve(t, c, 0, NULL, &st), -EPIPE);
	ck_assert_uint_eq(st.commands, 1);
	t->complete_error = 0;

	/* wait() fails. */
	t->on_wait = t_wait_dead;
	ck_assert_int_eq(tserve(t, c, 0, NULL, &st), -ENODEV);

	/* A tail more than nslots ahead of the head: corrupted. */
	t->tail += 5;
	tpublish(t);
	ck_assert_int_eq(tserve(t, c, 0, NULL, &st), -EPROTO);
	lake_srv_conn_free(c);
	tchan_free(t);
}
END_TEST

static double t_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(test_serve_spins_before_sleeping)
{
	struct tchan *t = tchan_new(4, 0);
	struct lake_srv_conn *c = tconn(t);
	struct lake_serve_stats st;
	double t0 = t_now();

	ck_assert_int_eq(tserve(t, c, 3000, NULL, &st), 0);
	ck_assert_double_ge(t_now() - t0, 0.003);	/* spun the window first */
	ck_assert_uint_eq(t->waits, 1);
	lake_srv_conn_free(c);
	tchan_free(t);
}
END_TEST

static void *t_late_producer(void *arg)
{
	struct tchan *t = arg;
	struct timespec d = { 0, 2 * 1000 * 1000 };

	nanosleep(&d, NULL);
	tnop(t, 2, 0, 42);
	tqueue(t, 2);
	tpublish(t);
	return NULL;
}

START_TEST(test_serve_spin_catches_command)
{
	struct tchan *t = tchan_new(4, 0);
	struct lake_srv_conn *c = tconn(t);
	struct lake_serve_stats st;
	pthread_t th;

	/* Published 2 ms into a 500 ms spin window: taken without sleeping. */
	ck_assert_int_eq(pthread_create(&th, NULL, t_late_producer, t), 0);
	ck_assert_int_eq(tserve(t, c, 500000, NULL, &st), 0);
	pthread_join(th, NULL);
	ck_assert_uint_eq(st.commands, 1);
	ck_assert_uint_eq(t->waits_at_first_complete, 0);
	ck_assert_uint_eq(t->waits, 1);
	check_nop_reply(t, 2, 42);
	lake_srv_conn_free(c);
	tchan_free(t);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Ring layouts                                                             */

START_TEST(test_ring_layouts)
{
	static __u8 mem[1 << 20] __attribute__((aligned(4096)));
	struct lake_attach l, b;
	struct lake_ring r;
	char why[256];

	ck_assert_int_eq(lake_ring_layout(16, 64 << 10, &l), 0);
	ck_assert_uint_le(l.map_size, sizeof(mem));
	ck_assert_int_eq(lake_ring_init(&r, mem, l.map_size, &l, why, sizeof(why)), 0);
	ck_assert_ptr_eq(r.sq, (void *)(mem + 4096));
	ck_assert_ptr_eq(r.arena + r.arena_size, mem + l.map_size);
	ck_assert_int_eq(lake_ring_layout(0, 0, &l), -EINVAL);

	/* lake.ko's own layout, with a slot count that is not a power of two. */
	memset(&b, 0, sizeof(b));
	b.nslots = 100;
	b.slot_size = LAKE_SLOT_SIZE;
	b.sq_offset = 4096;
	b.slots_offset = 8192;
	b.arena_offset = 8192 + 100 * LAKE_SLOT_SIZE;
	b.arena_size = 64 << 10;
	b.map_size = b.arena_offset + b.arena_size;
	ck_assert_int_eq(lake_ring_init(&r, mem, b.map_size, &b, why, sizeof(why)), 0);

#define BAD(field, value) do { \
		l = b; l.field = value; \
		ck_assert_int_eq(lake_ring_init(&r, mem, l.map_size, &l, why, sizeof(why)), -EPROTO); \
		ck_assert(why[0]); \
	} while (0)
	BAD(slot_size, 4096);
	BAD(nslots, 0);
	BAD(nslots, 101);		/* slots would overlap the arena */
	BAD(sq_offset, 0);		/* over the ctrl page */
	BAD(sq_offset, 4098);		/* misaligned */
	BAD(slots_offset, 4096 + 200);	/* over the queue */
	BAD(arena_offset, b.arena_offset - 4096);
	BAD(arena_size, b.arena_size + 4096);
#undef BAD
	/* The mapping is not the size the layout says. */
	ck_assert_int_eq(lake_ring_init(&r, mem, b.map_size - 4096, &b, why, sizeof(why)), -EPROTO);
	ck_assert_int_eq(lake_ring_init(&r, mem, b.map_size + 4096, &b, why, sizeof(why)), -EPROTO);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The client stubs through a ring: liblake's path, minus the socket        */

static struct tchan *ring_t;
static struct lake_srv_conn *ring_conn;
static struct lake_transport ring_transport;
static __u32 ring_next_slot;
static __u64 ring_stage_used;

struct lake_transport *lake_transport_get(void)
{
	return &ring_transport;
}

static int ring_begin(struct lake_transport *tr, struct lake_call *call)
{
	(void)tr;
	call->slot_index = ring_next_slot++ % ring_t->chan.ring.nslots;
	call->slot = (__u8 *)tslot(ring_t, call->slot_index);
	call->seq = ++ring_t->next_seq;
	return LAKE_OK;
}

static int ring_submit(struct lake_transport *tr, struct lake_call *call)
{
	struct lake_serve_stats st;
	unsigned int before = ring_t->nlog;

	(void)tr;
	tqueue(ring_t, call->slot_index);
	tpublish(ring_t);
	if (tserve(ring_t, ring_conn, 0, NULL, &st))
		return LAKE_E_UNAVAILABLE;
	if (ring_t->nlog != before + 1 || ring_t->log[before].slot != call->slot_index ||
	    ring_t->log[before].seq != call->seq)
		return LAKE_E_PROTOCOL;
	return LAKE_OK;
}

static void ring_end(struct lake_transport *tr, struct lake_call *call)
{
	(void)tr;
	(void)call;
}

static bool ring_arena_find(struct lake_transport *tr, const void *p, __u64 len, __u64 *off)
{
	const __u8 *a = ring_t->chan.ring.arena, *b = p;
	__u64 size = ring_t->chan.ring.arena_size;

	(void)tr;
	if (!a || b < a || b >= a + size || len > (__u64)(a + size - b))
		return false;
	*off = (__u64)(b - a);
	return true;
}

/* Staging: a bump allocator over the arena's upper half. */
static void *ring_arena_alloc(struct lake_transport *tr, __u64 len, __u64 *off)
{
	__u64 half = ring_t->chan.ring.arena_size / 2;
	__u64 start = (ring_stage_used + 63) & ~63ull;

	(void)tr;
	if (len > half - start)
		return NULL;
	ring_stage_used = start + len;
	*off = half + start;
	return ring_t->chan.ring.arena + half + start;
}

static void ring_arena_free(struct lake_transport *tr, void *p, __u64 len)
{
	(void)tr;
	(void)p;
	(void)len;
}

static __u32 ring_client_id(struct lake_transport *tr)
{
	(void)tr;
	return 7;
}

static const struct lake_transport_ops ring_ops = {
	.begin = ring_begin,
	.submit = ring_submit,
	.end = ring_end,
	.arena_find = ring_arena_find,
	.arena_alloc = ring_arena_alloc,
	.arena_free = ring_arena_free,
	.client_id = ring_client_id,
};

static void ring_setup(__u64 arena_size, const struct lake_vendors *vendors)
{
	ring_t = tchan_new(8, arena_size);
	ring_conn = lake_srv_conn_new(vendors, ring_t->chan.ring.arena, ring_t->chan.ring.arena_size);
	ck_assert_ptr_nonnull(ring_conn);
	ring_next_slot = 0;
	ring_stage_used = 0;
	lake_transport_init(&ring_transport, &ring_ops);
	lake_fake_reset();
}

static void ring_teardown(void)
{
	lake_srv_conn_free(ring_conn);
	lake_transport_destroy(&ring_transport);
	tchan_free(ring_t);
}

START_TEST(test_stubs_through_ring)
{
	const struct lake_fake_record *rec;
	CUdeviceptr d = 0;
	__u8 *abuf, local[100];
	unsigned int i;

	ring_setup(1 << 20, &lake_fake_vendors);
	ck_assert_int_eq(lake_call_nop(&ring_transport, 0xC00C1E), LAKE_OK);

	ck_assert_int_eq(cuMemAlloc(&d, 4096), CUDA_SUCCESS);
	ck_assert(lake_fake_dev_live(d, 4096));	/* the double's allocator chose it */

	/* An arena buffer crosses as an offset: the vendor gets that very memory. */
	abuf = ring_t->chan.ring.arena + 4096;
	for (i = 0; i < 64; i++)
		abuf[i] = (__u8)(i * 5 + 1);
	lake_fake_reset();
	ck_assert_int_eq(cuMemcpyHtoD(d, abuf, 64), CUDA_SUCCESS);
	rec = lake_fake_find("cuMemcpyHtoD");
	ck_assert_ptr_nonnull(rec);
	ck_assert_ptr_eq(rec->ptr[1], abuf);
	ck_assert_int_eq(memcmp(rec->data[1], abuf, 64), 0);

	/* Other memory is staged: the vendor reads a copy, not the original. */
	for (i = 0; i < sizeof(local); i++)
		local[i] = (__u8)(i ^ 0x5a);
	lake_fake_reset();
	ck_assert_int_eq(cuMemcpyHtoD(d, local, sizeof(local)), CUDA_SUCCESS);
	rec = lake_fake_find("cuMemcpyHtoD");
	ck_assert_ptr_nonnull(rec);
	ck_assert_ptr_ne(rec->ptr[1], local);
	ck_assert_int_eq(memcmp(rec->data[1], local, sizeof(local)), 0);

	/* An error from the vendor comes back as the call's result. */
	lake_fake_result = CUDA_ERROR_OUT_OF_MEMORY;
	ck_assert_int_eq(cuMemAlloc(&d, 1), CUDA_ERROR_OUT_OF_MEMORY);
	lake_fake_result = 0;
	ring_teardown();
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The real libcuda, where there is a GPU                                   */

static bool gpu_skipped;

static double t_gbps(size_t n, double s)
{
	return (double)n / s / 1e9;
}

START_TEST(test_gpu_real_vendor)
{
	const size_t N = 32u << 20;
	struct lake_vendor_state v;
	CUdeviceptr d = 0, leak = 0;
	size_t free0 = 0, total = 0, free1 = 0, free2 = 0;
	__u8 *src, *dst, local[1000], back[1000];
	double t0, reg_s, page_s;
	char name[128];
	int n = 0, dev = -1, drv = 0;
	size_t i;

	lake_vendor_load(&v);
	if (!lake_vendor_gpu_init(&v, true)) {
		fprintf(stderr, "test_lakeD: no usable GPU here: the real-libcuda case is skipped\n");
		gpu_skipped = true;
		return;
	}
	ring_setup(3 * N, &v.vendors);
	ck_assert_msg(lake_vendor_pin(&v, ring_t->chan.ring.arena, ring_t->chan.ring.arena_size,
				      "test arena"), "cuMemHostRegister of a MAP_SHARED arena failed");

	/* Through the stubs, the ring, lake_serve and the dispatch to libcuda. */
	ck_assert_int_eq(cuInit(0), CUDA_SUCCESS);
	ck_assert_int_eq(cuDriverGetVersion(&drv), CUDA_SUCCESS);
	ck_assert_int_gt(drv, 0);
	ck_assert_int_eq(cuDeviceGetCount(&n), CUDA_SUCCESS);
	ck_assert_int_ge(n, 1);
	ck_assert_int_eq(cuDeviceGet(&dev, 0), CUDA_SUCCESS);
	ck_assert_int_eq(cuDeviceGetName(name, sizeof(name), dev), CUDA_SUCCESS);
	ck_assert_int_eq(v.cuda.cuMemGetInfo(&free0, &total), 0);

	ck_assert_int_eq(cuMemAlloc(&d, N), CUDA_SUCCESS);
	src = ring_t->chan.ring.arena;
	dst = ring_t->chan.ring.arena + N;
	for (i = 0; i < N; i++)
		src[i] = (__u8)(i * 131u + 7u);
	memset(dst, 0, N);
	ck_assert_int_eq(cuMemcpyHtoD(d, src, N), CUDA_SUCCESS);	/* warm up */
	t0 = t_now();
	ck_assert_int_eq(cuMemcpyHtoD(d, src, N), CUDA_SUCCESS);
	reg_s = t_now() - t0;
	ck_assert_int_eq(cuMemcpyDtoH(dst, d, N), CUDA_SUCCESS);
	ck_assert_int_eq(memcmp(src, dst, N), 0);

	/* Staged through the slot. */
	for (i = 0; i < sizeof(local); i++)
		local[i] = (__u8)(i * 3u);
	ck_assert_int_eq(cuMemcpyHtoD(d + 100, local, sizeof(local)), CUDA_SUCCESS);
	ck_assert_int_eq(cuMemsetD8(d, 0xAB, 100), CUDA_SUCCESS);
	ck_assert_int_eq(cuMemcpyDtoH(back, d + 100, sizeof(back)), CUDA_SUCCESS);
	ck_assert_int_eq(memcmp(local, back, sizeof(local)), 0);
	ck_assert_int_eq(cuMemcpyDtoH(back, d, 100), CUDA_SUCCESS);
	for (i = 0; i < 100; i++)
		ck_assert_uint_eq(back[i], 0xAB);

	/* The same copy once the arena is pageable again, for comparison. */
	lake_vendor_unpin(&v, ring_t->chan.ring.arena);
	ck_assert_int_eq(cuMemcpyHtoD(d, src, N), CUDA_SUCCESS);
	t0 = t_now();
	ck_assert_int_eq(cuMemcpyHtoD(d, src, N), CUDA_SUCCESS);
	page_s = t_now() - t0;
	fprintf(stderr, "test_lakeD: %s (driver %d): HtoD %zu MiB from the arena through "
		"lake_serve: registered %.1f GB/s, pageable %.1f GB/s\n", name, drv, N >> 20,
		t_gbps(N, reg_s), t_gbps(N, page_s));
	ck_assert_int_eq(cuMemFree(d), CUDA_SUCCESS);

	/* What a client leaves behind, lake_srv_conn_free() frees. */
	ck_assert_int_eq(cuMemAlloc(&leak, 256u << 20), CUDA_SUCCESS);
	ck_assert_int_eq(v.cuda.cuMemGetInfo(&free1, &total), 0);
	ck_assert_uint_lt(free1 + (200u << 20), free0);
	ring_teardown();
	ck_assert_int_eq(v.cuda.cuMemGetInfo(&free2, &total), 0);
	ck_assert_uint_gt(free2 + (16u << 20), free0);
	lake_vendor_unload(&v);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Config                                                                   */

static char *t_tmpfile(const char *text)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/lakeD-test-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

#define ARGV(...)	((char *[]){ "lakeD", __VA_ARGS__, NULL })
#define ARGC(...)	((int)(sizeof((char *[]){ "lakeD", __VA_ARGS__ }) / sizeof(char *)))
#define FROM_ARGS(c, ...) \
	lake_config_from_args(c, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), NULL, err, sizeof(err))

START_TEST(test_config_defaults_and_file)
{
	struct lake_config c;
	char err[600];
	char *path = t_tmpfile(
		"# lakeD settings\n"
		"\n"
		"   device   =   /dev/lake-test   # trailing comment\n"
		"spin_us=7\n"
		"log_level = \"debug\"\n"
		"socket = /run/lake/lakeD.sock\n");

	lake_config_defaults(&c);
	ck_assert_str_eq(c.device, "/dev/lake");
	ck_assert_uint_eq(c.spin_us, 50);
	ck_assert_int_eq(c.log_level, LAKE_LOG_INFO);
	ck_assert(!c.foreground);

	ck_assert_int_eq(lake_config_load_file(&c, path, true, err, sizeof(err)), 0);
	ck_assert_str_eq(c.device, "/dev/lake-test");
	ck_assert_uint_eq(c.spin_us, 7);
	ck_assert_int_eq(c.log_level, LAKE_LOG_DEBUG);
	ck_assert_str_eq(c.socket, "/run/lake/lakeD.sock");
	ck_assert_str_eq(c.config, path);
	unlink(path);

	/* A missing default file is fine; a missing named one is not. */
	lake_config_defaults(&c);
	ck_assert_int_eq(lake_config_load_file(&c, "/nonexistent/lakeD.conf", false, err,
					       sizeof(err)), 0);
	ck_assert_str_eq(c.config, "");
	ck_assert_int_eq(lake_config_load_file(&c, "/nonexistent/lakeD.conf", true, err,
					       sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/lakeD.conf"));
}
END_TEST

static void t_bad_file(const char *text, const char *expect)
{
	struct lake_config c;
	char err[600];
	char *path = t_tmpfile(text);

	lake_config_defaults(&c);
	ck_assert_int_eq(lake_config_load_file(&c, path, true, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, expect), "error '%s' lacks '%s'", err, expect);
	unlink(path);
}

START_TEST(test_config_file_errors)
{
	t_bad_file("device = /dev/lake\ncolour = blue\n", ":2: unknown key 'colour'");
	t_bad_file("spin_us\n", ":1: expected 'key = value'");
	t_bad_file("= 5\n", ":1: expected 'key = value'");
	t_bad_file("spin_us = fast\n", "spin_us: 'fast' is not a number");
	t_bad_file("spin_us = -1\n", "spin_us");
	t_bad_file("spin_us = 2000000\n", "spin_us");
	t_bad_file("log_level = loud\n", "log_level: 'loud'");
	t_bad_file("device =\n", "device: empty path");
}
END_TEST

START_TEST(test_config_args)
{
	struct lake_config c;
	char err[600];
	char cfg[96];
	char *path = t_tmpfile("device = /dev/from-file\nspin_us = 10\nlog_level = warn\n");

	ck_assert_int_eq(FROM_ARGS(&c, "--foreground"), LAKE_CONFIG_OK);
	ck_assert(c.foreground);
	ck_assert_str_eq(c.device, "/dev/lake");

	/* The command line overrides the file, wherever --config appears. */
	snprintf(cfg, sizeof(cfg), "--config=%s", path);
	ck_assert_int_eq(FROM_ARGS(&c, "--spin-us", "0", cfg), LAKE_CONFIG_OK);
	ck_assert_uint_eq(c.spin_us, 0);
	ck_assert_str_eq(c.device, "/dev/from-file");
	ck_assert_int_eq(c.log_level, LAKE_LOG_WARN);
	ck_assert_str_eq(c.config, path);
	ck_assert_int_eq(FROM_ARGS(&c, "-c", path, "-d", "/dev/x", "-l", "debug", "-f"),
			 LAKE_CONFIG_OK);
	ck_assert_str_eq(c.device, "/dev/x");
	ck_assert_uint_eq(c.spin_us, 10);
	ck_assert_int_eq(c.log_level, LAKE_LOG_DEBUG);
	ck_assert(c.foreground);
	ck_assert_int_eq(FROM_ARGS(&c, "--log-level=error", "--device=/dev/y"), LAKE_CONFIG_OK);
	ck_assert_int_eq(c.log_level, LAKE_LOG_ERROR);
	ck_assert_str_eq(c.device, "/dev/y");

	/* The default file is read when it exists, unless --config names another. */
	ck_assert_int_eq(lake_config_from_args(&c, 1, ARGV("x"), path, err, sizeof(err)),
			 LAKE_CONFIG_OK);
	ck_assert_str_eq(c.device, "/dev/from-file");
	ck_assert_int_eq(lake_config_from_args(&c, 1, ARGV("x"), "/nonexistent/lakeD.conf", err,
					       sizeof(err)), LAKE_CONFIG_OK);
	ck_assert_str_eq(c.device, "/dev/lake");

	ck_assert_int_eq(FROM_ARGS(&c, "--help", "--bogus-but-ignored-after-help"),
			 LAKE_CONFIG_ERROR);	/* unknown arguments are errors even so */
	ck_assert_int_eq(FROM_ARGS(&c, "--spin-us", "5", "-h"), LAKE_CONFIG_HELP);
	ck_assert_int_eq(FROM_ARGS(&c, "--version"), LAKE_CONFIG_VERSION);
	ck_assert_int_eq(FROM_ARGS(&c, "-V", "--help"), LAKE_CONFIG_HELP);
	ck_assert_int_eq(FROM_ARGS(&c, "--check"), LAKE_CONFIG_CHECK);
	ck_assert_int_eq(FROM_ARGS(&c, "--fake-verify"), LAKE_CONFIG_OK);
	ck_assert(c.fake_verify);

	ck_assert_int_eq(FROM_ARGS(&c, "--bogus"), LAKE_CONFIG_ERROR);
	ck_assert_ptr_nonnull(strstr(err, "unknown argument '--bogus'"));
	ck_assert_int_eq(FROM_ARGS(&c, "--device"), LAKE_CONFIG_ERROR);
	ck_assert_ptr_nonnull(strstr(err, "needs a value"));
	ck_assert_int_eq(FROM_ARGS(&c, "--foreground=yes"), LAKE_CONFIG_ERROR);
	ck_assert_int_eq(FROM_ARGS(&c, "--spin-us", "1e3"), LAKE_CONFIG_ERROR);
	ck_assert_ptr_nonnull(strstr(err, "--spin-us"));
	ck_assert_int_eq(FROM_ARGS(&c, "--log-level", "verbose"), LAKE_CONFIG_ERROR);
	ck_assert_int_eq(FROM_ARGS(&c, "--config", "/nonexistent/lakeD.conf"), LAKE_CONFIG_ERROR);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/lakeD.conf"));
	ck_assert_int_eq(FROM_ARGS(&c, "stray"), LAKE_CONFIG_ERROR);
	unlink(path);
}
END_TEST

START_TEST(test_config_socket)
{
	struct lake_config c;
	char err[600];
	char *path = t_tmpfile("socket = /tmp/x.sock\nsocket_mode = 0666\n");

	/* Served by default, on the standard path, mode 0660. */
	lake_config_defaults(&c);
	ck_assert_str_eq(c.socket, "/run/lake/lakeD.sock");
	ck_assert_uint_eq(c.socket_mode, 0660);
	ck_assert_int_eq(lake_config_load_file(&c, path, true, err, sizeof(err)), 0);
	ck_assert_str_eq(c.socket, "/tmp/x.sock");
	ck_assert_uint_eq(c.socket_mode, 0666);
	ck_assert_int_eq(FROM_ARGS(&c, "--socket", "/tmp/y.sock", "--socket-mode=600"),
			 LAKE_CONFIG_OK);
	ck_assert_str_eq(c.socket, "/tmp/y.sock");
	ck_assert_uint_eq(c.socket_mode, 0600);
	ck_assert_int_eq(FROM_ARGS(&c, "-s", "/tmp/z.sock"), LAKE_CONFIG_OK);
	ck_assert_str_eq(c.socket, "/tmp/z.sock");
	/* Off: --no-socket, --socket none, socket = off. */
	ck_assert_int_eq(FROM_ARGS(&c, "--no-socket"), LAKE_CONFIG_OK);
	ck_assert_str_eq(c.socket, "");
	ck_assert_int_eq(FROM_ARGS(&c, "--socket", "none"), LAKE_CONFIG_OK);
	ck_assert_str_eq(c.socket, "");
	unlink(path);
	t_bad_file("socket = off\nsocket_mode = 8\n", "socket_mode: '8'");
	t_bad_file("socket =\n", "socket: empty path");
	ck_assert_int_eq(FROM_ARGS(&c, "--socket-mode", "rw"), LAKE_CONFIG_ERROR);
	ck_assert_int_eq(FROM_ARGS(&c, "--no-socket=1"), LAKE_CONFIG_ERROR);
}
END_TEST

START_TEST(test_log_levels)
{
	ck_assert_int_eq(lake_log_level_parse("error"), LAKE_LOG_ERROR);
	ck_assert_int_eq(lake_log_level_parse("warn"), LAKE_LOG_WARN);
	ck_assert_int_eq(lake_log_level_parse("WARNING"), LAKE_LOG_WARN);
	ck_assert_int_eq(lake_log_level_parse("info"), LAKE_LOG_INFO);
	ck_assert_int_eq(lake_log_level_parse("debug"), LAKE_LOG_DEBUG);
	ck_assert_int_eq(lake_log_level_parse(""), -1);
	ck_assert_str_eq(lake_log_level_name(LAKE_LOG_WARN), "warn");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Several serving threads (the kernel channel's)                           */

static double t_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* What the double saw, in order, across serving threads. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char seen[64][32];
static unsigned int nseen;
static unsigned int block_ms;	/* cuCtxSynchronize sleeps this long */

static void see(const char *what)
{
	pthread_mutex_lock(&seen_lock);
	if (nseen < 64)
		snprintf(seen[nseen++], sizeof(seen[0]), "%s", what);
	pthread_mutex_unlock(&seen_lock);
}

static int seen_at(const char *what)
{
	unsigned int i;

	for (i = 0; i < nseen; i++)
		if (!strcmp(seen[i], what))
			return (int)i;
	return -1;
}

static void blocking_hook(const struct lake_fake_record *r)
{
	char what[32];

	if (!strcmp(r->name, "cuCtxSynchronize")) {
		see("sync start");
		usleep(block_ms * 1000);
		see("sync end");
	} else if (!strcmp(r->name, "cuMemsetD8Async")) {
		snprintf(what, sizeof(what), "memset %llu", (unsigned long long)r->scalar[2]);
		see(what);
	}
}

struct t_server {
	struct tchan *t;
	struct lake_srv_conn *c;
	unsigned int threads;
	atomic_int stop;
	struct lake_serve_stats st;
	int rc;
	pthread_t th;
};

static int t_wait_poll(struct tchan *t)
{
	(void)t;
	usleep(200);
	return LAKE_CHAN_AGAIN;
}

static void *t_server_main(void *arg)
{
	struct t_server *s = arg;
	struct lake_serve_opts o = { .spin_us = 50, .stop = &s->stop, .threads = s->threads };

	s->rc = lake_serve(&s->t->chan, s->c, &o, &s->st);
	return NULL;
}

static void t_server_start(struct t_server *s, struct tchan *t, unsigned int threads)
{
	memset(s, 0, sizeof(*s));
	s->t = t;
	s->threads = threads;
	t->chan.lazy_reports = true;	/* as the kernel's channel */
	t->on_wait = t_wait_poll;
	s->c = tconn(t);
	ck_assert_int_eq(pthread_create(&s->th, NULL, t_server_main, s), 0);
}

static void t_server_stop(struct t_server *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->th, NULL);
	ck_assert_int_eq(s->rc, 0);
	lake_srv_conn_free(s->c);
}

static bool t_done(struct tchan *t, __u32 idx, __u32 seq)
{
	return __atomic_load_n(&tslot(t, idx)->done_seq, __ATOMIC_ACQUIRE) == seq;
}

static double t_wait_done(struct tchan *t, __u32 idx, __u32 seq, double t0, int ms)
{
	while (!t_done(t, idx, seq) && t_ms() - t0 < ms)
		usleep(100);
	return t_done(t, idx, seq) ? t_ms() - t0 : -1;
}

static __u32 t_client_cmd(struct tchan *t, __u32 idx, __u32 api, __u32 flags, __u32 client,
			  __u32 args_len)
{
	__u32 seq = tcmd(t, idx, api, flags, args_len);

	tslot(t, idx)->client = client;
	return seq;
}

/* One caller's blocking synchronize does not hold up the others. */
START_TEST(test_pool_blocking_call_does_not_stall)
{
	struct tchan *t = tchan_new(16, 1 << 16);
	__u32 s0, s1, s2;
	struct t_server srv;
	double t0, d1, d2, d0;

	block_ms = 400;
	nseen = 0;
	lake_fake_hook = blocking_hook;
	t_server_start(&srv, t, 4);
	s0 = t_client_cmd(t, 0, LAKE_API_cuCtxSynchronize, 0, 1, sizeof(struct lake_args_cuCtxSynchronize));
	tqueue(t, 0);
	tpublish(t);
	t0 = t_ms();
	while (seen_at("sync start") < 0 && t_ms() - t0 < 2000)
		usleep(100);
	ck_assert_int_ge(seen_at("sync start"), 0);
	s1 = tnop(t, 1, 0, 0xAB);
	tslot(t, 1)->client = 2;
	s2 = t_client_cmd(t, 2, LAKE_API_cuDriverGetVersion, 0, 3,
			  sizeof(struct lake_args_cuDriverGetVersion));
	tslot(t, 2)->present = 1;
	tqueue(t, 1);
	tqueue(t, 2);
	tpublish(t);
	d1 = t_wait_done(t, 1, s1, t0, 2000);
	d2 = t_wait_done(t, 2, s2, t0, 2000);
	d0 = t_wait_done(t, 0, s0, t0, 3000);
	fprintf(stderr, "blocking synchronize: others done after %.1f / %.1f ms, it after %.1f ms\n",
		d1, d2, d0);
	ck_assert_msg(d1 >= 0 && d1 < 200, "a null call waited %.1f ms behind a synchronize", d1);
	ck_assert_msg(d2 >= 0 && d2 < 200, "a query waited %.1f ms behind a synchronize", d2);
	ck_assert_msg(d0 >= 300, "the synchronize took %.1f ms", d0);
	check_nop_reply(t, 1, 0xAB);
	ck_assert_int_eq(tslot(t, 2)->result, 0);
	ck_assert_int_eq(tslot(t, 0)->result, 0);
	t_server_stop(&srv);
	/* Every completion reported once. */
	ck_assert_uint_eq(t->nlog, 3);
	lake_fake_hook = NULL;
	tchan_free(t);
}
END_TEST

/* A calling thread's commands run in order, one at a time, even when its
 * synchronize is still running (an abandoned call); others go on. */
START_TEST(test_pool_order_per_calling_thread)
{
	struct tchan *t = tchan_new(16, 1 << 16);
	__u32 seqs[5], i, clients[5] = { 1, 1, 1, 2, 2 };
	struct t_server srv;
	double t0;

	block_ms = 300;
	nseen = 0;
	lake_fake_hook = blocking_hook;
	t_server_start(&srv, t, 4);
	ck_assert_int_eq(lake_srv_range_add(srv.c, LAKE_RT_CUdeviceptr, 0x100000, 4096, 0, false), 0);
	seqs[0] = t_client_cmd(t, 0, LAKE_API_cuCtxSynchronize, 0, 1,
			       sizeof(struct lake_args_cuCtxSynchronize));
	for (i = 1; i < 5; i++) {
		struct lake_args_cuMemsetD8Async *a;

		seqs[i] = t_client_cmd(t, i, LAKE_API_cuMemsetD8Async, LAKE_MSG_ASYNC, clients[i],
				       sizeof(*a));
		a = (void *)((__u8 *)tslot(t, i) + LAKE_ARGS_OFFSET);
		a->dstDevice = 0x100000;
		a->N = i;	/* tells them apart in the double */
	}
	for (i = 0; i < 5; i++)
		tqueue(t, i);
	tpublish(t);
	t0 = t_ms();
	for (i = 0; i < 5; i++)
		ck_assert(t_wait_done(t, i, seqs[i], t0, 3000) >= 0);
	t_server_stop(&srv);
	for (i = 0; i < nseen; i++)
		fprintf(stderr, "  %u: %s\n", i, seen[i]);
	/* Client 2's went on during the synchronize... */
	ck_assert_int_lt(seen_at("memset 3"), seen_at("sync end"));
	ck_assert_int_lt(seen_at("memset 3"), seen_at("memset 4"));
	/* ...client 1's waited for it, and kept their order. */
	ck_assert_int_gt(seen_at("memset 1"), seen_at("sync end"));
	ck_assert_int_gt(seen_at("memset 2"), seen_at("memset 1"));
	lake_fake_hook = NULL;
	tchan_free(t);
}
END_TEST

/*
 * The kernel's channel under load, as lake.ko sees it: callers own slots,
 * publish under a lock, spin on done_seq, and only a report frees a slot;
 * complete() refuses (and counts) a report for a slot not in flight with that
 * sequence number, as lake.ko does.  Some synchronous commands block for a
 * few milliseconds (the queue is taken over meanwhile): every command must be
 * run and reported exactly once.
 */
#define K_CALLERS	8
#define K_SLOTS		16	/* two per caller */

struct kmock {
	struct lake_chan chan;
	void *mem;
	size_t size;
	pthread_mutex_t lock;
	__u32 tail, seq;
	__u32 inflight[K_SLOTS];	/* the seq in flight, 0: none */
	bool reported[K_SLOTS];
	unsigned int bad, reports;
	atomic_int stop;
};

static struct kmock *kmock_of(struct lake_chan *ch)
{
	return (struct kmock *)((char *)ch - offsetof(struct kmock, chan));
}

static int k_complete(struct lake_chan *ch, struct lake_completion *done, unsigned int n)
{
	struct kmock *k = kmock_of(ch);
	unsigned int i;

	pthread_mutex_lock(&k->lock);
	for (i = 0; i < n; i++) {
		__u32 sl = done[i].slot;

		if (sl >= K_SLOTS || !k->inflight[sl] || k->inflight[sl] != done[i].seq ||
		    k->reported[sl]) {
			k->bad++;
			continue;
		}
		k->reported[sl] = true;
		k->reports++;
	}
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static int k_wait(struct lake_chan *ch)
{
	struct kmock *k = kmock_of(ch);

	usleep(50);
	return atomic_load(&k->stop) ? LAKE_CHAN_STOP : LAKE_CHAN_AGAIN;
}

static const struct lake_chan_ops k_ops = { .complete = k_complete, .wait = k_wait };

static unsigned int k_slow_every;

static void k_slow_hook(const struct lake_fake_record *r)
{
	static atomic_uint n;

	if (!strcmp(r->name, "cuCtxSynchronize") && !(atomic_fetch_add(&n, 1) % k_slow_every))
		usleep(20000);	/* blocks: another serving thread takes the queue over */
}

struct k_caller {
	struct kmock *k;
	unsigned int id, done;
	int errors;
};

static void *k_caller_main(void *arg)
{
	struct k_caller *c = arg;
	struct kmock *k = c->k;
	unsigned int i;

	for (i = 0; i < 3000; i++) {
		__u32 sl = c->id * 2 + (i & 1), seq, api;
		struct lake_msg_hdr *h = (struct lake_msg_hdr *)(k->chan.ring.slots + (size_t)sl * LAKE_SLOT_SIZE);
		bool async = (i % 5) != 0 && (i % 5) != 4;	/* mostly async, some null calls */

		/* The slot is ours again once its last command was reported. */
		for (;;) {
			bool free;

			pthread_mutex_lock(&k->lock);
			free = !k->inflight[sl] || k->reported[sl];
			pthread_mutex_unlock(&k->lock);
			if (free)
				break;
			usleep(10);
		}
		memset(h, 0, LAKE_ARGS_OFFSET + 64);
		api = async ? LAKE_API_cuMemsetD8Async : (i % 5 == 0) ? LAKE_API_cuCtxSynchronize :
		      LAKE_API_NOP;
		h->api = api;
		h->flags = async ? LAKE_MSG_ASYNC : 0;
		h->client = 100 + c->id;
		if (async) {
			struct lake_args_cuMemsetD8Async *a = (void *)((__u8 *)h + LAKE_ARGS_OFFSET);

			a->dstDevice = 0x100000;
			a->N = 16;
			h->args_len = sizeof(*a);
		} else {
			h->args_len = api == LAKE_API_NOP ? sizeof(struct lake_nop) : 8;
		}
		pthread_mutex_lock(&k->lock);
		seq = ++k->seq;
		h->seq = seq;
		k->inflight[sl] = seq;
		k->reported[sl] = false;
		k->chan.ring.sq[k->tail % K_SLOTS] = sl;
		__atomic_store_n(&k->chan.ring.ctrl->sq_tail, ++k->tail, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&k->lock);
		if (async)
			continue;
		while (__atomic_load_n(&h->done_seq, __ATOMIC_ACQUIRE) != seq)
			;
		if (__atomic_load_n(&h->result, __ATOMIC_RELAXED))
			c->errors++;
		c->done++;
	}
	return NULL;
}

struct k_server {
	struct kmock *k;
	struct lake_srv_conn *c;
	struct lake_serve_opts *o;
	int rc;
};

static void *k_serve_main(void *arg)
{
	struct k_server *ks = arg;

	ks->rc = lake_serve(&ks->k->chan, ks->c, ks->o, NULL);
	return NULL;
}

START_TEST(test_pool_kernel_load_reports_once)
{
	struct k_caller callers[K_CALLERS];
	struct lake_serve_opts o = { .spin_us = 50, .threads = 4 };
	struct kmock *k = calloc(1, sizeof(*k));
	pthread_t th[K_CALLERS], sth;
	struct k_server ks;
	struct lake_attach l;
	char why[128];
	unsigned int i;

	ck_assert_ptr_nonnull(k);
	ck_assert_int_eq(lake_ring_layout(K_SLOTS, 1 << 16, &l), 0);
	k->size = l.map_size;
	k->mem = mmap(NULL, k->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(k->mem != MAP_FAILED);
	ck_assert_int_eq(lake_ring_init(&k->chan.ring, k->mem, k->size, &l, why, sizeof(why)), 0);
	pthread_mutex_init(&k->lock, NULL);
	k->chan.name = "kernel-like ring";
	k->chan.ops = &k_ops;
	k->chan.lazy_reports = true;
	k_slow_every = 10;
	lake_fake_hook = k_slow_hook;
	o.stop = &k->stop;
	ks.k = k;
	ks.o = &o;
	ks.rc = 0;
	ks.c = lake_srv_conn_new(&lake_fake_vendors, k->chan.ring.arena, k->chan.ring.arena_size);
	ck_assert_int_eq(lake_srv_range_add(ks.c, LAKE_RT_CUdeviceptr, 0x100000, 4096, 0, false), 0);
	ck_assert_int_eq(pthread_create(&sth, NULL, k_serve_main, &ks), 0);
	for (i = 0; i < K_CALLERS; i++) {
		callers[i].k = k;
		callers[i].id = i;
		callers[i].done = 0;
		callers[i].errors = 0;
		pthread_create(&th[i], NULL, k_caller_main, &callers[i]);
	}
	for (i = 0; i < K_CALLERS; i++)
		pthread_join(th[i], NULL);
	usleep(200000);	/* the last async commands are reported when idle */
	atomic_store(&k->stop, 1);
	pthread_join(sth, NULL);
	ck_assert_int_eq(ks.rc, 0);
	for (i = 0; i < K_CALLERS; i++) {
		ck_assert_int_eq(callers[i].errors, 0);
		ck_assert_uint_eq(callers[i].done, 1200);	/* the synchronous ones */
	}
	ck_assert_msg(k->bad == 0, "%u completions reported twice or for a slot not in flight", k->bad);
	ck_assert_uint_eq(k->reports, K_CALLERS * 3000);
	lake_fake_hook = NULL;
	lake_srv_conn_free(ks.c);
	munmap(k->mem, k->size);
	free(k);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* A client that rewrites what it sent while lakeD works on it              */

/* Serves the command in slot 0 (sequence number @seq); returns its result. */
static int tserve_one(struct tchan *t, struct lake_srv_conn *c, __u32 seq)
{
	struct lake_serve_stats st;

	tqueue(t, 0);
	tpublish(t);
	ck_assert_int_eq(tserve(t, c, 0, NULL, &st), 0);
	ck_assert_uint_eq(tslot(t, 0)->done_seq, seq);
	return tslot(t, 0)->result;
}

static struct tchan *toctou_t;
static __u8 toctou_pattern[64];
static int toctou_checked;

/* In the vendor: the client flips its image's only byte to a non-NUL (the
 * arena ends right after it), then the vendor parses what it was given. */
static const char *toctou_loader;

static void image_hook(const struct lake_fake_record *r)
{
	__u8 *last = toctou_t->chan.ring.arena + toctou_t->chan.ring.arena_size - 1;

	if (strcmp(r->name, toctou_loader))
		return;
	*last = 'A';
	ck_assert_ptr_ne(r->ptr[1], last);	/* not the client's memory... */
	ck_assert_uint_eq(strlen(r->ptr[1]), 0);	/* ...and what was checked */
	toctou_checked++;
}

/* Both loaders: cuModuleLoadData's image, and cuModuleLoad's file, which the
 * caller read and sent as a buffer of the same kind. */
_Static_assert(sizeof(struct lake_args_cuModuleLoadData) == sizeof(struct lake_buf_ref) &&
	       sizeof(struct lake_args_cuModuleLoad) == sizeof(struct lake_buf_ref),
	       "a module load's arguments are its image");

START_TEST(test_image_copied_before_use)
{
	static const struct { __u32 api; const char *name; } loaders[] = {
		{ LAKE_API_cuModuleLoadData, "cuModuleLoadData" },
		{ LAKE_API_cuModuleLoad, "cuModuleLoad" },
	};
	struct tchan *t = tchan_new(4, 1 << 16);
	struct lake_buf_ref *img;
	struct lake_srv_conn *c = tconn(t);
	unsigned int i;
	__u32 seq;

	toctou_t = t;
	lake_fake_hook = image_hook;
	for (i = 0; i < 2; i++) {
		toctou_checked = 0;
		toctou_loader = loaders[i].name;
		/* A one-byte PTX image ("\0") in the arena's very last byte. */
		t->chan.ring.arena[t->chan.ring.arena_size - 1] = 0;
		seq = tcmd(t, 0, loaders[i].api, 0, sizeof(*img));
		img = (void *)((__u8 *)tslot(t, 0) + LAKE_ARGS_OFFSET);
		img->where = LAKE_BUF_ARENA;
		img->off = t->chan.ring.arena_size - 1;
		img->len = 1;
		ck_assert_int_eq(tserve_one(t, c, seq), 0);
		ck_assert_int_eq(toctou_checked, 1);
		/* Mutated before the check: refused, never parsed. */
		seq = tcmd(t, 0, loaders[i].api, 0, sizeof(*img));
		img->where = LAKE_BUF_ARENA;
		img->off = t->chan.ring.arena_size - 1;
		img->len = 1;
		ck_assert_int_eq(tserve_one(t, c, seq), CUDA_ERROR_INVALID_VALUE);
		ck_assert_int_eq(toctou_checked, 1);
	}
	lake_fake_hook = NULL;
	lake_srv_conn_free(c);
	tchan_free(t);
}
END_TEST

/* In the vendor: the client rewrites the parameter buffer it passed through
 * cuLaunchKernel's extra (in its arena, where it stays writable). */
#define EXTRA_PARAM	10	/* cuLaunchKernel's extra, in the fake's record */

static void extra_hook(const struct lake_fake_record *r)
{
	__u8 *mine = toctou_t->chan.ring.arena;

	if (strcmp(r->name, "cuLaunchKernel"))
		return;
	memset(mine, 0xEE, 64);
	/* The fake records the buffer of a well-formed list
	 * (BUFFER_POINTER, p, BUFFER_SIZE, &size, END) as p and size. */
	ck_assert_uint_eq(r->len[EXTRA_PARAM], 40);
	ck_assert_ptr_ne(r->ptr[EXTRA_PARAM], mine);	/* not the client's memory... */
	ck_assert_int_eq(memcmp(r->ptr[EXTRA_PARAM], toctou_pattern, 40), 0);	/* ...what it sent */
	toctou_checked++;
}

START_TEST(test_extra_copied_before_use)
{
	struct tchan *t = tchan_new(4, 1 << 16);
	struct lake_args_cuLaunchKernel *a;
	struct lake_srv_conn *c = tconn(t);
	__u64 func;
	unsigned int i;
	__u32 seq;

	toctou_t = t;
	toctou_checked = 0;
	lake_fake_hook = extra_hook;
	ck_assert_int_eq(lake_srv_handle_add(c, LAKE_RT_CUfunction, (void *)0xF00Dull, 0, false,
					     &func), 0);
	for (i = 0; i < 40; i++)
		toctou_pattern[i] = (__u8)(i * 5 + 2);
	memcpy(t->chan.ring.arena, toctou_pattern, 40);
	seq = tcmd(t, 0, LAKE_API_cuLaunchKernel, 0, sizeof(*a));
	a = (void *)((__u8 *)tslot(t, 0) + LAKE_ARGS_OFFSET);
	a->f = func;
	a->gridDimX = a->gridDimY = a->gridDimZ = 1;
	a->blockDimX = a->blockDimY = a->blockDimZ = 1;
	a->kernelParams.where = LAKE_BUF_NULL;
	a->extra.where = LAKE_BUF_ARENA;
	a->extra.off = 0;
	a->extra.len = 40;
	ck_assert_int_eq(tserve_one(t, c, seq), 0);
	ck_assert_int_eq(toctou_checked, 1);
	ck_assert_uint_eq(lake_fake_find("cuLaunchKernel")->scalar[0], 0xF00Dull);
	/* More than a parameter buffer can hold: refused, the vendor not called. */
	seq = tcmd(t, 0, LAKE_API_cuLaunchKernel, 0, sizeof(*a));
	a->f = func;
	a->extra.where = LAKE_BUF_ARENA;
	a->extra.off = 0;
	a->extra.len = LAKE_KPARAMS_MAX_SIZE + 1;
	ck_assert_int_eq(tserve_one(t, c, seq), CUDA_ERROR_INVALID_VALUE);
	ck_assert_int_eq(toctou_checked, 1);
	lake_fake_hook = NULL;
	lake_srv_conn_free(c);
	tchan_free(t);
}
END_TEST

/* In the vendor: the client rewrites the staged bytes and the byte count. */
static void slot_hook(const struct lake_fake_record *r)
{
	struct lake_msg_hdr *h = tslot(toctou_t, 0);
	struct lake_args_cuMemcpyHtoD *a = (void *)((__u8 *)h + LAKE_ARGS_OFFSET);

	if (strcmp(r->name, "cuMemcpyHtoD"))
		return;
	memset((__u8 *)h + a->srcHost.off, 0xEE, 64);
	a->ByteCount = 1 << 20;
	h->args_len = 16;
	ck_assert_int_eq(memcmp(r->ptr[1], toctou_pattern, 64), 0);	/* what was checked */
	ck_assert_uint_eq(r->scalar[2], 64);
	toctou_checked++;
}

START_TEST(test_slot_copied_before_use)
{
	struct tchan *t = tchan_new(4, 1 << 16);
	struct lake_args_cuMemcpyHtoD *a;
	struct lake_srv_conn *c = tconn(t);
	unsigned int i;
	__u32 seq;

	toctou_t = t;
	toctou_checked = 0;
	lake_fake_hook = slot_hook;
	ck_assert_int_eq(lake_srv_range_add(c, LAKE_RT_CUdeviceptr, 0x100000, 4096, 0, false), 0);
	seq = tcmd(t, 0, LAKE_API_cuMemcpyHtoD, 0, sizeof(*a) + 64);
	a = (void *)((__u8 *)tslot(t, 0) + LAKE_ARGS_OFFSET);
	a->dstDevice = 0x100000;
	a->srcHost.where = LAKE_BUF_SLOT;
	a->srcHost.off = LAKE_ARGS_OFFSET + sizeof(*a);
	a->srcHost.len = 64;
	a->ByteCount = 64;
	for (i = 0; i < 64; i++)
		toctou_pattern[i] = (__u8)(i * 3 + 1);
	memcpy((__u8 *)tslot(t, 0) + a->srcHost.off, toctou_pattern, 64);
	ck_assert_int_eq(tserve_one(t, c, seq), 0);
	ck_assert_int_eq(toctou_checked, 1);
	lake_fake_hook = NULL;
	lake_srv_conn_free(c);
	tchan_free(t);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Per-thread state: bounded, O(1); children die with their parent          */

static int raw_call(struct lake_srv_conn *c, __u8 *slot, __u32 api, __u32 flags, __u32 client,
		    const void *args, __u32 len)
{
	struct lake_msg_hdr *h = (struct lake_msg_hdr *)slot;

	memset(h, 0, sizeof(*h));
	h->api = api;
	h->flags = flags;
	h->client = client;
	h->args_len = len;
	memcpy(slot + LAKE_ARGS_OFFSET, args, len);
	lake_srv_process(c, slot);
	return h->result;
}

START_TEST(test_thread_states_bounded)
{
	static __u8 slot[LAKE_SLOT_SIZE] __attribute__((aligned(64)));
	struct lake_args_cuMemsetD8Async bad = { .dstDevice = 0xBAD000, .N = 16 };
	struct lake_args_cuCtxSynchronize sync = { 0 };
	struct lake_srv_conn *c = lake_srv_conn_new(&lake_fake_vendors, NULL, 0);
	struct lake_srv_conn_stats st;
	struct lake_nop gone = { 0 };
	__u32 i, n = 100000;

	ck_assert_ptr_nonnull(c);
	for (i = 1; i <= n; i++)	/* each calling thread gets a deferred error */
		ck_assert_int_eq(raw_call(c, slot, LAKE_API_cuMemsetD8Async, LAKE_MSG_ASYNC, i,
					  &bad, sizeof(bad)), CUDA_ERROR_INVALID_VALUE);
	lake_srv_conn_stats(c, &st);
	ck_assert_uint_eq(st.threads, LAKE_SRV_DEFAULT_MAX_THREADS);
	ck_assert_uint_eq(st.threads_evicted, n - LAKE_SRV_DEFAULT_MAX_THREADS);
	ck_assert_uint_eq(st.deferred_dropped, n - LAKE_SRV_DEFAULT_MAX_THREADS);
	/* The newest keep theirs; the oldest lost theirs (and said so above). */
	ck_assert_int_eq(raw_call(c, slot, LAKE_API_cuCtxSynchronize, 0, n, &sync, sizeof(sync)),
			 CUDA_ERROR_INVALID_VALUE);
	ck_assert_int_eq(raw_call(c, slot, LAKE_API_cuCtxSynchronize, 0, n, &sync, sizeof(sync)), 0);
	ck_assert_int_eq(raw_call(c, slot, LAKE_API_cuCtxSynchronize, 0, 1, &sync, sizeof(sync)), 0);
	/* A thread that says it is gone leaves nothing behind. */
	ck_assert_int_eq(raw_call(c, slot, LAKE_API_NOP, LAKE_MSG_THREAD_GONE, n - 1, &gone,
				  sizeof(gone)), 0);
	ck_assert_int_eq(raw_call(c, slot, LAKE_API_cuCtxSynchronize, 0, n - 1, &sync, sizeof(sync)), 0);
	lake_srv_conn_stats(c, &st);
	ck_assert_uint_eq(st.threads, LAKE_SRV_DEFAULT_MAX_THREADS - 2);
	lake_srv_conn_free(c);
}
END_TEST

START_TEST(test_children_die_with_parent)
{
	struct lake_srv_conn *c = lake_srv_conn_new(&lake_fake_vendors, NULL, 0);
	__u64 mod, tok;
	__u32 i;

	ck_assert_int_eq(lake_srv_handle_add(c, LAKE_RT_CUmodule, (void *)0x1000, 0, true, &mod), 0);
	for (i = 0; i < 20000; i++)
		ck_assert_int_eq(lake_srv_handle_add(c, LAKE_RT_CUfunction,
						     (void *)(uintptr_t)(0x100000 + i), mod, false,
						     &tok), 0);
	ck_assert_int_eq(lake_srv_range_add(c, LAKE_RT_CUdeviceptr, 0x9000000, 64, mod, false), 0);
	ck_assert_uint_eq(lake_srv_res_count(c, LAKE_RT_CUfunction), 20000);
	ck_assert_int_eq(lake_srv_range_check(c, 0x9000000, 64), 0);
	lake_srv_handle_del(c, mod);
	ck_assert_uint_eq(lake_srv_res_count(c, LAKE_RT_NONE), 0);
	ck_assert_int_ne(lake_srv_range_check(c, 0x9000000, 1), 0);
	lake_srv_conn_free(c);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *lakeD_suite(void)
{
	Suite *s = suite_create("lakeD");
	TCase *serve = tcase_create("serve");
	TCase *ring = tcase_create("ring");
	TCase *stubs = tcase_create("stubs");
	TCase *config = tcase_create("config");

	tcase_set_timeout(serve, 120);	/* the pool's load test, on a loaded machine */
	tcase_add_test(serve, test_serve_sync_nops);
	tcase_add_test(serve, test_serve_async_batched);
	tcase_add_test(serve, test_serve_mixed_batches);
	tcase_add_test(serve, test_serve_bad_index);
	tcase_add_test(serve, test_serve_vendor_call);
	tcase_add_test(serve, test_serve_counter_wrap);
	tcase_add_test(serve, test_serve_wakeups);
	tcase_add_test(serve, test_serve_stop_and_errors);
	tcase_add_test(serve, test_serve_spins_before_sleeping);
	tcase_add_test(serve, test_serve_spin_catches_command);
	tcase_add_test(serve, test_pool_blocking_call_does_not_stall);
	tcase_add_test(serve, test_pool_order_per_calling_thread);
	tcase_add_test(serve, test_pool_kernel_load_reports_once);
	tcase_add_test(serve, test_image_copied_before_use);
	tcase_add_test(serve, test_extra_copied_before_use);
	tcase_add_test(serve, test_slot_copied_before_use);
	tcase_add_test(serve, test_thread_states_bounded);
	tcase_add_test(serve, test_children_die_with_parent);
	tcase_add_test(ring, test_ring_layouts);
	tcase_add_test(stubs, test_stubs_through_ring);
	tcase_add_test(config, test_config_defaults_and_file);
	tcase_add_test(config, test_config_file_errors);
	tcase_add_test(config, test_config_args);
	tcase_add_test(config, test_config_socket);
	tcase_add_test(config, test_log_levels);
	suite_add_tcase(s, serve);
	suite_add_tcase(s, ring);
	suite_add_tcase(s, stubs);
	suite_add_tcase(s, config);
	return s;
}

static Suite *gpu_suite(void)
{
	Suite *s = suite_create("lakeD-gpu");
	TCase *gpu = tcase_create("gpu");

	tcase_set_timeout(gpu, 120);
	tcase_add_test(gpu, test_gpu_real_vendor);
	suite_add_tcase(s, gpu);
	return s;
}

int main(void)
{
	const char *only = getenv("LAKE_TEST_GPU_ONLY");
	bool gpu_only = only && *only && strcmp(only, "0");
	SRunner *sr;
	int failed;

	lake_log_init("test_lakeD");
	lake_log_level = LAKE_LOG_WARN;
	if (gpu_only) {
		sr = srunner_create(gpu_suite());
		/* In-process, to learn whether it skipped (and CUDA dislikes fork). */
		srunner_set_fork_status(sr, CK_NOFORK);
	} else {
		sr = srunner_create(lakeD_suite());
		srunner_add_suite(sr, gpu_suite());
	}
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (failed)
		return EXIT_FAILURE;
	return gpu_only && gpu_skipped ? 77 : EXIT_SUCCESS;
}
