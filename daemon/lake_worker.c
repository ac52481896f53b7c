// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * lakeD's worker processes (see lake_worker.h): starting one, its main(),
 * the control messages, and the kernel channel's worker.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include "lake_chan.h"
#include "lake_kchan.h"
#include "lake_log.h"
#include "lake_vendor.h"
#include "lake_worker.h"
#ifdef LAKED_FAKE_VENDOR
#include "lake_fake.h"
#endif

extern char **environ;

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */

int lake_msg_send(int sock, const void *msg, size_t len, const int *fds, int nfd)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfd > 4)
		return -EINVAL;
	if (nfd) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		m.msg_control = u.buf;
		m.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
	}
	do
		n = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EPIPE || errno == ECONNRESET ? -ENOTCONN : -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

int lake_msg_recv(int sock, void *msg, size_t len, int *fds, int maxfd, int *nfd)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = msg, .iov_len = len };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	ssize_t n;
	int got = 0;

	memset(&u, 0, sizeof(u));
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		size_t k, cnt;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < cnt; k++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
			if (got < maxfd)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	if (nfd)
		*nfd = got;
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ENOTCONN;
	if ((size_t)n != len || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		while (got)
			close(fds[--got]);
		if (nfd)
			*nfd = 0;
		return -EPROTO;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Starting a worker                                                        */

/* What a user's worker may see of lakeD's environment. */
static bool lake_env_kept(const char *e)
{
	static const char *const prefixes[] = {
		"PATH=", "LD_LIBRARY_PATH=", "CUDA_", "NVIDIA_", "__GL", "LAKE_FAKE_", "LANG=",
		"LC_", "TZ=", "TMPDIR=",
	};
	size_t i;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(e, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

pid_t lake_worker_spawn(int exe_fd, const char *argv0, const struct lake_worker_init *init,
			const struct lake_creds *creds, int dev_fd, bool env_strict, int *ctl)
{
	static char *envp[64];
	const char *kind = init->kind == LAKE_WORKER_KERNEL ? "kernel" : "user";
	char uid_arg[16], *argv[6];
	pid_t parent = getpid(), pid;
	int sv[2], err, i, n = 0;

	snprintf(uid_arg, sizeof(uid_arg), "%u", (unsigned int)init->uid);
	argv[0] = (char *)argv0;
	argv[1] = (char *)"--worker";
	argv[2] = (char *)kind;
	argv[3] = init->kind == LAKE_WORKER_USER ? uid_arg : NULL;	/* for ps */
	argv[4] = NULL;
	/* Everything the child uses is prepared here: after fork() it only
	 * makes system calls. */
	if (env_strict) {
		for (i = 0; environ[i] && n < 63; i++)
			if (lake_env_kept(environ[i]))
				envp[n++] = environ[i];
		envp[n] = NULL;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	if (pid == 0) {
		/* fds: 0-2 (the log), the control socket, the device, lakeD's
		 * binary (close-on-exec); nothing else. */
		int c = fcntl(sv[1], F_DUPFD, 100), e = fcntl(exe_fd, F_DUPFD, 100);
		int d = dev_fd >= 0 ? fcntl(dev_fd, F_DUPFD, 100) : -1;

		if (c < 0 || e < 0 || (dev_fd >= 0 && d < 0) || dup2(c, LAKE_WORKER_FD_CTL) < 0 ||
		    (d >= 0 && dup2(d, LAKE_WORKER_FD_DEV) < 0) ||
		    dup2(e, LAKE_WORKER_FD_EXE) < 0 || fcntl(LAKE_WORKER_FD_EXE, F_SETFD, FD_CLOEXEC))
			_exit(126);
		if (d < 0)
			close(LAKE_WORKER_FD_DEV);
		if (init->syslog) {	/* a detached lakeD: no terminal for the workers either */
			int null = open("/dev/null", O_RDWR);

			if (null >= 0) {
				dup2(null, STDIN_FILENO);
				dup2(null, STDOUT_FILENO);
				dup2(null, STDERR_FILENO);
			}
		}
#ifdef SYS_close_range
		if (syscall(SYS_close_range, LAKE_WORKER_FD_EXE + 1, ~0u, 0))
#endif
			for (i = LAKE_WORKER_FD_EXE + 1; i < 65536; i++)
				close(i);
		if (creds && lake_creds_assume(creds))
			_exit(125);
		/* No way back to privileges: none kept, none gained by exec. */
		if (lake_caps_limit(0))
			_exit(124);
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) || getppid() != parent)
			_exit(123);
		syscall(SYS_execveat, LAKE_WORKER_FD_EXE, "", argv, env_strict ? envp : environ,
			AT_EMPTY_PATH);
		_exit(127);
	}
	close(sv[1]);
	/* lake.ko lets one process map its region: from now on this child
	 * (before it learns its settings, so before it maps). */
	err = dev_fd >= 0 ? lake_kchan_handoff(dev_fd, pid) : 0;
	if (!err)
		err = lake_msg_send(sv[0], init, sizeof(*init), NULL, 0);
	if (err) {
		close(sv[0]);	/* the child reads no settings and exits */
		return err;
	}
	*ctl = sv[0];
	return pid;
}

/* ------------------------------------------------------------------------ */
/* A worker's main()                                                        */

static atomic_int lake_worker_stop;	/* SIGTERM, or the supervisor is gone */
static int lake_worker_stop_fd = -1;

static void lake_worker_on_signal(int sig)
{
	const uint64_t one = 1;
	int saved = errno;

	(void)sig;
	atomic_store(&lake_worker_stop, 1);
	if (write(lake_worker_stop_fd, &one, sizeof(one)) < 0) {
		/* already readable */
	}
	errno = saved;
}

atomic_int *lake_worker_stop_flag(void)
{
	return &lake_worker_stop;
}

int lake_worker_stop_eventfd(void)
{
	return lake_worker_stop_fd;
}

void lake_worker_request_stop(void)
{
	lake_worker_on_signal(0);
}

void lake_stop_signals(void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: poll() returns.  SA_RESETHAND: a second signal kills
	 * at once, should cleanup hang (e.g. in a stuck GPU call). */
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);	/* the clients' and workers' sockets */
}

int lake_worker_main(const char *prog)
{
	static char name[64];
	struct lake_worker_init init;
	struct pollfd p = { .fd = LAKE_WORKER_FD_CTL, .events = POLLIN };
	int err;

	/* The init message is the first thing the supervisor sends. */
	if (poll(&p, 1, 10000) != 1 ||
	    lake_msg_recv(LAKE_WORKER_FD_CTL, &init, sizeof(init), NULL, 0, NULL) ||
	    init.magic != LAKE_WORKER_MAGIC) {
		fprintf(stderr, "%s: --worker is for lakeD's own processes (no init message)\n", prog);
		return 2;
	}
	if (init.kind == LAKE_WORKER_KERNEL)
		snprintf(name, sizeof(name), "%s[kernel]", prog);
	else
		snprintf(name, sizeof(name), "%s[uid %u]", prog, init.uid);
	lake_log_init(name);
	lake_log_level = init.cfg.log_level;
#ifdef LAKED_FAKE_VENDOR
	lake_fake_verify = init.cfg.fake_verify;	/* the double serves here, not in the supervisor */
#endif
	if (init.syslog)
		lake_log_use_syslog();
	fcntl(LAKE_WORKER_FD_CTL, F_SETFD, FD_CLOEXEC);
	lake_worker_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (lake_worker_stop_fd < 0) {
		lake_err("eventfd: %s", strerror(errno));
		return 1;
	}
	lake_stop_signals(lake_worker_on_signal);
	switch (init.kind) {
	case LAKE_WORKER_KERNEL:
		fcntl(LAKE_WORKER_FD_DEV, F_SETFD, FD_CLOEXEC);
		err = lake_kworker_run(&init, LAKE_WORKER_FD_CTL, LAKE_WORKER_FD_DEV);
		break;
	case LAKE_WORKER_USER:
		err = lake_uworker_run(&init, LAKE_WORKER_FD_CTL);
		break;
	default:
		lake_err("unknown worker kind %u", init.kind);
		err = 2;
	}
	return err;
}

/* ------------------------------------------------------------------------ */
/* The kernel channel's worker                                              */

/* Stops the worker when the supervisor goes away (its end of ctl closes). */
static void *lake_ctl_watch(void *arg)
{
	int ctl = *(int *)arg;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = ctl, .events = POLLIN },
			{ .fd = lake_worker_stop_fd, .events = POLLIN },
		};

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			return NULL;
		if (p[0].revents) {
			char buf[sizeof(struct lake_worker_client)];

			if (recv(ctl, buf, sizeof(buf), MSG_DONTWAIT) <= 0 && errno != EAGAIN)
				break;	/* closed: stop */
		}
	}
	lake_worker_on_signal(0);
	return NULL;
}

int lake_kworker_run(const struct lake_worker_init *init, int ctl, int dev_fd)
{
	struct lake_serve_opts opts = {
		.spin_us = init->cfg.spin_us,
		.stop = &lake_worker_stop,
		.threads = init->cfg.kernel_threads,
	};
	struct lake_serve_stats stats = { 0 };
	struct lake_srv_limits limits = {
		.max_threads = init->cfg.max_threads_per_client,
	};
	struct lake_vendor_state v;
	struct lake_srv_conn *conn;
	struct lake_kchan k;
	sigset_t all, old;
	pthread_t watch;
	unsigned int nres;
	bool pinned;
	int rc, ctl_fd = ctl;

	if (lake_kchan_map(&k, dev_fd, &init->attach, init->cfg.device, lake_worker_stop_fd))
		return 1;
	lake_vendor_load(&v);
	lake_vendor_gpu_init(&v, true);
	lake_srv_set_limits(&limits);
	pinned = lake_vendor_pin(&v, k.chan.ring.arena, k.chan.ring.arena_size, "arena");
	conn = lake_srv_conn_new(&v.vendors, k.chan.ring.arena, k.chan.ring.arena_size);
	if (!conn) {
		lake_err("no memory for the kernel's client connection");
		rc = -ENOMEM;
		goto out;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = -pthread_create(&watch, NULL, lake_ctl_watch, &ctl_fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		lake_err("cannot start a thread: %s", strerror(-rc));
		goto out;
	}
	lake_info("serving %s as uid %u: %u serving thread%s, spin %u us after each command, "
		  "then sleep", k.chan.name, (unsigned int)geteuid(), opts.threads,
		  opts.threads == 1 ? "" : "s", opts.spin_us);
	rc = lake_serve(&k.chan, conn, &opts, &stats);
	lake_worker_on_signal(0);
	pthread_join(watch, NULL);
	lake_info("served %llu commands (%llu completion reports, %llu sleeps%s)",
		  (unsigned long long)stats.commands, (unsigned long long)stats.completes,
		  (unsigned long long)stats.waits, stats.bad_index ? ", bad queue entries" : "");
	nres = lake_srv_res_count(conn, LAKE_RT_NONE);
	lake_srv_conn_free(conn);	/* frees what the kernel's clients left */
	if (nres)
		lake_info("freed %u resource%s the kernel's callers left", nres, nres == 1 ? "" : "s");
out:
	if (pinned)
		lake_vendor_unpin(&v, k.chan.ring.arena);
	lake_kchan_close(&k);	/* the kernel fails the calls still pending */
	lake_vendor_unload(&v);
	return rc ? 1 : 0;
}
