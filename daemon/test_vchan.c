// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Unit tests of lakeD's VM channels (lake_vchan.c), without a VM: a file in
 * /dev/shm stands for the ivshmem device and this test plays the guest's
 * lake.ko (layout, handshake, heartbeat, NOP commands), against the real
 * lake_vchan_start() and the recording TEST DOUBLE of the vendor; then
 * against lakeD-fake itself (argv[1]), whose supervisor serves two such
 * files, each by a worker process of its own: their credentials, the
 * pinned-memory quota across VMs, a worker killed and restarted.
 * Also: the layout checks, field by field, and the vm_* settings.
 * (The whole bridge, with lake.ko in a VM: CTest vm_bridge.)
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "lake_chan.h"
#include "lake_config.h"
#include "lake_fake.h"
#include "lake_log.h"
#include "lake_vchan.h"
#include "lake_vendor.h"

#define T_SIZE		(4u << 20)
#define T_NSLOTS	8u

static const char *laked_fake;	/* lakeD-fake, for the supervisor's tests */

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

/* Applies config text @text; returns lake_config_read()'s result. */
static int t_config(struct lake_config *c, const char *text, char *err, size_t errlen)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int r;

	ck_assert_ptr_nonnull(f);
	r = lake_config_read(c, f, "test", err, errlen);
	fclose(f);
	return r;
}

START_TEST(test_config_keys)
{
	char *argv[] = {
		"lakeD", "--vm-shm", "/dev/shm/a", "--vm-pin-max-mb", "7", "--vm-user", "lake",
		"--vm-threads", "2", "--vm-guest-timeout-ms=900", NULL,
	};
	struct lake_config c;
	char err[256], line[64];
	unsigned int i;

	lake_config_defaults(&c);
	ck_assert_uint_eq(c.vm_nshm, 0);
	ck_assert_uint_eq(c.vm_pin_max_mb, 4096);
	ck_assert_uint_eq(c.vm_guest_timeout_ms, 5000);
	ck_assert_uint_eq(c.vm_threads, 4);
	ck_assert_str_eq(c.vm_user, LAKE_DEFAULT_VM_USER);
	for (i = 0; i < LAKE_MAX_VMS; i++) {
		snprintf(line, sizeof(line), "vm_shm = /dev/shm/vm%u\n", i);
		ck_assert_int_eq(t_config(&c, line, err, sizeof(err)), 0);
	}
	ck_assert_uint_eq(c.vm_nshm, LAKE_MAX_VMS);
	ck_assert_str_eq(c.vm_shm[3], "/dev/shm/vm3");
	ck_assert_int_eq(t_config(&c, "vm_shm = /x\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "at most"));
	ck_assert_int_eq(t_config(&c, "vm_pin_max_mb = 512\n", err, sizeof(err)), 0);
	ck_assert_uint_eq(c.vm_pin_max_mb, 512);
	ck_assert_int_eq(t_config(&c, "vm_pin_max_mb = -1\n", err, sizeof(err)), -1);
	ck_assert_int_eq(t_config(&c, "vm_guest_timeout_ms = 10\n", err, sizeof(err)), -1);
	ck_assert_int_eq(t_config(&c, "vm_guest_timeout_ms = 900\n", err, sizeof(err)), 0);
	ck_assert_int_eq(t_config(&c, "vm_threads = 0\n", err, sizeof(err)), -1);
	/* A VM's process never runs as root. */
	ck_assert_int_eq(t_config(&c, "vm_user = root\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "root"));
	ck_assert_int_eq(t_config(&c, "vm_user = a:b\n", err, sizeof(err)), -1);
	ck_assert_int_eq(t_config(&c, "vm_shm =\n", err, sizeof(err)), -1);

	/* The command line: --vm-shm, --vm-user and the numbers, dashed. */
	ck_assert_int_eq(lake_config_from_args(&c, 10, argv, NULL, err, sizeof(err)), LAKE_CONFIG_OK);
	ck_assert_uint_eq(c.vm_nshm, 1);
	ck_assert_str_eq(c.vm_shm[0], "/dev/shm/a");
	ck_assert_uint_eq(c.vm_pin_max_mb, 7);
	ck_assert_str_eq(c.vm_user, "lake");
	ck_assert_uint_eq(c.vm_threads, 2);
	ck_assert_uint_eq(c.vm_guest_timeout_ms, 900);
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
	__u64 pin_asked, pin_returned;	/* the quota callbacks' record */
	int auto_beat;			/* the beater thread beats for it (atomic) */
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

/* The quota holder, played by the test: grants everything, keeps count. */
static bool tg_pin_ask(void *arg, __u64 bytes, char *why, size_t whylen)
{
	struct tguest *g = arg;

	(void)why;
	(void)whylen;
	__atomic_add_fetch(&g->pin_asked, bytes, __ATOMIC_SEQ_CST);
	return true;
}

static void tg_pin_return(void *arg, __u64 bytes)
{
	struct tguest *g = arg;

	__atomic_add_fetch(&g->pin_returned, bytes, __ATOMIC_SEQ_CST);
}

static void tg_start_host(struct tguest *g, unsigned int guest_timeout_ms, unsigned int threads)
{
	struct lake_vchan_opts o = {
		.path = g->path,
		.spin_us = 20,
		.threads = threads,
		.vendor = &g->vendor,
		.guest_timeout_ms = guest_timeout_ms,
		.pin_ask = tg_pin_ask,
		.pin_return = tg_pin_return,
		.pin_arg = g,
	};
	char why[256];
	__u64 size;

	o.fd = lake_vchan_open(g->path, &size, why, sizeof(why));
	ck_assert_msg(o.fd >= 0, "lake_vchan_open: %s", why);
	ck_assert_uint_eq(size, T_SIZE);
	ck_assert_int_eq(lake_vchan_start(&g->vc, &o), 0);
}

/*
 * How many mappings of @path this process has.  Only read(), no stdio: it
 * runs in a child forked from a process with lakeD's threads.
 */
static int maps_of_file(const char *maps, const char *path)
{
	static char buf[1 << 16];
	size_t len = 0;
	ssize_t n;
	int fd = open(maps, O_RDONLY | O_CLOEXEC), count = 0;
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

static int maps_of(const char *path)
{
	return maps_of_file("/proc/self/maps", path);
}

/* (Not in a forked child: snprintf.) */
static int maps_of_pid(pid_t pid, const char *path)
{
	char maps[64];

	snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)pid);
	return maps_of_file(maps, path);
}

static void tg_beat(struct tguest *g)
{
	ST(g->h->guest_beat, ++g->beat);
}

/*
 * Waits for an offer other than @not and takes it (as lake.ko does).  The
 * offer must come from process @host (0: any); *@host_pid (if not NULL)
 * gets the one it came from.
 */
static __u32 tg_attach_from(struct tguest *g, __u32 not, pid_t host, pid_t *host_pid)
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
	if (host)
		ck_assert_uint_eq(LD(g->h->host_pid), (__u32)host);
	if (host_pid)
		*host_pid = (pid_t)LD(g->h->host_pid);
	g->ctrl->sq_tail = 0;
	g->ctrl->sq_head = 0;
	g->tail = 0;
	ST(g->h->cq_head, 0);
	ST(g->h->guest_ack, s);
	ST(g->h->guest_state, LAKE_IVSHMEM_GUEST_ATTACHED);
	g->session = s;
	return s;
}

static __u32 tg_attach(struct tguest *g, __u32 not)
{
	return tg_attach_from(g, not, getpid(), NULL);
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
	tg_start_host(&g, 400, _i ? 4 : 1);	/* one serving thread, then several */
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
	/* The arena was pinned with the quota holder's leave. */
	ck_assert_uint_eq(g.pin_asked, g.h->layout.arena_size);
	ck_assert_uint_eq(g.pin_returned, 0);
	/* lakeD keeps beating while it serves. */
	i = LD(g.h->host_beat);
	ck_assert_int_eq(tg_watch(&g, 350, true), -1);
	ck_assert_uint_gt(LD(g.h->host_beat), i);

	/* The guest goes silent: lakeD gives it up after its timeout. */
	took = tg_watch(&g, 3000, false);
	ck_assert_msg(took >= 0, "lakeD still serves a silent guest after 3 s");
	ck_assert_uint_eq(LD(g.h->host_session), 0);
	/* ... and gave back what it pinned (host_session is cleared first). */
	for (i = 0; i < 200 && g.pin_returned != g.pin_asked; i++)
		sleep_ms(5);
	ck_assert_uint_eq(g.pin_returned, g.pin_asked);

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
	char path[64] = "/dev/shm/lake-test-vchan.XXXXXX", link[80], why[256];
	int fd = mkstemp(path);
	__u64 size = 0;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 3u << 20), 0);	/* not a power of two */
	ck_assert_int_eq(lake_vchan_open(path, &size, why, sizeof(why)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "power of two"));
	ck_assert_int_eq(ftruncate(fd, 1u << 20), 0);	/* too small */
	ck_assert_int_eq(lake_vchan_open(path, &size, why, sizeof(why)), -EINVAL);
	ck_assert_int_eq(lake_vchan_open("/dev/shm/lake-test-vchan-missing", &size, why,
					 sizeof(why)), -ENOENT);
	ck_assert_int_eq(lake_vchan_open("/dev/shm", &size, why, sizeof(why)), -EISDIR);
	/* Not through a symbolic link (someone else's file put in its place). */
	ck_assert_int_eq(ftruncate(fd, 2u << 20), 0);
	snprintf(link, sizeof(link), "%s.link", path);
	ck_assert_int_eq(symlink(path, link), 0);
	ck_assert_int_eq(lake_vchan_open(link, &size, why, sizeof(why)), -ELOOP);
	unlink(link);
	fd = lake_vchan_open(path, &size, why, sizeof(why));
	ck_assert_int_ge(fd, 0);
	ck_assert_uint_eq(size, 2u << 20);
	ck_assert_int_eq(lake_vchan_check_file(fd, &size, why, sizeof(why)), 0);
	close(fd);
	unlink(path);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* lakeD-fake's supervisor serving two VMs, each by a worker of its own       */

static struct tguest *beat_for[2];

/* Beats for the guests the supervisor's test plays while it looks elsewhere. */
static void *t_beater(void *arg)
{
	int *stop = arg;

	while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE)) {
		for (unsigned int i = 0; i < 2; i++)
			if (beat_for[i] && __atomic_load_n(&beat_for[i]->auto_beat, __ATOMIC_ACQUIRE))
				__atomic_add_fetch(&beat_for[i]->h->guest_beat, 1, __ATOMIC_RELEASE);
		sleep_ms(20);
	}
	return NULL;
}

/* The row of VM @vm in lakeD --status (as root: the VMs are shown to root). */
struct t_vmrow {
	int pid;
	unsigned int uid, restarts;
	unsigned long long pinned_mb;
	bool serving, found;
};

static struct t_vmrow t_status_vm(const char *sock, unsigned int vm)
{
	char cmd[512], buf[8192], key[16];
	struct t_vmrow r = { 0 };
	const char *line, *p;
	size_t n;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s --status --socket %s 2>&1", laked_fake, sock);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	pclose(f);
	snprintf(key, sizeof(key), "vm %u: ", vm);
	line = strstr(buf, key);
	if (!line)
		return r;
	r.found = true;
	r.serving = (p = strstr(line, ", serving,")) && p < strchr(line, '\n');
	if ((p = strstr(line, "process ")))
		sscanf(p, "process %d (uid %u)", &r.pid, &r.uid);
	if ((p = strstr(line, "pinned ")))
		sscanf(p, "pinned %llu MiB", &r.pinned_mb);
	if ((p = strstr(line, "MiB, ")) && (p = strstr(p + 5, "MiB, ")))
		sscanf(p, "MiB, %u restart", &r.restarts);
	return r;
}

/* Waits (10 s at most) until VM @vm's row says @serving with pinned memory or not. */
static struct t_vmrow t_wait_vm(const char *sock, unsigned int vm, bool serving, bool pinned,
				const char *what)
{
	__u64 end = now_ms() + 10000;
	struct t_vmrow r;

	for (;;) {
		r = t_status_vm(sock, vm);
		if (r.found && r.serving == serving && (r.pinned_mb > 0) == pinned)
			return r;
		ck_assert_msg(now_ms() < end, "%s: lakeD --status shows vm %u %s, %s, pinned %llu MiB",
			      what, vm, r.found ? "found" : "missing",
			      r.serving ? "serving" : "not serving", r.pinned_mb);
		sleep_ms(50);
	}
}

/* A field of /proc/PID/status ("Uid:" -> its first value). */
static unsigned long long t_proc_field(pid_t pid, const char *field, int base)
{
	char path[64], line[256];
	unsigned long long v = ~0ull;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			v = strtoull(line + strlen(field), NULL, base);
	fclose(f);
	return v;
}

START_TEST(test_supervisor_vms)
{
	char sock[64], logpath[64];
	struct tguest a, b;
	struct t_vmrow ra, rb;
	pthread_t beater;
	int stop_beater = 0, status;
	__u32 sa, sb, sa2;
	pid_t laked, pa, pb, pa2;
	struct passwd *nobody = getpwnam(LAKE_DEFAULT_VM_USER);
	unsigned int want_uid = geteuid() ? geteuid() : nobody ? nobody->pw_uid : 65534;
	__u64 end;

	if (!laked_fake) {
		fprintf(stderr, "test_supervisor_vms: no lakeD-fake given (argv[1]): skipped\n");
		return;
	}
	tg_open(&a);
	tg_open(&b);
	snprintf(sock, sizeof(sock), "/tmp/lake-test-vchan.%d.sock", (int)getpid());
	snprintf(logpath, sizeof(logpath), "/tmp/lake-test-vchan.%d.log", (int)getpid());
	fprintf(stderr, "test_supervisor_vms: lakeD-fake's log: %s\n", logpath);
	laked = fork();
	ck_assert_int_ge(laked, 0);
	if (laked == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		dup2(fd, 1);
		dup2(fd, 2);
		prctl(PR_SET_PDEATHSIG, SIGTERM);	/* a failed test does not leave it behind */
		/* 4 MiB files, arenas of about 3.9 MiB: one fits in 6 MiB, two do not. */
		execl(laked_fake, "lakeD-fake", "-f", "--socket", sock, "--device",
		      "/nonexistent/lake", "--vm-shm", a.path, "--vm-shm", b.path,
		      "--vm-pin-max-mb", "6", "--vm-guest-timeout-ms", "1000", "--vm-threads", "2",
		      (char *)NULL);
		_exit(127);
	}
	beat_for[0] = &a;
	beat_for[1] = &b;
	ck_assert_int_eq(pthread_create(&beater, NULL, t_beater, &stop_beater), 0);

	/* Each VM is served by a process of its own, neither lakeD's nor ours. */
	sa = tg_attach_from(&a, 0, 0, &pa);
	__atomic_store_n(&a.auto_beat, 1, __ATOMIC_RELEASE);
	tg_nop(&a, 1, 11, 0xA1);
	sb = tg_attach_from(&b, 0, 0, &pb);
	__atomic_store_n(&b.auto_beat, 1, __ATOMIC_RELEASE);
	tg_nop(&b, 2, 22, 0xB2);
	ck_assert_int_ne(pa, laked);
	ck_assert_int_ne(pb, laked);
	ck_assert_int_ne(pa, pb);
	ck_assert_int_ne(pa, getpid());
	/* ... unprivileged, without capabilities, no new privileges, not dumpable. */
	ck_assert_uint_eq(t_proc_field(pa, "Uid:", 10), want_uid);
	ck_assert_uint_eq(t_proc_field(pb, "Uid:", 10), want_uid);
	ck_assert_uint_eq(t_proc_field(pa, "CapEff:", 16), 0);
	ck_assert_uint_eq(t_proc_field(pa, "CapPrm:", 16), 0);
	ck_assert_uint_eq(t_proc_field(pa, "NoNewPrivs:", 10), 1);
	/* The supervisor never maps a guest's memory; the worker does (only
	 * root may look: to its own user, a worker is not dumpable). */
	ck_assert_int_eq(maps_of_pid(laked, a.path), 0);
	if (geteuid() == 0) {
		ck_assert_int_eq(maps_of_pid(pa, a.path), 1);
		ck_assert_int_eq(maps_of_pid(pa, b.path), 0);
	} else {
		ck_assert_int_eq(maps_of_pid(pa, a.path), -1);
	}

	/* The quota across VMs: A's arena pinned, B's refused (6 MiB for both). */
	ra = t_wait_vm(sock, 0, true, true, "A served and pinned");
	rb = t_wait_vm(sock, 1, true, false, "B served, not pinned");
	ck_assert_int_eq(ra.pid, pa);
	ck_assert_int_eq(rb.pid, pb);
	ck_assert_uint_eq(ra.uid, want_uid);

	/* A's worker dies: lakeD lives on, A's session ends, a new worker
	 * offers a fresh one and serves it (and pins again: the dead worker's
	 * share came back). */
	ck_assert_int_eq(kill(pa, SIGKILL), 0);
	end = now_ms() + 5000;
	while (LD(a.h->host_session) == sa) {
		ck_assert_msg(now_ms() < end, "the guest's session outlived its worker by 5 s");
		sleep_ms(5);
	}
	sa2 = tg_attach_from(&a, sa, 0, &pa2);
	ck_assert_int_ne(pa2, pa);
	tg_nop(&a, 3, 33, 0xA3);
	ck_assert_int_eq(kill(laked, 0), 0);
	ck_assert_int_eq(waitpid(laked, &status, WNOHANG), 0);
	ra = t_wait_vm(sock, 0, true, true, "A's new worker serves and pins");
	ck_assert_int_eq(ra.pid, pa2);
	ck_assert_uint_eq(ra.restarts, 1);
	tg_nop(&b, 4, 44, 0xB4);	/* B never noticed */
	ck_assert_uint_eq(LD(b.h->host_session), sb);

	/* A leaves: its arena is unpinned and the quota is B's to take. */
	__atomic_store_n(&a.auto_beat, 0, __ATOMIC_RELEASE);
	ST(a.h->guest_ack, 0);
	ST(a.h->guest_state, LAKE_IVSHMEM_GUEST_ABSENT);
	t_wait_vm(sock, 0, false, false, "A gone");
	tg_attach_from(&b, sb, pb, NULL);
	rb = t_wait_vm(sock, 1, true, true, "B's next session pinned");
	ck_assert_int_eq(rb.pid, pb);
	tg_nop(&b, 5, 55, 0xB5);
	(void)sa2;

	/* SIGTERM: lakeD ends the sessions (each guest fails its calls at
	 * once) and exits 0. */
	ck_assert_int_eq(kill(laked, SIGTERM), 0);
	ck_assert_int_eq(waitpid(laked, &status, 0), laked);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "lakeD-fake: status 0x%x",
		      status);
	ck_assert_uint_eq(LD(b.h->host_session), 0);
	__atomic_store_n(&stop_beater, 1, __ATOMIC_RELEASE);
	pthread_join(beater, NULL);
	beat_for[0] = beat_for[1] = NULL;
	unlink(logpath);
	tg_close(&a);
	tg_close(&b);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("lake_vchan");
	TCase *tc = tcase_create("vchan");
	SRunner *sr;
	int failed;

	laked_fake = argc > 1 ? argv[1] : NULL;
	lake_log_init("test_vchan");
	lake_log_level = LAKE_LOG_WARN;
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_layout_checks);
	tcase_add_test(tc, test_config_keys);
	tcase_add_loop_test(tc, test_session_serves_and_ends, 0, 2);
	tcase_add_test(tc, test_refuses_bad_files);
	tcase_add_test(tc, test_supervisor_vms);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
