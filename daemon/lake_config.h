/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * lakeD's settings: defaults, then the config file (key = value, # comments),
 * then the command line, each overriding the one before.
 */
#ifndef LAKE_CONFIG_H
#define LAKE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "lake_uring.h"

#define LAKE_DEFAULT_DEVICE	"/dev/lake"
#define LAKE_DEFAULT_CONFIG	"/etc/lake/lakeD.conf"
#define LAKE_DEFAULT_SOCKET	LAKE_URING_DEFAULT_SOCKET
#define LAKE_DEFAULT_SOCKET_MODE	0660u
#define LAKE_SOCKET_GROUP	"lake"	/* the socket's group, where that group exists */
#define LAKE_DEFAULT_SPIN_US	50u
#define LAKE_MAX_SPIN_US	1000000u	/* one second */
#define LAKE_CONFIG_PATH_MAX	256

#define LAKE_DEFAULT_KERNEL_USER	"lake"	/* the kernel channel's process, where the user exists */

struct lake_config {
	char device[LAKE_CONFIG_PATH_MAX];	/* the kernel channel's device */
	unsigned int spin_us;			/* spin this long after the last command; 0: never */
	int log_level;				/* enum lake_log_level */
	char socket[LAKE_CONFIG_PATH_MAX];	/* the UNIX socket for user clients ("": none) */
	unsigned int socket_mode;		/* its permissions */
	bool foreground;			/* don't detach from the terminal */
	bool fake_verify;			/* lakeD-fake only: the fakes check their inputs */
	char config[LAKE_CONFIG_PATH_MAX];	/* the config file read ("" when none) */
	char kernel_user[64];			/* the kernel channel's process runs as this user */
	/* Serving threads. */
	unsigned int kernel_threads;		/* for the kernel channel */
	unsigned int client_threads;		/* per user client */
	/* Quotas (0: no limit where that is allowed). */
	unsigned int max_clients;		/* user clients served at once */
	unsigned int max_clients_per_uid;
	unsigned int max_pending;		/* connections that have not said hello yet */
	unsigned int max_pending_per_uid;
	unsigned int hello_timeout_ms;		/* how long a connection may take to say hello */
	unsigned int hello_timeout_busy_ms;	/* ...when more than max_pending / 2 wait */
	unsigned int max_arena_mb;		/* one client's arena (pinned memory) */
	unsigned int max_pinned_mb_per_uid;	/* all arenas of one user */
	unsigned int max_gpu_mb_per_client;	/* device memory one connection allocates; 0: none */
	unsigned int max_gpu_mb_per_uid;	/* ...all of one user's (its process) */
	unsigned int max_threads_per_client;	/* calling threads lakeD keeps state for */
	unsigned int worker_idle_s;		/* a user's process outlives its last client this long */
};

enum lake_config_result {
	LAKE_CONFIG_OK = 0,
	LAKE_CONFIG_HELP,	/* --help: print usage, exit 0 */
	LAKE_CONFIG_VERSION,	/* --version */
	LAKE_CONFIG_CHECK,	/* --check: probe the vendor libraries and GPU, exit */
	LAKE_CONFIG_STATUS,	/* --status: ask the running lakeD, print its answer */
	LAKE_CONFIG_ERROR,	/* @err says why: exit 2 */
};

void lake_config_defaults(struct lake_config *c);

/*
 * Applies the settings of a config file read from @f (@name for messages) to
 * @c.  Returns 0, or -1 with "<name>:<line>: what" in @err.
 */
int lake_config_read(struct lake_config *c, FILE *f, const char *name, char *err, size_t errlen);

/*
 * Applies the file at @path.  A missing file is an error only if @must_exist.
 * Returns 0 (and records @path in c->config if it was read), or -1 with @err.
 */
int lake_config_load_file(struct lake_config *c, const char *path, bool must_exist,
			  char *err, size_t errlen);

/*
 * The whole sequence: defaults, the config file (--config FILE, else
 * @default_path if it exists; @default_path may be NULL), then the command
 * line.  argv[0] is skipped.
 */
enum lake_config_result lake_config_from_args(struct lake_config *c, int argc, char **argv,
					      const char *default_path, char *err, size_t errlen);

/* Prints the usage text for @prog. */
void lake_config_usage(FILE *f, const char *prog);

/* One line of the limits in force, for the log and the status output. */
void lake_config_describe_limits(const struct lake_config *c, char *buf, size_t n);

#endif /* LAKE_CONFIG_H */
