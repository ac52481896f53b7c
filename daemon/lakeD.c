// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * lakeD: LAKE's daemon.  Attaches to lake.ko's /dev/lake and serves the
 * kernel's calls, and those of user-space programs (liblake) on a UNIX
 * socket, with the vendor libraries (libcuda, NVML) through lakeD's server
 * core and the generated dispatch table.
 *
 * Processes (lake_worker.h): this one attaches, opens the socket and becomes
 * the supervisor (lake_super.c); the kernel's channel and each user's
 * clients are served by worker processes of their own, started as
 * "lakeD --worker ..." with the credentials of whom they serve.
 *
 * Built with LAKED_FAKE_VENDOR this is lakeD-fake: the same daemon over the
 * recording TEST DOUBLE of the vendor libraries, for VM tests without a GPU.
 */
#define _GNU_SOURCE	/* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "lake_chan.h"
#include "lake_config.h"
#include "lake_kchan.h"
#include "lake_log.h"
#include "lake_super.h"
#include "lake_vendor.h"
#include "lake_worker.h"
#ifdef LAKED_FAKE_VENDOR
#include "lake_fake.h"
#endif

#ifdef LAKED_FAKE_VENDOR
#define LAKED_PROG	"lakeD-fake"
#else
#define LAKED_PROG	"lakeD"
#endif
#ifndef LAKED_VERSION
#define LAKED_VERSION	"0.1.0"
#endif

#define LAKED_EXIT_ERROR	1
#define LAKED_EXIT_USAGE	2

static atomic_int lake_stop;		/* the signal that asked us to stop, 0: none */
static int lake_stop_fd = -1;		/* eventfd: readable once a stop was asked */

static void lake_on_signal(int sig)
{
	const uint64_t one = 1;
	int saved = errno;

	atomic_store(&lake_stop, sig);
	if (lake_stop_fd >= 0 && write(lake_stop_fd, &one, sizeof(one)) < 0) {
		/* already readable */
	}
	errno = saved;
}

/*
 * Goes to the background.  The parent waits until the child reports that it
 * serves (exit 0) or dies (exit with its status), so that attach errors still
 * reach the terminal and the exit status.  Returns the child's end of the
 * report pipe, or -1.
 */
static int lake_detach(void)
{
	unsigned char st;
	int p[2], ws;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC)) {
		lake_err("pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		lake_err("fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		do
			n = read(p[0], &st, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1)
			_exit(st);
		if (waitpid(pid, &ws, 0) == pid && WIFEXITED(ws))
			_exit(WEXITSTATUS(ws));
		_exit(LAKED_EXIT_ERROR);
	}
	close(p[0]);
	setsid();
	return p[1];
}

/* In the background child, once serving: tell the parent, leave the terminal. */
static void lake_detach_done(int report_fd)
{
	const unsigned char ok = 0;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	lake_log_use_syslog();
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	if (chdir("/")) {
		/* nothing depends on the directory */
	}
	if (write(report_fd, &ok, 1) < 0)
		lake_warn("cannot report to the parent: %s", strerror(errno));
	close(report_fd);
}

/* --check: the vendor libraries, the GPU and cuMemHostRegister, then exit. */
static int lake_check(void)
{
	const size_t n = 64u << 20;
	struct lake_vendor_state v;
	bool gpu, pinned = false;
	void *p;

	lake_vendor_load(&v);
	gpu = lake_vendor_gpu_init(&v, true);
	if (gpu) {
		/* A shared mapping, as the arena is. */
		p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			lake_err("mmap of a %zu MiB test buffer: %s", n >> 20, strerror(errno));
		} else {
			memset(p, 0, n);
			pinned = lake_vendor_pin(&v, p, n, "test buffer");
			if (pinned)
				lake_vendor_unpin(&v, p);
			munmap(p, n);
		}
	}
	lake_vendor_unload(&v);
	printf("%s --check: cuda %s, nvml %s, GPU %s, cuMemHostRegister %s\n", LAKED_PROG,
	       v.fake ? "TEST DOUBLE" : v.vendors.cuda ? "loaded" : "missing",
	       v.fake ? "TEST DOUBLE" : v.vendors.nvml ? "loaded" : "missing",
	       gpu ? "usable" : "none", pinned ? "works" : "not working");
	return gpu && pinned ? 0 : LAKED_EXIT_ERROR;
}

int main(int argc, char **argv)
{
	struct lake_super_opts so;
	struct lake_config cfg;
	enum lake_config_result cr;
	int report_fd = -1, rc, exe_fd, dev_fd = -1;
	char err[600];

	/* lakeD's own processes (never for a user to type). */
	if (argc >= 2 && !strcmp(argv[1], "--worker"))
		return lake_worker_main(LAKED_PROG);
	lake_log_init(LAKED_PROG);
	cr = lake_config_from_args(&cfg, argc, argv, LAKE_DEFAULT_CONFIG, err, sizeof(err));
	switch (cr) {
	case LAKE_CONFIG_ERROR:
		fprintf(stderr, "%s: %s\n", LAKED_PROG, err);
		return LAKED_EXIT_USAGE;
	case LAKE_CONFIG_HELP:
		lake_config_usage(stdout, LAKED_PROG);
		return 0;
	case LAKE_CONFIG_VERSION:
		printf("%s %s (LAKE protocol %u, spec hash 0x%016llx)%s\n", LAKED_PROG,
		       LAKED_VERSION, LAKE_PROTO_VERSION, (unsigned long long)LAKE_SPEC_HASH,
#ifdef LAKED_FAKE_VENDOR
		       ": vendor libraries replaced by the recording TEST DOUBLE"
#else
		       ""
#endif
		       );
		return 0;
	case LAKE_CONFIG_STATUS:
		return lake_super_status(cfg.socket);
	default:
		break;
	}
	lake_log_level = cfg.log_level;
#ifdef LAKED_FAKE_VENDOR
	fprintf(stderr, "lakeD-fake: using the recording TEST DOUBLE of libcuda \u2014 not a GPU\n");
	lake_fake_verify = cfg.fake_verify;
	if (cfg.fake_verify)
		lake_info("verify mode: each fake checks its inputs against lake_testvals.h");
#else
	if (cfg.fake_verify) {
		fprintf(stderr, "%s: --fake-verify is for lakeD-fake, the test double build\n",
			LAKED_PROG);
		return LAKED_EXIT_USAGE;
	}
#endif
	if (cr == LAKE_CONFIG_CHECK)
		return lake_check();
	if (cfg.config[0])
		lake_info("settings from %s", cfg.config);

	/* Our own binary, for the workers: opened now, while it is the one running. */
	exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (exe_fd < 0) {
		lake_err("/proc/self/exe: %s (lakeD starts its workers from it)", strerror(errno));
		return LAKED_EXIT_ERROR;
	}
	if (!cfg.foreground) {
		report_fd = lake_detach();
		if (report_fd < 0)
			return LAKED_EXIT_ERROR;
	}
	lake_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (lake_stop_fd < 0) {
		lake_err("eventfd: %s", strerror(errno));
		return LAKED_EXIT_ERROR;
	}
	lake_stop_signals(lake_on_signal);

	/*
	 * Attach first: a refused attach is reported alone, before anything
	 * else.  Without lake.ko (no device file) lakeD still serves user-space
	 * clients, if it has a socket.
	 */
	memset(&so, 0, sizeof(so));
	if (cfg.socket[0] && access(cfg.device, F_OK) && errno == ENOENT) {
		lake_warn("%s missing: is lake.ko loaded? (modprobe lake) -- serving user-space "
			  "clients only, on %s", cfg.device, cfg.socket);
	} else {
		dev_fd = lake_kchan_attach(cfg.device, &so.attach);
		if (dev_fd < 0)
			return LAKED_EXIT_ERROR;
	}
	so.cfg = &cfg;
	so.prog = LAKED_PROG;
	so.exe_fd = exe_fd;
	so.dev_fd = dev_fd;
	so.stop_fd = lake_stop_fd;
	so.stop = &lake_stop;
	so.report_fd = report_fd;
	so.detach_done = lake_detach_done;
	so.syslog = !cfg.foreground;
	rc = lake_super_run(&so);
	close(exe_fd);
	close(lake_stop_fd);
	return rc ? LAKED_EXIT_ERROR : 0;
}
