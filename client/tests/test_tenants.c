// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Tenants against each other, without a GPU: liblake clients (separate
 * processes, of the same user and of another one) and hand-made rings
 * against a real lakeD-fake, whose TEST DOUBLE hands out and reuses device
 * addresses, counts primary-context references, keeps a current context per
 * thread and models global stream capture -- so a daemon that lets one
 * tenant touch another's memory, contexts or references, or loses an output
 * to a deferred error, fails here.
 *
 *   test_tenants LAKED_FAKE
 *
 * Each test runs in its own process (check's fork mode) with its own daemon.
 * Client processes report failed checks on stderr (kept in the scratch
 * directory) and in their exit status.  Tests that need a second user run
 * only as root (skipped otherwise: they print why).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/futex.h>
#include "lake_cuda.h"
#include "lake_proto_gen.h"
#include "lake_testvals.h"
#include "lake_uring.h"
#include "liblake.h"
#include "lake_fake.h"
#include "lake_testd.h"

#define OTHER_UID	65534	/* nobody: the second tenant */

/* ------------------------------------------------------------------------ */
/* Client processes                                                         */

/* What two client processes share: values one hands the other, a stage. */
struct board {
	int stage;
	CUdeviceptr d, d2;
	CUcontext ctx;
	CUstream s;
	CUmodule m;
	int value;
};

static struct board *board_new(void)
{
	struct board *b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert(b != MAP_FAILED);
	memset(b, 0, sizeof(*b));
	return b;
}

static void stage_set(struct board *b, int s)
{
	__atomic_store_n(&b->stage, s, __ATOMIC_RELEASE);
}

static bool stage_wait(struct board *b, int s, int ms)
{
	double end = now_ms() + ms;

	while (__atomic_load_n(&b->stage, __ATOMIC_ACQUIRE) < s)
		if (now_ms() > end)
			return false;
		else
			usleep(1000);
	return true;
}

static int client_failures;

/* A check inside a client process: reported, counted, never fatal. */
#define CHECK(cond, ...)							\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__,	\
				__LINE__, #cond);				\
			fprintf(stderr, __VA_ARGS__);				\
			fputc('\n', stderr);					\
			client_failures++;					\
		}								\
	} while (0)

#define CHECK_CU(call, want)							\
	do {									\
		CUresult r_ = (call);						\
		CHECK(r_ == (want), "%s returned %d, expected %d (%s)", #call,	\
		      (int)r_, (int)(want), #want);				\
	} while (0)

static bool am_root(void)
{
	return geteuid() == 0;
}

/* Becomes @uid (and its group) for good, like a separate user's program. */
static void become(uid_t uid)
{
	if (uid == geteuid())
		return;
	if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid)) {
		fprintf(stderr, "cannot become uid %u: %s\n", (unsigned int)uid, strerror(errno));
		_exit(100);
	}
}

/* Runs @fn(@b) in a client process of @uid, stderr to @err. */
static pid_t client(uid_t uid, const char *err, void (*fn)(struct board *), struct board *b)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(err, O_WRONLY | O_CREAT | O_APPEND, 0666);

		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		become(uid);
		setenv("LAKE_ARENA_MB", "4", 1);	/* small arenas: many clients, quick pins */
		client_failures = 0;
		fn(b);
		_exit(client_failures ? 1 : 0);
	}
	return pid;
}

/* Waits for a client; fails the test (with its stderr) unless it passed. */
static void client_done(pid_t pid, const char *err, const char *what)
{
	int st = 0;
	char *text;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return;
	text = slurp(err);
	ck_abort_msg("%s failed (status 0x%x):\n%s", what, st, text ? text : "");
}

static void errfile(char *path, size_t n, const char *name)
{
	snprintf(path, n, "%s/%s-%d.err", tmpdir, name, (int)getpid());
	unlink(path);
}

/* A daemon any local user may reach (0666), with @extra arguments. */
static void start(struct td *d, const char *name, const char *const *extra)
{
	const char *args[40] = { "--socket-mode", "0666" };
	char sock[108], log[160];
	int n = 2;

	while (extra && *extra && n < 39)
		args[n++] = *extra++;
	args[n] = NULL;
	snprintf(sock, sizeof(sock), "%s/%s-%d.sock", tmpdir, name, (int)getpid());
	snprintf(log, sizeof(log), "%s/%s-%d.log", tmpdir, name, (int)getpid());
	td_start_args(d, sock, log, args);
	setenv("LAKE_SOCKET", d->sock, 1);
}

/*
 * Two client processes against one daemon (@extra arguments): @first as this
 * user, @second as @uid, sharing a board; both must pass their checks.
 */
static void two_tenants(const char *name, const char *const *extra,
			void (*first)(struct board *), void (*second)(struct board *), uid_t uid,
			struct board *b)
{
	char e1[200], e2[200], n1[64], n2[64];
	struct td d;
	pid_t a, o;

	if (!b)
		b = board_new();
	snprintf(n1, sizeof(n1), "%s-1", name);
	snprintf(n2, sizeof(n2), "%s-2", name);
	start(&d, name, extra);
	errfile(e1, sizeof(e1), n1);
	errfile(e2, sizeof(e2), n2);
	a = client(getuid(), e1, first, b);
	o = client(uid, e2, second, b);
	client_done(o, e2, "the second client's checks");
	client_done(a, e1, "the first client's checks");
	td_stop(&d, SIGTERM);
}

/* One client process of this user against its own daemon; @d stays up
 * (stopped by the caller) when non-NULL. */
static void one_client(const char *name, const char *const *extra,
		       void (*fn)(struct board *), struct board *b, struct td *keep)
{
	struct td own, *d = keep ? keep : &own;
	char e[200];

	start(d, name, extra);
	errfile(e, sizeof(e), name);
	client_done(client(getuid(), e, fn, b), e, name);
	if (!keep)
		td_stop(d, SIGTERM);
}

/* ------------------------------------------------------------------------ */
/* 1. Device memory: nobody reaches another tenant's                         */

static void owner_allocates(struct board *b)
{
	static __u8 buf[4096];
	CUdeviceptr first = 0, d = 0;

	memset(buf, 0x5a, sizeof(buf));
	/* The second allocation is the one the other tenant goes after: in
	 * another process the first one's address may well be its own. */
	CHECK_CU(cuMemAlloc(&first, sizeof(buf)), CUDA_SUCCESS);
	CHECK_CU(cuMemAlloc(&d, sizeof(buf)), CUDA_SUCCESS);
	CHECK_CU(cuMemcpyHtoD(d, buf, sizeof(buf)), CUDA_SUCCESS);
	b->d = d;
	stage_set(b, 1);
	CHECK(stage_wait(b, 2, 20000), "the other tenant never finished");
	/* Still ours, still usable, still there to free. */
	CHECK_CU(cuMemcpyDtoH(buf, d, sizeof(buf)), CUDA_SUCCESS);
	CHECK_CU(cuMemsetD32(d, 7, sizeof(buf) / 4), CUDA_SUCCESS);
	CHECK_CU(cuMemFree(d), CUDA_SUCCESS);
	CHECK_CU(cuMemFree(first), CUDA_SUCCESS);
}

static void intruder_touches(struct board *b)
{
	__u8 *buf = NULL;
	CUdeviceptr mine = 0;
	CUstream s = NULL;

	CHECK(stage_wait(b, 1, 20000), "the owner never allocated");
	buf = lake_shm_alloc(4096);
	CHECK(buf != NULL, "no arena");
	if (!buf)
		goto out;
	CHECK_CU(cuMemAlloc(&mine, 4096), CUDA_SUCCESS);
	CHECK(mine != b->d || b->d == 0, "two live allocations share an address");
	CHECK_CU(cuMemcpyDtoH(buf, b->d, 4096), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemcpyDtoH(buf, b->d + 64, 64), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemcpyHtoD(b->d, buf, 4096), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemsetD8(b->d, 0, 16), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemsetD32(b->d, 0, 16), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemcpyDtoD(mine, b->d, 64), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemcpyDtoD(b->d, mine, 64), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemFree(b->d), CUDA_ERROR_INVALID_VALUE);
	/* Async: refused too, reported by the next call that may report it. */
	CHECK_CU(cuStreamCreate(&s, 0), CUDA_SUCCESS);
	CHECK_CU(cuMemcpyDtoHAsync(buf, b->d, 64, s), CUDA_SUCCESS);
	CHECK_CU(cuStreamSynchronize(s), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemsetD8Async(b->d, 1, 64, s), CUDA_SUCCESS);
	CHECK_CU(cuStreamSynchronize(s), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemcpyHtoDAsync(b->d, buf, 64, s), CUDA_SUCCESS);
	CHECK_CU(cuStreamSynchronize(s), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuStreamSynchronize(s), CUDA_SUCCESS);
	CHECK_CU(cuStreamDestroy(s), CUDA_SUCCESS);
	CHECK_CU(cuMemFree(mine), CUDA_SUCCESS);
out:
	stage_set(b, 2);
}

START_TEST(test_memory_same_user)
{
	two_tenants("mem", NULL, owner_allocates, intruder_touches, getuid(), NULL);
}
END_TEST

START_TEST(test_memory_other_user)
{
	if (!am_root()) {
		fprintf(stderr, "test_memory_other_user: skipped (needs root to be a second user)\n");
		return;
	}
	two_tenants("mem", NULL, owner_allocates, intruder_touches, OTHER_UID, NULL);
}
END_TEST

/* Ranges inside one's own allocations: the bytes a call touches must fit. */
static void ranges_client(struct board *b)
{
	static __u8 buf[8192];
	CUdeviceptr d = 0, p = 0, g = 0;
	size_t pitch = 0, gbytes = 0;
	CUmodule m = NULL;

	(void)b;
	CHECK_CU(cuMemAlloc(&d, 4096), CUDA_SUCCESS);
	CHECK_CU(cuMemcpyHtoD(d, buf, 4096), CUDA_SUCCESS);
	CHECK_CU(cuMemcpyHtoD(d + 4000, buf, 96), CUDA_SUCCESS);
	CHECK_CU(cuMemcpyHtoD(d + 4000, buf, 97), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemcpyHtoD(d, buf, 8192), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemcpyDtoH(buf, d - 1, 16), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemsetD32(d, 1, 1024), CUDA_SUCCESS);
	CHECK_CU(cuMemsetD32(d, 1, 1025), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemsetD32(d + 8, 1, 0x4000000000000000ull), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemcpyDtoD(d + 2048, d, 2048), CUDA_SUCCESS);
	CHECK_CU(cuMemcpyDtoD(d + 2049, d, 2048), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemFree(d + 16), CUDA_ERROR_INVALID_VALUE);	/* not its start */
	/* Pitched: pitch * height bytes. */
	CHECK_CU(cuMemAllocPitch(&p, &pitch, 100, 4, 4), CUDA_SUCCESS);
	CHECK(pitch >= 100, "pitch %zu", pitch);
	CHECK_CU(cuMemsetD8(p + pitch * 4 - 1, 0, 1), CUDA_SUCCESS);
	CHECK_CU(cuMemsetD8(p + pitch * 4 - 1, 0, 2), CUDA_ERROR_INVALID_VALUE);
	/* A module global: a range owned by its module. */
	CHECK_CU(cuModuleLoadData(&m, LAKE_TEST_PTX), CUDA_SUCCESS);
	CHECK_CU(cuModuleGetGlobal(&g, &gbytes, m, "g"), CUDA_SUCCESS);
	CHECK(gbytes > 0, "global of %zu bytes", gbytes);
	CHECK_CU(cuMemsetD8(g, 0, gbytes), CUDA_SUCCESS);
	CHECK_CU(cuMemsetD8(g, 0, gbytes + 1), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemFree(g), CUDA_ERROR_INVALID_VALUE);	/* not an allocation */
	CHECK_CU(cuModuleUnload(m), CUDA_SUCCESS);
	CHECK_CU(cuMemsetD8(g, 0, 1), CUDA_ERROR_INVALID_VALUE);	/* gone with it */
	CHECK_CU(cuMemFree(d), CUDA_SUCCESS);
	CHECK_CU(cuMemcpyHtoD(d, buf, 1), CUDA_ERROR_INVALID_VALUE);	/* freed */
	CHECK_CU(cuMemFree(p), CUDA_SUCCESS);
}

START_TEST(test_ranges)
{
	one_client("ranges", NULL, ranges_client, NULL, NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* 2. Primary contexts: references are per client                           */

static void retainer(struct board *b)
{
	CUcontext ctx = NULL;
	CUdeviceptr d = 0;
	CUdevice dev = 0;

	CHECK_CU(cuDeviceGet(&dev, 0), CUDA_SUCCESS);
	CHECK_CU(cuDevicePrimaryCtxRetain(&ctx, dev), CUDA_SUCCESS);
	b->value = dev;
	stage_set(b, 1);
	CHECK(stage_wait(b, 2, 20000), "the releaser never finished");
	/* Our reference held: the context is alive. */
	CHECK_CU(cuMemAlloc(&d, 64), CUDA_SUCCESS);
	CHECK_CU(cuMemFree(d), CUDA_SUCCESS);
	CHECK_CU(cuDevicePrimaryCtxRelease(dev), CUDA_SUCCESS);
	CHECK_CU(cuDevicePrimaryCtxRelease(dev), CUDA_ERROR_INVALID_CONTEXT);	/* none left */
	/* And it is not ours to destroy. */
	CHECK_CU(cuCtxDestroy(ctx), CUDA_ERROR_INVALID_HANDLE);
	CHECK_CU(cuMemAlloc(&d, 64), CUDA_SUCCESS);
}

static void releaser(struct board *b)
{
	CUcontext cur = NULL;

	CHECK(stage_wait(b, 1, 20000), "the retainer never retained");
	CHECK_CU(cuDevicePrimaryCtxRelease(b->value), CUDA_ERROR_INVALID_CONTEXT);
	CHECK_CU(cuDevicePrimaryCtxRelease(b->value), CUDA_ERROR_INVALID_CONTEXT);
	CHECK_CU(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
	CHECK(cur != NULL, "no current context");
	CHECK_CU(cuCtxDestroy(cur), CUDA_ERROR_INVALID_HANDLE);	/* lakeD's, not ours */
	stage_set(b, 2);
}

START_TEST(test_primary_refs_same_user)
{
	two_tenants("refs", NULL, retainer, releaser, getuid(), NULL);
}
END_TEST

START_TEST(test_primary_refs_other_user)
{
	if (!am_root()) {
		fprintf(stderr, "test_primary_refs_other_user: skipped (needs root)\n");
		return;
	}
	two_tenants("refs", NULL, retainer, releaser, OTHER_UID, NULL);
}
END_TEST

static void leaves_references(struct board *b)
{
	CUcontext ctx = NULL;
	int i;

	(void)b;
	for (i = 0; i < 3; i++)
		CHECK_CU(cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS);
	CHECK_CU(cuDevicePrimaryCtxRelease(0), CUDA_SUCCESS);
	/* exits holding two */
}

START_TEST(test_references_dropped_at_disconnect)
{
	struct td d;

	one_client("drop", NULL, leaves_references, NULL, &d);
	ck_assert_msg(wait_has(d.log, "released 2 primary context references", 3000),
		      "lakeD did not drop the departed client's references (see %s)", d.log);
	td_stop(&d, SIGTERM);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* 3. Contexts: children die with theirs; the current one follows a thread   */

static void context_children(struct board *b)
{
	CUcontext ctx = NULL, cur = NULL;
	CUdeviceptr d = 0, d2 = 0;
	CUstream s = NULL;
	CUmodule m = NULL;
	CUfunction f = NULL;
	CUevent e = NULL;
	__u64 k0 = LAKE_TEST_KV0, k2 = LAKE_TEST_KV2;
	__u32 k1 = LAKE_TEST_KV1;
	void *params[] = { &k0, &k1, &k2 };

	(void)b;
	CHECK_CU(cuCtxCreate(&ctx, NULL, 0, 0), CUDA_SUCCESS);
	CHECK_CU(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
	CHECK(cur == ctx, "a created context is current on its thread");
	CHECK_CU(cuStreamCreate(&s, 0), CUDA_SUCCESS);
	CHECK_CU(cuEventCreate(&e, 0), CUDA_SUCCESS);
	CHECK_CU(cuMemAlloc(&d, 256), CUDA_SUCCESS);
	CHECK_CU(cuModuleLoadData(&m, LAKE_TEST_PTX), CUDA_SUCCESS);
	CHECK_CU(cuModuleGetFunction(&f, m, LAKE_TEST_KERNEL), CUDA_SUCCESS);
	CHECK_CU(cuCtxDestroy(ctx), CUDA_SUCCESS);
	/* Everything made in it went with it. */
	CHECK_CU(cuStreamSynchronize(s), CUDA_ERROR_INVALID_HANDLE);
	CHECK_CU(cuEventSynchronize(e), CUDA_ERROR_INVALID_HANDLE);
	CHECK_CU(cuMemcpyHtoD(d, params, 8), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuMemFree(d), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuModuleUnload(m), CUDA_ERROR_INVALID_HANDLE);
	CHECK_CU(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL), CUDA_SUCCESS);
	CHECK_CU(cuCtxSynchronize(), CUDA_ERROR_INVALID_HANDLE);	/* the launch's */
	CHECK_CU(cuCtxDestroy(ctx), CUDA_ERROR_INVALID_HANDLE);
	/* The thread is back on the default context, which works. */
	CHECK_CU(cuMemAlloc(&d2, 256), CUDA_SUCCESS);
	CHECK_CU(cuMemFree(d2), CUDA_SUCCESS);
}

START_TEST(test_context_children_die_with_it)
{
	one_client("children", NULL, context_children, NULL, NULL);
}
END_TEST

struct thread_ctx {
	CUcontext created, seen;
	int stage;
};

static void *other_thread(void *arg)
{
	struct thread_ctx *t = arg;
	CUdeviceptr d = 0;

	while (!__atomic_load_n(&t->stage, __ATOMIC_ACQUIRE))
		usleep(1000);
	CHECK_CU(cuCtxGetCurrent(&t->seen), CUDA_SUCCESS);
	CHECK_CU(cuMemAlloc(&d, 64), CUDA_SUCCESS);
	CHECK_CU(cuMemFree(d), CUDA_SUCCESS);
	return NULL;
}

static void per_thread_context(struct board *b)
{
	struct thread_ctx t = { 0 };
	CUcontext before = NULL, cur = NULL;
	pthread_t th;

	(void)b;
	CHECK_CU(cuCtxGetCurrent(&before), CUDA_SUCCESS);
	pthread_create(&th, NULL, other_thread, &t);
	CHECK_CU(cuCtxCreate(&t.created, NULL, 0, 0), CUDA_SUCCESS);
	__atomic_store_n(&t.stage, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CHECK(t.seen != t.created, "another thread's cuCtxCreate changed this thread's context");
	CHECK(t.seen == before, "the other thread's current context moved (%p, was %p)",
	      (void *)t.seen, (void *)before);
	CHECK_CU(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
	CHECK(cur == t.created, "the creating thread lost its context");
	CHECK_CU(cuCtxSetCurrent(before), CUDA_SUCCESS);
	CHECK_CU(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
	CHECK(cur == before, "cuCtxSetCurrent did not stick");
	CHECK_CU(cuCtxDestroy(t.created), CUDA_SUCCESS);
}

START_TEST(test_current_context_per_thread)
{
	one_client("curctx", NULL, per_thread_context, NULL, NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Several serving threads per client: a blocking call holds up no other    */

struct blocked {
	double took;
};

static void *blocks(void *arg)
{
	struct blocked *b = arg;
	double t0 = now_ms();

	CHECK_CU(cuCtxSynchronize(), CUDA_SUCCESS);	/* 500 ms in the double */
	b->took = now_ms() - t0;
	return NULL;
}

static void other_thread_goes_on(struct board *bd)
{
	struct blocked b = { 0 };
	double worst = 0;
	pthread_t th;
	int i, v;

	CHECK_CU(cuDriverGetVersion(&v), CUDA_SUCCESS);
	pthread_create(&th, NULL, blocks, &b);
	usleep(100000);	/* it blocks by now */
	for (i = 0; i < 20; i++) {
		double t0 = now_ms(), dt;

		CHECK_CU(cuDriverGetVersion(&v), CUDA_SUCCESS);
		dt = now_ms() - t0;
		worst = dt > worst ? dt : worst;
	}
	pthread_join(th, NULL);
	bd->value = (int)worst;
	fprintf(stderr, "blocking synchronize %.0f ms; the other thread's calls: worst %.1f ms\n",
		b.took, worst);
	CHECK(b.took >= 400, "the synchronize took %.0f ms", b.took);
}

static double blocked_worst(const char *threads)
{
	const char *extra[] = { "--client-threads", threads, NULL };
	struct board *b = board_new();
	char name[32];

	snprintf(name, sizeof(name), "blocking-%s", threads);	/* a log of its own */
	setenv("LAKE_FAKE_DELAY_US", "cuCtxSynchronize:500000", 1);	/* read by lakeD-fake */
	one_client(name, extra, other_thread_goes_on, b, NULL);
	unsetenv("LAKE_FAKE_DELAY_US");
	return b->value;
}

START_TEST(test_blocking_call_holds_up_no_other)
{
	double one, four;

	one = blocked_worst("1");
	four = blocked_worst("4");
	fprintf(stderr, "test_blocking_call_holds_up_no_other: worst call behind a 500 ms "
		"synchronize: %.0f ms with 1 serving thread, %.0f ms with 4\n", one, four);
	ck_assert_msg(one >= 300, "with one serving thread the call should wait (%.0f ms)", one);
	ck_assert_msg(four < 100, "with 4 serving threads a call waited %.0f ms", four);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* 4. Deferred errors never replace what a call produced                    */

static void deferred(struct board *b)
{
	CUdeviceptr d = 0, bad = LAKE_FAKE_DEV_BASE + 0x10000;
	CUstream s = NULL;
	int v = 0;

	(void)b;
	CHECK_CU(cuStreamCreate(&s, 0), CUDA_SUCCESS);
	CHECK_CU(cuMemsetD8Async(bad, 0, 16, s), CUDA_SUCCESS);	/* fails in lakeD */
	/* Calls that produce something return their own success... */
	CHECK_CU(cuMemAlloc(&d, 4096), CUDA_SUCCESS);
	CHECK(d != 0, "cuMemAlloc succeeded without a pointer");
	CHECK_CU(cuDriverGetVersion(&v), CUDA_SUCCESS);
	/* ...the error comes with the next one that produces nothing. */
	CHECK_CU(cuStreamSynchronize(s), CUDA_ERROR_INVALID_VALUE);
	CHECK_CU(cuStreamSynchronize(s), CUDA_SUCCESS);
	CHECK_CU(cuMemFree(d), CUDA_SUCCESS);	/* the allocation was ours all along */
	CHECK_CU(cuStreamDestroy(s), CUDA_SUCCESS);
}

static void *short_lived(void *arg)
{
	CUdeviceptr bad = LAKE_FAKE_DEV_BASE + 0x20000;

	(void)arg;
	/* A deferred error nobody collects; then the thread ends. */
	CHECK_CU(cuMemsetD8Async(bad, 0, 16, NULL), CUDA_SUCCESS);
	return NULL;
}

static void many_threads_exit(struct board *b)
{
	pthread_t th;
	int i;

	(void)b;
	CHECK(lake_null_call() == 0, "not served");
	for (i = 0; i < 2000; i++) {
		pthread_create(&th, NULL, short_lived, NULL);
		pthread_join(th, NULL);
	}
	CHECK(lake_null_call() == 0, "not served after the threads");
}

/* A thread that exits takes its state in lakeD with it. */
START_TEST(test_thread_exit_forgotten)
{
	struct td d;

	one_client("texit", NULL, many_threads_exit, NULL, &d);
	ck_assert(wait_has(d.log, ") gone: served", 3000));
	ck_assert_msg(wait_has(d.log, "references, 0 threads with state (0 evicted", 100),
		      "lakeD kept the state of threads that exited (see %s)", d.log);
	td_stop(&d, SIGTERM);
}
END_TEST

START_TEST(test_deferred_error_keeps_outputs)
{
	struct td d;

	one_client("deferred", NULL, deferred, NULL, &d);
	/* Nothing leaked: the client freed all it made. */
	ck_assert(wait_has(d.log, "freed 0 resources", 3000));
	td_stop(&d, SIGTERM);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Hand-made rings: a client that is not liblake                            */

struct rawring {
	struct lake_uhello h;
	int mfd, sock;
	__u8 *map, *slots, *arena;
	struct lake_ring_ctrl *ctrl;
	struct lake_uring_done *done;
	__u32 *sq, tail, seq;
};

static void rr_open(struct rawring *r, const char *sock, __u32 nslots, __u64 arena)
{
	struct lake_uhello_reply rep;

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(lake_uring_layout(&r->h, nslots, arena), 0);
	r->h.spec_hash = LAKE_SPEC_HASH;
	r->mfd = make_memfd(r->h.map_size, true);
	r->map = mmap(NULL, r->h.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, r->mfd, 0);
	ck_assert(r->map != MAP_FAILED);
	r->ctrl = (struct lake_ring_ctrl *)r->map;
	r->sq = (__u32 *)(r->map + r->h.sq_offset);
	r->done = (struct lake_uring_done *)(r->map + r->h.done_offset);
	r->slots = r->map + r->h.slots_offset;
	r->arena = r->map + r->h.arena_offset;
	r->sock = raw_send(sock, &r->h, sizeof(r->h), &r->mfd, 1);
	ck_assert_int_eq(raw_reply(r->sock, &rep), 0);
}

static void rr_close(struct rawring *r)
{
	close(r->sock);
	munmap(r->map, r->h.map_size);
	close(r->mfd);
}

static struct lake_msg_hdr *rr_hdr(struct rawring *r, __u32 idx)
{
	return (struct lake_msg_hdr *)(r->slots + (size_t)idx * LAKE_SLOT_SIZE);
}

/* Header of a command in slot @idx; returns its args. */
static void *rr_cmd(struct rawring *r, __u32 idx, __u32 api, __u32 flags, __u32 client,
		    __u32 args_len)
{
	struct lake_msg_hdr *h = rr_hdr(r, idx);

	memset(h, 0, sizeof(*h));
	h->api = api;
	h->flags = flags;
	h->client = client;
	h->seq = ++r->seq;
	h->args_len = args_len;
	memset((__u8 *)h + LAKE_ARGS_OFFSET, 0, args_len);
	return (__u8 *)h + LAKE_ARGS_OFFSET;
}

static void rr_publish(struct rawring *r, __u32 idx)
{
	struct lake_uring_ctrl *u = (struct lake_uring_ctrl *)(r->map + r->h.uctrl_offset);

	r->sq[r->tail % r->h.nslots] = idx;
	__atomic_store_n(&r->ctrl->sq_tail, ++r->tail, __ATOMIC_RELEASE);
	/* As liblake: wake lakeD if it may be asleep on the tail. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&u->daemon_sleeping, __ATOMIC_RELAXED))
		syscall(SYS_futex, &r->ctrl->sq_tail, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Waits until slot @idx completed its last command; false after @ms. */
static bool rr_wait(struct rawring *r, __u32 idx, int ms)
{
	__u32 want = rr_hdr(r, idx)->seq;
	double end = now_ms() + ms;
	unsigned int n = 0;

	while (__atomic_load_n(&r->done[idx].seq, __ATOMIC_ACQUIRE) != want)
		if (!(++n & 1023) && now_ms() > end)
			return false;
	return true;
}

/* ------------------------------------------------------------------------ */
/* 5. 400,000 calling threads: bounded state, commands stay cheap           */

START_TEST(test_many_calling_threads)
{
	const __u32 nslots = 64, total = 400000;
	struct rawring r;
	struct td d;
	double t0, dt;
	__u32 n = 0, i;

	start(&d, "threads", NULL);
	rr_open(&r, d.sock, nslots, 0);
	t0 = now_ms();
	while (n < total) {
		for (i = 0; i < nslots; i++, n++) {
			struct lake_args_cuMemsetD8Async *a =
				rr_cmd(&r, i, LAKE_API_cuMemsetD8Async, LAKE_MSG_ASYNC, n + 1,
				       sizeof(*a));

			/* An address nobody allocated: each thread gets a deferred error. */
			a->dstDevice = LAKE_FAKE_DEV_BASE + 0x100000;
			a->N = 16;
			rr_publish(&r, i);
		}
		for (i = 0; i < nslots; i++)
			ck_assert_msg(rr_wait(&r, i, 60000), "command %u not done after 60 s", n);
		ck_assert_msg(now_ms() - t0 < 60000, "%u commands took more than 60 s", n);
	}
	dt = now_ms() - t0;
	fprintf(stderr, "test_many_calling_threads: %u commands, %u calling threads: "
		"%.0f ms (%.2f us per command)\n", total, total, dt, dt * 1e3 / total);
	rr_close(&r);
	ck_assert_msg(wait_has(d.log, ") gone: served 400000 commands", 3000),
		      "lakeD did not report the client's end (see %s)", d.log);
	/* The table stayed bounded: the least recently used went, counted. */
	ck_assert_msg(wait_has(d.log, "1024 threads with state (398976 evicted", 100),
		      "lakeD's thread table was not bounded (see %s)", d.log);
	td_stop(&d, SIGTERM);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* 6. A client that rewrites its slot and its image while lakeD reads them   */

struct mutator {
	volatile __u8 *byte;	/* toggled */
	__u8 *slot;		/* bytes flipped at random */
	int stop;
};

static void *mutate(void *arg)
{
	struct mutator *m = arg;
	unsigned int seed = 7;

	while (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE)) {
		if (m->byte)
			*m->byte ^= 0x41;	/* 0x00 <-> 'A' */
		if (m->slot) {
			/* Anything the client writes but the sequence number it waits on
			 * (and the words lakeD writes back). */
			unsigned int k = (unsigned int)rand_r(&seed) % (LAKE_SLOT_SIZE - 24);

			k = k < 12 ? k : k + 24 - 12;
			if (k >= 24 && k < 64)
				k = LAKE_ARGS_OFFSET + k;
			m->slot[k] ^= (__u8)(1u << (rand_r(&seed) % 8));
		}
	}
	return NULL;
}

START_TEST(test_client_rewrites_image_and_slot)
{
	struct mutator mu = { 0 };
	struct rawring r;
	pthread_t th;
	struct td d;
	int i, ok = 0;

	start(&d, "toctou", NULL);
	ck_assert_int_eq(lake_null_call(), 0);	/* a bystander, served throughout */
	rr_open(&r, d.sock, 4, 1 << 16);
	/* A one-byte image at the very end of the arena, toggled between a
	 * valid PTX ("\0") and a non-terminated one while lakeD works on it. */
	mu.byte = r.arena + r.h.arena_size - 1;
	*mu.byte = 0;
	pthread_create(&th, NULL, mutate, &mu);
	for (i = 0; i < 20000; i++) {
		struct lake_args_cuModuleLoadData *a =
			rr_cmd(&r, 0, LAKE_API_cuModuleLoadData, 0, 1, sizeof(*a));
		struct lake_msg_hdr *h = rr_hdr(&r, 0);

		a->image.where = LAKE_BUF_ARENA;
		a->image.off = r.h.arena_size - 1;
		a->image.len = 1;
		h->present = 0;	/* no handle wanted: nothing to unload */
		rr_publish(&r, 0);
		ck_assert_msg(rr_wait(&r, 0, 5000), "lakeD stopped answering at load %d (see %s)",
			      i, d.log);
		ok += h->result == 0;
	}
	__atomic_store_n(&mu.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	fprintf(stderr, "test_client_rewrites_image_and_slot: %d of 20000 loads succeeded\n", ok);
	/* Now the slot itself, flipped at random under commands in flight. */
	mu.byte = NULL;
	mu.stop = 0;
	mu.slot = (__u8 *)rr_hdr(&r, 1);
	pthread_create(&th, NULL, mutate, &mu);
	for (i = 0; i < 20000; i++) {
		struct lake_args_cuMemcpyHtoD *a =
			rr_cmd(&r, 1, LAKE_API_cuMemcpyHtoD, 0, 1, sizeof(*a) + 64);

		a->dstDevice = LAKE_FAKE_DEV_BASE;
		a->srcHost.where = LAKE_BUF_SLOT;
		a->srcHost.off = LAKE_ARGS_OFFSET + sizeof(*a);
		a->srcHost.len = 64;
		a->ByteCount = 64;
		rr_publish(&r, 1);
		if (!rr_wait(&r, 1, 2000))
			break;	/* a flipped seq: not lakeD's fault; its liveness is checked below */
	}
	__atomic_store_n(&mu.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	/* lakeD is alive and serves everyone. */
	ck_assert_int_eq(lake_null_call(), 0);
	{
		struct rawring r2;
		struct lake_nop *nop;

		rr_open(&r2, d.sock, 1, 0);
		nop = rr_cmd(&r2, 0, LAKE_API_NOP, 0, 1, sizeof(*nop));
		nop->cookie = 99;
		rr_publish(&r2, 0);
		ck_assert(rr_wait(&r2, 0, 5000));
		rr_close(&r2);
	}
	ck_assert_int_eq(count_in(d.log, "segfault"), 0);
	rr_close(&r);
	td_stop(&d, SIGTERM);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* 7. Quotas: one tenant cannot lock others out                             */

/* A hello with the standard layout; returns its socket (its reply unread). */
static int hello(const char *sock, __u32 nslots, __u64 arena, int *mfd)
{
	struct lake_uhello h;

	ck_assert_int_eq(lake_uring_layout(&h, nslots, arena), 0);
	h.spec_hash = LAKE_SPEC_HASH;
	*mfd = make_memfd(h.map_size, true);
	return raw_send(sock, &h, sizeof(h), mfd, 1);
}

static void served(struct board *b)
{
	(void)b;
	CHECK(lake_null_call() == 0, "not served");
}

START_TEST(test_quota_connections)
{
	const char *extra[] = { "--max-clients-per-uid", "4", NULL };
	int socks[4], mfds[4], sock, mfd, i;
	struct lake_uhello_reply rep;
	char e[200], errpath[200];
	struct td d;

	start(&d, "conns", extra);
	for (i = 0; i < 4; i++) {
		socks[i] = hello(d.sock, 1, 0, &mfds[i]);
		ck_assert_int_eq(raw_reply(socks[i], &rep), 0);
	}
	/* The fifth of this user: refused, with the reason. */
	sock = hello(d.sock, 1, 0, &mfd);
	ck_assert_int_ne(raw_reply(sock, &rep), 0);
	ck_assert_msg(strstr(rep.reason, "connections"), "reason: '%s'", rep.reason);
	close(sock);
	close(mfd);
	/* liblake says why. */
	capture_stderr(errpath, sizeof(errpath), "conns");
	ck_assert_int_eq(lake_null_call(), -ENODEV);
	ck_assert_msg(wait_has(errpath, "connections", 100), "liblake did not say why");
	ck_assert_int_eq(count_in(errpath, "malformed"), 0);
	/* Another user is served meanwhile. */
	if (am_root()) {
		errfile(e, sizeof(e), "other");
		client_done(client(OTHER_UID, e, served, NULL), e, "another user's client");
	}
	/* A slot freed is a slot taken (after liblake's pause of a second
	 * between knocks at a door that refused it). */
	close(socks[0]);
	close(mfds[0]);
	usleep(1100000);
	ck_assert_int_eq(lake_null_call(), 0);
	for (i = 1; i < 4; i++) {
		close(socks[i]);
		close(mfds[i]);
	}
	td_stop(&d, SIGTERM);
}
END_TEST

START_TEST(test_quota_slow_hellos)
{
	const char *extra[] = { "--max-pending-per-uid", "8", NULL };
	int idle[200], i;
	char e[200];
	struct td d;
	double t0;

	start(&d, "slow", extra);
	/* 200 connections that never say hello. */
	for (i = 0; i < 200; i++)
		idle[i] = raw_connect(d.sock);
	usleep(100000);
	/* A real client of the same user still gets in, at once. */
	t0 = now_ms();
	ck_assert_int_eq(lake_null_call(), 0);
	ck_assert_msg(now_ms() - t0 < 1000, "connecting took %.0f ms", now_ms() - t0);
	if (am_root()) {
		errfile(e, sizeof(e), "slow-other");
		t0 = now_ms();
		client_done(client(OTHER_UID, e, served, NULL), e, "another user's client");
		ck_assert_msg(now_ms() - t0 < 1000, "another user waited %.0f ms", now_ms() - t0);
	}
	ck_assert(wait_has(d.log, "waiting for their hello", 1000));
	for (i = 0; i < 200; i++)
		close(idle[i]);
	td_stop(&d, SIGTERM);
}
END_TEST

START_TEST(test_quota_pinned_memory)
{
	const char *extra[] = { "--max-arena-mb", "8", "--max-pinned-mb-per-uid", "16", NULL };
	struct lake_uhello_reply rep;
	int s1, s2, s3, m1, m2, m3;
	struct td d;

	start(&d, "pinned", extra);
	s1 = hello(d.sock, 1, 16ull << 20, &m1);	/* over the per-client limit */
	ck_assert_int_ne(raw_reply(s1, &rep), 0);
	ck_assert_msg(strstr(rep.reason, "arena"), "reason: '%s'", rep.reason);
	close(s1);
	close(m1);
	s1 = hello(d.sock, 1, 8ull << 20, &m1);
	ck_assert_int_eq(raw_reply(s1, &rep), 0);
	s2 = hello(d.sock, 1, 8ull << 20, &m2);
	ck_assert_int_eq(raw_reply(s2, &rep), 0);
	s3 = hello(d.sock, 1, 4ull << 20, &m3);	/* the user's total is reached */
	ck_assert_int_ne(raw_reply(s3, &rep), 0);
	ck_assert_msg(strstr(rep.reason, "pinned"), "reason: '%s'", rep.reason);
	close(s3);
	close(m3);
	close(s1);
	close(m1);
	usleep(300000);	/* its memory is given back */
	s3 = hello(d.sock, 1, 4ull << 20, &m3);
	ck_assert_int_eq(raw_reply(s3, &rep), 0);
	close(s2);
	close(s3);
	close(m2);
	close(m3);
	td_stop(&d, SIGTERM);
}
END_TEST

static void gpu_quota_client(struct board *b)
{
	CUdeviceptr a = 0, c = 0, x = 0;

	(void)b;
	CHECK_CU(cuMemAlloc(&x, 2u << 20), CUDA_ERROR_OUT_OF_MEMORY);
	CHECK(x == 0, "a refused allocation came with a pointer");
	CHECK_CU(cuMemAlloc(&a, 512u << 10), CUDA_SUCCESS);
	CHECK_CU(cuMemAlloc(&c, 512u << 10), CUDA_SUCCESS);
	CHECK_CU(cuMemAlloc(&x, 1), CUDA_ERROR_OUT_OF_MEMORY);
	CHECK_CU(cuMemFree(a), CUDA_SUCCESS);
	CHECK_CU(cuMemAlloc(&a, 256u << 10), CUDA_SUCCESS);
	CHECK_CU(cuMemFree(a), CUDA_SUCCESS);
	CHECK_CU(cuMemFree(c), CUDA_SUCCESS);
}

START_TEST(test_quota_gpu_memory)
{
	const char *extra[] = { "--max-gpu-mb-per-client", "1", NULL };
	one_client("gpumem", extra, gpu_quota_client, NULL, NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* 8. Separate processes, credentials, global capture                       */

static void capturer(struct board *b)
{
	CUstream s = NULL;
	CUgraph g = NULL;

	CHECK_CU(cuStreamCreate(&s, 0), CUDA_SUCCESS);
	CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
	stage_set(b, 1);
	CHECK(stage_wait(b, 2, 20000), "the other tenant never finished");
	CHECK_CU(cuStreamEndCapture(s, &g), CUDA_SUCCESS);
	CHECK_CU(cuStreamDestroy(s), CUDA_SUCCESS);
}

static void allocates_during_capture(struct board *b)
{
	struct lake_client_stats st;
	CUdeviceptr d = 0;

	CHECK(stage_wait(b, 1, 20000), "no capture began");
	CHECK_CU(cuMemAlloc(&d, 64), CUDA_SUCCESS);
	CHECK_CU(cuMemFree(d), CUDA_SUCCESS);
	lake_client_stats(&st);
	b->value = (int)st.server_pid;
	stage_set(b, 2);
}

START_TEST(test_tenants_in_separate_processes)
{
	char e1[200], e2[200];
	struct board *b = board_new();
	struct lake_client_stats st;
	pid_t workers[16], a, o, mine;
	int n, i, other = -1;
	struct td d;

	if (!am_root()) {
		fprintf(stderr, "test_tenants_in_separate_processes: skipped (needs root)\n");
		return;
	}
	start(&d, "procs", NULL);
	ck_assert_int_eq(lake_null_call(), 0);
	lake_client_stats(&st);
	mine = (pid_t)st.server_pid;
	ck_assert_int_gt(mine, 0);
	ck_assert_int_ne(mine, d.pid);	/* not the supervisor */
	/* A GLOBAL capture of one user does not stop another user's calls. */
	errfile(e1, sizeof(e1), "capturer");
	errfile(e2, sizeof(e2), "allocator");
	a = client(getuid(), e1, capturer, b);
	o = client(OTHER_UID, e2, allocates_during_capture, b);
	client_done(o, e2, "the other user's allocation during a capture");
	client_done(a, e1, "the capturer");
	/* The other user was served by a process of its own, as that user,
	 * without privileges. */
	ck_assert_int_gt(b->value, 0);
	ck_assert_int_ne(b->value, mine);
	n = child_pids(d.pid, NULL, workers, 16);
	for (i = 0; i < n; i++)
		if (workers[i] == b->value)
			other = i;
	/* (its worker may be gone already: it stops with its last client) */
	if (other >= 0) {
		ck_assert_int_eq(proc_status(b->value, "Uid:", 10), OTHER_UID);
		ck_assert_int_eq(proc_status(b->value, "CapEff:", 16), 0);
	}
	ck_assert_int_eq(proc_status(mine, "Uid:", 10), (long long)getuid());
	ck_assert_int_eq(proc_status(mine, "CapEff:", 16), 0);
	ck_assert_int_eq(proc_status(mine, "NoNewPrivs:", 10), 1);
	td_stop(&d, SIGTERM);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *tenants_suite(void)
{
	Suite *s = suite_create("tenants");
	TCase *mem = tcase_create("memory");
	TCase *ctx = tcase_create("contexts");
	TCase *hostile = tcase_create("hostile");
	TCase *quota = tcase_create("quotas");
	TCase *proc = tcase_create("processes");

	tcase_set_timeout(mem, 60);
	tcase_add_test(mem, test_memory_same_user);
	tcase_add_test(mem, test_memory_other_user);
	tcase_add_test(mem, test_ranges);
	tcase_set_timeout(ctx, 60);
	tcase_add_test(ctx, test_primary_refs_same_user);
	tcase_add_test(ctx, test_primary_refs_other_user);
	tcase_add_test(ctx, test_references_dropped_at_disconnect);
	tcase_add_test(ctx, test_context_children_die_with_it);
	tcase_add_test(ctx, test_current_context_per_thread);
	tcase_add_test(ctx, test_deferred_error_keeps_outputs);
	tcase_add_test(ctx, test_thread_exit_forgotten);
	tcase_add_test(ctx, test_blocking_call_holds_up_no_other);
	tcase_set_timeout(hostile, 120);
	tcase_add_test(hostile, test_many_calling_threads);
	tcase_add_test(hostile, test_client_rewrites_image_and_slot);
	tcase_set_timeout(quota, 60);
	tcase_add_test(quota, test_quota_connections);
	tcase_add_test(quota, test_quota_slow_hellos);
	tcase_add_test(quota, test_quota_pinned_memory);
	tcase_add_test(quota, test_quota_gpu_memory);
	tcase_set_timeout(proc, 60);
	tcase_add_test(proc, test_tenants_in_separate_processes);
	suite_add_tcase(s, mem);
	suite_add_tcase(s, ctx);
	suite_add_tcase(s, hostile);
	suite_add_tcase(s, quota);
	suite_add_tcase(s, proc);
	return s;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s LAKED_FAKE\n", argv[0]);
		return 2;
	}
	fake_bin = argv[1];
	/* 0755: the second user reaches the sockets there. */
	return td_run("tenants", tenants_suite(), 0755);
}
