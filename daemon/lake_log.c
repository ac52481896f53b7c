// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * lakeD's logging (see lake_log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/stat.h>
#include "lake_log.h"

int lake_log_level = LAKE_LOG_INFO;

static const char *lake_log_prog = "lakeD";
static bool lake_log_syslog;
static bool lake_log_journal;	/* stderr is systemd's journal: add "<N>" priorities */

static const char *const lake_level_names[] = { "error", "warn", "info", "debug" };
static const char *const lake_level_words[] = { "error", "warning", "info", "debug" };
static const int lake_level_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void lake_log_init(const char *prog)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	lake_log_prog = prog;
	/* systemd sets JOURNAL_STREAM=<dev>:<inode> of the stream it connected. */
	if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0)
		lake_log_journal = (unsigned long long)st.st_dev == dev &&
				   (unsigned long long)st.st_ino == ino;
}

void lake_log_use_syslog(void)
{
	openlog(lake_log_prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	lake_log_syslog = true;
}

void lake_log(int level, const char *fmt, ...)
{
	char msg[1024];
	char line[1200];
	va_list ap;
	int n;

	if (level > lake_log_level || level < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (lake_log_syslog) {
		syslog(lake_level_prio[level], "%s", msg);
		return;
	}
	/* One write per line, so that lines of several threads never mix. */
	if (lake_log_journal)
		n = snprintf(line, sizeof(line), "<%d>%s: %s: %s\n", lake_level_prio[level],
			     lake_log_prog, lake_level_words[level], msg);
	else
		n = snprintf(line, sizeof(line), "%s: %s: %s\n", lake_log_prog,
			     lake_level_words[level], msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}

int lake_log_level_parse(const char *s)
{
	int i;

	if (!strcasecmp(s, "warning"))
		return LAKE_LOG_WARN;
	for (i = 0; i <= LAKE_LOG_DEBUG; i++)
		if (!strcasecmp(s, lake_level_names[i]))
			return i;
	return -1;
}

const char *lake_log_level_name(int level)
{
	return level >= 0 && level <= LAKE_LOG_DEBUG ? lake_level_names[level] : "?";
}
