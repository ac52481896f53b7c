// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Helpers of the tests that run liblake against real lakeD-fake processes
 * (test_liblake.c, test_tenants.c): a daemon per test on a temporary
 * socket, its log, raw hellos (see lake_testd.h).
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "lake_testd.h"

const char *fake_bin;
char tmpdir[64];

double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

char *slurp(const char *path)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1);
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || !buf) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return NULL;
	}
	/* read() to the end: /proc files have no size */
	while ((n = read(fd, buf + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len == cap) {
			char *b = realloc(buf, 2 * cap + 1);

			if (!b)
				break;
			buf = b;
			cap *= 2;
		}
	}
	close(fd);
	buf[len] = 0;
	return buf;
}

/* The line of @path containing @needle (malloc'd), waiting up to @ms. */
char *wait_line(const char *path, const char *needle, int ms)
{
	double end = now_ms() + ms;

	do {
		char *s = slurp(path), *p, *e, *line;

		if (s && (p = strstr(s, needle))) {
			while (p > s && p[-1] != '\n')
				p--;
			e = strchr(p, '\n');
			line = strndup(p, e ? (size_t)(e - p) : strlen(p));
			free(s);
			return line;
		}
		free(s);
		usleep(5000);
	} while (now_ms() < end);
	return NULL;
}

bool wait_has(const char *path, const char *needle, int ms)
{
	char *l = wait_line(path, needle, ms);

	free(l);
	return l != NULL;
}

int count_in(const char *path, const char *needle)
{
	char *s = slurp(path), *p;
	int n = 0;

	for (p = s; p && (p = strstr(p, needle)); p++)
		n++;
	free(s);
	return n;
}

/* Waits up to @ms until @path holds more than @n lines with @needle. */
static bool wait_more(const char *path, const char *needle, int n, int ms)
{
	double end = now_ms() + ms;

	while (count_in(path, needle) <= n) {
		if (now_ms() >= end)
			return false;
		usleep(5000);
	}
	return true;
}

#define TD_SERVING "serving user-space clients (liblake) on"

void td_start_at(struct td *d, const char *sock, const char *log, bool verify)
{
	const char *extra[] = { verify ? "--fake-verify" : NULL, NULL };

	td_start_args(d, sock, log, extra);
}

void td_start_args(struct td *d, const char *sock, const char *log, const char *const *extra)
{
	const char *argv[48];
	char conf[160], dev[160];
	int fd, n = 0, served = count_in(log, TD_SERVING);

	snprintf(d->sock, sizeof(d->sock), "%s", sock);
	snprintf(d->log, sizeof(d->log), "%s", log);
	snprintf(conf, sizeof(conf), "%s/empty.conf", tmpdir);
	snprintf(dev, sizeof(dev), "%s/no-such-device", tmpdir);
	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (d->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* never outlive the test */
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		argv[n++] = fake_bin;
		argv[n++] = "-f";
		argv[n++] = "--config";
		argv[n++] = conf;
		argv[n++] = "--device";
		argv[n++] = dev;
		argv[n++] = "--socket";
		argv[n++] = sock;
		argv[n++] = "-l";
		argv[n++] = "info";
		while (extra && *extra && n < 47)
			argv[n++] = *extra++;
		argv[n] = NULL;
		execv(fake_bin, (char *const *)argv);
		_exit(127);
	}
	/* A line more than the log had: a restart logs into the same file. */
	ck_assert_msg(wait_more(log, TD_SERVING, served, 5000),
		      "lakeD-fake did not start serving %s (see %s)", sock, log);
}

void td_start(struct td *d, const char *name, bool verify)
{
	char sock[108], log[160];

	snprintf(sock, sizeof(sock), "%s/%s-%d.sock", tmpdir, name, (int)getpid());
	snprintf(log, sizeof(log), "%s/%s-%d.log", tmpdir, name, (int)getpid());
	td_start_at(d, sock, log, verify);
	setenv("LAKE_SOCKET", d->sock, 1);
}

/* Is @pid stopped (state T)? */
static bool td_stopped(pid_t pid)
{
	char path[64], *s, *p;
	bool t = true;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	s = slurp(path);
	if (s && (p = strrchr(s, ')')))
		t = p[2] == 'T' || p[2] == 't';
	free(s);
	return t;
}

void td_signal(struct td *d, int sig)
{
	pid_t w[64];
	int n, i;

	/* lakeD is its supervisor and the workers serving the clients: freezing
	 * or killing "lakeD" is all of them (SIGTERM: the supervisor stops them). */
	n = sig == SIGTERM ? 0 : child_pids(d->pid, NULL, w, 64);
	for (i = 0; i < n; i++)
		kill(w[i], sig);
	kill(d->pid, sig);
	if (sig == SIGSTOP) {
		/* kill() returns before every thread has stopped: a spinning
		 * serve loop could still take a command or two. */
		for (i = 0; i < n; i++)
			while (!td_stopped(w[i]))
				usleep(1000);
	}
}

void td_stop(struct td *d, int sig)
{
	int st;

	if (d->pid <= 0)
		return;
	td_signal(d, sig);
	if (sig == SIGSTOP) {
		while (waitpid(d->pid, &st, WUNTRACED) == d->pid && !WIFSTOPPED(st))
			;
		return;
	}
	waitpid(d->pid, &st, 0);
	d->pid = 0;
}

/* Sends stderr to a file of this test. */
void capture_stderr(char *path, size_t n, const char *name)
{
	int fd;

	snprintf(path, n, "%s/%s-%d.stderr", tmpdir, name, (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	ck_assert_int_ge(fd, 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

int open_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* CPU time (user + system) of @pid so far, in seconds. */
double cpu_seconds(pid_t pid)
{
	unsigned long ut = 0, st = 0;
	char path[64], *buf, *p;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	buf = slurp(path);
	ck_assert_ptr_nonnull(buf);
	p = strrchr(buf, ')');	/* fields after the command name */
	ck_assert_ptr_nonnull(p);
	for (i = 0; i < 12 && p; i++)	/* to the space before field 14, utime */
		p = strchr(p + 1, ' ');
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(sscanf(p, "%lu %lu", &ut, &st), 2);
	free(buf);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int raw_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

int make_memfd(__u64 size, bool seal)
{
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	if (seal)
		ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	return fd;
}

/* Sends @len bytes of @h with @nfd copies of fds; returns the socket. */
int raw_send(const char *path, const void *h, size_t len, const int *fds, int nfd)
{
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)h, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int sock = raw_connect(path);

	if (nfd) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
	}
	ck_assert_int_eq(sendmsg(sock, &msg, MSG_NOSIGNAL), (ssize_t)len);
	return sock;
}

int raw_reply(int sock, struct lake_uhello_reply *r)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	ck_assert_int_eq(recv(sock, r, sizeof(*r), 0), (ssize_t)sizeof(*r));
	ck_assert_uint_eq(r->magic, LAKE_UREPLY_MAGIC);
	return r->status;
}


/* The child processes of @parent, by their command name (comm) prefix. */
int child_pids(pid_t parent, const char *comm, pid_t *out, int max)
{
	struct dirent *e;
	DIR *d = opendir("/proc");
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max) {
		char path[300], *s, *p;
		int ppid = 0;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		s = slurp(path);
		if (!s)
			continue;
		p = strrchr(s, ')');
		if (p && sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == parent &&
		    (!comm || !strncmp(strchr(s, '(') + 1, comm, strlen(comm))))
			out[n++] = (pid_t)atoi(e->d_name);
		free(s);
	}
	closedir(d);
	return n;
}

/* A "Key:" line of /proc/PID/status, as a number (the first field); -1 if none. */
long long proc_status(pid_t pid, const char *key, int base)
{
	char path[64], *s, *p;
	long long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	s = slurp(path);
	if (s && (p = strstr(s, key)))
		v = strtoll(p + strlen(key), NULL, base);
	free(s);
	return v;
}

int td_run(const char *name, Suite *suite, mode_t dir_mode)
{
	char conf[96], cmd[128];
	SRunner *sr;
	int nfail, fd;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/lake-%s-XXXXXX", name);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	chmod(tmpdir, dir_mode);
	snprintf(conf, sizeof(conf), "%s/empty.conf", tmpdir);
	fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC, 0644);	/* hermetic: not /etc/lake */
	if (fd >= 0)
		close(fd);
	/* Each test in its own process: a fresh liblake, its own LAKE_* settings. */
	unsetenv("LAKE_SOCKET");
	unsetenv("LAKE_NSLOTS");
	unsetenv("LAKE_ARENA_MB");
	unsetenv("LAKE_SPIN_US");
	unsetenv("LAKE_TIMEOUT_MS");
	sr = srunner_create(suite);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	nfail = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (!getenv("LAKE_TEST_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd)) {
			/* left behind */
		}
	} else {
		fprintf(stderr, "logs kept in %s\n", tmpdir);
	}
	return nfail ? 1 : 0;
}
