// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Tenants against each other on a real GPU, through the real lakeD: a
 * client (this process) and a second one -- another process of the same
 * user, and, run as root, a process of another user (uid 65534) -- that goes
 * after the first one's memory, contexts and primary-context reference.
 * Every attempt must fail, and the first client's memory, data and context
 * must come out intact.  Then, within one client of a lakeD serving each
 * client with several threads (--client-threads, as the kernel's channel
 * is served): one thread's blocking synchronize must not hold up another
 * thread's calls, and what a GLOBAL stream capture does to another thread's
 * allocation is reported (CUDA forbids it within a process).
 *
 * Usage: gpu_tenants KERNELS.fatbin            (LAKE_SOCKET: a lakeD with --socket-mode 0666)
 *        gpu_tenants --threads KERNELS.fatbin  (LAKE_SOCKET: a lakeD with --client-threads 4)
 * Prints one line per check; "FAILED" marks a failure; exit 1 if any.
 */
#define _GNU_SOURCE
#include <grp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lake_gpu_util.h"

#define BYTES	(1u << 20)

static int failures;

static void expect(const char *who, const char *what, CUresult got, CUresult want)
{
	const char *g = NULL, *w = NULL;

	cuGetErrorName(got, &g);
	cuGetErrorName(want, &w);
	printf("%-14s %-58s %s%s%s%s\n", who, what, g ? g : "?", got == want ? "" : "  FAILED (expected ",
	       got == want ? "" : w ? w : "?", got == want ? "" : ")");
	if (got != want)
		failures++;
}

static void check(const char *who, const char *what, int ok)
{
	printf("%-14s %-58s %s\n", who, what, ok ? "ok" : "FAILED");
	if (!ok)
		failures++;
}

/* What the owner shows the intruder, in shared memory. */
struct board {
	CUdeviceptr d;		/* the owner's allocation (its second) */
	int dev;
	int stage;
	int capture_alloc;	/* the intruder's cuMemAlloc during the owner's capture */
	int intruder_failures;
	pid_t server;		/* the lakeD process that served the intruder */
};

static void stage_wait(struct board *b, int s)
{
	while (__atomic_load_n(&b->stage, __ATOMIC_ACQUIRE) < s)
		usleep(1000);
}

static void intruder(struct board *b, const char *who)
{
	static unsigned char buf[BYTES];
	struct lake_client_stats st;
	CUdeviceptr mine = 0;
	CUcontext cur = NULL;
	CUdevice dev;
	CUstream s;

	expect(who, "cuInit", cuInit(0), CUDA_SUCCESS);
	expect(who, "cuDeviceGet", cuDeviceGet(&dev, 0), CUDA_SUCCESS);
	expect(who, "cuMemAlloc (its own)", cuMemAlloc(&mine, BYTES), CUDA_SUCCESS);
	stage_wait(b, 1);
	expect(who, "cuMemcpyDtoH from the other's memory", cuMemcpyDtoH(buf, b->d, BYTES),
	       CUDA_ERROR_INVALID_VALUE);
	expect(who, "cuMemcpyDtoH from inside it", cuMemcpyDtoH(buf, b->d + 4096, 64),
	       CUDA_ERROR_INVALID_VALUE);
	memset(buf, 0xee, sizeof(buf));
	expect(who, "cuMemcpyHtoD into it", cuMemcpyHtoD(b->d, buf, BYTES), CUDA_ERROR_INVALID_VALUE);
	expect(who, "cuMemsetD32 over it", cuMemsetD32(b->d, 0xeeeeeeee, BYTES / 4),
	       CUDA_ERROR_INVALID_VALUE);
	expect(who, "cuMemcpyDtoD out of it", cuMemcpyDtoD(mine, b->d, BYTES), CUDA_ERROR_INVALID_VALUE);
	expect(who, "cuMemcpyDtoD into it", cuMemcpyDtoD(b->d, mine, BYTES), CUDA_ERROR_INVALID_VALUE);
	expect(who, "cuStreamCreate", cuStreamCreate(&s, 0), CUDA_SUCCESS);
	expect(who, "cuMemsetD8Async over it", cuMemsetD8Async(b->d, 0xee, BYTES, s), CUDA_SUCCESS);
	expect(who, "...reported by cuStreamSynchronize", cuStreamSynchronize(s),
	       CUDA_ERROR_INVALID_VALUE);
	expect(who, "cuMemFree of it", cuMemFree(b->d), CUDA_ERROR_INVALID_VALUE);
	expect(who, "cuDevicePrimaryCtxRelease (never retained)", cuDevicePrimaryCtxRelease(dev),
	       CUDA_ERROR_INVALID_CONTEXT);
	expect(who, "cuDevicePrimaryCtxRelease again", cuDevicePrimaryCtxRelease(dev),
	       CUDA_ERROR_INVALID_CONTEXT);
	expect(who, "cuCtxGetCurrent", cuCtxGetCurrent(&cur), CUDA_SUCCESS);
	expect(who, "cuCtxDestroy of the current (lakeD's) context", cuCtxDestroy(cur),
	       CUDA_ERROR_INVALID_HANDLE);
	/* The owner runs a GLOBAL capture now (another user's only): not this
	 * tenant's business. */
	__atomic_store_n(&b->stage, 2, __ATOMIC_RELEASE);
	stage_wait(b, 3);
	if (b->capture_alloc == -1) {
		CUdeviceptr d2 = 0;

		b->capture_alloc = cuMemAlloc(&d2, 4096);
		if (!b->capture_alloc)
			cuMemFree(d2);
	}
	expect(who, "cuStreamDestroy", cuStreamDestroy(s), CUDA_SUCCESS);
	expect(who, "cuMemFree (its own)", cuMemFree(mine), CUDA_SUCCESS);
	lake_client_stats(&st);
	b->server = (pid_t)st.server_pid;
	b->intruder_failures = failures;
	__atomic_store_n(&b->stage, 4, __ATOMIC_RELEASE);
}

/* One round: an owner (this process) and an intruder of @uid. */
static void round_with(uid_t uid, const char *who, const void *image)
{
	static unsigned char pattern[BYTES], back[BYTES];
	struct board *b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			       -1, 0);
	struct lake_client_stats st;
	CUdeviceptr first = 0, d = 0, d2 = 0;
	CUcontext ctx;
	CUmodule mod;
	CUstream s;
	CUgraph g;
	CUdevice dev;
	pid_t child;
	int status = 0;
	unsigned int i;

	memset(b, 0, sizeof(*b));
	b->capture_alloc = uid != geteuid() ? -1 : 0;
	expect("owner", "cuDeviceGet", cuDeviceGet(&dev, 0), CUDA_SUCCESS);
	expect("owner", "cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain(&ctx, dev), CUDA_SUCCESS);
	expect("owner", "cuModuleLoadData", cuModuleLoadData(&mod, image), CUDA_SUCCESS);
	expect("owner", "cuMemAlloc", cuMemAlloc(&first, BYTES), CUDA_SUCCESS);
	expect("owner", "cuMemAlloc (the one shown)", cuMemAlloc(&d, BYTES), CUDA_SUCCESS);
	for (i = 0; i < BYTES; i++)
		pattern[i] = (unsigned char)(i * 7 + 3);
	expect("owner", "cuMemcpyHtoD", cuMemcpyHtoD(d, pattern, BYTES), CUDA_SUCCESS);
	b->d = d;
	b->dev = dev;
	fflush(stdout);
	child = fork();
	if (child == 0) {
		if (uid != geteuid() && (setgroups(0, NULL) || setresgid(uid, uid, uid) ||
					 setresuid(uid, uid, uid))) {
			printf("%-14s cannot become uid %u\n", who, (unsigned int)uid);
			_exit(2);
		}
		failures = 0;
		intruder(b, who);
		fflush(stdout);
		_exit(failures ? 1 : 0);
	}
	__atomic_store_n(&b->stage, 1, __ATOMIC_RELEASE);
	stage_wait(b, 2);
	expect("owner", "cuStreamCreate", cuStreamCreate(&s, 0), CUDA_SUCCESS);
	if (uid != geteuid())	/* (one user is one process: CUDA's process-wide rule applies) */
		expect("owner", "cuStreamBeginCapture (GLOBAL)",
		       cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
	__atomic_store_n(&b->stage, 3, __ATOMIC_RELEASE);
	stage_wait(b, 4);
	if (uid != geteuid()) {
		expect("owner", "cuStreamEndCapture", cuStreamEndCapture(s, &g), CUDA_SUCCESS);
		expect("owner", "cuGraphDestroy", cuGraphDestroy(g), CUDA_SUCCESS);
		expect(who, "cuMemAlloc during the owner's GLOBAL capture", b->capture_alloc,
		       CUDA_SUCCESS);
	}
	waitpid(child, &status, 0);
	check(who, "all its attempts refused", WIFEXITED(status) && WEXITSTATUS(status) == 0);
	lake_client_stats(&st);
	printf("%-14s served by lakeD process %d, the owner by %d\n", who, (int)b->server,
	       (int)st.server_pid);
	if (uid != geteuid())
		check(who, "served by a process of its own", b->server && b->server != (pid_t)st.server_pid);
	/* The owner's memory, data and context, intact. */
	expect("owner", "cuMemcpyDtoH", cuMemcpyDtoH(back, d, BYTES), CUDA_SUCCESS);
	check("owner", "data unchanged by the other tenant", !memcmp(back, pattern, BYTES));
	expect("owner", "cuMemAlloc (context alive)", cuMemAlloc(&d2, 4096), CUDA_SUCCESS);
	expect("owner", "cuMemFree", cuMemFree(d2), CUDA_SUCCESS);
	expect("owner", "cuStreamDestroy", cuStreamDestroy(s), CUDA_SUCCESS);
	expect("owner", "cuMemFree", cuMemFree(d), CUDA_SUCCESS);
	expect("owner", "cuMemFree", cuMemFree(first), CUDA_SUCCESS);
	expect("owner", "cuModuleUnload", cuModuleUnload(mod), CUDA_SUCCESS);
	expect("owner", "cuDevicePrimaryCtxRelease", cuDevicePrimaryCtxRelease(dev), CUDA_SUCCESS);
	expect("owner", "cuDevicePrimaryCtxRelease (not held any more)",
	       cuDevicePrimaryCtxRelease(dev), CUDA_ERROR_INVALID_CONTEXT);
	munmap(b, sizeof(*b));
}

/* --threads: one client, several calling threads, several serving threads. */
struct spin_arg {
	CUfunction spin;
	CUstream s;
	double sync_ms;
	int started;
	CUresult r;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *blocker(void *arg)
{
	struct spin_arg *a = arg;
	unsigned long long cycles = 2000000000ull;	/* about a second at ~2 GHz */
	void *args[] = { &cycles };
	double t0;

	a->r = cuLaunchKernel(a->spin, 1, 1, 1, 1, 1, 1, 0, a->s, args, NULL);
	__atomic_store_n(&a->started, 1, __ATOMIC_RELEASE);
	t0 = now_ms();
	if (!a->r)
		a->r = cuStreamSynchronize(a->s);
	a->sync_ms = now_ms() - t0;
	return NULL;
}

static void *alloc_thread(void *arg)
{
	CUdeviceptr d = 0;

	*(CUresult *)arg = cuMemAlloc(&d, 4096);
	if (!*(CUresult *)arg)
		cuMemFree(d);
	return NULL;
}

static int threads_mode(const void *image)
{
	struct spin_arg a = { 0 };
	CUdevice dev;
	CUcontext ctx;
	CUmodule mod;
	CUstream cs;
	CUgraph g;
	pthread_t th;
	double worst = 0;
	int v, i;

	expect("threads", "cuInit", cuInit(0), CUDA_SUCCESS);
	expect("threads", "cuDeviceGet", cuDeviceGet(&dev, 0), CUDA_SUCCESS);
	expect("threads", "cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain(&ctx, dev), CUDA_SUCCESS);
	expect("threads", "cuModuleLoadData", cuModuleLoadData(&mod, image), CUDA_SUCCESS);
	expect("threads", "cuModuleGetFunction lake_spin", cuModuleGetFunction(&a.spin, mod, "lake_spin"),
	       CUDA_SUCCESS);
	expect("threads", "cuStreamCreate", cuStreamCreate(&a.s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
	pthread_create(&th, NULL, blocker, &a);
	while (!__atomic_load_n(&a.started, __ATOMIC_ACQUIRE))
		usleep(100);
	usleep(50 * 1000);	/* the synchronize is blocking by now */
	for (i = 0; i < 100; i++) {
		double t0 = now_ms(), dt;

		cuDriverGetVersion(&v);
		dt = now_ms() - t0;
		worst = dt > worst ? dt : worst;
	}
	pthread_join(th, NULL);
	expect("threads", "the blocking launch + cuStreamSynchronize", a.r, CUDA_SUCCESS);
	printf("threads        other thread's calls during a %.0f ms synchronize: worst %.2f ms\n",
	       a.sync_ms, worst);
	check("threads", "a blocking synchronize did not hold up another thread (< 50 ms)",
	      a.sync_ms > 200 && worst < 50);
	/* A GLOBAL capture on one thread, an allocation on another (of one process). */
	expect("threads", "cuStreamCreate", cuStreamCreate(&cs, 0), CUDA_SUCCESS);
	expect("threads", "cuStreamBeginCapture (GLOBAL)",
	       cuStreamBeginCapture(cs, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
	{
		CUresult r = CUDA_ERROR_UNKNOWN, e;

		pthread_create(&th, NULL, alloc_thread, &r);
		pthread_join(th, NULL);
		printf("threads        cuMemAlloc on another thread during a GLOBAL capture: %d "
		       "(CUDA's rule within one process; see daemon/README.md)\n", (int)r);
		g = NULL;
		e = cuStreamEndCapture(cs, &g);
		printf("threads        cuStreamEndCapture afterwards: %d\n", (int)e);
	}
	if (g)
		cuGraphDestroy(g);
	cuStreamDestroy(cs);
	cuStreamDestroy(a.s);
	cuModuleUnload(mod);
	cuDevicePrimaryCtxRelease(dev);
	printf("# %d failure(s)\n", failures);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	size_t image_len;
	void *image;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "--threads")) {
		if (!(image = lake_read_file(argv[2], &image_len)))
			return 2;
		return threads_mode(image);
	}
	if (argc != 2 || !(image = lake_read_file(argv[1], &image_len))) {
		fprintf(stderr, "usage: %s [--threads] KERNELS.fatbin\n", argv[0]);
		return 2;
	}
	expect("owner", "cuInit", cuInit(0), CUDA_SUCCESS);
	round_with(geteuid(), "same user", image);
	if (geteuid() == 0)
		round_with(65534, "other user", image);
	else
		printf("other user: SKIPPED (run as root to try a second user)\n");
	printf("# %d failure(s)\n", failures);
	return failures ? 1 : 0;
}
