/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * User-space clients: liblake over a UNIX socket (include/lake/lake_uring.h).
 *
 * Two sides.  The supervisor (lake_ulisten.c, lake_super.c) owns the socket:
 * it accepts, learns the peer's credentials (SO_PEERCRED), reads the hello
 * with its memfd within hello_timeout_ms, checks every field and the memfd
 * (a sealed shmem file at least as big as the layout) without mapping it,
 * applies the quotas, and either answers with a refusal that says why or
 * hands the socket and the memfd to the worker of that user.  The worker
 * (lake_uchan.c) maps the memfd, answers the hello, registers the arena with
 * cuMemHostRegister and serves the ring on a thread of its own with
 * lake_serve() and a channel whose complete() stores each command's sequence
 * number in the slot's done word and futex-wakes waiting callers, and whose
 * wait() sleeps on the queue tail (futex, bounded) while watching the
 * client's socket and the worker's stop flag.  When the client goes away
 * (socket hang-up), its connection is freed (its CUDA resources with it),
 * the arena unregistered and unmapped, and the supervisor told.
 *
 * Nothing a client sends or writes is trusted: the hello is checked field by
 * field in both processes, and serving goes through lake_serve() and the
 * server core, which copy and check every queue entry and slot.
 */
#ifndef LAKE_UCHAN_H
#define LAKE_UCHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "lake_uring.h"

#define LAKE_UCHAN_MAX_FDS	8	/* fds accepted in one hello; all but the first closed */
#define LAKE_UCHAN_WAIT_MS	100	/* longest sleep before looking at the socket */

/* The socket. */
struct lake_ulisten {
	int fd;
	char path[108];
	dev_t dev;
	ino_t ino;
};

/*
 * Creates the socket (and its directory) at @path with @mode, given to
 * @group where that group exists.  A stale socket file (no lakeD behind it)
 * is replaced; a live one, or a path that is not a socket, is an error.
 * Logs why on failure and returns a negative errno.
 */
int lake_ulisten_open(struct lake_ulisten *l, const char *path, unsigned int mode,
		      const char *group);
/* Closes it and removes the file, if it is still ours. */
void lake_ulisten_close(struct lake_ulisten *l);

/*
 * Checks a hello's fields (not its memfd).  Returns 0, or a negative errno
 * with the reason in @why, worded for the client's user.
 */
int lake_uchan_check_hello(const struct lake_uhello *h, char *why, size_t whylen);
/* The memfd: a sealed shmem file big enough for @h's layout. */
int lake_uchan_check_fd(int fd, const struct lake_uhello *h, char *why, size_t whylen);

#define LAKE_HELLO_CLIENT	0
#define LAKE_HELLO_STATUS	1
/*
 * Reads the message waiting on @sock: a hello (LAKE_HELLO_CLIENT, @h and
 * *@fd, the first fd that came; others are closed) or a status request
 * (LAKE_HELLO_STATUS).  -EAGAIN: nothing yet.  Else a negative errno and why.
 */
int lake_uchan_recv_hello(int sock, struct lake_uhello *h, int *fd, char *why, size_t whylen);

/* Answers a hello: @status 0 (served by @server) or a negative errno and
 * @reason.  False when the answer could not be sent. */
bool lake_uchan_reply(int sock, __u32 client, pid_t server, int status, const char *reason);

#endif /* LAKE_UCHAN_H */
