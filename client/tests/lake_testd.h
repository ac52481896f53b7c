/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Helpers of the tests that run liblake against real lakeD-fake processes:
 * a daemon per test on a temporary socket, its log, time, raw hellos.
 */
#ifndef LAKE_TESTD_H
#define LAKE_TESTD_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "lake_uring.h"

extern const char *fake_bin;	/* lakeD-fake */
extern char tmpdir[64];		/* the tests' scratch directory (holds empty.conf) */

struct td {
	pid_t pid;
	char sock[108];
	char log[160];
};

double now_ms(void);
char *slurp(const char *path);				/* malloc'd; NULL if unreadable */
char *wait_line(const char *path, const char *needle, int ms);	/* the line holding @needle */
bool wait_has(const char *path, const char *needle, int ms);
int count_in(const char *path, const char *needle);

/* Starts lakeD-fake on @sock (foreground, log to @log, user clients only),
 * with @extra arguments (NULL-terminated), and waits until it serves. */
void td_start_args(struct td *d, const char *sock, const char *log, const char *const *extra);
void td_start_at(struct td *d, const char *sock, const char *log, bool verify);
/* ... on TMPDIR/NAME-PID.sock, and points LAKE_SOCKET there. */
void td_start(struct td *d, const char *name, bool verify);
/* Signals lakeD: SIGSTOP, SIGCONT and SIGKILL go to its workers too. */
void td_signal(struct td *d, int sig);
void td_stop(struct td *d, int sig);

void capture_stderr(char *path, size_t n, const char *name);	/* stderr to a file */
int open_fds(pid_t pid);
double cpu_seconds(pid_t pid);				/* user + system so far */
int child_pids(pid_t parent, const char *comm, pid_t *out, int max);
long long proc_status(pid_t pid, const char *key, int base);	/* e.g. "Uid:", 10 */

int raw_connect(const char *path);
int make_memfd(__u64 size, bool seal);
int raw_send(const char *path, const void *h, size_t len, const int *fds, int nfd);
int raw_reply(int sock, struct lake_uhello_reply *r);	/* its status */

/* Runs @suite, each test in its own process, with a fresh scratch directory
 * (mode @dir_mode) and no LAKE_* settings; removes it after (unless
 * LAKE_TEST_KEEP is set).  Returns main()'s status. */
int td_run(const char *name, Suite *suite, mode_t dir_mode);

#endif /* LAKE_TESTD_H */
