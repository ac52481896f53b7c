// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The kernel's channel (see lake_kchan.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include "lake_kchan.h"
#include "lake_log.h"

#define LAKE_STR_(x)	#x
#define LAKE_STR(x)	LAKE_STR_(x)

#define lake_kchan_of(ch)	((struct lake_kchan *)((char *)(ch) - offsetof(struct lake_kchan, chan)))

static int lake_kchan_complete(struct lake_chan *ch, struct lake_completion *done, unsigned int n)
{
	struct lake_kchan *k = lake_kchan_of(ch);
	struct lake_complete c = {
		.count = n,
		.entries = (__u64)(uintptr_t)done,
	};
	unsigned int i, nbad = 0;
	int err = 0;

	while (ioctl(k->fd, LAKE_IOC_COMPLETE, &c) < 0) {
		if (errno == EINTR)
			continue;
		err = errno;
		break;
	}
	/*
	 * lake.ko processes every entry and returns the first bad status as
	 * the ioctl's error (ENOENT: a caller that gave up; EINVAL: a slot it
	 * does not know).  Any other error, or EINVAL with no entry marked,
	 * means the request itself was refused.
	 */
	for (i = 0; i < n; i++) {
		if (done[i].status == 0)
			continue;
		nbad++;
		if (done[i].status == -ENOENT)	/* the caller gave up (timeout, signal) */
			lake_debug("%s: slot %u seq %u was no longer in flight", ch->name,
				   done[i].slot, done[i].seq);
		else
			lake_warn("%s: completion of slot %u seq %u refused: %s", ch->name,
				  done[i].slot, done[i].seq, strerror(-done[i].status));
	}
	if (err && !((err == ENOENT || err == EINVAL) && nbad))
		return -err;
	return 0;
}

static int lake_kchan_wait(struct lake_chan *ch)
{
	struct lake_kchan *k = lake_kchan_of(ch);
	struct pollfd p[2] = {
		{ .fd = k->fd, .events = POLLIN },
		{ .fd = k->stop_fd, .events = POLLIN },
	};

	if (poll(p, k->stop_fd >= 0 ? 2 : 1, -1) < 0)
		return errno == EINTR ? LAKE_CHAN_AGAIN : -errno;
	if (k->stop_fd >= 0 && p[1].revents)
		return LAKE_CHAN_STOP;
	if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))
		return -ENODEV;
	return LAKE_CHAN_AGAIN;
}

static const struct lake_chan_ops lake_kchan_ops = {
	.complete = lake_kchan_complete,
	.wait = lake_kchan_wait,
};

const char *lake_kchan_attach_error(int err)
{
	switch (err) {
	case EPERM:
	case EACCES:
		return "permission denied: attaching needs CAP_SYS_ADMIN (run lakeD as root)";
	case EBUSY:
		return "another lakeD is attached";
	case EPROTONOSUPPORT:
		return "protocol version mismatch: lakeD speaks LAKE protocol "
		       "version " LAKE_STR(LAKE_PROTO_VERSION) " and lake.ko another one "
		       "-- install matching builds";
	case EPROTO:
		return "spec hash mismatch: lakeD and lake.ko were generated from "
		       "different api-spec/ -- rebuild both";
	case ENOTTY:
	case EINVAL:
		return "not a LAKE device, or a lake.ko that does not know LAKE_IOC_ATTACH";
	case ENODEV:
	case ENXIO:
		return "lake.ko is going away";
	default:
		return NULL;
	}
}

int lake_kchan_attach(const char *path, struct lake_attach *info)
{
	struct lake_attach a = {
		.version = LAKE_PROTO_VERSION,
		.flags = 0,
		.spec_hash = LAKE_SPEC_HASH,
	};
	const char *msg;
	int fd, err;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		if (err == ENOENT)
			lake_err("%s missing: is lake.ko loaded? (modprobe lake)", path);
		else if (err == EACCES || err == EPERM)
			lake_err("%s: permission denied: run lakeD as root", path);
		else
			lake_err("cannot open %s: %s", path, strerror(err));
		return -err;
	}
	if (ioctl(fd, LAKE_IOC_ATTACH, &a) < 0) {
		err = errno;
		msg = lake_kchan_attach_error(err);
		if (msg)
			lake_err("%s: cannot attach: %s", path, msg);
		else
			lake_err("%s: cannot attach: %s", path, strerror(err));
		close(fd);
		return -err;
	}
	if (a.map_size == 0 || a.map_size > SIZE_MAX) {
		lake_err("%s: lake.ko reported a region of %llu bytes", path,
			 (unsigned long long)a.map_size);
		close(fd);
		return -EPROTO;
	}
	*info = a;
	return fd;
}

int lake_kchan_handoff(int fd, pid_t pid)
{
	__s32 nr = (__s32)pid;
	int err;

	if (ioctl(fd, LAKE_IOC_HANDOFF, &nr) == 0)
		return 0;
	err = errno;
	lake_err("cannot hand /dev/lake's channel to process %d: %s", (int)pid,
		 err == ENOTTY ? "lake.ko does not know LAKE_IOC_HANDOFF (rebuild it)" : strerror(err));
	return -err;
}

int lake_kchan_map(struct lake_kchan *k, int fd, const struct lake_attach *info,
		   const char *path, int stop_fd)
{
	const struct lake_attach a = *info;
	char why[256];
	int err;

	memset(k, 0, sizeof(*k));
	k->fd = fd;
	k->stop_fd = stop_fd;
	k->info = a;
	snprintf(k->path, sizeof(k->path), "%s", path);
	k->map_size = (size_t)a.map_size;
	k->map = mmap(NULL, k->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, k->fd, 0);
	if (k->map == MAP_FAILED) {
		err = errno;
		k->map = NULL;
		lake_err("%s: cannot map the shared region (%zu bytes): %s", path, k->map_size,
			 strerror(err));
		goto fail;
	}
	if (lake_ring_init(&k->chan.ring, k->map, a.map_size, &a, why, sizeof(why))) {
		lake_err("%s: lake.ko reported an inconsistent layout: %s", path, why);
		err = EPROTO;
		goto fail;
	}
	if (a.nslots & (a.nslots - 1))
		lake_warn("%s: %u slots, not a power of two: queue positions repeat when the "
			  "32-bit counters wrap, after 2^32 commands (load lake.ko with nslots=2^k)",
			  path, a.nslots);
	k->chan.name = k->path;
	k->chan.ops = &lake_kchan_ops;
	k->chan.lazy_reports = true;	/* lake.ko reads done_seq while it spins */
	lake_info("%s: attached: %u slots, arena %llu MiB, region %zu bytes", path, a.nslots,
		  (unsigned long long)(a.arena_size >> 20), k->map_size);
	return 0;
fail:
	lake_kchan_close(k);
	return -err;
}

int lake_kchan_open(struct lake_kchan *k, const char *path, int stop_fd)
{
	struct lake_attach a;
	int fd = lake_kchan_attach(path, &a);

	if (fd < 0) {
		memset(k, 0, sizeof(*k));
		k->fd = -1;
		return fd;
	}
	return lake_kchan_map(k, fd, &a, path, stop_fd);
}

void lake_kchan_close(struct lake_kchan *k)
{
	if (k->map)
		munmap(k->map, k->map_size);
	k->map = NULL;
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}
