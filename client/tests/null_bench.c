// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * lake-null-bench: the latency of a null round trip (lake_null_call: a
 * LAKE_API_NOP through liblake, the socket-set-up ring and lakeD) and of a
 * small synchronous CUDA call, one caller at a time.
 *
 *   LAKE_SOCKET=... lake-null-bench [N] [--bandwidth]    (default N = 100000)
 *
 * Prints min / median / p99 / p99.9 / max in microseconds.  --bandwidth
 * (a real GPU behind lakeD) also times 32 MiB host-to-device copies from the
 * arena (zero copy, registered) and from malloc'd memory (staged).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lake_cuda.h"
#include "liblake.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, long n)
{
	qsort(t, (size_t)n, sizeof(*t), cmp);
	printf("%-24s n=%ld  min %.2f  median %.2f  p99 %.2f  p99.9 %.2f  max %.1f us\n", what, n,
	       t[0], t[n / 2], t[n * 99 / 100], t[n * 999 / 1000], t[n - 1]);
}

static void bandwidth(void)
{
	const size_t sz = 32u << 20;
	void *a = lake_shm_alloc(sz), *h = malloc(sz);
	CUdeviceptr d = 0;
	CUcontext ctx = NULL;
	CUdevice dev = 0;
	double best[2] = { 1e30, 1e30 };
	int k, rep;

	if (!a || !h || cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) ||
	    cuCtxSetCurrent(ctx) || cuMemAlloc(&d, sz)) {
		fprintf(stderr, "lake-null-bench: no GPU for --bandwidth\n");
		return;
	}
	memset(a, 1, sz);
	memset(h, 1, sz);
	for (rep = 0; rep < 10; rep++) {
		for (k = 0; k < 2; k++) {
			double t0 = now_us();

			if (cuMemcpyHtoD(d, k ? h : a, sz))
				fprintf(stderr, "lake-null-bench: cuMemcpyHtoD failed\n");
			t0 = now_us() - t0;
			if (t0 < best[k])
				best[k] = t0;
		}
	}
	printf("cuMemcpyHtoD 32 MiB: from the arena %.1f GB/s, from malloc (staged) %.1f GB/s "
	       "(best of 10)\n", (double)sz / best[0] / 1e3, (double)sz / best[1] / 1e3);
	cuMemFree(d);
	cuDevicePrimaryCtxRelease(dev);
	lake_shm_free(a, sz);
	free(h);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000, i;
	double *t = malloc(sizeof(*t) * (size_t)(n > 0 ? n : 1));
	struct lake_client_stats st;
	int v;

	if (n <= 0 || !t)
		return 2;
	if (lake_null_call()) {
		fprintf(stderr, "lake-null-bench: lakeD is not reachable\n");
		return 1;
	}
	for (i = 0; i < 1000; i++)	/* warm up */
		lake_null_call();
	for (i = 0; i < n; i++) {
		double t0 = now_us();

		if (lake_null_call()) {
			fprintf(stderr, "lake-null-bench: call %ld failed\n", i);
			return 1;
		}
		t[i] = now_us() - t0;
	}
	report("lake_null_call", t, n);
	for (i = 0; i < n; i++) {
		double t0 = now_us();

		if (cuDriverGetVersion(&v)) {
			fprintf(stderr, "lake-null-bench: cuDriverGetVersion failed\n");
			return 1;
		}
		t[i] = now_us() - t0;
	}
	report("cuDriverGetVersion", t, n);
	if (argc > 2 && !strcmp(argv[2], "--bandwidth"))
		bandwidth();
	lake_client_stats(&st);
	printf("calls %llu, sleeps after spinning %llu\n", (unsigned long long)st.calls,
	       (unsigned long long)st.sleeps);
	free(t);
	return 0;
}
