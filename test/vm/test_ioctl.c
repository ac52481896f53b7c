// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * test_ioctl: /dev/lake at the ioctl level, from user space (CTest vm_ioctl).
 *
 * Runs as root inside the test VM with lake.ko and lake_selftest.ko loaded
 * and no daemon.  Every bad input must be refused with its documented errno
 * (docs/kernel-api.md, "The ABI between lake.ko and lakeD"), leave nothing
 * behind (no daemon attached, no slot in flight) and leave the channel
 * working.  The second half acts as lakeD by hand: a child process makes
 * kernel calls through lake_selftest.ko ("null 1" on its debugfs file, one
 * null round trip each, reporting its errno back over a pipe) while the test
 * serves the queue itself, answering right, wrong, twice or never.
 *
 * Each libcheck test runs in its own process, so a failing test detaches
 * when it dies and the next one starts clean (a fixture checks that).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <linux/lake.h>
#include "lake_proto_gen.h"
#include "lake_vmtest.h"

/* ---- attach ------------------------------------------------------------------ */

START_TEST(attach_needs_cap_sys_admin)
{
	struct lake_attach a;
	int status;
	pid_t pid;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct lake_complete req = { 0 };
		int fd = open(DEV, O_RDWR);	/* as root: the device is 0600 */

		if (fd < 0)
			_exit(10);
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(11);
		attach_args(&a);
		if (try_attach(fd, &a) != EPERM)
			_exit(12);
		if (ioc(fd, LAKE_IOC_COMPLETE, &req) != EPERM)	/* not the daemon */
			_exit(13);
		if (open(DEV, O_RDWR) >= 0 || errno != EACCES)	/* 0600 root */
			_exit(14);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child: status %#x", status);
	ck_assert_msg(WEXITSTATUS(status) != 10, "open as root failed");
	ck_assert_msg(WEXITSTATUS(status) != 11, "cannot drop to uid 65534");
	ck_assert_msg(WEXITSTATUS(status) != 12, "attach without CAP_SYS_ADMIN was not EPERM");
	ck_assert_msg(WEXITSTATUS(status) != 13, "COMPLETE by a non-daemon was not EPERM");
	ck_assert_msg(WEXITSTATUS(status) != 14, "uid 65534 could open " DEV);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	assert_idle("after the unprivileged attach");
}
END_TEST

START_TEST(attach_bad_arguments)
{
	long long attaches = stat_get("attaches");
	struct lake_attach a;
	int fd = dev_open();
	unsigned int i;

	attach_args(&a);
	a.flags = 1;
	ck_errno(try_attach(fd, &a), EINVAL);
	a.flags = 0x80000000u;
	ck_errno(try_attach(fd, &a), EINVAL);
	for (i = 0; i < 4; i++) {
		attach_args(&a);
		a.reserved[i] = 1ull << (i * 16);
		ck_errno(try_attach(fd, &a), EINVAL);
	}
	attach_args(&a);
	a.version = LAKE_PROTO_VERSION + 1;
	ck_errno(try_attach(fd, &a), EPROTONOSUPPORT);
	a.version = 0;
	ck_errno(try_attach(fd, &a), EPROTONOSUPPORT);
	a.version = ~0u;
	ck_errno(try_attach(fd, &a), EPROTONOSUPPORT);
	attach_args(&a);
	a.spec_hash ^= 1;
	ck_errno(try_attach(fd, &a), EPROTO);
	a.spec_hash = 0;
	ck_errno(try_attach(fd, &a), EPROTO);
	/* None of that attached anything. */
	ck_assert_int_eq(stat_get("daemon"), 0);
	ck_assert_int_eq(stat_get("attaches"), attaches);

	/* The same file attaches fine afterwards. */
	attach_args(&a);
	ck_errno(ioc(fd, LAKE_IOC_ATTACH, &a), 0);
	ck_assert_int_eq(stat_get("daemon"), 1);
	ck_assert_int_eq(stat_get("attaches"), attaches + 1);
	close(fd);
	assert_idle("after closing the daemon");
}
END_TEST

START_TEST(attach_one_daemon_at_a_time)
{
	struct lake_attach a;
	int fd1 = dev_open(), fd2 = dev_open();

	attach_args(&a);
	ck_errno(try_attach(fd1, &a), 0);
	ck_errno(try_attach(fd2, &a), EBUSY);	/* a second daemon */
	ck_errno(try_attach(fd1, &a), EBUSY);	/* the same one again */
	/* The first one's going lets another attach, without reloading. */
	close(fd1);
	ck_assert_int_eq(stat_get("daemon"), 0);
	ck_errno(try_attach(fd2, &a), 0);
	ck_assert_int_eq(stat_get("daemon"), 1);
	close(fd2);
	assert_idle("after both closed");
}
END_TEST

START_TEST(attach_reports_the_layout)
{
	struct lake_attach a;
	int fd = dev_open();
	uint64_t nslots = read_ll(PARAM("nslots"));
	uint64_t arena = (uint64_t)read_ll(PARAM("arena_mb")) << 20;
	unsigned int i;

	attach_args(&a);
	memset(&a.nslots, 0xA5, sizeof(a) - offsetof(struct lake_attach, nslots));
	memset(a.reserved, 0, sizeof(a.reserved));
	ck_errno(ioc(fd, LAKE_IOC_ATTACH, &a), 0);
	ck_assert_uint_eq(a.version, LAKE_PROTO_VERSION);
	ck_assert_uint_eq(a.nslots, nslots);
	ck_assert_uint_eq(a.slot_size, LAKE_SLOT_SIZE);
	ck_assert_uint_eq(a.arena_size, arena);
	ck_assert_uint_eq(a.sq_offset % page_size, 0);
	ck_assert_uint_eq(a.slots_offset % page_size, 0);
	ck_assert_uint_eq(a.arena_offset % page_size, 0);
	ck_assert_uint_ge(a.sq_offset, sizeof(struct lake_ring_ctrl));
	ck_assert_uint_ge(a.slots_offset, a.sq_offset + nslots * sizeof(uint32_t));
	ck_assert_uint_ge(a.arena_offset, a.slots_offset + nslots * LAKE_SLOT_SIZE);
	ck_assert_uint_eq(a.map_size, a.arena_offset + a.arena_size);
	for (i = 0; i < 4; i++)
		ck_assert_uint_eq(a.reserved[i], 0);
	close(fd);
}
END_TEST

/* ---- unknown ioctls and bad argument pointers --------------------------------- */

START_TEST(ioctl_unknown_is_enotty)
{
	struct lake_attach a;
	char buf[256] = { 0 };
	int fd = dev_open();

	ck_errno(ioc(fd, _IO(LAKE_IOC_MAGIC, 0x00), buf), ENOTTY);
	ck_errno(ioc(fd, _IOWR(LAKE_IOC_MAGIC, 0x03, struct lake_complete), buf), ENOTTY);
	ck_errno(ioc(fd, _IOWR(LAKE_IOC_MAGIC, 0x01, uint64_t), buf), ENOTTY);	/* wrong size */
	ck_errno(ioc(fd, _IOR(LAKE_IOC_MAGIC, 0x01, struct lake_attach), buf), ENOTTY);	/* wrong dir */
	ck_errno(ioc(fd, _IOWR('T', 0x01, struct lake_attach), buf), ENOTTY);	/* wrong magic */
	ck_errno(ioc(fd, 0xdeadbeef, buf), ENOTTY);
	/* The same on the daemon's file. */
	attach_args(&a);
	ck_errno(try_attach(fd, &a), 0);
	ck_errno(ioc(fd, _IO(LAKE_IOC_MAGIC, 0x7f), buf), ENOTTY);
	ck_errno(ioc(fd, 0, NULL), ENOTTY);
	close(fd);
	assert_idle("after the unknown ioctls");
}
END_TEST

START_TEST(ioctl_bad_pointers_are_efault)
{
	long long attaches = stat_get("attaches");
	uint8_t *g = guarded_page(), *ro;
	struct lake_attach a, *ap;
	struct lake_complete *cp;
	int fd = dev_open();

	attach_args(&a);
	/* NULL, unmapped, inaccessible, a kernel address. */
	ck_errno(ioc(fd, LAKE_IOC_ATTACH, NULL), EFAULT);
	ck_errno(ioc(fd, LAKE_IOC_ATTACH, (void *)8), EFAULT);
	ck_errno(ioc(fd, LAKE_IOC_ATTACH, g + page_size), EFAULT);
	ck_errno(ioc(fd, LAKE_IOC_ATTACH, (void *)0xffffffff81000000ul), EFAULT);
	/* Short: the argument runs into the inaccessible page. */
	ap = (struct lake_attach *)(g + page_size - sizeof(a) + 8);
	memcpy(ap, &a, sizeof(a) - 8);
	ck_errno(ioc(fd, LAKE_IOC_ATTACH, ap), EFAULT);
	/* Misaligned and short. */
	ap = (struct lake_attach *)(g + page_size - sizeof(a) + 3);
	memcpy(ap, &a, sizeof(a) - 3);
	ck_errno(ioc(fd, LAKE_IOC_ATTACH, ap), EFAULT);
	/* Readable but not writable: the reply cannot be copied out, so the
	 * attach must be undone. */
	ro = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(ro != MAP_FAILED);
	memcpy(ro, &a, sizeof(a));
	ck_assert_int_eq(mprotect(ro, page_size, PROT_READ), 0);
	ck_errno(ioc(fd, LAKE_IOC_ATTACH, ro), EFAULT);
	ck_assert_msg(stat_get("daemon") == 0, "an attach whose reply faulted stayed attached");
	ck_assert_int_le(stat_get("attaches"), attaches + 1);

	/* Misaligned but whole: the kernel copies, alignment does not matter. */
	ap = (struct lake_attach *)(g + 1);
	memcpy(ap, &a, sizeof(a));
	ck_errno(ioc(fd, LAKE_IOC_ATTACH, ap), 0);
	ck_assert_int_eq(stat_get("daemon"), 1);

	/* LAKE_IOC_COMPLETE's argument, on the daemon's file. */
	ck_errno(ioc(fd, LAKE_IOC_COMPLETE, NULL), EFAULT);
	ck_errno(ioc(fd, LAKE_IOC_COMPLETE, g + page_size), EFAULT);
	cp = (struct lake_complete *)(g + page_size - 8);	/* short */
	memset(cp, 0, 8);
	ck_errno(ioc(fd, LAKE_IOC_COMPLETE, cp), EFAULT);
	cp = (struct lake_complete *)(g + page_size - sizeof(*cp) - 1);	/* misaligned, whole */
	memset(cp, 0, sizeof(*cp));
	ck_errno(ioc(fd, LAKE_IOC_COMPLETE, cp), 0);	/* count 0: nothing to do */
	close(fd);
	assert_idle("after the bad pointers");
}
END_TEST

/* ---- mmap ---------------------------------------------------------------------- */

START_TEST(mmap_rules)
{
	struct lake_attach a;
	int fd = dev_open(), other = dev_open();
	uint8_t *m, *arena;
	void *p;

	/* Before attaching, nobody may map. */
	p = mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_msg(p == MAP_FAILED && errno == EPERM, "mmap before attach: %s",
		      p == MAP_FAILED ? strerror(errno) : "mapped");
	attach_args(&a);
	ck_errno(ioc(fd, LAKE_IOC_ATTACH, &a), 0);
	/* Another file of the device is not the daemon. */
	p = mmap(NULL, page_size, PROT_READ, MAP_SHARED, other, 0);
	ck_assert_msg(p == MAP_FAILED && errno == EPERM, "mmap by a non-daemon file: %s",
		      p == MAP_FAILED ? strerror(errno) : "mapped");
	/* Private mappings are refused. */
	p = mmap(NULL, a.map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ck_assert_msg(p == MAP_FAILED && errno == EINVAL, "MAP_PRIVATE: %s",
		      p == MAP_FAILED ? strerror(errno) : "mapped");
	/* Past the region: too long, offset at or past the end, offset + size. */
	p = mmap(NULL, a.map_size + page_size, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_msg(p == MAP_FAILED && errno == EINVAL, "size past the end: %s",
		      p == MAP_FAILED ? strerror(errno) : "mapped");
	p = mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd, a.map_size);
	ck_assert_msg(p == MAP_FAILED && errno == EINVAL, "offset at the end: %s",
		      p == MAP_FAILED ? strerror(errno) : "mapped");
	p = mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd, a.map_size + 16 * page_size);
	ck_assert_msg(p == MAP_FAILED && errno == EINVAL, "offset past the end: %s",
		      p == MAP_FAILED ? strerror(errno) : "mapped");
	p = mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd, 1ull << 46);
	ck_assert_msg(p == MAP_FAILED && errno == EINVAL, "huge offset: %s",
		      p == MAP_FAILED ? strerror(errno) : "mapped");
	p = mmap(NULL, a.map_size, PROT_READ, MAP_SHARED, fd, page_size);
	ck_assert_msg(p == MAP_FAILED && errno == EINVAL, "offset + size past the end: %s",
		      p == MAP_FAILED ? strerror(errno) : "mapped");
	p = mmap(NULL, 2 * page_size, PROT_READ, MAP_SHARED, fd, a.map_size - page_size);
	ck_assert_msg(p == MAP_FAILED && errno == EINVAL, "last page + 1: %s",
		      p == MAP_FAILED ? strerror(errno) : "mapped");

	/* The whole region maps; so does the arena alone, onto the same pages. */
	m = mmap(NULL, a.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_msg(m != MAP_FAILED, "full mmap: %s", strerror(errno));
	arena = mmap(NULL, a.arena_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.arena_offset);
	ck_assert_msg(arena != MAP_FAILED, "arena mmap: %s", strerror(errno));
	m[a.arena_offset + 123] = 0x5a;
	ck_assert_uint_eq(arena[123], 0x5a);
	arena[a.arena_size - 1] = 0xa5;
	ck_assert_uint_eq(m[a.map_size - 1], 0xa5);
	m[a.arena_offset + 123] = 0;
	arena[a.arena_size - 1] = 0;
	/* The last page alone. */
	p = mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd, a.map_size - page_size);
	ck_assert_msg(p != MAP_FAILED, "last page: %s", strerror(errno));
	munmap(p, page_size);
	/* A mapping cannot grow past what was checked. */
	p = mremap(m, a.map_size, a.map_size + page_size, MREMAP_MAYMOVE);
	ck_assert_msg(p == MAP_FAILED, "mremap grew the mapping");
	/* The control page is at 0: both indexes start at 0 on attach. */
	ck_assert_uint_eq(((struct lake_ring_ctrl *)m)->sq_tail, 0);
	ck_assert_uint_eq(((struct lake_ring_ctrl *)m)->sq_head, 0);
	munmap(arena, a.arena_size);
	munmap(m, a.map_size);
	close(other);
	close(fd);
	assert_idle("after the mappings");
}
END_TEST

/* A command lands where attach said: ctrl at 0, the queue at sq_offset, the
 * slot at slots_offset; the kernel keeps its own tail whatever lakeD writes. */
START_TEST(queue_layout_and_untrusted_indexes)
{
	struct caller c;
	struct dmn d;
	struct pollfd p;
	uint32_t slot, i;
	struct lake_msg_hdr *h;

	dmn_start(&d);
	p = (struct pollfd){ .fd = d.fd, .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, 0), 0);	/* nothing pending */
	caller_start(&c, 1);
	ck_assert_int_eq(poll(&p, 1, 20000), 1);
	ck_assert(p.revents & POLLIN);
	ck_assert_uint_eq(__atomic_load_n(&d.ctrl->sq_tail, __ATOMIC_ACQUIRE), 1);
	slot = d.sq[0];
	ck_assert_uint_lt(slot, d.a.nslots);
	h = dmn_hdr(&d, slot);
	ck_assert_uint_eq(h->api, LAKE_API_NOP);
	ck_assert_uint_eq(h->flags, 0);
	ck_assert_uint_ge(h->args_len, sizeof(struct lake_nop));
	ck_assert_uint_le(h->args_len, LAKE_ARGS_MAX);
	ck_assert_uint_eq(h->reply_len, 0);
	ck_assert_uint_ne(dmn_nop_args(&d, slot)->cookie, 0);
	ck_assert_uint_eq(serve_one(&d), slot);
	ck_call(&c, 0);
	caller_finish(&c);
	/* Consumed: no longer pending. */
	p.revents = 0;
	ck_assert_int_eq(poll(&p, 1, 0), 0);

	/* lakeD scribbles over the kernel's tail and the queue: the kernel
	 * publishes the next command at its own index and restores the tail. */
	d.ctrl->sq_tail = 0xdeadbeef;
	for (i = 0; i < d.a.nslots; i++)
		d.sq[i] = 0xffffffff;
	caller_start(&c, 1);
	p.revents = 0;
	ck_assert_int_eq(poll(&p, 1, 20000), 1);
	ck_assert(p.revents & POLLIN);
	ck_assert_uint_eq(__atomic_load_n(&d.ctrl->sq_tail, __ATOMIC_ACQUIRE), 2);
	ck_assert_uint_lt(d.sq[1], d.a.nslots);
	serve_one(&d);
	ck_call(&c, 0);
	caller_finish(&c);
	/* A head that lakeD moves anywhere only makes poll report work. */
	d.ctrl->sq_head = 77;
	p.revents = 0;
	ck_assert_int_eq(poll(&p, 1, 0), 1);
	ck_assert(p.revents & POLLIN);
	d.ctrl->sq_head = d.head;
	caller_start(&c, 1);
	serve_one(&d);
	ck_call(&c, 0);
	caller_finish(&c);
	ck_assert_uint_eq(d.ctrl->sq_tail, 3);
	dmn_stop(&d);
	assert_idle("after serving");
}
END_TEST

/* ---- LAKE_IOC_COMPLETE --------------------------------------------------------- */

START_TEST(complete_bad_requests)
{
	long long bad0 = stat_get("bad_completions");
	uint8_t *g = guarded_page(), *ro;
	struct lake_completion *c;
	struct lake_complete req;
	struct dmn d;
	uint32_t n;
	int err;

	dmn_start(&d);
	n = d.a.nslots;
	c = calloc(n + 1, sizeof(*c));
	ck_assert(c);
	/* More entries than slots; non-zero reserved. */
	req = (struct lake_complete){ .count = n + 1, .entries = (uintptr_t)c };
	ck_errno(ioc(d.fd, LAKE_IOC_COMPLETE, &req), EINVAL);
	req = (struct lake_complete){ .count = ~0u, .entries = (uintptr_t)c };
	ck_errno(ioc(d.fd, LAKE_IOC_COMPLETE, &req), EINVAL);
	req = (struct lake_complete){ .count = 1, .reserved = 1, .entries = (uintptr_t)c };
	ck_errno(ioc(d.fd, LAKE_IOC_COMPLETE, &req), EINVAL);
	/* Bad entries pointers. */
	req = (struct lake_complete){ .count = 1, .entries = 0 };
	ck_errno(ioc(d.fd, LAKE_IOC_COMPLETE, &req), EFAULT);
	req = (struct lake_complete){ .count = 1, .entries = (uintptr_t)(g + page_size) };
	ck_errno(ioc(d.fd, LAKE_IOC_COMPLETE, &req), EFAULT);
	req = (struct lake_complete){ .count = 2,
		.entries = (uintptr_t)(g + page_size - sizeof(*c)) };	/* short */
	memset(g + page_size - sizeof(*c), 0, sizeof(*c));
	ck_errno(ioc(d.fd, LAKE_IOC_COMPLETE, &req), EFAULT);
	req = (struct lake_complete){ .count = 1, .entries = 0xffffffff81000000ull };
	ck_errno(ioc(d.fd, LAKE_IOC_COMPLETE, &req), EFAULT);
	/* Entries that cannot be written back (the statuses). */
	ro = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(ro != MAP_FAILED);
	((struct lake_completion *)ro)->slot = n;	/* bad, so that nothing completes */
	ck_assert_int_eq(mprotect(ro, page_size, PROT_READ), 0);
	req = (struct lake_complete){ .count = 1, .entries = (uintptr_t)ro };
	ck_errno(ioc(d.fd, LAKE_IOC_COMPLETE, &req), EFAULT);
	/* count 0 is a no-op, whatever the pointer. */
	req = (struct lake_complete){ .count = 0, .entries = 0 };
	ck_errno(ioc(d.fd, LAKE_IOC_COMPLETE, &req), 0);
	/* So far one bad entry was looked at (the read-only one). */
	ck_assert_int_eq(stat_get("bad_completions"), bad0 + 1);

	/* Bad entries: each gets its status, the ioctl fails. */
	ck_assert_int_eq(dmn_complete(&d, n, 1), -EINVAL);
	ck_assert_int_eq(dmn_complete(&d, ~0u, 1), -EINVAL);
	ck_assert_int_eq(dmn_complete(&d, 0, 0x12345), -ENOENT);	/* unknown seq */
	ck_assert_int_eq(dmn_complete(&d, 0, 0), -ENOENT);
	ck_assert_int_eq(dmn_complete(&d, n - 1, 1), -ENOENT);
	memset(c, 0, sizeof(*c));
	c[0].reserved = 1;
	ck_errno(dmn_complete_n(&d, c, 1), EINVAL);
	ck_assert_int_eq(c[0].status, -EINVAL);
	/* A batch of bad entries: every one processed and marked. */
	memset(c, 0, 3 * sizeof(*c));
	c[0] = (struct lake_completion){ .slot = 1, .seq = 999999, .status = 7 };
	c[1] = (struct lake_completion){ .slot = n + 5, .seq = 1, .status = 7 };
	c[2] = (struct lake_completion){ .slot = 2, .seq = 999998, .status = 7 };
	err = dmn_complete_n(&d, c, 3);
	ck_assert_msg(err == EINVAL || err == ENOENT, "a bad batch returned %s", strerror(err));
	ck_assert_int_eq(c[0].status, -ENOENT);
	ck_assert_int_eq(c[1].status, -EINVAL);
	ck_assert_int_eq(c[2].status, -ENOENT);
	ck_assert_int_eq(stat_get("bad_completions"), bad0 + 1 + 6 + 3);
	free(c);
	dmn_stop(&d);
	assert_idle("after the bad completions");
}
END_TEST

/* ---- poll ------------------------------------------------------------------------ */

START_TEST(poll_non_daemon_is_pollerr)
{
	struct pollfd p;
	struct dmn d;
	int fd = dev_open();

	p = (struct pollfd){ .fd = fd, .events = POLLIN | POLLOUT };
	ck_assert_int_eq(poll(&p, 1, 0), 1);
	ck_assert_msg(p.revents & POLLERR, "revents %#x", p.revents);
	ck_assert(!(p.revents & POLLIN));
	/* Also while another file is the daemon. */
	dmn_start(&d);
	p.revents = 0;
	ck_assert_int_eq(poll(&p, 1, 0), 1);
	ck_assert_msg(p.revents & POLLERR, "revents %#x", p.revents);
	/* The daemon's own file, idle: nothing. */
	p = (struct pollfd){ .fd = d.fd, .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, 0), 0);
	dmn_stop(&d);
	close(fd);
}
END_TEST

/* ---- serving by hand: right, wrong, twice --------------------------------------- */

enum { RIGHT, TWICE, WRONG_SEQ_FIRST, BAD_LEN_BIG, BAD_LEN_ZERO, BAD_LEN_ODD, BAD_COOKIE,
       NEG_RESULT, POS_RESULT, HDR_SEQ, OTHER_SLOT_FIRST, BATCH_WITH_BAD, NCASES };

START_TEST(serve_by_hand)
{
	/* What the caller must see, and how many bad completions each makes. */
	static const struct {
		int err;
		int bad;
	} want[NCASES] = {
		[RIGHT] = { 0, 0 },		[TWICE] = { 0, 1 },
		[WRONG_SEQ_FIRST] = { 0, 2 },	[BAD_LEN_BIG] = { EPROTO, 0 },
		[BAD_LEN_ZERO] = { EPROTO, 0 },	[BAD_LEN_ODD] = { EPROTO, 0 },
		[BAD_COOKIE] = { EPROTO, 0 },	[NEG_RESULT] = { EPROTO, 0 },
		[POS_RESULT] = { EPROTO, 0 },	[HDR_SEQ] = { EPROTO, 0 },
		[OTHER_SLOT_FIRST] = { 0, 1 },	[BATCH_WITH_BAD] = { 0, 1 },
	};
	long long bad0 = stat_get("bad_completions"), calls0, errors0, calls, errors;
	const unsigned int rounds = 2, after = 20;
	unsigned int i, r, nbad = 0, nerr = 0;
	struct caller c;
	struct dmn d;

	stat_nulls(&calls0, &errors0);
	dmn_start(&d);
	caller_start(&c, rounds * NCASES + after);
	for (r = 0; r < rounds; r++) {
		for (i = 0; i < NCASES; i++) {
			uint32_t slot = dmn_next(&d), seq = dmn_hdr(&d, slot)->seq;
			struct lake_msg_hdr *h = dmn_hdr(&d, slot);
			struct lake_completion b[2];

			dmn_reply_nop(&d, slot);
			switch (i) {
			case RIGHT:
				break;
			case TWICE:
				ck_assert_int_eq(dmn_complete(&d, slot, seq), 0);
				break;	/* and again below */
			case WRONG_SEQ_FIRST:
				/* A future one, and the slot's previous call. */
				ck_assert_int_eq(dmn_complete(&d, slot, seq + 1), -ENOENT);
				ck_assert_int_eq(dmn_complete(&d, slot, seq - 1), -ENOENT);
				break;
			case BAD_LEN_BIG:
				h->reply_len = 4096;
				break;
			case BAD_LEN_ZERO:
				h->reply_len = 0;
				break;
			case BAD_LEN_ODD:
				h->reply_len = 7;
				break;
			case BAD_COOKIE:
				dmn_nop_outs(&d, slot)->cookie ^= 0x100;
				break;
			case NEG_RESULT:
				h->result = -5;
				nerr++;
				break;
			case POS_RESULT:
				h->result = 1;
				nerr++;
				break;
			case HDR_SEQ:
				h->seq = seq + 1000;
				break;
			case OTHER_SLOT_FIRST:
				/* A free slot: not in flight. */
				ck_assert_int_eq(dmn_complete(&d, (slot + 1) % d.a.nslots, seq),
						 -ENOENT);
				break;
			case BATCH_WITH_BAD:
				/* A good entry in a batch with a bad one still completes. */
				b[0] = (struct lake_completion){ .slot = d.a.nslots, .seq = seq };
				b[1] = (struct lake_completion){ .slot = slot, .seq = seq };
				ck_errno(dmn_complete_n(&d, b, 2), EINVAL);
				ck_assert_int_eq(b[0].status, -EINVAL);
				ck_assert_int_eq(b[1].status, 0);
				break;
			}
			if (i != BATCH_WITH_BAD) {
				int st = dmn_complete(&d, slot, seq);

				ck_assert_msg(st == (i == TWICE ? -ENOENT : 0),
					      "case %u: completion status %d", i, st);
			}
			ck_call(&c, want[i].err);
			if (i == TWICE)	/* once more, after the caller is gone */
				ck_assert_int_eq(dmn_complete(&d, slot, seq), -ENOENT);
			nbad += want[i].bad + (i == TWICE);
		}
	}
	/* After all that, correct answers still work. */
	for (i = 0; i < after; i++) {
		serve_one(&d);
		ck_call(&c, 0);
	}
	caller_finish(&c);
	ck_assert_int_eq(stat_get("bad_completions"), bad0 + nbad);
	stat_nulls(&calls, &errors);
	ck_assert_int_eq(calls, calls0 + rounds * NCASES + after);
	/* Non-zero results are counted as errors of the null round trip. */
	ck_assert_int_eq(errors, errors0 + nerr);
	ck_assert_int_eq(stat_get("in_flight"), 0);
	dmn_stop(&d);
	assert_idle("after serving by hand");
}
END_TEST

/* ---- timeouts, late replies, detaching ------------------------------------------ */

/* A caller that gave up (timeout) has left its slot in flight; a late reply
 * is accepted and frees it, and nothing else goes wrong. */
START_TEST(late_reply_after_timeout)
{
	long long timeouts0 = stat_get("timeouts");
	struct caller c;
	struct dmn d;
	uint32_t slot, seq;

	dmn_start(&d);
	write_str(PARAM("timeout_ms"), "300");
	caller_start(&c, 1);
	slot = dmn_next(&d);
	seq = dmn_hdr(&d, slot)->seq;
	ck_call(&c, ETIMEDOUT);
	caller_finish(&c);
	ck_assert_int_eq(stat_get("timeouts"), timeouts0 + 1);
	ck_assert_int_eq(stat_get("in_flight"), 1);	/* lakeD still owns it */
	write_str(PARAM("timeout_ms"), "10000");
	/* The next call takes another slot meanwhile. */
	caller_start(&c, 2);
	ck_assert_uint_ne(serve_one(&d), slot);
	ck_call(&c, 0);
	/* The late reply is accepted once, and frees the slot. */
	dmn_reply_nop(&d, slot);
	ck_assert_int_eq(dmn_complete(&d, slot, seq), 0);
	ck_assert_int_eq(dmn_complete(&d, slot, seq), -ENOENT);
	serve_one(&d);
	ck_call(&c, 0);
	caller_finish(&c);
	ck_assert_int_eq(stat_get("in_flight"), 0);
	dmn_stop(&d);
	assert_idle("after the late reply");
}
END_TEST

/*
 * A caller that gives up on a command whose buffer was staged through the
 * arena must leave the staging to the command: lakeD may still write the
 * reply there, and a reused allocation would receive it.  It is freed when
 * the late reply comes or when the daemon goes.
 */
START_TEST(abandoned_staging_stays_until_the_reply)
{
	const uint64_t bytes = 65536;	/* too big for the slot: arena staging */
	struct lake_args_cuMemcpyDtoH *args;
	struct lake_msg_hdr *h;
	struct caller c;
	struct dmn d;
	uint32_t slot, seq;
	int round;

	for (round = 0; round < 2; round++) {
		dmn_start(&d);
		/* A correct reply first: the daemon's bytes reach the caller. */
		caller_start_cmd(&c, 1, "dtoh 65536");
		slot = dmn_next(&d);
		h = dmn_hdr(&d, slot);
		args = (struct lake_args_cuMemcpyDtoH *)((uint8_t *)h + LAKE_ARGS_OFFSET);
		ck_assert_uint_eq(h->api, LAKE_API_cuMemcpyDtoH);
		ck_assert_uint_eq(args->dstHost.where, LAKE_BUF_ARENA);
		ck_assert_uint_eq(args->dstHost.len, bytes);
		ck_assert_uint_le(args->dstHost.off + bytes, d.a.arena_size);
		ck_assert_int_ge(stat_get("arena_used"), bytes);
		memset(d.map + d.a.arena_offset + args->dstHost.off, 0x5a, bytes);
		h->result = 0;
		h->reply_len = LAKE_OUTS_SIZE_cuMemcpyDtoH;
		ck_assert_int_eq(dmn_complete(&d, slot, h->seq), 0);
		ck_call(&c, 0);
		caller_finish(&c);
		ck_assert_int_eq(stat_get("arena_used"), 0);

		/* Now the caller gives up. */
		write_str(PARAM("timeout_ms"), "300");
		caller_start_cmd(&c, 1, "dtoh 65536");
		slot = dmn_next(&d);
		h = dmn_hdr(&d, slot);
		seq = h->seq;
		ck_call(&c, ETIMEDOUT);
		caller_finish(&c);
		write_str(PARAM("timeout_ms"), "10000");
		ck_assert_int_eq(stat_get("in_flight"), 1);
		ck_assert_msg(stat_get("arena_used") >= (long long)bytes,
			      "the staging of an abandoned command was freed while lakeD may "
			      "still write its reply there (arena_used %lld)",
			      stat_get("arena_used"));
		if (round == 0) {
			/* The late reply frees it. */
			h->result = 0;
			h->reply_len = LAKE_OUTS_SIZE_cuMemcpyDtoH;
			ck_assert_int_eq(dmn_complete(&d, slot, seq), 0);
			ck_assert_int_eq(stat_get("in_flight"), 0);
			ck_assert_int_eq(stat_get("arena_used"), 0);
		}
		/* Round 1: the daemon's going frees it. */
		dmn_stop(&d);
		assert_idle("after the abandoned staging");
	}
}
END_TEST

/* A caller killed while it waits (fatal signal) abandons its command like
 * one that timed out: counted as interrupted, its slot and staging stay
 * lakeD's until the reply. */
START_TEST(killed_caller_abandons_its_command)
{
	long long intr0 = stat_get("interrupted");
	struct lake_msg_hdr *h;
	struct caller c;
	struct dmn d;
	uint32_t slot, seq;
	int status;

	dmn_start(&d);
	caller_start_cmd(&c, 1, "dtoh 65536");
	slot = dmn_next(&d);
	h = dmn_hdr(&d, slot);
	seq = h->seq;
	ck_assert_uint_eq(h->api, LAKE_API_cuMemcpyDtoH);
	usleep(100000);	/* past its spin, asleep in the kernel */
	ck_assert_int_eq(kill(c.pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(c.pid, &status, 0), c.pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "caller: status %#x",
		      status);
	close(c.rfd);
	ck_assert_int_eq(stat_get("interrupted"), intr0 + 1);
	ck_assert_int_eq(stat_get("in_flight"), 1);
	ck_assert_int_ge(stat_get("arena_used"), 65536);
	h->result = 0;
	h->reply_len = LAKE_OUTS_SIZE_cuMemcpyDtoH;
	ck_assert_int_eq(dmn_complete(&d, slot, seq), 0);
	ck_assert_int_eq(stat_get("in_flight"), 0);
	ck_assert_int_eq(stat_get("arena_used"), 0);
	caller_start(&c, 1);
	serve_one(&d);
	ck_call(&c, 0);
	caller_finish(&c);
	dmn_stop(&d);
	assert_idle("after the killed caller");
}
END_TEST

/* The daemon goes away with a command pending: the caller gets -ENODEV at
 * once, and later calls fail fast.  The mapping holds the file: closing the
 * descriptor alone does not detach. */
START_TEST(detach_fails_pending_calls)
{
	long long unavailable0 = stat_get("unavailable");
	struct timespec t0, t1;
	struct caller c;
	struct dmn d;
	double ms;

	dmn_start(&d);
	caller_start(&c, 3);
	dmn_next(&d);	/* in flight, never answered */
	close(d.fd);
	d.fd = -1;
	usleep(200000);
	ck_assert_msg(stat_get("daemon") == 1, "closing the fd of a mapped region detached");
	ck_assert_int_eq(stat_get("in_flight"), 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	munmap(d.map, d.a.map_size);	/* the last reference: released */
	d.map = NULL;
	ck_call(&c, ENODEV);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	ck_assert_msg(ms < 2000, "the pending caller took %.0f ms to learn lakeD was gone", ms);
	ck_call(&c, ENODEV);	/* no daemon: fail fast */
	ck_call(&c, ENODEV);
	caller_finish(&c);
	ck_assert_int_ge(stat_get("unavailable"), unavailable0 + 3);
	assert_idle("after the detach");
}
END_TEST

/* Commands that were abandoned (timed out) and never answered are released
 * when the daemon goes. */
START_TEST(detach_releases_abandoned_slots)
{
	struct caller c;
	struct dmn d;
	int i;

	dmn_start(&d);
	write_str(PARAM("timeout_ms"), "200");
	caller_start(&c, 4);
	for (i = 0; i < 4; i++) {
		dmn_next(&d);
		ck_call(&c, ETIMEDOUT);
	}
	caller_finish(&c);
	ck_assert_int_eq(stat_get("in_flight"), 4);
	write_str(PARAM("timeout_ms"), "10000");
	dmn_stop(&d);
	assert_idle("after the detach");
	/* A new daemon serves from a clean queue. */
	dmn_start(&d);
	caller_start(&c, 2);
	serve_one(&d);
	ck_call(&c, 0);
	serve_one(&d);
	ck_call(&c, 0);
	caller_finish(&c);
	dmn_stop(&d);
	assert_idle("after the second daemon");
}
END_TEST

static Suite *ioctl_suite(void)
{
	Suite *s = suite_create("lake_ioctl");
	TCase *t;

	t = tcase_create("attach");
	tcase_add_checked_fixture(t, setup, NULL);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, attach_needs_cap_sys_admin);
	tcase_add_test(t, attach_bad_arguments);
	tcase_add_test(t, attach_one_daemon_at_a_time);
	tcase_add_test(t, attach_reports_the_layout);
	tcase_add_test(t, ioctl_unknown_is_enotty);
	tcase_add_test(t, ioctl_bad_pointers_are_efault);
	suite_add_tcase(s, t);

	t = tcase_create("mmap_poll_complete");
	tcase_add_checked_fixture(t, setup, NULL);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, mmap_rules);
	tcase_add_test(t, poll_non_daemon_is_pollerr);
	tcase_add_test(t, complete_bad_requests);
	suite_add_tcase(s, t);

	t = tcase_create("serve");
	tcase_add_checked_fixture(t, setup, NULL);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, queue_layout_and_untrusted_indexes);
	tcase_add_test(t, serve_by_hand);
	tcase_add_test(t, late_reply_after_timeout);
	tcase_add_test(t, abandoned_staging_stays_until_the_reply);
	tcase_add_test(t, killed_caller_abandons_its_command);
	tcase_add_test(t, detach_fails_pending_calls);
	tcase_add_test(t, detach_releases_abandoned_slots);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return lake_vmtest_main(ioctl_suite(), "test_ioctl");
}
