// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * lakeD: LAKE's daemon.  Attaches to lake.ko's /dev/lake, maps the command
 * ring and the lakeShm arena, and executes each command with the vendor
 * libraries (libcuda, NVML) through lakeD's server core and the generated
 * dispatch table.
 *
 * Threads: the main one serves the kernel's channel (or, without /dev/lake,
 * waits for a stop); a listener thread accepts user-space clients of liblake
 * on a UNIX socket, and each client gets its own channel and thread running
 * the same lake_serve() (lake_uchan.c).  The stop eventfd below wakes them all.
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
#include "lake_uchan.h"
#include "lake_vchan.h"
#include "lake_vendor.h"
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

static void lake_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = lake_on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: poll() returns.  SA_RESETHAND: a second signal kills
	 * lakeD at once, should cleanup hang (e.g. in a stuck GPU call). */
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);	/* the user clients' sockets */
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
	gpu = lake_vendor_gpu_init(&v);
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

/* Without the kernel channel: sleep until a stop is asked. */
static void lake_wait_for_stop(void)
{
	struct pollfd p = { .fd = lake_stop_fd, .events = POLLIN };

	while (!atomic_load(&lake_stop))
		poll(&p, 1, -1);
}

int main(int argc, char **argv)
{
	struct lake_serve_opts opts = { .stop = &lake_stop };
	struct lake_serve_stats stats = { 0 };
	struct lake_vendor_state v;
	struct lake_srv_conn *conn = NULL;
	struct lake_uchan_server *users = NULL;
	struct lake_vchan *vms[LAKE_VCHAN_MAX] = { NULL };	/* VM channels (--vm-shm) */
	unsigned int i;
	struct lake_config cfg;
	struct lake_kchan k;
	enum lake_config_result cr;
	int report_fd = -1, rc = 0, sig;
	bool pinned = false, kernel = true;
	char err[600];

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
	lake_signals();

	/*
	 * Attach first: a refused attach is reported alone, before any GPU work.
	 * Without lake.ko (no device file) lakeD still serves user-space
	 * clients, if it has a socket.
	 */
	memset(&k, 0, sizeof(k));
	k.fd = -1;
	if (cfg.socket[0] && access(cfg.device, F_OK) && errno == ENOENT) {
		lake_warn("%s missing: is lake.ko loaded? (modprobe lake) -- serving user-space "
			  "clients only, on %s", cfg.device, cfg.socket);
		kernel = false;
	} else if (cfg.vm.nshm && access(cfg.device, F_OK) && errno == ENOENT) {
		lake_info("%s missing: serving the kernels of VMs only", cfg.device);
		kernel = false;
	} else if (lake_kchan_open(&k, cfg.device, lake_stop_fd)) {
		return LAKED_EXIT_ERROR;
	}
	lake_vendor_load(&v);
	lake_vendor_gpu_init(&v);	/* makes device 0's primary context current here */
	opts.spin_us = cfg.spin_us;
	if (kernel) {
		pinned = lake_vendor_pin(&v, k.chan.ring.arena, k.chan.ring.arena_size, "arena");
		conn = lake_srv_conn_new(&v.vendors, k.chan.ring.arena, k.chan.ring.arena_size);
		if (!conn) {
			lake_err("no memory for the kernel's client connection");
			rc = -ENOMEM;
			goto out;
		}
	}
	if (cfg.socket[0]) {
		struct lake_uchan_opts uo = {
			.path = cfg.socket,
			.mode = cfg.socket_mode,
			.group = LAKE_SOCKET_GROUP,
			.spin_us = cfg.spin_us,
			.stop = &lake_stop,
			.stop_fd = lake_stop_fd,
			.vendor = &v,
		};

		rc = lake_uchan_start(&users, &uo);
		if (rc && !kernel && !cfg.vm.nshm)
			goto out;	/* neither channel: nothing to serve */
		if (rc)
			lake_warn("not serving user-space clients: the socket is unusable");
		rc = 0;
	}
	/* VM bridge: the kernels of guests, each over its ivshmem file. */
	for (i = 0; i < cfg.vm.nshm && !rc; i++) {
		struct lake_vchan_opts vo = {
			.path = cfg.vm.shm[i],
			.spin_us = cfg.spin_us,
			.stop = &lake_stop,
			.vendor = &v,
			.guest_timeout_ms = cfg.vm.guest_timeout_ms,
			.pin_max = (__u64)cfg.vm.pin_max_mb << 20,
		};

		rc = lake_vchan_start(&vms[i], &vo);
	}
	if (rc)
		goto stop;
	if (kernel)
		lake_info("serving %s: spin %u us after each command, then sleep", k.chan.name,
			  cfg.spin_us);
	if (report_fd >= 0)
		lake_detach_done(report_fd);

	if (kernel)
		rc = lake_serve(&k.chan, conn, &opts, &stats);
	else
		lake_wait_for_stop();

	sig = atomic_load(&lake_stop);
	if (sig)
		lake_info("%s: shutting down", strsignal(sig));
stop:
	/* VMs and user clients first: each one's CUDA resources are freed. */
	for (i = 0; i < LAKE_VCHAN_MAX; i++)
		lake_vchan_stop(vms[i]);
	lake_uchan_stop(users);
	if (kernel)
		lake_info("served %llu commands (%llu completion reports, %llu sleeps%s)",
			  (unsigned long long)stats.commands, (unsigned long long)stats.completes,
			  (unsigned long long)stats.waits,
			  stats.bad_index ? ", bad queue entries" : "");
	/* Frees what the kernel's clients left (their CUDA resources). */
	lake_srv_conn_free(conn);
out:
	if (pinned)
		lake_vendor_unpin(&v, k.chan.ring.arena);
	if (kernel)
		lake_kchan_close(&k);	/* the kernel fails the calls still pending */
	lake_vendor_unload(&v);
	close(lake_stop_fd);
	return rc ? LAKED_EXIT_ERROR : 0;
}
