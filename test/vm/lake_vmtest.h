/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Helpers shared by the user-space VM tests of /dev/lake (test_ioctl,
 * test_hostile, fuzz_kchan): files and statistics, a hand-made daemon that
 * attaches, maps and consumes the queue itself, and kernel callers (child
 * processes driving lake_selftest.ko).  libcheck assertions throughout.
 */
#ifndef LAKE_VMTEST_H
#define LAKE_VMTEST_H

#include <check.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <linux/lake.h>
#include "lake_proto_gen.h"

#define DEV		"/dev/lake"
#define STATS		"/sys/kernel/debug/lake/stats"
#define RUN		"/sys/kernel/debug/lake_selftest/run"
#define RESULT		"/sys/kernel/debug/lake_selftest/result"
#define PARAM(n)	"/sys/module/lake/parameters/" n

extern long page_size;

#define ck_errno(expr, want)                                                          \
	do {                                                                          \
		int got_ = (expr);                                                    \
		ck_assert_msg(got_ == (want), "%s: got %s (%d), want %s", #expr,      \
			      got_ ? strerror(got_) : "success", got_, strerror(want)); \
	} while (0)

/* A hand-made daemon: attached, mapped, consuming the queue itself. */
struct dmn {
	int fd;
	struct lake_attach a;
	uint8_t *map;
	struct lake_ring_ctrl *ctrl;
	uint32_t *sq;
	uint8_t *slots;
	uint32_t head;
};

/* A child process making @n null round trips from kernel context through
 * lake_selftest.ko, one at a time, reporting each one's errno (0: success)
 * over a pipe. */
struct caller {
	pid_t pid;
	int rfd;
};

#define ck_call(c, want)                                                              \
	do {                                                                          \
		int e_ = caller_result(c);                                            \
		ck_assert_msg(e_ == (want), "kernel call: got %s (%d), want %s",      \
			      e_ ? strerror(e_) : "success", e_,                      \
			      (want) ? strerror(want) : "success");                   \
	} while (0)

long long read_ll(const char *path);
void write_str(const char *path, const char *s);
long long stat_get(const char *key);
void stat_nulls(long long *calls, long long *errors);
void assert_idle(const char *when);
void setup(void);
int dev_open(void);
void attach_args(struct lake_attach *a);
int ioc(int fd, unsigned long cmd, void *arg);
int try_attach(int fd, const struct lake_attach *in);
void dmn_start(struct dmn *d);
void dmn_stop(struct dmn *d);
struct lake_msg_hdr *dmn_hdr(struct dmn *d, uint32_t slot);
struct lake_nop *dmn_nop_args(struct dmn *d, uint32_t slot);
struct lake_nop *dmn_nop_outs(struct dmn *d, uint32_t slot);
uint32_t dmn_next(struct dmn *d);
void dmn_reply_nop(struct dmn *d, uint32_t slot);
int dmn_complete_n(struct dmn *d, struct lake_completion *c, uint32_t n);
int dmn_complete(struct dmn *d, uint32_t slot, uint32_t seq);
void caller_start_cmd(struct caller *c, unsigned int n, const char *cmd);
void caller_start(struct caller *c, unsigned int n);
int caller_result(struct caller *c);
void caller_finish(struct caller *c);
uint32_t serve_one(struct dmn *d);
uint8_t *guarded_page(void);
/* Runs @suite (as root, else exit 2); 0 if every test passed. */
int lake_vmtest_main(Suite *suite, const char *name);

#endif /* LAKE_VMTEST_H */
