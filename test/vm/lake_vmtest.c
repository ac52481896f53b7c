// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Helpers of the user-space VM tests of /dev/lake (see lake_vmtest.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "lake_vmtest.h"

long page_size;

/* ---- helpers: files, parameters, stats ------------------------------------ */

long long read_ll(const char *path)
{
	char buf[64] = "";
	FILE *f = fopen(path, "r");

	ck_assert_msg(f, "%s: %s", path, strerror(errno));
	ck_assert_msg(fgets(buf, sizeof(buf), f), "%s: empty", path);
	fclose(f);
	return strtoll(buf, NULL, 0);
}

void write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);

	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_msg(write(fd, s, strlen(s)) == (ssize_t)strlen(s), "%s <- %s: %s", path, s,
		      strerror(errno));
	close(fd);
}

/* A "key: value" line of the stats file; -1 if missing.  "daemon" gives 1
 * for attached, 0 for absent. */
long long stat_get(const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	long long v = -1;
	FILE *f = fopen(STATS, "r");

	ck_assert_msg(f, STATS ": %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		if (!strcmp(key, "daemon"))
			v = strstr(line, "attached") != NULL;
		else
			v = strtoll(line + klen + 1, NULL, 10);
		break;
	}
	fclose(f);
	ck_assert_msg(v >= 0, STATS ": no '%s'", key);
	return v;
}

/* The null round trip's line: calls and errors counted by the kernel. */
void stat_nulls(long long *calls, long long *errors)
{
	char line[256];
	FILE *f = fopen(STATS, "r");

	ck_assert_msg(f, STATS ": %s", strerror(errno));
	*calls = *errors = 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "(null round trip)");

		if (p && sscanf(p + strlen("(null round trip)"), " %lld calls %lld errors", calls,
				errors) != 2)
			ck_abort_msg("cannot parse: %s", line);
	}
	fclose(f);
}

/* Nothing attached, nothing in flight, no arena in use: the state every
 * test starts from and ends in. */
void assert_idle(const char *when)
{
	int i;

	/* A previous test's process may still be exiting: allow it 5 s. */
	for (i = 0; i < 50 && (stat_get("daemon") || stat_get("in_flight")); i++)
		usleep(100000);
	ck_assert_msg(stat_get("daemon") == 0, "%s: a daemon is still attached", when);
	ck_assert_msg(stat_get("in_flight") == 0, "%s: %lld slots still in flight", when,
		      stat_get("in_flight"));
	ck_assert_msg(stat_get("arena_used") == 0, "%s: %lld arena bytes still in use", when,
		      stat_get("arena_used"));
}

void setup(void)
{
	page_size = sysconf(_SC_PAGESIZE);
	write_str(PARAM("timeout_ms"), "10000");
	assert_idle("before the test");
}

/* ---- helpers: attaching ----------------------------------------------------- */

int dev_open(void)
{
	int fd = open(DEV, O_RDWR | O_CLOEXEC);

	ck_assert_msg(fd >= 0, DEV ": %s", strerror(errno));
	return fd;
}

void attach_args(struct lake_attach *a)
{
	memset(a, 0, sizeof(*a));
	a->version = LAKE_PROTO_VERSION;
	a->spec_hash = LAKE_SPEC_HASH;
}

/* The ioctl's errno, or 0. */
int ioc(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? errno : 0;
}

int try_attach(int fd, const struct lake_attach *in)
{
	struct lake_attach a = *in;

	return ioc(fd, LAKE_IOC_ATTACH, &a);
}



void dmn_start(struct dmn *d)
{
	memset(d, 0, sizeof(*d));
	d->fd = dev_open();
	attach_args(&d->a);
	ck_errno(ioc(d->fd, LAKE_IOC_ATTACH, &d->a), 0);
	d->map = mmap(NULL, d->a.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
	ck_assert_msg(d->map != MAP_FAILED, "mmap: %s", strerror(errno));
	/* The callers this test forks must not hold the daemon's file. */
	ck_assert_int_eq(madvise(d->map, d->a.map_size, MADV_DONTFORK), 0);
	d->ctrl = (struct lake_ring_ctrl *)d->map;
	d->sq = (uint32_t *)(d->map + d->a.sq_offset);
	d->slots = d->map + d->a.slots_offset;
	d->head = 0;
}

void dmn_stop(struct dmn *d)
{
	if (d->map)
		munmap(d->map, d->a.map_size);
	d->map = NULL;
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

struct lake_msg_hdr *dmn_hdr(struct dmn *d, uint32_t slot)
{
	ck_assert_uint_lt(slot, d->a.nslots);
	return (struct lake_msg_hdr *)(d->slots + (size_t)slot * LAKE_SLOT_SIZE);
}

struct lake_nop *dmn_nop_args(struct dmn *d, uint32_t slot)
{
	return (struct lake_nop *)((uint8_t *)dmn_hdr(d, slot) + LAKE_ARGS_OFFSET);
}

struct lake_nop *dmn_nop_outs(struct dmn *d, uint32_t slot)
{
	return (struct lake_nop *)((uint8_t *)dmn_hdr(d, slot) + LAKE_OUTS_OFFSET);
}

/* The next published command's slot, as lakeD takes it (20 s at most). */
uint32_t dmn_next(struct dmn *d)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		uint32_t tail = __atomic_load_n(&d->ctrl->sq_tail, __ATOMIC_ACQUIRE);
		struct pollfd p = { .fd = d->fd, .events = POLLIN };

		if (tail != d->head) {
			uint32_t slot = d->sq[d->head % d->a.nslots];

			d->head++;
			__atomic_store_n(&d->ctrl->sq_head, d->head, __ATOMIC_RELEASE);
			ck_assert_msg(slot < d->a.nslots, "queue entry %u: slot %u of %u",
				      d->head - 1, slot, d->a.nslots);
			return slot;
		}
		ck_assert_int_ge(poll(&p, 1, 1000), 0);
		ck_assert_msg(!(p.revents & (POLLERR | POLLHUP | POLLNVAL)), "poll: revents %#x",
			      p.revents);
		clock_gettime(CLOCK_MONOTONIC, &t);
		ck_assert_msg(t.tv_sec - t0.tv_sec < 20, "no command from the kernel in 20 s");
	}
}

/* What a correct lakeD writes for a null round trip. */
void dmn_reply_nop(struct dmn *d, uint32_t slot)
{
	struct lake_msg_hdr *h = dmn_hdr(d, slot);

	ck_assert_uint_eq(h->api, LAKE_API_NOP);
	ck_assert_uint_ge(h->args_len, sizeof(struct lake_nop));
	dmn_nop_outs(d, slot)->cookie = dmn_nop_args(d, slot)->cookie;
	h->result = 0;
	h->reply_len = sizeof(struct lake_nop);
}

/* LAKE_IOC_COMPLETE with entries: the ioctl's errno; statuses in place. */
int dmn_complete_n(struct dmn *d, struct lake_completion *c, uint32_t n)
{
	struct lake_complete req = { .count = n, .entries = (uintptr_t)c };

	return ioc(d->fd, LAKE_IOC_COMPLETE, &req);
}

/* One completion: its entry status (0, -EINVAL, -ENOENT). */
int dmn_complete(struct dmn *d, uint32_t slot, uint32_t seq)
{
	struct lake_completion c = { .slot = slot, .seq = seq, .status = 12345 };
	int err = dmn_complete_n(d, &c, 1);

	ck_assert_msg(err == -c.status, "COMPLETE returned %s but the entry's status is %d",
		      strerror(err), c.status);
	return c.status;
}

/* ---- helpers: a kernel caller ------------------------------------------------ */


void caller_start_cmd(struct caller *c, unsigned int n, const char *cmd)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	c->pid = fork();
	ck_assert_int_ge(c->pid, 0);
	if (c->pid == 0) {
		int fd, e;

		/* Never outlive the test: a stray call would reach the next
		 * test's daemon. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Nor hold the daemon's file (its mapping is MADV_DONTFORK). */
		for (fd = 3; fd < 1024; fd++)
			if (fd != p[1])
				close(fd);
		fd = open(RUN, O_WRONLY);
		while (n--) {
			e = fd < 0 ? errno : write(fd, cmd, strlen(cmd)) >= 0 ? 0 : errno;
			if (write(p[1], &e, sizeof(e)) != sizeof(e))
				_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	c->rfd = p[0];
}

void caller_start(struct caller *c, unsigned int n)
{
	caller_start_cmd(c, n, "null 1");
}

/* The next call's errno (0: success); fails after 30 s. */
int caller_result(struct caller *c)
{
	struct pollfd p = { .fd = c->rfd, .events = POLLIN };
	int e;

	ck_assert_msg(poll(&p, 1, 30000) == 1, "the caller reported nothing in 30 s");
	ck_assert_msg(read(c->rfd, &e, sizeof(e)) == sizeof(e), "the caller died");
	return e;
}

void caller_finish(struct caller *c)
{
	int status;

	ck_assert_int_eq(waitpid(c->pid, &status, 0), c->pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "caller: status %#x", status);
	close(c->rfd);
}


/* Serves one call correctly; returns its slot. */
uint32_t serve_one(struct dmn *d)
{
	uint32_t slot = dmn_next(d);

	dmn_reply_nop(d, slot);
	ck_assert_int_eq(dmn_complete(d, slot, dmn_hdr(d, slot)->seq), 0);
	return slot;
}

/* Memory whose second page is inaccessible: for pointers that run off it. */
uint8_t *guarded_page(void)
{
	uint8_t *p = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert(p != MAP_FAILED);
	ck_assert_int_eq(mprotect(p + page_size, page_size, PROT_NONE), 0);
	return p;
}

int lake_vmtest_main(Suite *suite, const char *name)
{
	SRunner *sr = srunner_create(suite);
	int failed;

	if (geteuid() != 0) {
		fprintf(stderr, "%s: run as root, with lake.ko and lake_selftest.ko loaded\n", name);
		return 2;
	}
	srunner_run_all(sr, CK_VERBOSE);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
