// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * vmbench: the user-space reference points of LAKE's kernel-path benchmark
 * (bench/vm/run.sh).  It runs inside the test VM, in the same boot as
 * lake_selftest.ko's null round trip, so that only ratios are compared.
 *
 *   vmbench getppid N [BATCH]  N samples, each BATCH getppid() system calls
 *                              timed together (default 16); reports the
 *                              cost of one call
 *   vmbench eventfd N          N round trips between two processes, pinned
 *                              to CPUs 0 and 1, over two eventfds with
 *                              blocking reads: each side really sleeps and
 *                              is woken
 *   vmbench spin N             N round trips between two processes, each
 *                              pinned to its own CPU, spinning on one
 *                              shared cache line: no system call at all,
 *                              the cost of the two hand-offs alone
 *   vmbench clock N [BATCH]    the cost of one clock_gettime(CLOCK_MONOTONIC)
 *                              (what every timed sample pays once)
 *
 * The measuring process runs on CPU 0 (where there are two CPUs or more).
 * Each prints one line:  NAME n=N median_ns=M p99_ns=P
 * (median and 99th percentile over the N samples, in nanoseconds of the
 * clock the system runs, which in an emulated VM is emulated time).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VMB_MAX_N 10000000UL
#define VMB_MAX_BATCH 100000UL
#define VMB_STOP (1ULL << 40)	/* an eventfd value that means "stop" */

static uint64_t vmb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int vmb_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void vmb_report(const char *name, uint64_t *t, unsigned long n)
{
	qsort(t, n, sizeof(*t), vmb_cmp);
	printf("%s n=%lu median_ns=%llu p99_ns=%llu\n", name, n,
	       (unsigned long long)t[n / 2], (unsigned long long)t[n * 99 / 100]);
	fflush(stdout);
}

static unsigned long vmb_arg(const char *s, unsigned long max, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !v || v > max) {
		fprintf(stderr, "vmbench: %s must be 1 to %lu, not '%s'\n", what, max, s);
		exit(2);
	}
	return v;
}

/* Pins the calling process to @cpu, where there are two CPUs or more. */
static void vmb_pin(int cpu)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		perror("vmbench: sched_setaffinity (running unpinned)");
}

static void vmb_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static int vmb_getppid(uint64_t *t, unsigned long n, unsigned long batch)
{
	unsigned long i, j;

	vmb_pin(0);
	for (i = 0; i < n / 10; i++)	/* warm-up */
		syscall(SYS_getppid);
	for (i = 0; i < n; i++) {
		uint64_t t0 = vmb_now_ns();

		for (j = 0; j < batch; j++)
			syscall(SYS_getppid);	/* not cached by the C library */
		t[i] = (vmb_now_ns() - t0) / batch;
	}
	vmb_report("getppid", t, n);
	return 0;
}

static int vmb_clock(uint64_t *t, unsigned long n, unsigned long batch)
{
	unsigned long i, j;

	for (i = 0; i < n; i++) {
		uint64_t t0 = vmb_now_ns();

		for (j = 0; j < batch; j++)
			vmb_now_ns();
		t[i] = (vmb_now_ns() - t0) / batch;
	}
	vmb_report("clock_gettime", t, n);
	return 0;
}

static int vmb_read(int fd, uint64_t *v)
{
	ssize_t r;

	do
		r = read(fd, v, sizeof(*v));
	while (r < 0 && errno == EINTR);
	return r == sizeof(*v) ? 0 : -1;
}

static int vmb_write(int fd, uint64_t v)
{
	ssize_t r;

	do
		r = write(fd, &v, sizeof(v));
	while (r < 0 && errno == EINTR);
	return r == sizeof(v) ? 0 : -1;
}

/* The child: answers every ping on @ping with a pong on @pong. */
static void vmb_ponger(int ping, int pong)
{
	uint64_t v;

	while (!vmb_read(ping, &v) && v != VMB_STOP)
		if (vmb_write(pong, 1))
			_exit(1);
	_exit(0);
}

static int vmb_eventfd(uint64_t *t, unsigned long n)
{
	int ping = eventfd(0, EFD_CLOEXEC), pong = eventfd(0, EFD_CLOEXEC);
	unsigned long i, warm = n / 10 + 1;
	int status, bad = 0;
	uint64_t v;
	pid_t pid;

	if (ping < 0 || pong < 0) {
		perror("vmbench: eventfd");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("vmbench: fork");
		return 1;
	}
	if (!pid) {
		vmb_pin(1);
		vmb_ponger(ping, pong);
	}
	vmb_pin(0);
	for (i = 0; i < warm + n && !bad; i++) {
		uint64_t t0 = vmb_now_ns();

		bad = vmb_write(ping, 1) || vmb_read(pong, &v) || v != 1;
		if (i >= warm)
			t[i - warm] = vmb_now_ns() - t0;
	}
	vmb_write(ping, VMB_STOP);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		bad = 1;
	close(ping);
	close(pong);
	if (bad) {
		fprintf(stderr, "vmbench: eventfd ping-pong failed after %lu round trips\n", i);
		return 1;
	}
	vmb_report("eventfd_pingpong", t, n);
	return 0;
}

/*
 * Two processes hand a counter back and forth on one shared cache line:
 * the parent stores an odd value, the child answers with the next even one.
 */
static int vmb_spin(uint64_t *t, unsigned long n)
{
	unsigned long i, warm = n / 10 + 1;
	uint64_t *line, want;
	int status;
	pid_t pid;

	line = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (line == MAP_FAILED) {
		perror("vmbench: mmap");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("vmbench: fork");
		return 1;
	}
	if (!pid) {
		vmb_pin(1);
		for (want = 1; want < 2 * (warm + n); want += 2) {
			while (__atomic_load_n(line, __ATOMIC_ACQUIRE) != want)
				vmb_pause();
			__atomic_store_n(line, want + 1, __ATOMIC_RELEASE);
		}
		_exit(0);
	}
	vmb_pin(0);
	for (i = 0; i < warm + n; i++) {
		uint64_t t0 = vmb_now_ns();

		__atomic_store_n(line, 2 * i + 1, __ATOMIC_RELEASE);
		while (__atomic_load_n(line, __ATOMIC_ACQUIRE) != 2 * i + 2)
			vmb_pause();
		if (i >= warm)
			t[i - warm] = vmb_now_ns() - t0;
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "vmbench: the spinning child failed\n");
		return 1;
	}
	munmap(line, 4096);
	vmb_report("spin_pingpong", t, n);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long n, batch = 16;
	uint64_t *t;
	int rc;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: vmbench getppid|clock N [BATCH]\n"
				"       vmbench eventfd|spin N\n");
		return 2;
	}
	n = vmb_arg(argv[2], VMB_MAX_N, "N");
	if (argc == 4)
		batch = vmb_arg(argv[3], VMB_MAX_BATCH, "BATCH");
	t = calloc(n, sizeof(*t));
	if (!t) {
		perror("vmbench");
		return 1;
	}
	if (!strcmp(argv[1], "getppid")) {
		rc = vmb_getppid(t, n, batch);
	} else if (!strcmp(argv[1], "clock")) {
		rc = vmb_clock(t, n, batch);
	} else if (!strcmp(argv[1], "eventfd") || !strcmp(argv[1], "spin")) {
		if (argc != 3) {
			fprintf(stderr, "vmbench: %s takes no BATCH\n", argv[1]);
			rc = 2;
		} else {
			rc = argv[1][0] == 'e' ? vmb_eventfd(t, n) : vmb_spin(t, n);
		}
	} else {
		fprintf(stderr, "vmbench: unknown measurement '%s'\n", argv[1]);
		rc = 2;
	}
	free(t);
	return rc;
}
