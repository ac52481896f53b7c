// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * fuzz_kchan: a daemon that answers lake.ko with random and mutated replies,
 * for the fuzzing of the kernel channel (test/vm/fuzz-kchan.sh, CTest
 * vm_fuzz_kchan).
 *
 *   fuzz_kchan SECONDS [SEED]
 *
 * Attaches to /dev/lake, maps the region and, for SECONDS, answers every
 * command the kernel publishes in one of many ways: a plausible reply with
 * random outputs (kernel-parameter layouts, counts and handles included),
 * random results and reply lengths, a header scribbled over, a completion
 * with the right, a wrong or a random slot and sequence number, twice, late
 * or never, the fast path's done_seq with or without a report, garbage
 * batches of completions, a runaway consumer index, other slots' headers.  Kernel callers
 * (lake_selftest's "fuzz" command) call every function meanwhile.  What is
 * judged is the kernel: no oops, WARN or lockup (the harness), every caller
 * returns, and nothing is left in flight once this daemon is gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/lake.h>
#include "lake_proto_gen.h"

#define OUTS_SIZE(id, name, spec) [id] = LAKE_OUTS_SIZE_##name,
static const uint32_t outs_size[LAKE_API_MAX + 1] = { LAKE_FOR_EACH_API(OUTS_SIZE) };

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned int pct(void)
{
	return (unsigned int)(rnd() % 100);
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static int fd;
static struct lake_attach att;
static uint8_t *map;
static struct lake_ring_ctrl *ctrl;
static uint32_t *sq;
static uint32_t head;

/* Completions owed in a later batch; and late ones, due at a time (after
 * their callers gave up, mostly).  A few are never sent: their slots stay
 * in flight until this daemon goes. */
static struct lake_completion later[4096];
static unsigned int nlater;
static struct {
	struct lake_completion c;
	uint64_t due;
} late[256];
static unsigned int nlate, never;
#define NEVER_MAX	4

static struct {
	unsigned long commands, replies, completions, refused, deferred, dropped, garbage;
} st;

static struct lake_msg_hdr *hdr_of(uint32_t slot)
{
	return (struct lake_msg_hdr *)(map + att.slots_offset + (size_t)slot * LAKE_SLOT_SIZE);
}

static void fill_random(void *p, size_t n)
{
	uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
}

static void complete(struct lake_completion *c, unsigned int n)
{
	struct lake_complete req = { .count = n, .entries = (uintptr_t)c };

	if (ioctl(fd, LAKE_IOC_COMPLETE, &req) < 0)
		st.refused++;
	st.completions += n;
}

/* Outputs that are random but often near the truth: layouts that look
 * plausible, counts just above or far above what was asked. */
static void plausible_outputs(uint32_t slot, struct lake_msg_hdr *h)
{
	uint8_t *o = (uint8_t *)h + LAKE_OUTS_OFFSET;
	uint32_t n = h->api <= LAKE_API_MAX ? outs_size[h->api] : 0;

	fill_random(o, n);
	if (h->api == LAKE_API_cuModuleGetFunction && pct() < 70) {
		struct lake_outs_cuModuleGetFunction *g = (void *)o;
		unsigned int i, count = (unsigned int)(rnd() % 9);

		memset(&g->hfunc_layout, 0, sizeof(g->hfunc_layout));
		g->hfunc_layout.count = pct() < 10 ? (uint32_t)rnd() : count;
		for (i = 0; i < count; i++) {
			g->hfunc_layout.offset[i] = (uint16_t)(8 * i);
			g->hfunc_layout.psize[i] = pct() < 70 ? (i == 1 ? 4 : 8) : (uint16_t)rnd();
		}
		g->hfunc_layout.size = pct() < 70 ? 8 * count : (uint32_t)rnd();
		g->hfunc = pct() < 50 ? rnd() % 8 + 1 : rnd();	/* a few handles, reused */
	}
	if (h->api == LAKE_API_nvmlDeviceGetComputeRunningProcesses) {
		struct lake_outs_nvmlDeviceGetComputeRunningProcesses *p = (void *)o;

		p->infoCount = pct() < 50 ? (uint32_t)(rnd() % 8) : (uint32_t)rnd();
	}
	/* Scribble over the arguments' tail too (staged outputs live there). */
	if (pct() < 50) {
		uint32_t len = h->args_len < LAKE_ARGS_MAX ? h->args_len : LAKE_ARGS_MAX;

		fill_random((uint8_t *)h + LAKE_ARGS_OFFSET, len);
	}
	(void)slot;
}

static void answer(uint32_t slot)
{
	struct lake_msg_hdr *h = hdr_of(slot);
	struct lake_completion c = { .slot = slot, .seq = h->seq };
	unsigned int p = pct();

	st.commands++;
	if (p < 8) {			/* no reply in time: the caller gives up */
		st.dropped++;
		if (never < NEVER_MAX && pct() < 10) {
			never++;	/* ... for good */
		} else if (nlate < sizeof(late) / sizeof(late[0])) {
			late[nlate].c = c;
			late[nlate++].due = now_ms() + rnd() % 600;
		}
		return;
	}
	plausible_outputs(slot, h);
	h->result = pct() < 60 ? 0 : pct() < 50 ? (int32_t)(rnd() % 1000) : (int32_t)rnd();
	h->reply_len = pct() < 85 && h->api <= LAKE_API_MAX ? outs_size[h->api] :
		       (uint32_t)(rnd() % (LAKE_SLOT_SIZE * 2));
	if (h->api == LAKE_API_NOP && pct() < 85) {
		memcpy((uint8_t *)h + LAKE_OUTS_OFFSET, (uint8_t *)h + LAKE_ARGS_OFFSET,
		       sizeof(struct lake_nop));
		h->reply_len = sizeof(struct lake_nop);
	}
	if (pct() < 10)
		fill_random(h, sizeof(*h));	/* the whole header, done_seq included */
	else if (pct() < 10)
		h->seq = (uint32_t)rnd();
	st.replies++;
	if (pct() < 50)
		__atomic_store_n(&h->done_seq, c.seq, __ATOMIC_RELEASE);	/* the fast path */
	p = pct();
	if (p < 75) {
		complete(&c, 1);
		if (pct() < 5)
			complete(&c, 1);	/* twice */
	} else if (p < 85 && nlater < sizeof(later) / sizeof(later[0])) {
		later[nlater++] = c;		/* in a later batch */
		st.deferred++;
	} else if (p < 90) {
		c.seq ^= (uint32_t)rnd() | 1;	/* a wrong one, then the right one */
		complete(&c, 1);
		c.seq = hdr_of(slot)->seq;
		later[nlater < sizeof(later) / sizeof(later[0]) ? nlater++ : 0] = c;
	} else {
		c.slot = (uint32_t)(pct() < 50 ? rnd() % att.nslots : rnd());
		complete(&c, 1);		/* someone else's */
		c.slot = slot;
		if (nlater < sizeof(later) / sizeof(later[0]))
			later[nlater++] = c;
	}
}

static void garbage(void)
{
	struct lake_completion c[64];
	unsigned int n = 1 + (unsigned int)(rnd() % 64), i;

	st.garbage++;
	for (i = 0; i < n; i++) {
		c[i].slot = (uint32_t)(pct() < 70 ? rnd() % att.nslots : rnd());
		c[i].seq = (uint32_t)rnd();
		c[i].status = 0;
		c[i].reserved = pct() < 90 ? 0 : (uint32_t)rnd();
	}
	complete(c, n);
	if (pct() < 5) {
		/* Another slot's header, all but its sequence number (without
		 * which this daemon could never complete it). */
		struct lake_msg_hdr *h = hdr_of((uint32_t)(rnd() % att.nslots));
		uint32_t seq = h->seq;

		fill_random(h, sizeof(*h));
		h->seq = seq;
	}
}

int main(int argc, char **argv)
{
	uint64_t end, seconds, next_garbage;
	unsigned int i;

	if (argc < 2 || (seconds = strtoull(argv[1], NULL, 10)) == 0 || seconds > 3600) {
		fprintf(stderr, "usage: fuzz_kchan SECONDS [SEED]\n");
		return 2;
	}
	rng = argc > 2 ? strtoull(argv[2], NULL, 0) : (uint64_t)time(NULL);
	if (!rng)
		rng = 1;
	printf("fuzz_kchan: %llu s, seed %#llx\n", (unsigned long long)seconds,
	       (unsigned long long)rng);
	fd = open("/dev/lake", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		perror("fuzz_kchan: /dev/lake");
		return 1;
	}
	att.version = LAKE_PROTO_VERSION;
	att.spec_hash = LAKE_SPEC_HASH;
	if (ioctl(fd, LAKE_IOC_ATTACH, &att) < 0) {
		perror("fuzz_kchan: attach");
		return 1;
	}
	map = mmap(NULL, att.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		perror("fuzz_kchan: mmap");
		return 1;
	}
	ctrl = (struct lake_ring_ctrl *)map;
	sq = (uint32_t *)(map + att.sq_offset);
	fflush(stdout);
	end = now_ms() + seconds * 1000;
	next_garbage = now_ms();
	while (now_ms() < end) {
		uint32_t tail = __atomic_load_n(&ctrl->sq_tail, __ATOMIC_ACQUIRE);
		struct pollfd p = { .fd = fd, .events = POLLIN };

		/* The kernel keeps its own producer index: a scribbled tail only
		 * makes us see entries that are not there. */
		while (head != tail && tail - head <= att.nslots) {
			uint32_t slot = sq[head % att.nslots];

			head++;
			__atomic_store_n(&ctrl->sq_head, pct() < 2 ? (uint32_t)rnd() : head,
					 __ATOMIC_RELEASE);
			if (slot < att.nslots)
				answer(slot);
		}
		if (head != tail && tail - head > att.nslots)
			head = tail;
		if (nlater && pct() < 30) {
			complete(later, nlater);
			nlater = 0;
		}
		for (i = 0; i < nlate; ) {
			if (now_ms() >= late[i].due) {
				complete(&late[i].c, 1);
				late[i] = late[--nlate];
			} else {
				i++;
			}
		}
		if (now_ms() >= next_garbage) {	/* a garbage batch every ~20 ms */
			garbage();
			next_garbage = now_ms() + 1 + rnd() % 40;
		}
		poll(&p, 1, pct() < 50 ? 0 : 5);
	}
	printf("fuzz_kchan: %lu commands, %lu replies, %lu completions (%lu refused), %lu deferred, %lu answered late or never (%u never), %lu garbage batches\n",
	       st.commands, st.replies, st.completions, st.refused, st.deferred, st.dropped,
	       never, st.garbage);
	return 0;
}
