// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * lakeD's settings (see lake_config.h).
 */
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "lake_config.h"
#include "lake_log.h"

void lake_config_defaults(struct lake_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->device, sizeof(c->device), "%s", LAKE_DEFAULT_DEVICE);
	c->spin_us = LAKE_DEFAULT_SPIN_US;
	c->log_level = LAKE_LOG_INFO;
	snprintf(c->socket, sizeof(c->socket), "%s", LAKE_DEFAULT_SOCKET);
	c->socket_mode = LAKE_DEFAULT_SOCKET_MODE;
	snprintf(c->kernel_user, sizeof(c->kernel_user), "%s", LAKE_DEFAULT_KERNEL_USER);
	c->kernel_threads = 4;
	c->client_threads = 1;
	c->max_clients = 256;
	c->max_clients_per_uid = 64;
	c->max_pending = 128;
	c->max_pending_per_uid = 8;
	c->hello_timeout_ms = 5000;
	c->hello_timeout_busy_ms = 250;
	c->max_arena_mb = 4096;
	c->max_pinned_mb_per_uid = 16384;
	c->max_gpu_mb_per_client = 0;
	c->max_gpu_mb_per_uid = 0;
	c->max_threads_per_client = 1024;
	c->worker_idle_s = 30;
}

/* The numeric settings: key, where, range (min > 0: 0 is not "no limit"). */
static const struct lake_num_key {
	const char *key;
	size_t off;
	unsigned int min, max;
	const char *what;
} lake_num_keys[] = {
#define LAKE_NUM(k, lo, hi, w) { #k, offsetof(struct lake_config, k), lo, hi, w }
	LAKE_NUM(kernel_threads, 1, 64, "serving threads"),
	LAKE_NUM(client_threads, 1, 64, "serving threads"),
	LAKE_NUM(max_clients, 1, 65536, "clients"),
	LAKE_NUM(max_clients_per_uid, 1, 65536, "clients"),
	LAKE_NUM(max_pending, 1, 65536, "connections"),
	LAKE_NUM(max_pending_per_uid, 1, 65536, "connections"),
	LAKE_NUM(hello_timeout_ms, 10, 600000, "milliseconds"),
	LAKE_NUM(hello_timeout_busy_ms, 10, 600000, "milliseconds"),
	LAKE_NUM(max_arena_mb, 0, 16384, "MiB"),
	LAKE_NUM(max_pinned_mb_per_uid, 0, 1048576, "MiB"),
	LAKE_NUM(max_gpu_mb_per_client, 0, 16777216, "MiB (0: no limit)"),
	LAKE_NUM(max_gpu_mb_per_uid, 0, 16777216, "MiB (0: no limit)"),
	LAKE_NUM(max_threads_per_client, 16, 1048576, "threads"),
	LAKE_NUM(worker_idle_s, 0, 86400, "seconds"),
#undef LAKE_NUM
};

#define LAKE_NNUM	(sizeof(lake_num_keys) / sizeof(lake_num_keys[0]))

static void lake_cfg_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void lake_cfg_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int lake_set_path(char *dst, const char *val, const char *what, char *err, size_t errlen)
{
	size_t n = strlen(val);

	if (n == 0) {
		lake_cfg_err(err, errlen, "%s: empty path", what);
		return -1;
	}
	if (n >= LAKE_CONFIG_PATH_MAX) {
		lake_cfg_err(err, errlen, "%s: path longer than %d bytes", what,
			     LAKE_CONFIG_PATH_MAX - 1);
		return -1;
	}
	memcpy(dst, val, n + 1);
	return 0;
}

static int lake_set_spin(struct lake_config *c, const char *val, char *err, size_t errlen)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(val, &end, 10);
	if (!isdigit((unsigned char)val[0]) || *end || errno || v > LAKE_MAX_SPIN_US) {
		lake_cfg_err(err, errlen, "spin_us: '%s' is not a number of microseconds 0..%u",
			     val, LAKE_MAX_SPIN_US);
		return -1;
	}
	c->spin_us = (unsigned int)v;
	return 0;
}

static int lake_set_level(struct lake_config *c, const char *val, char *err, size_t errlen)
{
	int l = lake_log_level_parse(val);

	if (l < 0) {
		lake_cfg_err(err, errlen, "log_level: '%s' is not one of error, warn, info, debug", val);
		return -1;
	}
	c->log_level = l;
	return 0;
}

/* "socket = none" (or off): no user-space clients. */
static int lake_set_socket(struct lake_config *c, const char *val, char *err, size_t errlen)
{
	if (!strcmp(val, "none") || !strcmp(val, "off")) {
		c->socket[0] = 0;
		return 0;
	}
	return lake_set_path(c->socket, val, "socket", err, errlen);
}

static int lake_set_mode(struct lake_config *c, const char *val, char *err, size_t errlen)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(val, &end, 8);
	if (!isdigit((unsigned char)val[0]) || *end || errno || v > 0777) {
		lake_cfg_err(err, errlen, "socket_mode: '%s' is not an octal mode 0..0777", val);
		return -1;
	}
	c->socket_mode = (unsigned int)v;
	return 0;
}

static int lake_set_num(struct lake_config *c, const struct lake_num_key *k, const char *val,
			char *err, size_t errlen)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(val, &end, 10);
	if (!isdigit((unsigned char)val[0]) || *end || errno || v < k->min || v > k->max) {
		lake_cfg_err(err, errlen, "%s: '%s' is not a number of %s %u..%u", k->key, val,
			     k->what, k->min, k->max);
		return -1;
	}
	*(unsigned int *)((char *)c + k->off) = (unsigned int)v;
	return 0;
}

static int lake_set_user(struct lake_config *c, const char *val, char *err, size_t errlen)
{
	size_t n = strlen(val);

	if (!n || n >= sizeof(c->kernel_user) || strchr(val, ':') || strchr(val, '/')) {
		lake_cfg_err(err, errlen, "kernel_user: '%s' is not a user name", val);
		return -1;
	}
	memcpy(c->kernel_user, val, n + 1);
	return 0;
}

/* Applies one setting; the keys of the config file. */
static int lake_config_set(struct lake_config *c, const char *key, const char *val,
			   char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < LAKE_NNUM; i++)
		if (!strcmp(key, lake_num_keys[i].key))
			return lake_set_num(c, &lake_num_keys[i], val, err, errlen);
	if (!strcmp(key, "kernel_user"))
		return lake_set_user(c, val, err, errlen);
	if (!strcmp(key, "device"))
		return lake_set_path(c->device, val, "device", err, errlen);
	if (!strcmp(key, "spin_us"))
		return lake_set_spin(c, val, err, errlen);
	if (!strcmp(key, "log_level"))
		return lake_set_level(c, val, err, errlen);
	if (!strcmp(key, "socket"))
		return lake_set_socket(c, val, err, errlen);
	if (!strcmp(key, "socket_mode"))
		return lake_set_mode(c, val, err, errlen);
	lake_cfg_err(err, errlen, "unknown key '%s' (see --help for the keys)", key);
	return -1;
}

static char *lake_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

int lake_config_read(struct lake_config *c, FILE *f, const char *name, char *err, size_t errlen)
{
	char line[1024];
	unsigned int lineno = 0;

	while (fgets(line, sizeof(line), f)) {
		char *key, *val, *eq, *hash;
		size_t n = strlen(line);
		char why[512];

		lineno++;
		if (n == sizeof(line) - 1 && line[n - 1] != '\n' && !feof(f)) {
			lake_cfg_err(err, errlen, "%s:%u: line longer than %zu bytes", name, lineno,
				     sizeof(line) - 2);
			return -1;
		}
		/* '#' starts a comment anywhere: at the start or after the value. */
		hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		key = lake_trim(line);
		if (!*key)
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			lake_cfg_err(err, errlen, "%s:%u: expected 'key = value'", name, lineno);
			return -1;
		}
		*eq = 0;
		key = lake_trim(key);
		val = lake_trim(eq + 1);
		/* A value may be quoted: "..." */
		n = strlen(val);
		if (n >= 2 && val[0] == '"' && val[n - 1] == '"') {
			val[n - 1] = 0;
			val++;
		}
		if (!*key) {
			lake_cfg_err(err, errlen, "%s:%u: expected 'key = value'", name, lineno);
			return -1;
		}
		if (lake_config_set(c, key, val, why, sizeof(why))) {
			lake_cfg_err(err, errlen, "%s:%u: %s", name, lineno, why);
			return -1;
		}
	}
	if (ferror(f)) {
		lake_cfg_err(err, errlen, "%s: read error", name);
		return -1;
	}
	return 0;
}

int lake_config_load_file(struct lake_config *c, const char *path, bool must_exist,
			  char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	int r;

	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		lake_cfg_err(err, errlen, "config file %s: %s", path, strerror(errno));
		return -1;
	}
	r = lake_config_read(c, f, path, err, errlen);
	fclose(f);
	if (r == 0)
		snprintf(c->config, sizeof(c->config), "%s", path);
	return r;
}

/*
 * The command line: "--opt VALUE" or "--opt=VALUE".  Hand-parsed (no getopt)
 * so that it keeps no global state and can be run twice: once for --config,
 * once, after the file, to override it.
 */
struct lake_opt {
	const char *name;
	char short_name;
	bool has_arg;
	const char *key;	/* config key it sets, or NULL */
	enum lake_config_result action;
};

static const struct lake_opt lake_opts[] = {
	{ "device", 'd', true, "device", LAKE_CONFIG_OK },
	{ "spin-us", 0, true, "spin_us", LAKE_CONFIG_OK },
	{ "socket", 's', true, "socket", LAKE_CONFIG_OK },
	{ "no-socket", 0, false, NULL, LAKE_CONFIG_OK },
	{ "socket-mode", 0, true, "socket_mode", LAKE_CONFIG_OK },
	{ "config", 'c', true, NULL, LAKE_CONFIG_OK },
	{ "log-level", 'l', true, "log_level", LAKE_CONFIG_OK },
	{ "foreground", 'f', false, NULL, LAKE_CONFIG_OK },
	{ "fake-verify", 0, false, NULL, LAKE_CONFIG_OK },
	{ "check", 0, false, NULL, LAKE_CONFIG_CHECK },
	{ "status", 0, false, NULL, LAKE_CONFIG_STATUS },
	{ "help", 'h', false, NULL, LAKE_CONFIG_HELP },
	{ "version", 'V', false, NULL, LAKE_CONFIG_VERSION },
};

#define LAKE_NOPTS	(sizeof(lake_opts) / sizeof(lake_opts[0]))

/* An option's value: after its '=', or the next argument (*i moves on). */
static const char *lake_opt_value(const char *a, const char *eq, int argc, char **argv, int *i,
				  char *err, size_t errlen)
{
	if (eq)
		return eq + 1;
	if (*i + 1 < argc)
		return argv[++*i];
	lake_cfg_err(err, errlen, "%s needs a value", a);
	return NULL;
}

/*
 * One pass over argv.  @apply: set the options (else only find --config and
 * the actions).  Returns the action, or LAKE_CONFIG_ERROR.
 */
static enum lake_config_result lake_args_pass(struct lake_config *c, int argc, char **argv,
					      bool apply, const char **config,
					      char *err, size_t errlen)
{
	enum lake_config_result action = LAKE_CONFIG_OK;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq = NULL;
		const struct lake_opt *o = NULL;
		size_t k;
		char why[512];

		if (a[0] == '-' && a[1] == '-' && a[2]) {
			size_t len;

			eq = strchr(a + 2, '=');
			len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
			for (k = 0; k < LAKE_NOPTS; k++)
				if (strlen(lake_opts[k].name) == len &&
				    !strncmp(lake_opts[k].name, a + 2, len))
					o = &lake_opts[k];
		} else if (a[0] == '-' && a[1] && !a[2]) {
			for (k = 0; k < LAKE_NOPTS; k++)
				if (lake_opts[k].short_name == a[1])
					o = &lake_opts[k];
		}
		if (!o && a[0] == '-' && a[1] == '-' && a[2]) {
			/* --max-clients N and the like: every numeric key, dashed. */
			char key[64];
			size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2), j;

			if (len < sizeof(key)) {
				for (j = 0; j < len; j++)
					key[j] = a[2 + j] == '-' ? '_' : a[2 + j];
				key[len] = 0;
				for (k = 0; k < LAKE_NNUM; k++)
					if (!strcmp(key, lake_num_keys[k].key))
						break;
				if (k < LAKE_NNUM || !strcmp(key, "kernel_user")) {
					val = lake_opt_value(a, eq, argc, argv, &i, err, errlen);
					if (!val)
						return LAKE_CONFIG_ERROR;
					if (apply && lake_config_set(c, key, val, why, sizeof(why))) {
						lake_cfg_err(err, errlen, "%.*s: %s", (int)(len + 2), a, why);
						return LAKE_CONFIG_ERROR;
					}
					continue;
				}
			}
		}
		if (!o) {
			lake_cfg_err(err, errlen, "unknown argument '%s' (see --help)", a);
			return LAKE_CONFIG_ERROR;
		}
		if (o->has_arg) {
			val = lake_opt_value(a, eq, argc, argv, &i, err, errlen);
			if (!val)
				return LAKE_CONFIG_ERROR;
		} else if (eq) {
			lake_cfg_err(err, errlen, "--%s takes no value", o->name);
			return LAKE_CONFIG_ERROR;
		}
		if (o->action != LAKE_CONFIG_OK) {
			/* --help and --version win over everything else. */
			if (action == LAKE_CONFIG_OK || o->action == LAKE_CONFIG_HELP ||
			    (o->action == LAKE_CONFIG_VERSION && action != LAKE_CONFIG_HELP))
				action = o->action;
			continue;
		}
		if (!strcmp(o->name, "config")) {
			*config = val;
			continue;
		}
		if (!apply)
			continue;
		if (!strcmp(o->name, "foreground")) {
			c->foreground = true;
			continue;
		}
		if (!strcmp(o->name, "no-socket")) {
			c->socket[0] = 0;
			continue;
		}
		if (!strcmp(o->name, "fake-verify")) {
			c->fake_verify = true;
			continue;
		}
		if (lake_config_set(c, o->key, val, why, sizeof(why))) {
			lake_cfg_err(err, errlen, "--%s: %s", o->name, why);
			return LAKE_CONFIG_ERROR;
		}
	}
	return action;
}

enum lake_config_result lake_config_from_args(struct lake_config *c, int argc, char **argv,
					      const char *default_path, char *err, size_t errlen)
{
	const char *config = NULL;
	enum lake_config_result r;

	lake_config_defaults(c);
	r = lake_args_pass(c, argc, argv, false, &config, err, errlen);
	if (r == LAKE_CONFIG_ERROR || r == LAKE_CONFIG_HELP || r == LAKE_CONFIG_VERSION)
		return r;
	if (config) {
		if (!*config) {
			lake_cfg_err(err, errlen, "--config: empty path");
			return LAKE_CONFIG_ERROR;
		}
		if (lake_config_load_file(c, config, true, err, errlen))
			return LAKE_CONFIG_ERROR;
	} else if (default_path) {
		if (lake_config_load_file(c, default_path, false, err, errlen))
			return LAKE_CONFIG_ERROR;
	}
	if (lake_args_pass(c, argc, argv, true, &config, err, errlen) == LAKE_CONFIG_ERROR)
		return LAKE_CONFIG_ERROR;
	return r;
}

void lake_config_usage(FILE *f, const char *prog)
{
	fprintf(f,
"Usage: %s [OPTION]...\n"
"LAKE's daemon: executes the CUDA Driver API calls of Linux kernel code\n"
"(lake.ko, through %s) and of user-space programs (liblake, through a UNIX\n"
"socket) with the vendor libraries.\n"
"\n"
"  -d, --device PATH      the kernel channel's device (default %s); when it is\n"
"                         missing, lakeD serves user-space clients only\n"
"  -s, --socket PATH      the socket user-space clients connect to (default\n"
"                         %s; 'none': no user-space clients)\n"
"      --no-socket        the same as --socket none\n"
"      --socket-mode MODE its permissions, octal (default %04o; group '%s'\n"
"                         where that group exists)\n"
"      --spin-us N        after the last command, spin N microseconds before\n"
"                         sleeping (default %u; 0: always sleep)\n"
"  -c, --config FILE      read settings from FILE (default %s,\n"
"                         if it exists)\n"
"  -l, --log-level LEVEL  error, warn, info (default) or debug (every command)\n"
"  -f, --foreground       stay in the foreground, log to stderr (for systemd);\n"
"                         otherwise detach once attached and log to syslog\n"
"      --check            load the vendor libraries, probe the GPU, test-register\n"
"                         a buffer with cuMemHostRegister, and exit\n"
"      --status           ask the lakeD serving --socket for its processes,\n"
"                         clients and quotas, print the answer and exit\n"
"      --kernel-user NAME the kernel channel's process runs as NAME (default\n"
"                         %s where that user exists, else root without\n"
"                         capabilities)\n"
"      --KEY N            any numeric key below, dashed (--max-clients 64)\n"
"      --fake-verify      lakeD-fake only: each fake vendor function checks its\n"
"                         inputs against the generated tests' values\n"
"                         (lake_testvals.h), for the kernel-context round trip\n"
"  -h, --help             show this help and exit\n"
"  -V, --version          show the version, protocol version and spec hash\n"
"\n"
"Config file keys (key = value, '#' comments): device, spin_us, log_level,\n"
"socket, socket_mode, kernel_user, and the numbers (defaults in brackets):\n"
"  kernel_threads [4] client_threads [1]: serving threads\n"
"  max_clients [256] max_clients_per_uid [64]: user clients served at once\n"
"  max_pending [128] max_pending_per_uid [8]: connections before their hello\n"
"  hello_timeout_ms [5000] hello_timeout_busy_ms [250]: time to say hello\n"
"  max_arena_mb [4096] max_pinned_mb_per_uid [16384]: pinned arenas\n"
"  max_gpu_mb_per_client [0] max_gpu_mb_per_uid [0]: device memory (0: none)\n"
"  max_threads_per_client [1024] worker_idle_s [30]\n"
"The command line overrides the file.\n"
"\n"
"Exit status: 0 after SIGTERM/SIGINT, 1 on an error (attach refused, device\n"
"gone, neither the device nor the socket usable), 2 on a usage or config\n"
"error.\n",
		prog, LAKE_DEFAULT_DEVICE, LAKE_DEFAULT_DEVICE, LAKE_DEFAULT_SOCKET,
		LAKE_DEFAULT_SOCKET_MODE, LAKE_SOCKET_GROUP, LAKE_DEFAULT_SPIN_US,
		LAKE_DEFAULT_CONFIG, LAKE_DEFAULT_KERNEL_USER);
}

static const char *lake_mb(unsigned int mb, char *buf, size_t n)
{
	if (!mb)
		snprintf(buf, n, "no limit");
	else
		snprintf(buf, n, "%u MiB", mb);
	return buf;
}

void lake_config_describe_limits(const struct lake_config *c, char *buf, size_t n)
{
	char g1[32], g2[32];

	snprintf(buf, n, "clients %u (%u per uid), waiting for a hello %u (%u per uid; %u ms, %u ms "
		 "when busy), arena %u MiB per client, pinned %u MiB per uid, GPU memory %s per "
		 "client and %s per uid, %u calling threads with state per client",
		 c->max_clients, c->max_clients_per_uid, c->max_pending, c->max_pending_per_uid,
		 c->hello_timeout_ms, c->hello_timeout_busy_ms, c->max_arena_mb,
		 c->max_pinned_mb_per_uid, lake_mb(c->max_gpu_mb_per_client, g1, sizeof(g1)),
		 lake_mb(c->max_gpu_mb_per_uid, g2, sizeof(g2)), c->max_threads_per_client);
}
