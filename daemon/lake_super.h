/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * lakeD's supervisor: its main process once attached (see lake_worker.h for
 * the processes and daemon/README.md for why).  Single-threaded: one poll()
 * over the socket, the connections that have not said hello yet, the
 * workers' control sockets and the stop eventfd.
 */
#ifndef LAKE_SUPER_H
#define LAKE_SUPER_H

#include <stdatomic.h>
#include <linux/lake.h>
#include "lake_config.h"

struct lake_super_opts {
	const struct lake_config *cfg;
	const char *prog;		/* "lakeD" or "lakeD-fake": the workers' argv[0] */
	int exe_fd;			/* lakeD's own binary (opened at start) */
	int dev_fd;			/* the attached /dev/lake, or -1 */
	struct lake_attach attach;	/* ...its layout */
	int stop_fd;			/* readable once a stop was asked */
	atomic_int *stop;
	int report_fd;			/* detached: tell the parent once serving; else -1 */
	void (*detach_done)(int report_fd);
	int syslog;			/* workers log to syslog */
};

/*
 * Starts the kernel channel's worker (if @dev_fd), opens the socket (if
 * configured), drops privileges, and supervises until a stop or until the
 * kernel channel's worker fails.  Returns lakeD's exit status.
 */
int lake_super_run(const struct lake_super_opts *o);

/* lakeD --status: asks the lakeD on @socket, prints its answer.  Exit status. */
int lake_super_status(const char *socket);

#endif /* LAKE_SUPER_H */
