// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Unit tests of lakeD's VM channels (lake_vchan.c), without a VM: a file in
 * /dev/shm stands for the ivshmem device and a thread of this test plays the
 * guest's lake.ko (layout, handshake, heartbeat, NOP commands), against the
 * real lake_vchan_start() and the recording TEST DOUBLE of the vendor.
 * Also: the layout checks, field by field, and the vm_* settings.
 * (The whole bridge, with lake.ko in a VM: CTest vm_bridge.)
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "lake_chan.h"
#include "lake_config.h"
#include "lake_fake.h"
#include "lake_log.h"
#include "lake_vchan.h"
#include "lake_vendor.h"

#define T_SIZE		(4u << 20)
#define T_NSLOTS	8u

#define LD(x)		__atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define ST(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

static __u64 now_ms(void)
{
	return lake_now_ns() / 1000000u;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The layout lake.ko lays out for @nslots in @size bytes. */
static void t_layout(struct lake_ivshmem_hdr *h, __u32 nslots, __u64 size)
{
	memset(h, 0, sizeof(*h));
	lake_ivshmem_std_layout(h, nslots, size);
}

/* ------------------------------------------------------------------------ */

START_TEST(test_layout_checks)
{
	static __u8 mem[T_SIZE];
	struct lake_ivshmem_hdr good, h;
	struct lake_ring ring;
	char why[256];
	unsigned int k;

	t_layout(&good, T_NSLOTS, T_SIZE);
	ck_assert_int_eq(lake_vchan_check_layout(&good, mem, T_SIZE, &ring, why, sizeof(why)), 0);
	ck_assert_uint_eq(ring.nslots, T_NSLOTS);
	ck_assert_ptr_eq(ring.ctrl, mem + good.ring_offset);
	ck_assert_ptr_eq(ring.arena, mem + good.ring_offset + good.layout.arena_offset);
	/* One field wrong at a time: each is refused, with a reason. */
	for (k = 0; k < 14; k++) {
		h = good;
		switch (k) {
		case 0: h.magic ^= 1; break;
		case 1: h.version++; break;
		case 2: h.proto_version++; break;
		case 3: h.spec_hash ^= 1; break;
		case 4: h.layout.nslots = 3; break;
		case 5: h.cq_entries = T_NSLOTS / 2; break;
		case 6: h.cq_offset = 64; break;		/* inside the header */
		case 7: h.ring_offset = LAKE_IVSHMEM_PAGE; break;	/* on the queue */
		case 8: h.ring_offset += 100; break;		/* not page aligned */
		case 9: h.ring_offset = T_SIZE; break;
		case 10: h.layout.map_size = ~0ull; break;
		case 11: h.layout.arena_size += LAKE_IVSHMEM_PAGE; break;
		case 12: h.layout.reserved[1] = 5; break;
		default: h.layout.slots_offset = 64; break;	/* on the queue */
		}
		why[0] = 0;
		ck_assert_msg(lake_vchan_check_layout(&h, mem, T_SIZE, &ring, why, sizeof(why)) ==
			      -EPROTO, "case %u accepted", k);
		ck_assert_msg(why[0], "case %u: no reason given", k);
	}
}
END_TEST

START_TEST(test_config_keys)
{
	struct lake_config c;
	char err[256], path[32];
	unsigned int i;

	lake_config_defaults(&c);
	ck_assert_uint_eq(c.vm.nshm, 0);
	ck_assert_uint_eq(c.vm.pin_max_mb, LAKE_VCHAN_DEFAULT_PIN_MAX_MB);
	for (i = 0; i < LAKE_VCHAN_MAX; i++) {
		snprintf(path, sizeof(path), "/dev/shm/vm%u", i);
		ck_assert_int_eq(lake_vchan_config_set(&c.vm, "vm_shm", path, err, sizeof(err)), 0);
	}
	ck_assert_uint_eq(c.vm.nshm, LAKE_VCHAN_MAX);
	ck_assert_str_eq(c.vm.shm[3], "/dev/shm/vm3");
	ck_assert_int_eq(lake_vchan_config_set(&c.vm, "vm_shm", "/x", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "at most"));
	ck_assert_int_eq(lake_vchan_config_set(&c.vm, "vm_pin_max_mb", "512", err, sizeof(err)), 0);
	ck_assert_uint_eq(c.vm.pin_max_mb, 512);
	ck_assert_int_eq(lake_vchan_config_set(&c.vm, "vm_pin_max_mb", "-1", err, sizeof(err)), -1);
	ck_assert_int_eq(lake_vchan_config_set(&c.vm, "vm_guest_timeout_ms", "10", err, sizeof(err)), -1);
	ck_assert_int_eq(lake_vchan_config_set(&c.vm, "vm_guest_timeout_ms", "900", err, sizeof(err)), 0);
	ck_assert_int_eq(lake_vchan_config_set(&c.vm, "socket", "x", err, sizeof(err)), 1);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* A guest in this process                                                  */

struct tguest {
	int fd;
	char path[64];
	__u8 *mem;
	struct lake_ivshmem_hdr *h;
	struct lake_ring_ctrl *ctrl;
	__u32 *sq;
	__u8 *slots;
	struct lake_completion *cq;
	__u32 tail, beat, session;
	struct lake_vendor_state vendor;
	struct lake_vchan *vc;
};

static void tg_open(struct tguest *g)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->path, sizeof(g->path), "/dev/shm/lake-test-vchan.XXXXXX");
	g->fd = mkstemp(g->path);
	ck_assert_int_ge(g->fd, 0);
	ck_assert_int_eq(ftruncate(g->fd, T_SIZE), 0);
	g->mem = mmap(NULL, T_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
	ck_assert_ptr_ne(g->mem, MAP_FAILED);
	g->h = (struct lake_ivshmem_hdr *)g->mem;
	t_layout(g->h, T_NSLOTS, T_SIZE);
	g->ctrl = (struct lake_ring_ctrl *)(g->mem + g->h->ring_offset);
	g->sq = (__u32 *)(g->mem + g->h->ring_offset + g->h->layout.sq_offset);
	g->slots = g->mem + g->h->ring_offset + g->h->layout.slots_offset;
	g->cq = (struct lake_completion *)(g->mem + g->h->cq_offset);
	g->vendor.fake = true;
	g->vendor.vendors = lake_fake_vendors;
	g->vendor.ngpus = -1;
}

static void tg_close(struct tguest *g)
{
	lake_vchan_stop(g->vc);
	munmap(g->mem, T_SIZE);
	close(g->fd);
	unlink(g->path);
}

static void tg_start_host(struct tguest *g, unsigned int guest_timeout_ms)
{
	struct lake_vchan_opts o = {
		.path = g->path,
		.spin_us = 20,
		.vendor = &g->vendor,
		.guest_timeout_ms = guest_timeout_ms,
		.pin_max = 1ull << 30,
	};

	ck_assert_int_eq(lake_vchan_start(&g->vc, &o), 0);
}

/*
 * How many mappings of @path this process has.  Only read(), no stdio: it
 * runs in a child forked from a process with lakeD's threads.
 */
static int maps_of(const char *path)
{
	static char buf[1 << 16];
	size_t len = 0;
	ssize_t n;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC), count = 0;
	const char *p;

	if (fd < 0)
		return -1;
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = 0;
	for (p = buf; (p = strstr(p, path)); p++)
		count++;
	return count;
}

static void tg_beat(struct tguest *g)
{
	ST(g->h->guest_beat, ++g->beat);
}

/* Waits for an offer other than @not and takes it (as lake.ko does). */
static __u32 tg_attach(struct tguest *g, __u32 not)
{
	__u64 end = now_ms() + 5000;
	__u32 s;

	ST(g->h->guest_epoch, LD(g->h->guest_epoch) + 1);
	ST(g->h->guest_state, LAKE_IVSHMEM_GUEST_READY);
	while (!(s = LD(g->h->host_session)) || s == not) {
		ck_assert_msg(now_ms() < end, "lakeD offered no session within 5 s");
		tg_beat(g);
		sleep_ms(2);
	}
	ck_assert_uint_eq(LD(g->h->host_proto_version), LAKE_PROTO_VERSION);
	ck_assert_uint_eq(LD(g->h->host_spec_hash), LAKE_SPEC_HASH);
	ck_assert_uint_eq(LD(g->h->host_pid), (__u32)getpid());
	g->ctrl->sq_tail = 0;
	g->ctrl->sq_head = 0;
	g->tail = 0;
	ST(g->h->cq_head, 0);
	ST(g->h->guest_ack, s);
	ST(g->h->guest_state, LAKE_IVSHMEM_GUEST_ATTACHED);
	g->session = s;
	return s;
}

/* One NOP through the ring: the reply echoes @cookie, a completion names it. */
static void tg_nop(struct tguest *g, __u32 slot, __u32 seq, __u64 cookie)
{
	struct lake_msg_hdr *m = (struct lake_msg_hdr *)(g->slots + (size_t)slot * LAKE_SLOT_SIZE);
	__u32 cq0 = LD(g->h->cq_tail), cq1;
	struct lake_nop *nop = (struct lake_nop *)((__u8 *)m + LAKE_ARGS_OFFSET);
	__u64 end = now_ms() + 5000, out;

	memset(m, 0, sizeof(*m));
	m->api = LAKE_API_NOP;
	m->seq = seq;
	m->done_seq = ~seq;
	m->args_len = sizeof(*nop);
	m->present = 1;
	nop->cookie = cookie;
	g->sq[g->tail % T_NSLOTS] = slot;
	ST(g->ctrl->sq_tail, ++g->tail);
	while (LD(m->done_seq) != seq) {
		ck_assert_msg(now_ms() < end, "no reply to NOP seq %u within 5 s", seq);
		tg_beat(g);
	}
	ck_assert_int_eq(m->result, 0);
	memcpy(&out, (__u8 *)m + LAKE_OUTS_OFFSET, sizeof(out));
	ck_assert_uint_eq(out, cookie);
	/* lazy reports: the completion follows within a few microseconds */
	while ((cq1 = LD(g->h->cq_tail)) == cq0) {
		ck_assert_msg(now_ms() < end, "no completion for NOP seq %u", seq);
		tg_beat(g);
	}
	ck_assert_uint_eq(cq1 - cq0, 1);
	ck_assert_uint_eq(g->cq[cq0 % g->h->cq_entries].slot, slot);
	ck_assert_uint_eq(g->cq[cq0 % g->h->cq_entries].seq, seq);
	ck_assert_uint_eq(g->cq[cq0 % g->h->cq_entries].reserved, 0);
	ST(g->h->cq_head, cq1);
}

/* Beats for @ms, watching for the session to end; returns when it did (ms), or -1. */
static long tg_watch(struct tguest *g, unsigned int ms, bool beat)
{
	__u64 t0 = now_ms();

	while (now_ms() - t0 < ms) {
		if (LD(g->h->host_session) != g->session)
			return (long)(now_ms() - t0);
		if (beat)
			tg_beat(g);
		sleep_ms(5);
	}
	return -1;
}

START_TEST(test_session_serves_and_ends)
{
	struct tguest g;
	__u32 s1, s2, s3;
	long took;
	unsigned int i;
	pid_t child;
	int status;

	tg_open(&g);
	tg_start_host(&g, 400);
	/* As /dev/lake's region (VM_DONTCOPY): a fork of lakeD does not inherit
	 * its mapping of the guest's memory; this test's own mapping it does. */
	ck_assert_int_eq(maps_of(g.path), 2);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0)
		_exit(maps_of(g.path));
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1,
		      "a fork of lakeD maps the guest's file %d times, expected 1 (the test's own)",
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	s1 = tg_attach(&g, 0);
	for (i = 0; i < 100; i++)
		tg_nop(&g, i % T_NSLOTS, 1000 + i, 0xC0FFEE00ull + i);
	/* lakeD keeps beating while it serves. */
	i = LD(g.h->host_beat);
	ck_assert_int_eq(tg_watch(&g, 350, true), -1);
	ck_assert_uint_gt(LD(g.h->host_beat), i);

	/* The guest goes silent: lakeD gives it up after its timeout. */
	took = tg_watch(&g, 3000, false);
	ck_assert_msg(took >= 0, "lakeD still serves a silent guest after 3 s");
	ck_assert_uint_eq(LD(g.h->host_session), 0);

	/* It comes back (a new epoch): a new session, never the old id. */
	s2 = tg_attach(&g, s1);
	ck_assert_uint_ne(s2, s1);
	tg_nop(&g, 3, 7, 42);

	/* The guest ends it (lake.ko unloaded): lakeD withdraws at once. */
	ST(g.h->guest_ack, 0);
	ST(g.h->guest_state, LAKE_IVSHMEM_GUEST_ABSENT);
	took = tg_watch(&g, 1000, true);
	ck_assert_msg(took >= 0 && took < 500, "lakeD took %ld ms to see the guest go", took);

	/* A corrupted ring (the tail far ahead) ends the session too, and
	 * lakeD serves the next one. */
	s3 = tg_attach(&g, s2);
	ST(g.h->guest_beat, g.beat);
	ST(g.ctrl->sq_tail, 0x80000000u);
	took = tg_watch(&g, 1000, true);
	ck_assert_msg(took >= 0, "lakeD kept serving a ring whose tail is 2^31 ahead");
	tg_attach(&g, s3);
	tg_nop(&g, 0, 99, 99);

	/* lakeD stopping ends the session (the guest fails its callers at once). */
	lake_vchan_stop(g.vc);
	g.vc = NULL;
	ck_assert_uint_eq(LD(g.h->host_session), 0);
	tg_close(&g);
}
END_TEST

START_TEST(test_refuses_bad_files)
{
	struct lake_vendor_state v = { .fake = true, .ngpus = -1 };
	struct lake_vchan_opts o = { .vendor = &v, .pin_max = 0 };
	struct lake_vchan *vc = NULL;
	char path[64] = "/dev/shm/lake-test-vchan.XXXXXX";
	int fd = mkstemp(path);

	v.vendors = lake_fake_vendors;
	ck_assert_int_ge(fd, 0);
	o.path = path;
	ck_assert_int_eq(ftruncate(fd, 3u << 20), 0);	/* not a power of two */
	ck_assert_int_eq(lake_vchan_start(&vc, &o), -EINVAL);
	ck_assert_int_eq(ftruncate(fd, 1u << 20), 0);	/* too small */
	ck_assert_int_eq(lake_vchan_start(&vc, &o), -EINVAL);
	o.path = "/dev/shm/lake-test-vchan-missing";
	ck_assert_int_eq(lake_vchan_start(&vc, &o), -ENOENT);
	ck_assert_ptr_null(vc);
	close(fd);
	unlink(path);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lake_vchan");
	TCase *tc = tcase_create("vchan");
	SRunner *sr;
	int failed;

	lake_log_init("test_vchan");
	lake_log_level = LAKE_LOG_WARN;
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_layout_checks);
	tcase_add_test(tc, test_config_keys);
	tcase_add_test(tc, test_session_serves_and_ends);
	tcase_add_test(tc, test_refuses_bad_files);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
