/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The kernel's channel: lake.ko's /dev/lake.  Attaching makes this process
 * the daemon; the shared region (ring + arena) is mmap'd; completions go back
 * with LAKE_IOC_COMPLETE and lakeD sleeps in poll() until the kernel signals
 * pending commands.  Closing the device makes the kernel fail pending calls.
 */
#ifndef LAKE_KCHAN_H
#define LAKE_KCHAN_H

#include <stddef.h>
#include <sys/types.h>
#include "lake_chan.h"

struct lake_kchan {
	struct lake_chan chan;		/* serve this with lake_serve() */
	int fd;
	int stop_fd;			/* readable: stop (polled with fd); -1: none */
	void *map;
	size_t map_size;
	struct lake_attach info;	/* what the kernel answered */
	char path[256];
};

/*
 * Opens @path and attaches (LAKE_PROTO_VERSION, LAKE_SPEC_HASH): this needs
 * CAP_SYS_ADMIN; nothing after it does.  Returns the device's fd (the
 * daemon's file: whoever holds it is lake.ko's daemon) with the layout in
 * @info, or a negative errno after logging why.
 */
int lake_kchan_attach(const char *path, struct lake_attach *info);
/*
 * Names process @pid as the one that may map the region of attached @fd from
 * now on (LAKE_IOC_HANDOFF: lake.ko lets only one process map it).  0 or
 * -errno after logging why.
 */
int lake_kchan_handoff(int fd, pid_t pid);
/* Maps the region of an attached @fd (which @k then owns).  0 or -errno. */
int lake_kchan_map(struct lake_kchan *k, int fd, const struct lake_attach *info,
		   const char *path, int stop_fd);

/*
 * Both: opens @path, attaches and maps the shared region.  @stop_fd (e.g. an eventfd, -1 for none) ends wait() when
 * it becomes readable.  On failure logs why, plainly, and returns a
 * negative errno (the channel is left closed).
 */
int lake_kchan_open(struct lake_kchan *k, const char *path, int stop_fd);
/* Unmaps and closes: the kernel fails the calls still pending. */
void lake_kchan_close(struct lake_kchan *k);

/* The message for an attach/open failure (for tests and callers). */
const char *lake_kchan_attach_error(int err);

#endif /* LAKE_KCHAN_H */
