/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * lakeD's processes: a supervisor and its workers.
 *
 * The supervisor (lakeD's main process) attaches to /dev/lake, owns the
 * user clients' socket, reads every hello, applies the quotas, and starts
 * workers, one process per tenant, each by fork() and exec() of lakeD
 * itself (a fresh image: nothing of the supervisor or of another tenant in
 * its memory) with the credentials of whom it serves:
 *
 *   kernel  the kernel's channel (/dev/lake, attached by the supervisor and
 *           handed over as fd LAKE_WORKER_FD_DEV), as kernel_user or as root
 *           without capabilities, with kernel_threads serving threads;
 *   user    every client of one user id, as that user (its groups too), no
 *           capabilities; each client (its socket and memfd handed over with
 *           SCM_RIGHTS) on threads of its own;
 *   (vm     one VM's shared-memory ring: the same worker interface -- an
 *           init message, the channel's fds, lake_serve() over a channel
 *           whose complete()/wait() the transport supplies.)
 *
 * Between them, a SOCK_SEQPACKET pair at fd LAKE_WORKER_FD_CTL: the
 * supervisor sends struct lake_worker_init, then (user workers) one struct
 * lake_worker_client per client; the worker answers struct
 * lake_worker_report (a client gone, its usage).  Closing it stops the
 * worker; a worker's exit closes it.  Workers never need the supervisor to
 * serve: only to be given clients.
 */
#ifndef LAKE_WORKER_H
#define LAKE_WORKER_H

#include <stdbool.h>
#include <sys/types.h>
#include <linux/lake.h>
#include "lake_config.h"
#include "lake_priv.h"
#include "lake_uring.h"

#define LAKE_WORKER_FD_CTL	3
#define LAKE_WORKER_FD_DEV	4
#define LAKE_WORKER_FD_EXE	5	/* (only until exec) */

enum lake_worker_kind {
	LAKE_WORKER_KERNEL = 1,
	LAKE_WORKER_USER = 2,
};

#define LAKE_WORKER_MAGIC	0x4c414b57u	/* "LAKW" */

/* supervisor -> worker, first */
struct lake_worker_init {
	__u32 magic;
	__u32 kind;			/* enum lake_worker_kind */
	__u32 uid;			/* whom it serves (user workers) */
	__u32 syslog;			/* log to syslog, not stderr */
	pid_t supervisor;
	struct lake_attach attach;	/* kernel workers: the attached region's layout */
	struct lake_config cfg;		/* the same binary: the same layout */
};

/* supervisor -> user worker: serve this client (fds: its socket, its memfd) */
struct lake_worker_client {
	__u32 magic;
	__u32 id;			/* lakeD's number for it */
	__s32 pid;			/* its process, as SO_PEERCRED said */
	__u32 uid;
	struct lake_uhello hello;	/* checked by the supervisor */
};

enum lake_worker_report_type {
	LAKE_REPORT_GONE = 1,		/* client @id is gone; its arena no longer pinned */
	LAKE_REPORT_USAGE = 2,		/* what the worker uses now */
};

/* worker -> supervisor */
struct lake_worker_report {
	__u32 magic;
	__u32 type;
	__u32 id;
	__u32 clients;			/* served now */
	__u64 arena_size;		/* GONE: the client's arena */
	__u64 gpu_bytes;		/* device memory its clients hold now */
};

/*
 * Starts a worker: fork(), the credentials @creds (NULL: keep ours, but no
 * capabilities), no new privileges, parent-death signal, then exec() of
 * @exe_fd (lakeD itself) as "@argv0 --worker KIND" with @dev_fd (or -1) as
 * LAKE_WORKER_FD_DEV, and sends @init.  @env_strict: only the environment a
 * worker needs (a user's worker must not read lakeD's).  Returns the
 * worker's pid with *ctl its control socket, or a negative errno.
 */
pid_t lake_worker_spawn(int exe_fd, const char *argv0, const struct lake_worker_init *init,
			const struct lake_creds *creds, int dev_fd, bool env_strict, int *ctl);

/* SIGTERM and SIGINT to @handler (once: a second one kills), SIGPIPE ignored. */
void lake_stop_signals(void (*handler)(int));

/* The worker's side: called from main() for "--worker"; returns the exit status. */
int lake_worker_main(const char *prog);

/* In a worker: its stop flag (SIGTERM, or the supervisor went away) and an
 * eventfd that becomes readable with it. */
#include <stdatomic.h>
atomic_int *lake_worker_stop_flag(void);
int lake_worker_stop_eventfd(void);
void lake_worker_request_stop(void);

/* The workers' bodies (lake_worker.c, lake_uchan.c). */
int lake_kworker_run(const struct lake_worker_init *init, int ctl, int dev_fd);
int lake_uworker_run(const struct lake_worker_init *init, int ctl);

/* Sends/receives one message with up to @nfd fds; 0, or a negative errno
 * (-ENOTCONN: the other side closed). */
int lake_msg_send(int sock, const void *msg, size_t len, const int *fds, int nfd);
int lake_msg_recv(int sock, void *msg, size_t len, int *fds, int maxfd, int *nfd);

#endif /* LAKE_WORKER_H */
