// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * liblake end to end, without a GPU: the real liblake.so, through its UNIX
 * socket and memfd ring, against a real lakeD-fake process (lakeD over the
 * recording TEST DOUBLE of the vendor libraries) on a temporary socket, in
 * user-clients-only mode (no /dev/lake).
 *
 *   test_liblake LAKED_FAKE LAKE_SMOKE
 *
 * Every test runs in its own process (check's fork mode), starts its own
 * daemon(s) and sets LAKE_* before its first call, so each sees a fresh
 * liblake.  Outputs are checked against the fake's (lake_testvals.h).
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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
#include "lake_cuda.h"
#include "lake_nvml.h"
#include "lake_proto_gen.h"
#include "lake_testvals.h"
#include "lake_uring.h"
#include "lake_arena.h"
#include "liblake.h"
#include "lake_ktest.h"
#include "lake_testd.h"

static const char *smoke_bin;

static bool fake_pattern(const __u8 *p, __u64 n, unsigned int api, unsigned int param)
{
	__u64 i;

	for (i = 0; i < n; i++)
		if (p[i] != lake_fake_byte(api, param, i))
			return false;
	return true;
}

static struct lake_client_stats stats(void)
{
	struct lake_client_stats st;

	lake_client_stats(&st);
	return st;
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                              */

START_TEST(test_calls_round_trip)
{
	struct td d;
	struct lake_client_stats st;
	CUdevice dev = 0;
	CUdeviceptr dp = 0;
	CUmodule mod = NULL;
	CUfunction fn = NULL;
	CUstream s = NULL;
	CUcontext ctx = NULL;
	size_t fr = 0, tot = 0;
	unsigned int ndev = 0;
	const char *ename = NULL;
	char name[64];
	__u8 small[100];
	int v = 0;

	td_start(&d, "rt", false);
	ck_assert_int_eq(cuInit(0), CUDA_SUCCESS);
	ck_assert_int_eq(cuDriverGetVersion(&v), CUDA_SUCCESS);
	ck_assert_int_eq(v, (int)lake_fake_out(LAKE_API_cuDriverGetVersion, 0));
	ck_assert_int_eq(cuDeviceGet(&dev, 3), CUDA_SUCCESS);
	ck_assert_int_eq(dev, (CUdevice)lake_fake_out(LAKE_API_cuDeviceGet, 0));
	memset(name, 0, sizeof(name));
	ck_assert_int_eq(cuDeviceGetName(name, sizeof(name), dev), CUDA_SUCCESS);
	/* The fake fills all of it; the stub keeps the string within it. */
	ck_assert(fake_pattern((__u8 *)name, sizeof(name) - 1, LAKE_API_cuDeviceGetName, 0));
	ck_assert_int_eq(name[sizeof(name) - 1], 0);
	ck_assert_int_eq(cuMemGetInfo(&fr, &tot), CUDA_SUCCESS);
	ck_assert_uint_eq(fr, lake_fake_out(LAKE_API_cuMemGetInfo, 0));
	ck_assert_uint_eq(tot, lake_fake_out(LAKE_API_cuMemGetInfo, 1));
	ck_assert_int_eq(cuMemAlloc(&dp, 4096), CUDA_SUCCESS);
	ck_assert_uint_ne(dp, 0);	/* the double's allocator chose it */
	/* A staged output comes back. */
	memset(small, 0, sizeof(small));
	ck_assert_int_eq(cuMemcpyDtoH(small, dp, sizeof(small)), CUDA_SUCCESS);
	ck_assert(fake_pattern(small, sizeof(small), LAKE_API_cuMemcpyDtoH, 0));
	/* A kernel: its parameter layout is learned at cuModuleGetFunction. */
	ck_assert_int_eq(cuModuleLoadData(&mod, LAKE_TEST_PTX), CUDA_SUCCESS);
	ck_assert_int_eq(cuModuleGetFunction(&fn, mod, LAKE_TEST_KERNEL), CUDA_SUCCESS);
	{
		__u64 k0 = LAKE_TEST_KV0, k2 = LAKE_TEST_KV2;
		__u32 k1 = LAKE_TEST_KV1;
		void *params[] = { &k0, &k1, &k2 };

		ck_assert_int_eq(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL),
				 CUDA_SUCCESS);
		ck_assert_int_eq(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, params, &params[0]),
				 CUDA_ERROR_INVALID_VALUE);	/* both forms at once */
	}
	/* Async, then a sync call on the stream. */
	ck_assert_int_eq(cuStreamCreate(&s, 0), CUDA_SUCCESS);
	ck_assert_int_eq(cuMemsetD8Async(dp, 7, 16, s), CUDA_SUCCESS);
	ck_assert_int_eq(cuStreamSynchronize(s), CUDA_SUCCESS);
	ck_assert_int_eq(cuStreamDestroy(s), CUDA_SUCCESS);
	/* Refused on the client side (a shared-context parameter); a handle
	 * lakeD never issued. */
	{
		CUctxCreateParams cp = { .cigParams = (CUctxCigParam *)(uintptr_t)0x1000 };

		ck_assert_int_eq(cuCtxCreate(&ctx, &cp, 0, dev), CUDA_ERROR_NOT_SUPPORTED);
	}
	ck_assert_int_eq(cuModuleUnload((CUmodule)(uintptr_t)0x123456789ull),
			 CUDA_ERROR_INVALID_HANDLE);
	ck_assert_int_eq(cuModuleUnload(mod), CUDA_SUCCESS);
	ck_assert_int_eq(cuMemFree(dp), CUDA_SUCCESS);
	/* NVML. */
	ck_assert_int_eq(nvmlInit(), NVML_SUCCESS);
	ck_assert_int_eq(nvmlDeviceGetCount(&ndev), NVML_SUCCESS);
	ck_assert_uint_eq(ndev, lake_fake_out(LAKE_API_nvmlDeviceGetCount, 0));
	/* Error texts: lakeD's (here the TEST DOUBLE's). */
	ck_assert_int_eq(cuGetErrorName(CUDA_ERROR_DEVICE_UNAVAILABLE, &ename), CUDA_SUCCESS);
	ck_assert_str_eq(ename, "lake fake text of cuGetErrorName");
	ck_assert_int_eq(lake_null_call(), 0);
	st = stats();
	ck_assert_uint_eq(st.connected, 1);
	ck_assert_uint_eq(st.connects, 1);
	ck_assert_uint_ge(st.client, 1);
	ck_assert_uint_ge(st.calls, 20);
	ck_assert_uint_eq(st.async_calls, 2);	/* the memset and the launch */
	ck_assert_uint_eq(st.nslots, 128);
	ck_assert_uint_eq(st.arena_size, 64u << 20);
	td_stop(&d, SIGTERM);
	ck_assert(wait_has(d.log, "gone: served", 100) || wait_has(d.log, "stopped", 100));
}
END_TEST

/* LAKE_TEST_PTX at LAKE_TEST_IMAGE_PATH, as a file has it (no NUL). */
static void write_test_image(void)
{
	static const char ptx[] = LAKE_TEST_PTX;
	char tmp[] = LAKE_TEST_IMAGE_PATH ".XXXXXX";
	int fd = mkstemp(tmp);

	ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
	ck_assert_int_eq(write(fd, ptx, sizeof(ptx) - 1), (ssize_t)sizeof(ptx) - 1);
	close(fd);
	ck_assert_int_eq(rename(tmp, LAKE_TEST_IMAGE_PATH), 0);
}

/* The generated kernel-context round trip of every function, built for user
 * space (client/tests/kshim), against lakeD-fake in verify mode. */
START_TEST(test_every_function)
{
	unsigned int ncalls = 0;
	struct td d;
	int fails;

	td_start(&d, "every", true);
	write_test_image();	/* what cuModuleLoad's test reads */
	fails = lake_ktest_roundtrip(&ncalls);
	ck_assert_msg(fails == 0, "%d of %u calls failed (messages above)", fails, ncalls);
	ck_assert_uint_ge(ncalls, LAKE_API_MAX);
	td_stop(&d, SIGTERM);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Many threads                                                             */

struct mix {
	int calls;
	CUdeviceptr dp;
	int errors;
	char first[200];
};

static pthread_mutex_t mix_lock = PTHREAD_MUTEX_INITIALIZER;

static void mix_fail(struct mix *m, int i, const char *what, int r)
{
	pthread_mutex_lock(&mix_lock);
	if (!m->errors++)
		snprintf(m->first, sizeof(m->first), "call %d (%s): %d", i, what, r);
	pthread_mutex_unlock(&mix_lock);
}

static void *mix_thread(void *arg)
{
	struct mix *m = arg;
	__u8 *big = malloc(16384), small[256];
	int i, r, v;

	memset(big, 0x5a, 16384);
	for (i = 0; i < m->calls; i++) {
		switch (i % 5) {
		case 0:	/* the cookie must come back to this very caller */
			r = lake_null_call();
			if (r)
				mix_fail(m, i, "lake_null_call", r);
			break;
		case 1:
			v = 0;
			r = cuDriverGetVersion(&v);
			if (r || v != (int)lake_fake_out(LAKE_API_cuDriverGetVersion, 0))
				mix_fail(m, i, "cuDriverGetVersion", r ? r : v);
			break;
		case 2:	/* async: no wait */
			r = cuMemsetD8Async(m->dp, (unsigned char)i, 64, NULL);
			if (r)
				mix_fail(m, i, "cuMemsetD8Async", r);
			break;
		case 3:
			memset(small, 0, sizeof(small));
			r = cuMemcpyDtoH(small, m->dp, sizeof(small));
			if (r || !fake_pattern(small, sizeof(small), LAKE_API_cuMemcpyDtoH, 0))
				mix_fail(m, i, "cuMemcpyDtoH", r);
			break;
		default:	/* staged through a temporary arena allocation */
			r = cuMemcpyHtoD(m->dp, big, 16384);
			if (r)
				mix_fail(m, i, "cuMemcpyHtoD", r);
			break;
		}
	}
	free(big);
	return NULL;
}

static void run_mix(int nthreads, int calls, struct mix *m)
{
	pthread_t th[64];
	int i;

	ck_assert_int_eq(cuMemAlloc(&m->dp, 1 << 20), CUDA_SUCCESS);
	m->calls = calls;
	for (i = 0; i < nthreads; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, mix_thread, m), 0);
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
}

START_TEST(test_threads_16x5000)
{
	struct lake_client_stats st;
	struct mix m = { 0 };
	struct td d;

	td_start(&d, "mt", false);
	run_mix(16, 5000, &m);
	ck_assert_msg(m.errors == 0, "%d errors; first: %s", m.errors, m.first);
	st = stats();
	ck_assert_uint_ge(st.calls, 16u * 5000u);
	ck_assert_uint_eq(st.async_calls, 16u * 1000u);
	ck_assert_uint_eq(st.arena_used, 0);	/* every staging buffer went back */
	ck_assert_int_eq(lake_null_call(), 0);
	td_stop(&d, SIGTERM);
}
END_TEST

struct blocked_call {
	int result;
	int finished;
	double done_ms;
};

static void *blocked_call_thread(void *arg)
{
	struct blocked_call *b = arg;
	int v;

	b->result = cuDriverGetVersion(&v);
	b->done_ms = now_ms();
	__atomic_store_n(&b->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Few slots, many threads: callers wait for slots, async ones included. */
START_TEST(test_backpressure)
{
	struct lake_client_stats st;
	struct blocked_call b = { 0 };
	struct mix m = { 0 };
	struct td d;
	pthread_t th;
	int i;

	setenv("LAKE_NSLOTS", "4", 1);
	td_start(&d, "bp", false);
	run_mix(8, 2000, &m);
	ck_assert_msg(m.errors == 0, "%d errors; first: %s", m.errors, m.first);
	st = stats();
	ck_assert_uint_eq(st.nslots, 4);
	ck_assert_uint_eq(st.timeouts, 0);

	/* Deterministically: lakeD frozen, four async calls take the four
	 * slots and return at once; the fifth call waits for a slot until
	 * lakeD runs again and their completions free them. */
	td_stop(&d, SIGSTOP);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(cuMemsetD8Async(m.dp, 1, 8, NULL), CUDA_SUCCESS);
	ck_assert_int_eq(pthread_create(&th, NULL, blocked_call_thread, &b), 0);
	usleep(200000);
	ck_assert(!__atomic_load_n(&b.finished, __ATOMIC_ACQUIRE));	/* still waiting */
	td_signal(&d, SIGCONT);
	pthread_join(th, NULL);
	ck_assert_int_eq(b.result, CUDA_SUCCESS);
	ck_assert_uint_eq(stats().slot_waits, st.slot_waits + 1);
	td_stop(&d, SIGTERM);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The arena: zero copy against staging                                     */

START_TEST(test_zero_copy_vs_staged)
{
	struct lake_client_stats s0, s1;
	const size_t big = 1 << 20;
	CUdeviceptr dp = 0;
	CUstream s = NULL;
	__u8 *a, *heap;
	double end;
	struct td d;
	size_t i;

	td_start(&d, "zc", false);
	a = lake_shm_alloc(65536);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq((uintptr_t)a % 64, 0);
	ck_assert(lake_shm_contains(a, 65536));
	ck_assert(lake_shm_contains(a, (size_t)(64u << 20)));	/* the whole arena */
	ck_assert(!lake_shm_contains(a, (size_t)(64u << 20) + 1));
	heap = malloc(big);
	ck_assert(!lake_shm_contains(heap, 1));
	ck_assert_int_eq(cuMemAlloc(&dp, big), CUDA_SUCCESS);
	ck_assert_int_eq(cuStreamCreate(&s, 0), CUDA_SUCCESS);

	s0 = stats();
	ck_assert_int_eq(cuMemcpyHtoD(dp, a, 65536), CUDA_SUCCESS);	/* by offset */
	s1 = stats();
	ck_assert_uint_eq(s1.zero_copy, s0.zero_copy + 1);
	ck_assert_uint_eq(s1.staged, s0.staged);

	ck_assert_int_eq(cuMemcpyHtoD(dp, heap, 4096), CUDA_SUCCESS);	/* into the slot */
	s0 = stats();
	ck_assert_uint_eq(s0.staged, s1.staged + 1);
	ck_assert_uint_eq(s0.staged_arena, s1.staged_arena);

	ck_assert_int_eq(cuMemcpyHtoD(dp, heap, big), CUDA_SUCCESS);	/* through the arena */
	s1 = stats();
	ck_assert_uint_eq(s1.staged, s0.staged + 1);
	ck_assert_uint_eq(s1.staged_arena, s0.staged_arena + 1);
	ck_assert_uint_eq(s1.arena_used, 65536);	/* the staging copy is gone */

	/* An async copy into the arena stays async, and lakeD writes our memory
	 * directly: the bytes appear with no further call. */
	memset(a, 0, 65536);
	s0 = stats();
	ck_assert_int_eq(cuMemcpyDtoHAsync(a, dp, 65536, s), CUDA_SUCCESS);
	s1 = stats();
	ck_assert_uint_eq(s1.async_calls, s0.async_calls + 1);
	ck_assert_uint_eq(s1.zero_copy, s0.zero_copy + 1);
	end = now_ms() + 2000;
	while (!fake_pattern(a, 65536, LAKE_API_cuMemcpyDtoHAsync, 0) && now_ms() < end)
		usleep(100);
	ck_assert(fake_pattern(a, 65536, LAKE_API_cuMemcpyDtoHAsync, 0));
	ck_assert_uint_eq(stats().calls, s1.calls);

	/* The same from the heap runs synchronously (staged, like CUDA's
	 * pageable copies) and is copied back before it returns. */
	memset(heap, 0, big);
	s0 = stats();
	ck_assert_int_eq(cuMemcpyDtoHAsync(heap, dp, big, s), CUDA_SUCCESS);
	s1 = stats();
	ck_assert_uint_eq(s1.async_calls, s0.async_calls);
	ck_assert(fake_pattern(heap, big, LAKE_API_cuMemcpyDtoHAsync, 0));

	/* Arena memory comes and goes. */
	for (i = 0; i < 100; i++) {
		void *p = lake_shm_alloc(1000 + i * 100);

		ck_assert_ptr_nonnull(p);
		lake_shm_free(p, 1000 + i * 100);
	}
	lake_shm_free(a, 65536);
	ck_assert_uint_eq(stats().arena_used, 0);
	free(heap);
	td_stop(&d, SIGTERM);
}
END_TEST

START_TEST(test_arena_exhausted)
{
	char errpath[200];
	CUdeviceptr dp = 0;
	void *whole, *heap;
	struct td d;

	capture_stderr(errpath, sizeof(errpath), "exh");
	setenv("LAKE_ARENA_MB", "1", 1);
	td_start(&d, "exh", false);
	heap = malloc(2 << 20);
	ck_assert_uint_eq(stats().arena_size, 1u << 20);
	ck_assert_ptr_null(lake_shm_alloc(2 << 20));
	ck_assert_ptr_null(lake_shm_alloc(0));
	ck_assert_int_eq(cuMemAlloc(&dp, 4 << 20), CUDA_SUCCESS);
	ck_assert_int_eq(cuMemcpyHtoD(dp, heap, 2 << 20), CUDA_ERROR_OUT_OF_MEMORY);
	ck_assert_int_eq(cuMemcpyHtoD(dp, heap, 512 << 10), CUDA_SUCCESS);
	whole = lake_shm_alloc(1 << 20);
	ck_assert_ptr_nonnull(whole);
	ck_assert_int_eq(cuMemcpyHtoD(dp, heap, 16384), CUDA_ERROR_OUT_OF_MEMORY);
	ck_assert_int_eq(cuMemcpyHtoD(dp, heap, 4096), CUDA_SUCCESS);	/* fits the slot */
	lake_shm_free(whole, 1 << 20);
	ck_assert_int_eq(cuMemcpyHtoD(dp, heap, 16384), CUDA_SUCCESS);
	/* A double free is refused (and said once), never corrupts the arena. */
	lake_shm_free(whole, 1 << 20);
	lake_shm_free(heap, 10);
	ck_assert_int_eq(count_in(errpath, "not an allocation of this process's arena"), 1);
	ck_assert_ptr_nonnull(lake_shm_alloc(1 << 20));
	free(heap);
	td_stop(&d, SIGTERM);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Clients and daemons that die                                             */

START_TEST(test_client_killed_mid_call)
{
	char pat[96], *line, *p;
	int fds[2], st, i, before;
	unsigned int freed;
	pid_t child;
	struct td d;
	char c;

	td_start(&d, "kill", false);
	ck_assert_int_eq(lake_null_call(), 0);	/* this process is a client too */
	ck_assert_int_eq(pipe(fds), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		CUdeviceptr dp;
		CUstream s;
		CUevent e;
		CUmodule m;
		CUfunction f;
		int v;

		/* A fresh connection of its own (liblake starts afresh after fork). */
		if (cuMemAlloc(&dp, 1 << 20) || cuStreamCreate(&s, 0) || cuEventCreate(&e, 0) ||
		    cuModuleLoadData(&m, LAKE_TEST_PTX) || cuModuleGetFunction(&f, m, LAKE_TEST_KERNEL))
			_exit(3);
		if (write(fds[1], "r", 1) != 1)
			_exit(4);
		for (;;) {
			cuMemsetD8Async(dp, 1, 64, s);
			cuEventRecord(e, s);
			lake_null_call();
			cuDriverGetVersion(&v);
		}
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	usleep(20000);	/* mid-stream: calls and async work in flight */
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
	ck_assert(WIFSIGNALED(st));
	snprintf(pat, sizeof(pat), "(pid %d) gone: served", (int)child);
	line = wait_line(d.log, pat, 5000);
	ck_assert_msg(line, "lakeD did not log the end of client pid %d", (int)child);
	p = strstr(line, "freed ");
	ck_assert_ptr_nonnull(p);
	freed = (unsigned int)atoi(p + 6);
	/* its memory, stream, event and module (and the module's function) */
	ck_assert_msg(freed >= 4, "%s", line);
	free(line);

	/* lakeD goes on serving: this client, and a new one. */
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(lake_null_call(), 0);
	before = count_in(d.log, "connected:");
	child = fork();
	if (child == 0) {
		int fails = 0;

		for (i = 0; i < 100; i++)
			fails += lake_null_call() != 0;
		_exit(fails ? 1 : 0);
	}
	waitpid(child, &st, 0);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(count_in(d.log, "connected:"), before + 1);
	td_stop(&d, SIGTERM);
}
END_TEST

START_TEST(test_daemon_killed)
{
	struct blocked_call b = { 0 };
	CUdeviceptr dp = 0;
	pthread_t th;
	double t0;
	struct td d;
	int i;

	td_start(&d, "dk", false);
	ck_assert_int_eq(cuMemAlloc(&dp, 4096), CUDA_SUCCESS);
	/* Freeze lakeD: a call goes to sleep waiting, async ones queue up. */
	td_stop(&d, SIGSTOP);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(cuMemsetD8Async(dp, 1, 8, NULL), CUDA_SUCCESS);
	ck_assert_int_eq(pthread_create(&th, NULL, blocked_call_thread, &b), 0);
	usleep(200000);
	t0 = now_ms();
	td_stop(&d, SIGKILL);
	pthread_join(th, NULL);
	ck_assert_int_eq(b.result, CUDA_ERROR_DEVICE_UNAVAILABLE);
	ck_assert_msg(b.done_ms - t0 < 1000, "the waiting call took %.0f ms to fail",
		      b.done_ms - t0);
	/* Later calls fail fast, and every slot came back. */
	t0 = now_ms();
	ck_assert_int_eq(cuMemAlloc(&dp, 4096), CUDA_ERROR_DEVICE_UNAVAILABLE);
	ck_assert_int_eq(lake_null_call(), -ENODEV);
	ck_assert_int_eq(nvmlInit(), NVML_ERROR_DRIVER_NOT_LOADED);
	ck_assert_msg(now_ms() - t0 < 500, "failing took %.0f ms", now_ms() - t0);
	ck_assert_uint_eq(stats().connected, 0);
}
END_TEST

START_TEST(test_daemon_restart)
{
	char errpath[200], sock[108], log[160];
	struct lake_client_stats s0;
	CUdeviceptr dp = 0;
	struct td d;
	void *a;

	capture_stderr(errpath, sizeof(errpath), "restart");
	snprintf(sock, sizeof(sock), "%s/restart-%d.sock", tmpdir, (int)getpid());
	snprintf(log, sizeof(log), "%s/restart-%d.log", tmpdir, (int)getpid());
	setenv("LAKE_SOCKET", sock, 1);
	/* No daemon yet: unavailable, said once on stderr. */
	ck_assert_int_eq(cuInit(0), CUDA_ERROR_DEVICE_UNAVAILABLE);
	ck_assert_int_eq(lake_null_call(), -ENODEV);
	ck_assert_int_eq(count_in(errpath, "cannot reach lakeD at"), 1);
	a = lake_shm_alloc(8192);
	ck_assert_ptr_nonnull(a);
	/* A daemon started later is picked up by the next call. */
	td_start_at(&d, sock, log, false);
	ck_assert_int_eq(cuInit(0), CUDA_SUCCESS);
	ck_assert_int_eq(count_in(errpath, "connected to lakeD at"), 1);
	ck_assert_int_eq(cuMemAlloc(&dp, 8192), CUDA_SUCCESS);
	/* It dies: calls fail; a new one comes up on the same (stale) path. */
	td_stop(&d, SIGKILL);
	ck_assert_int_eq(cuMemAlloc(&dp, 4096), CUDA_ERROR_DEVICE_UNAVAILABLE);
	ck_assert_int_eq(count_in(errpath, "went away"), 1);
	ck_assert_int_eq(cuMemAlloc(&dp, 4096), CUDA_ERROR_DEVICE_UNAVAILABLE);
	td_start_at(&d, sock, log, false);
	ck_assert(wait_has(log, "removed a stale socket", 100));
	ck_assert_int_eq(cuMemAlloc(&dp, 8192), CUDA_SUCCESS);
	ck_assert_int_eq(count_in(errpath, "connected to lakeD at"), 2);
	/* one line per episode: "went away" covered the failed reconnections */
	ck_assert_int_eq(count_in(errpath, "cannot reach lakeD at"), 1);
	/* The arena outlived the daemon: still passed by offset. */
	s0 = stats();
	ck_assert_int_eq(cuMemcpyHtoD(dp, a, 8192), CUDA_SUCCESS);
	ck_assert_uint_eq(stats().zero_copy, s0.zero_copy + 1);
	ck_assert_uint_eq(stats().connects, 2);
	ck_assert_int_eq(lake_null_call(), 0);
	td_stop(&d, SIGTERM);
}
END_TEST

START_TEST(test_timeout_and_abandoned_slots)
{
	CUdeviceptr dp = 0;
	void *heap;
	double t0, dt;
	struct td d;
	int v = 0, i;

	setenv("LAKE_TIMEOUT_MS", "300", 1);
	setenv("LAKE_NSLOTS", "2", 1);
	td_start(&d, "to", false);
	heap = malloc(1 << 20);
	ck_assert_int_eq(cuMemAlloc(&dp, 1 << 20), CUDA_SUCCESS);
	td_stop(&d, SIGSTOP);
	for (i = 0; i < 2; i++) {	/* both slots end up abandoned */
		t0 = now_ms();
		if (i == 0)	/* staged through the arena */
			ck_assert_int_eq(cuMemcpyDtoH(heap, dp, 1 << 20), CUDA_ERROR_TIMEOUT);
		else
			ck_assert_int_eq(cuDriverGetVersion(&v), CUDA_ERROR_TIMEOUT);
		dt = now_ms() - t0;
		ck_assert_msg(dt >= 290 && dt < 2000, "timed out after %.0f ms", dt);
	}
	/* The abandoned copy's staging stays allocated: lakeD will still write
	 * the reply there, which must not land in someone else's buffer. */
	ck_assert_uint_eq(stats().arena_used, 1u << 20);
	/* No slot left: waiting for one times out too. */
	t0 = now_ms();
	ck_assert_int_eq(lake_null_call(), -ETIMEDOUT);
	dt = now_ms() - t0;
	ck_assert_msg(dt >= 290 && dt < 2000, "slot wait timed out after %.0f ms", dt);
	/* lakeD answers the abandoned commands; their slots come back. */
	td_signal(&d, SIGCONT);
	ck_assert_int_eq(cuDriverGetVersion(&v), CUDA_SUCCESS);	/* reaps them */
	ck_assert_int_eq(v, (int)lake_fake_out(LAKE_API_cuDriverGetVersion, 0));
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(lake_null_call(), 0);
	ck_assert_uint_eq(stats().timeouts, 3);
	ck_assert_uint_eq(stats().arena_used, 0);	/* released with its slot */
	free(heap);
	td_stop(&d, SIGTERM);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Hostile clients: lakeD refuses, survives, and leaks nothing              */

/* A hello of the standard layout; expects a refusal whose reason has @why. */
static void refused(const struct td *d, const struct lake_uhello *h, size_t len,
		    const int *fds, int nfd, const char *why)
{
	struct lake_uhello_reply r;
	int sock = raw_send(d->sock, h, len, fds, nfd);

	ck_assert_int_ne(raw_reply(sock, &r), 0);
	ck_assert_msg(strstr(r.reason, why), "reason '%s' lacks '%s'", r.reason, why);
	close(sock);
}

START_TEST(test_hostile_hellos)
{
	struct lake_uhello good, h;
	struct lake_uhello_reply r;
	int mfd, small, file, fds[6], sock, silent, base, i;
	char path[200];
	struct td d;

	td_start(&d, "hostile", false);
	ck_assert_int_eq(lake_null_call(), 0);	/* our own client, served throughout */
	usleep(100000);
	base = open_fds(d.pid);
	ck_assert_int_gt(base, 0);

	ck_assert_int_eq(lake_uring_layout(&good, 8, 1 << 20), 0);
	good.spec_hash = LAKE_SPEC_HASH;
	mfd = make_memfd(good.map_size, true);

	h = good;
	h.spec_hash ^= 1;
	refused(&d, &h, sizeof(h), &mfd, 1, "spec hash mismatch");
	ck_assert(wait_has(d.log, "refused: spec hash mismatch", 2000));
	h = good;
	h.magic = 0xdeadbeef;
	refused(&d, &h, sizeof(h), &mfd, 1, "not a liblake hello");
	h = good;
	h.version++;
	refused(&d, &h, sizeof(h), &mfd, 1, "protocol version mismatch");
	h = good;
	h.uring_version++;
	refused(&d, &h, sizeof(h), &mfd, 1, "user ring version mismatch");
	h = good;
	h.nslots = 3;
	refused(&d, &h, sizeof(h), &mfd, 1, "not a power of two");
	h = good;
	h.reserved[2] = 1;
	refused(&d, &h, sizeof(h), &mfd, 1, "must be zero");
	h = good;
	h.done_offset = h.sq_offset;	/* overlaps the queue */
	refused(&d, &h, sizeof(h), &mfd, 1, "completion words");
	h = good;
	h.arena_offset = h.slots_offset;	/* overlaps the slots */
	refused(&d, &h, sizeof(h), &mfd, 1, "arena at");
	h = good;
	h.map_size = 1ull << 40;
	refused(&d, &h, sizeof(h), &mfd, 1, "too big");
	refused(&d, &good, sizeof(good), NULL, 0, "no shared memory file descriptor");
	refused(&d, &good, 10, &mfd, 1, "the hello has 10 bytes");
	small = make_memfd(good.map_size / 2, true);
	refused(&d, &good, sizeof(good), &small, 1, "the memfd has");
	close(small);
	small = make_memfd(good.map_size, false);
	refused(&d, &good, sizeof(good), &small, 1, "sealed against shrinking");
	close(small);
	snprintf(path, sizeof(path), "%s/plain-%d", tmpdir, (int)getpid());
	file = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(file, 0);
	ck_assert_int_eq(ftruncate(file, (off_t)good.map_size), 0);
	refused(&d, &good, sizeof(good), &file, 1, "must be a memfd");
	close(file);

	/* A silent client does not hold up anyone; one that hangs up early
	 * is just logged. */
	silent = raw_connect(d.sock);
	ck_assert_int_eq(lake_null_call(), 0);
	close(raw_connect(d.sock));
	ck_assert(wait_has(d.log, "closed the connection before its hello", 2000));

	/* Extra fds are closed; the first one is used. */
	for (i = 0; i < 6; i++)
		fds[i] = mfd;
	sock = raw_send(d.sock, &good, sizeof(good), fds, 6);
	ck_assert_int_eq(raw_reply(sock, &r), 0);
	ck_assert_uint_gt(r.client, 1);
	close(sock);
	close(silent);
	close(mfd);
	/* Everything a refused or departed client brought is gone. */
	usleep(300000);
	ck_assert_int_eq(lake_null_call(), 0);
	ck_assert_int_eq(open_fds(d.pid), base);
	td_stop(&d, SIGTERM);
}
END_TEST

/* A client that writes garbage into its ring: lakeD answers what it can,
 * drops the client when its queue is nonsense, and serves others. */
START_TEST(test_hostile_ring)
{
	struct lake_uhello h;
	struct lake_uhello_reply r;
	struct lake_ring_ctrl *ctrl;
	struct lake_uring_done *done;
	__u32 *sq, tail = 0, i, seq = 0;
	__u8 *map, *slots;
	unsigned int seed = 12345;
	int mfd, sock;
	double end;
	struct td d;

	td_start(&d, "ring", false);
	ck_assert_int_eq(lake_null_call(), 0);
	ck_assert_int_eq(lake_uring_layout(&h, 8, 1 << 20), 0);
	h.spec_hash = LAKE_SPEC_HASH;
	mfd = make_memfd(h.map_size, true);
	map = mmap(NULL, h.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ck_assert(map != MAP_FAILED);
	sock = raw_send(d.sock, &h, sizeof(h), &mfd, 1);
	ck_assert_int_eq(raw_reply(sock, &r), 0);
	ctrl = (struct lake_ring_ctrl *)map;
	sq = (__u32 *)(map + h.sq_offset);
	done = (struct lake_uring_done *)(map + h.done_offset);
	slots = map + h.slots_offset;

	/* 2000 commands of random bytes (headers too), some naming no slot. */
	for (i = 0; i < 2000; i++) {
		__u32 idx = i % 8;
		__u8 *slot = slots + (size_t)idx * LAKE_SLOT_SIZE;
		struct lake_msg_hdr *hd = (struct lake_msg_hdr *)slot;
		__u32 k;

		for (k = 0; k < LAKE_SLOT_SIZE; k += 4) {
			__u32 x = (__u32)rand_r(&seed);

			memcpy(slot + k, &x, 4);
		}
		if (i % 3)	/* mostly valid API numbers, to reach the dispatch */
			hd->api = 1 + (__u32)rand_r(&seed) % (LAKE_API_MAX + 1);
		if (i % 2)
			hd->args_len = (__u32)rand_r(&seed) % LAKE_ARGS_MAX;
		hd->seq = ++seq;
		sq[tail % 8] = (i % 97 == 5) ? 0xffffffffu : idx;
		__atomic_store_n(&ctrl->sq_tail, ++tail, __ATOMIC_RELEASE);
		/* one command in flight at a time: wait for it (or its skip) */
		end = now_ms() + 2000;
		while (__atomic_load_n(&ctrl->sq_head, __ATOMIC_ACQUIRE) != tail &&
		       now_ms() < end)
			;
		ck_assert_uint_eq(__atomic_load_n(&ctrl->sq_head, __ATOMIC_ACQUIRE), tail);
		if (sq[(tail - 1) % 8] == idx) {
			while (__atomic_load_n(&done[idx].seq, __ATOMIC_ACQUIRE) != seq &&
			       now_ms() < end)
				;
			ck_assert_uint_eq(done[idx].seq, seq);
		}
	}
	ck_assert_int_eq(lake_null_call(), 0);

	/* lakeD's own word scribbled on: its thread must not spin at full
	 * speed over it (and a real command still gets through). */
	__atomic_store_n(&ctrl->sq_head, tail + 5, __ATOMIC_RELEASE);
	{
		pid_t worker = (pid_t)stats().server_pid;	/* serves this uid's rings */
		double cpu0 = cpu_seconds(worker), t0 = now_ms(), busy;
		struct lake_msg_hdr *hd = (struct lake_msg_hdr *)slots;
		struct lake_nop nop = { .cookie = 77 };

		usleep(1000000);
		busy = (cpu_seconds(worker) - cpu0) / ((now_ms() - t0) / 1e3);
		ck_assert_msg(busy < 0.5, "lakeD used %.0f%% of a CPU over a scribbled ring",
			      busy * 100);
		memset(hd, 0, sizeof(*hd));
		hd->api = LAKE_API_NOP;
		hd->seq = ++seq;
		hd->args_len = sizeof(nop);
		memcpy(slots + LAKE_ARGS_OFFSET, &nop, sizeof(nop));
		sq[tail % 8] = 0;
		__atomic_store_n(&ctrl->sq_tail, ++tail, __ATOMIC_RELEASE);
		end = now_ms() + 2000;
		while (__atomic_load_n(&done[0].seq, __ATOMIC_ACQUIRE) != seq && now_ms() < end)
			usleep(100);
		ck_assert_uint_eq(done[0].seq, seq);
		ck_assert_int_eq(hd->result, 0);
		ck_assert_uint_eq(__atomic_load_n(&ctrl->sq_head, __ATOMIC_ACQUIRE), tail);
	}

	/* A queue claiming more entries than slots: the client is dropped. */
	__atomic_store_n(&ctrl->sq_tail, tail + 1000, __ATOMIC_RELEASE);
	{
		struct pollfd p = { .fd = sock, .events = POLLRDHUP };

		ck_assert_int_eq(poll(&p, 1, 5000), 1);
		ck_assert(p.revents & (POLLHUP | POLLRDHUP));
	}
	ck_assert(wait_has(d.log, "ring corrupted", 1000));
	ck_assert(wait_has(d.log, "dropped", 1000));
	close(sock);
	munmap(map, h.map_size);
	close(mfd);
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(lake_null_call(), 0);
	td_stop(&d, SIGTERM);
}
END_TEST

/* What liblake says when lakeD refuses it (a stand-in server here). */
static void *refusing_server(void *arg)
{
	int lfd = *(int *)arg, c, i;
	char buf[512], cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct lake_uhello_reply r;

	for (i = 0; i < 2; i++) {
		c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			return NULL;
		if (recvmsg(c, &msg, MSG_CMSG_CLOEXEC) > 0) {
			struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
			int fd;

			if (cm && cm->cmsg_type == SCM_RIGHTS) {
				memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
				close(fd);
			}
		}
		memset(&r, 0, sizeof(r));
		r.magic = LAKE_UREPLY_MAGIC;
		r.status = -EPROTO;
		snprintf(r.reason, sizeof(r.reason), "spec hash mismatch: the test says no");
		if (send(c, &r, sizeof(r), MSG_NOSIGNAL) < 0) {
			/* the test will notice */
		}
		close(c);
	}
	return NULL;
}

START_TEST(test_refusal_message)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char errpath[200];
	pthread_t th;
	int lfd;

	capture_stderr(errpath, sizeof(errpath), "refuse");
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/refuse-%d.sock", tmpdir, (int)getpid());
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, refusing_server, &lfd), 0);
	setenv("LAKE_SOCKET", a.sun_path, 1);
	ck_assert_int_eq(cuInit(0), CUDA_ERROR_DEVICE_UNAVAILABLE);
	ck_assert(wait_has(errpath, "refused this client: spec hash mismatch: the test says no",
			   100));
	/* After a refusal liblake does not knock again at once. */
	ck_assert_int_eq(cuInit(0), CUDA_ERROR_DEVICE_UNAVAILABLE);
	ck_assert_int_eq(count_in(errpath, "refused"), 1);
	usleep(1100000);
	ck_assert_int_eq(cuInit(0), CUDA_ERROR_DEVICE_UNAVAILABLE);
	pthread_join(th, NULL);
	close(lfd);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Settings, fork, the example                                              */

START_TEST(test_settings_and_fork)
{
	char errpath[200];
	struct lake_client_stats st;
	struct td d;
	pid_t child;
	int s;
	void *a;

	capture_stderr(errpath, sizeof(errpath), "env");
	setenv("LAKE_NSLOTS", "3", 1);	/* not a power of two */
	setenv("LAKE_ARENA_MB", "2", 1);
	setenv("LAKE_SPIN_US", "fast", 1);
	td_start(&d, "env", false);
	a = lake_shm_alloc(4096);
	ck_assert_ptr_nonnull(a);
	st = stats();
	ck_assert_uint_eq(st.nslots, 128);
	ck_assert_uint_eq(st.arena_size, 2u << 20);
	ck_assert(wait_has(errpath, "LAKE_NSLOTS=3", 10));
	ck_assert(wait_has(errpath, "LAKE_SPIN_US=fast", 10));
	ck_assert_int_eq(lake_null_call(), 0);
	/* A child of a client is a client of its own (a new ring), while the
	 * parent's connection goes on. */
	child = fork();
	if (child == 0) {
		struct lake_client_stats cs;
		int bad = lake_shm_contains(a, 4096);	/* the parent's arena, not ours */

		bad |= lake_null_call() != 0;
		lake_client_stats(&cs);
		bad |= cs.connects != 1 || cs.client == st.client;
		_exit(bad);
	}
	ck_assert_int_eq(lake_null_call(), 0);
	waitpid(child, &s, 0);
	ck_assert(WIFEXITED(s) && WEXITSTATUS(s) == 0);
	ck_assert_int_eq(lake_null_call(), 0);
	ck_assert_uint_eq(stats().connects, 1);
	td_stop(&d, SIGTERM);
}
END_TEST

START_TEST(test_smoke_example)
{
	struct td d;
	pid_t child;
	int st;

	td_start(&d, "smoke", false);
	child = fork();
	if (child == 0) {
		execl(smoke_bin, smoke_bin, "--calls-only", "--quiet", (char *)NULL);
		_exit(127);
	}
	waitpid(child, &st, 0);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	td_stop(&d, SIGTERM);
}
END_TEST

/* lakeD's shutdown with clients attached: they see it go, it frees theirs. */
START_TEST(test_daemon_stops_with_clients)
{
	CUdeviceptr dp;
	struct td d;
	int st;

	td_start(&d, "stop", false);
	ck_assert_int_eq(cuMemAlloc(&dp, 4096), CUDA_SUCCESS);
	kill(d.pid, SIGTERM);
	waitpid(d.pid, &st, 0);
	d.pid = 0;
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert(wait_has(d.log, "stopped (lakeD is stopping)", 10));
	ck_assert_int_eq(cuMemAlloc(&dp, 4096), CUDA_ERROR_DEVICE_UNAVAILABLE);
	ck_assert_int_ne(access(d.sock, F_OK), 0);	/* the socket file is gone */
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The arena allocator itself                                               */

START_TEST(test_arena_allocator)
{
	const __u64 size = 1 << 20;
	struct lake_arena a;
	__u8 *mem = aligned_alloc(4096, size), *shadow = calloc(1, size);
	struct { __u8 *p; __u64 len; } live[512];
	unsigned int nlive = 0, i, seed = 7;
	__u8 *p1, *p2, *p3, overlap = 0;
	__u64 off;

	ck_assert_int_eq(lake_arena_init(&a, mem, size), 0);
	p1 = lake_arena_alloc(&a, 100, &off);
	ck_assert_ptr_eq(p1, mem);
	ck_assert_uint_eq(off, 0);
	p2 = lake_arena_alloc(&a, 1, NULL);
	ck_assert_ptr_eq(p2, mem + 128);
	p3 = lake_arena_alloc(&a, 64, NULL);
	ck_assert_ptr_eq(p3, mem + 192);
	ck_assert_int_eq(lake_arena_free(&a, p1, 100), 0);
	ck_assert_ptr_eq(lake_arena_alloc(&a, 64, NULL), mem);	/* first fit */
	ck_assert_ptr_eq(lake_arena_alloc(&a, 64, NULL), mem + 64);
	ck_assert_ptr_eq(lake_arena_alloc(&a, 64, NULL), mem + 256);
	/* Refused: double free, outside, misaligned, overlapping free space. */
	ck_assert_int_eq(lake_arena_free(&a, p2, 1), 0);
	ck_assert_int_eq(lake_arena_free(&a, p2, 1), -1);
	ck_assert_int_eq(lake_arena_free(&a, mem + size, 64), -1);
	ck_assert_int_eq(lake_arena_free(&a, mem + 8, 64), -1);
	ck_assert_int_eq(lake_arena_free(&a, p3 - 64, 128), -1);
	ck_assert_int_eq(lake_arena_free(&a, mem, 0), -1);
	ck_assert_ptr_null(lake_arena_alloc(&a, 0, NULL));
	ck_assert_ptr_null(lake_arena_alloc(&a, size, NULL));
	ck_assert_int_eq(lake_arena_free(&a, mem, 128), 0);
	ck_assert_int_eq(lake_arena_free(&a, p3, 64), 0);
	ck_assert_int_eq(lake_arena_free(&a, mem + 256, 64), 0);
	/* Everything coalesced back into one extent. */
	ck_assert_uint_eq(a.nfree, 1);
	ck_assert_uint_eq(a.used, 0);
	ck_assert_ptr_eq(lake_arena_alloc(&a, size, NULL), mem);
	ck_assert_ptr_null(lake_arena_alloc(&a, 1, NULL));
	ck_assert_int_eq(lake_arena_free(&a, mem, size), 0);

	/* Random allocations and frees against a shadow map of the bytes. */
	for (i = 0; i < 40000; i++) {
		if (nlive < 512 && (nlive == 0 || rand_r(&seed) % 3)) {
			__u64 len = 1 + (__u64)rand_r(&seed) % 8192, j;
			__u8 *p = lake_arena_alloc(&a, len, NULL);

			if (!p)
				continue;
			ck_assert_uint_eq((uintptr_t)(p - mem) % LAKE_ARENA_ALIGN, 0);
			for (j = 0; j < len; j++)
				overlap |= shadow[p - mem + j]++;
			ck_assert_msg(!overlap, "allocation %u overlaps a live one", i);
			live[nlive].p = p;
			live[nlive++].len = len;
		} else {
			unsigned int k = (unsigned int)rand_r(&seed) % nlive;
			__u64 j;

			for (j = 0; j < live[k].len; j++)
				shadow[live[k].p - mem + j]--;
			ck_assert_int_eq(lake_arena_free(&a, live[k].p, live[k].len), 0);
			live[k] = live[--nlive];
		}
	}
	while (nlive) {
		nlive--;
		ck_assert_int_eq(lake_arena_free(&a, live[nlive].p, live[nlive].len), 0);
	}
	ck_assert_uint_eq(a.nfree, 1);
	ck_assert_uint_eq(a.used, 0);
	lake_arena_destroy(&a);
	free(shadow);
	free(mem);
}
END_TEST

struct arena_thr {
	struct lake_arena *a;
	unsigned int seed;
	int errors;
};

static void *arena_thread(void *arg)
{
	struct arena_thr *t = arg;
	__u8 mark = (__u8)(t->seed & 0xff);
	int i;

	for (i = 0; i < 20000; i++) {
		__u64 len = 1 + (__u64)rand_r(&t->seed) % 4096, j;
		__u8 *p = lake_arena_alloc(t->a, len, NULL);

		if (!p)
			continue;
		memset(p, mark, len);
		sched_yield();
		for (j = 0; j < len; j++)
			if (p[j] != mark)
				t->errors++;
		if (lake_arena_free(t->a, p, len))
			t->errors++;
	}
	return NULL;
}

START_TEST(test_arena_threads)
{
	struct arena_thr t[4];
	pthread_t th[4];
	struct lake_arena a;
	void *mem = aligned_alloc(4096, 1 << 16);
	int i;

	ck_assert_int_eq(lake_arena_init(&a, mem, 1 << 16), 0);
	for (i = 0; i < 4; i++) {
		t[i].a = &a;
		t[i].seed = 0x11 * (unsigned int)(i + 1);
		t[i].errors = 0;
		pthread_create(&th[i], NULL, arena_thread, &t[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(t[i].errors, 0);
	}
	ck_assert_uint_eq(a.used, 0);
	ck_assert_uint_eq(a.nfree, 1);
	lake_arena_destroy(&a);
	free(mem);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *liblake_suite(void)
{
	Suite *s = suite_create("liblake");
	TCase *rt = tcase_create("round_trip");
	TCase *mt = tcase_create("threads");
	TCase *arena = tcase_create("arena");
	TCase *death = tcase_create("death");
	TCase *hostile = tcase_create("hostile");
	TCase *misc = tcase_create("misc");

	tcase_set_timeout(rt, 60);
	tcase_add_test(rt, test_calls_round_trip);
	tcase_add_test(rt, test_every_function);
	tcase_set_timeout(mt, 240);
	tcase_add_test(mt, test_threads_16x5000);
	tcase_add_test(mt, test_backpressure);
	tcase_set_timeout(arena, 60);
	tcase_add_test(arena, test_zero_copy_vs_staged);
	tcase_add_test(arena, test_arena_exhausted);
	tcase_add_test(arena, test_arena_allocator);
	tcase_add_test(arena, test_arena_threads);
	tcase_set_timeout(death, 60);
	tcase_add_test(death, test_client_killed_mid_call);
	tcase_add_test(death, test_daemon_killed);
	tcase_add_test(death, test_daemon_restart);
	tcase_add_test(death, test_timeout_and_abandoned_slots);
	tcase_add_test(death, test_daemon_stops_with_clients);
	tcase_set_timeout(hostile, 60);
	tcase_add_test(hostile, test_hostile_hellos);
	tcase_add_test(hostile, test_hostile_ring);
	tcase_add_test(hostile, test_refusal_message);
	tcase_set_timeout(misc, 60);
	tcase_add_test(misc, test_settings_and_fork);
	tcase_add_test(misc, test_smoke_example);
	suite_add_tcase(s, rt);
	suite_add_tcase(s, mt);
	suite_add_tcase(s, arena);
	suite_add_tcase(s, death);
	suite_add_tcase(s, hostile);
	suite_add_tcase(s, misc);
	return s;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s LAKED_FAKE LAKE_SMOKE\n", argv[0]);
		return 2;
	}
	fake_bin = argv[1];
	smoke_bin = argv[2];
	return td_run("liblake", liblake_suite(), 0700);
}
