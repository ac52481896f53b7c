/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * User-space clients' channels: liblake over a UNIX socket.
 *
 * A listener thread accepts connections on lakeD's socket.  Each client
 * sends a hello (include/lake/lake_uring.h) with a memfd holding its ring
 * and arena; lakeD checks everything in it, maps it, registers the arena
 * with cuMemHostRegister, and serves the ring on a thread of its own with
 * lake_serve() and a channel whose complete() stores each command's
 * sequence number in the slot's done word and futex-wakes waiting callers,
 * and whose wait() sleeps on the queue tail (futex, bounded) while watching
 * the client's socket and lakeD's stop flag.  When the client goes away
 * (socket hang-up), its connection is freed (its CUDA resources with it),
 * the arena unregistered and unmapped.
 *
 * Nothing a client sends or writes is trusted: the hello is checked field by
 * field, the memfd must be a sealed (F_SEAL_SHRINK) shmem file at least as
 * big as the layout, the hello must come within a few seconds, and serving
 * goes through lake_serve() and the server core, which check every queue
 * entry and slot.
 */
#ifndef LAKE_UCHAN_H
#define LAKE_UCHAN_H

#include <stdatomic.h>
#include <stddef.h>
#include "lake_uring.h"

struct lake_vendor_state;

#define LAKE_UCHAN_MAX_CLIENTS		256u
#define LAKE_UCHAN_HELLO_TIMEOUT_MS	5000
#define LAKE_UCHAN_WAIT_MS		100	/* longest sleep before looking at the socket */

struct lake_uchan_opts {
	const char *path;		/* the socket */
	unsigned int mode;		/* its permissions (e.g. 0660) */
	const char *group;		/* its group if that group exists (NULL: leave it) */
	unsigned int spin_us;		/* serve loop: spin after the last command */
	atomic_int *stop;		/* lakeD's stop flag (non-zero: stop) */
	int stop_fd;			/* readable once a stop was asked; -1: none */
	struct lake_vendor_state *vendor;
	unsigned int max_clients;	/* 0: LAKE_UCHAN_MAX_CLIENTS */
};

struct lake_uchan_server;

/*
 * Creates the socket (and its directory), then starts the listener thread.
 * A stale socket file (no lakeD behind it) is replaced; a live one, or a
 * path that is not a socket, is an error.  Logs why on failure and returns
 * a negative errno.
 */
int lake_uchan_start(struct lake_uchan_server **out, const struct lake_uchan_opts *o);

/*
 * Stops accepting, stops serving every client (their CUDA resources are
 * freed; they see the socket close), removes the socket file, frees @s.
 */
void lake_uchan_stop(struct lake_uchan_server *s);

/* Clients being served now. */
unsigned int lake_uchan_nclients(struct lake_uchan_server *s);

/*
 * Checks a hello's fields (not its memfd).  Returns 0, or a negative errno
 * with the reason in @why, worded for the client's user.
 */
int lake_uchan_check_hello(const struct lake_uhello *h, char *why, size_t whylen);

#endif /* LAKE_UCHAN_H */
