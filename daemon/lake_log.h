/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * lakeD's logging: one line per message on stderr, "<prog>: <level>: text",
 * which systemd's journal captures (with the right priority: when stderr is
 * the journal, each line also carries an sd-daemon "<N>" prefix).  After
 * lakeD detaches from its terminal, messages go to syslog instead.
 */
#ifndef LAKE_LOG_H
#define LAKE_LOG_H

#include <stdbool.h>

enum lake_log_level {
	LAKE_LOG_ERROR = 0,
	LAKE_LOG_WARN,
	LAKE_LOG_INFO,
	LAKE_LOG_DEBUG,
};

/* Messages above this level are dropped (default LAKE_LOG_INFO). */
extern int lake_log_level;

/* @prog prefixes every line ("lakeD", "lakeD-fake"). */
void lake_log_init(const char *prog);
/* From now on, log through syslog(3) (LOG_DAEMON), not stderr. */
void lake_log_use_syslog(void);

void lake_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define lake_err(...)	lake_log(LAKE_LOG_ERROR, __VA_ARGS__)
#define lake_warn(...)	lake_log(LAKE_LOG_WARN, __VA_ARGS__)
#define lake_info(...)	lake_log(LAKE_LOG_INFO, __VA_ARGS__)
#define lake_debug(...)	do { if (lake_log_level >= LAKE_LOG_DEBUG) lake_log(LAKE_LOG_DEBUG, __VA_ARGS__); } while (0)
#define lake_log_debug_on()	(lake_log_level >= LAKE_LOG_DEBUG)

/* "error", "warn" (or "warning"), "info", "debug" -> level; -1 if none. */
int lake_log_level_parse(const char *s);
const char *lake_log_level_name(int level);

#endif /* LAKE_LOG_H */
