// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The remoting benchmark: per-call cost, copy bandwidth and a small MLP
 * inference, through LAKE (liblake -> lakeD -> libcuda) or directly against
 * libcuda (-DLAKE_DIRECT), from one source.  bench/gpu/run.sh runs both
 * variants in the same session and prints them side by side.
 *
 * Usage: lake_bench KERNELS.fatbin [ITERATIONS [mlp]]  ("mlp": the MLP rows only)
 * Output: CSV rows "variant,test,unit,median,p99,n" on stdout.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lake_gpu_util.h"
#define VARIANT LAKE_VARIANT

/* The null round trip: LAKE's is answered by lakeD without the vendor;
 * directly, the nearest is a driver call that does not touch the GPU. */
static int null_call(void)
{
#ifdef LAKE_DIRECT
	CUcontext c;

	return cuCtxGetCurrent(&c);
#else
	return lake_null_call();
#endif
}

#define CHECK(call)							\
	do {								\
		CUresult r_ = (call);					\
		if (r_ != CUDA_SUCCESS) {				\
			const char *s_ = NULL;				\
			cuGetErrorName(r_, &s_);			\
			fprintf(stderr, "lake_bench (%s): %s failed: %s\n", VARIANT, #call, s_ ? s_ : "?"); \
			exit(1);					\
		}							\
	} while (0)

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *test, const char *unit, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("%s,%s,%s,%.3f,%.3f,%d\n", VARIANT, test, unit, v[n / 2], v[(int)((long)n * 99 / 100)], n);
	fflush(stdout);
}

/* y = W2 relu(W1 x + b1) + b2 for a batch, on the GPU: 31 -> 256 -> 2. */
static void bench_mlp(CUfunction dense, CUstream s, int batch, int iters, double *t)
{
	enum { IN = 31, HID = 256, OUT = 2 };
	size_t xbytes = (size_t)batch * IN * sizeof(float), ybytes = (size_t)batch * OUT * sizeof(float);
	float *x = lake_host_alloc(xbytes), *y = lake_host_alloc(ybytes), *w;
	CUdeviceptr dx, dh, dy, dw1, db1, dw2, db2;
	int i, in = IN, hid = HID, out = OUT, relu = 1, linear = 0;
	void *a1[] = { &dx, &dw1, &db1, &dh, &in, &hid, &batch, &relu };
	void *a2[] = { &dh, &dw2, &db2, &dy, &hid, &out, &batch, &linear };

	if (!x || !y) {
		fprintf(stderr, "lake_bench: no host memory for the MLP\n");
		exit(1);
	}
	w = malloc(HID * IN * sizeof(float));
	for (i = 0; i < HID * IN; i++)
		w[i] = (float)((i * 37) % 19) / 19.0f - 0.5f;
	for (i = 0; i < batch * IN; i++)
		x[i] = (float)(i % 13) / 13.0f;
	CHECK(cuMemAlloc(&dx, xbytes));
	CHECK(cuMemAlloc(&dh, (size_t)batch * HID * sizeof(float)));
	CHECK(cuMemAlloc(&dy, ybytes));
	CHECK(cuMemAlloc(&dw1, HID * IN * sizeof(float)));
	CHECK(cuMemAlloc(&db1, HID * sizeof(float)));
	CHECK(cuMemAlloc(&dw2, OUT * HID * sizeof(float)));
	CHECK(cuMemAlloc(&db2, OUT * sizeof(float)));
	CHECK(cuMemsetD32(db1, 0, HID));
	CHECK(cuMemsetD32(db2, 0, OUT));
	CHECK(cuMemcpyHtoD(dw1, w, HID * IN * sizeof(float)));
	CHECK(cuMemcpyHtoD(dw2, w, OUT * HID * sizeof(float)));
	free(w);
	for (i = -iters / 10; i < iters; i++) {
		double t0 = now_us();

		CHECK(cuMemcpyHtoDAsync(dx, x, xbytes, s));
		CHECK(cuLaunchKernel(dense, (HID + 127) / 128, (unsigned int)batch, 1, 128, 1, 1, 0, s, a1, NULL));
		CHECK(cuLaunchKernel(dense, 1, (unsigned int)batch, 1, 32, 1, 1, 0, s, a2, NULL));
		CHECK(cuMemcpyDtoHAsync(y, dy, ybytes, s));
		CHECK(cuStreamSynchronize(s));
		if (i >= 0)
			t[i] = now_us() - t0;
	}
	cuMemFree(dx);
	cuMemFree(dh);
	cuMemFree(dy);
	cuMemFree(dw1);
	cuMemFree(db1);
	cuMemFree(dw2);
	cuMemFree(db2);
	lake_host_free(x, xbytes);
	lake_host_free(y, ybytes);
}

int main(int argc, char **argv)
{
	int iters = argc > 2 ? atoi(argv[2]) : 10000, i;
	size_t image_len;
	void *image = argc > 1 ? lake_read_file(argv[1], &image_len) : NULL;
	double *t;
	CUdevice dev;
	CUcontext ctx;
	CUmodule mod;
	CUfunction empty, dense;
	CUstream s;
	CUdeviceptr d;
	void *h4k;
	char label[64];

	if (!image || iters < 100) {
		fprintf(stderr, "usage: %s KERNELS.fatbin [ITERATIONS>=100]\n", argv[0]);
		return 2;
	}
	t = calloc((size_t)iters, sizeof(*t));
	CHECK(cuInit(0));
	CHECK(cuDeviceGet(&dev, 0));
	CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
	CHECK(cuCtxSetCurrent(ctx));
	CHECK(cuModuleLoadData(&mod, image));
	CHECK(cuModuleGetFunction(&empty, mod, "lake_empty"));
	CHECK(cuModuleGetFunction(&dense, mod, "lake_dense"));
	CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));

	if (argc > 3 && !strcmp(argv[3], "mlp"))
		goto mlp;

	/* Null round trip (LAKE: answered by lakeD; direct: a driver call
	 * that does not touch the GPU). */
	for (i = -iters / 10; i < iters; i++) {
		double t0 = now_us();

		if (null_call())
			exit(1);
		if (i >= 0)
			t[i] = now_us() - t0;
	}
	report("null_call", "us", t, iters);

	for (i = -iters / 10; i < iters; i++) {
		double t0 = now_us();

		CHECK(cuMemAlloc(&d, 4096));
		CHECK(cuMemFree(d));
		if (i >= 0)
			t[i] = now_us() - t0;
	}
	report("cuMemAlloc+cuMemFree", "us", t, iters);

	for (i = -iters / 10; i < iters; i++) {
		double t0 = now_us();

		CHECK(cuLaunchKernel(empty, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
		if (i >= 0)
			t[i] = now_us() - t0;
		if ((i & 255) == 255)
			CHECK(cuStreamSynchronize(s));
	}
	CHECK(cuStreamSynchronize(s));
	report("cuLaunchKernel (async)", "us", t, iters);

	for (i = -iters / 10; i < iters; i++) {
		double t0 = now_us();

		CHECK(cuLaunchKernel(empty, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
		CHECK(cuStreamSynchronize(s));
		if (i >= 0)
			t[i] = now_us() - t0;
	}
	report("empty launch + cuStreamSynchronize", "us", t, iters);

	for (i = -iters / 10; i < iters; i++) {
		double t0 = now_us();

		CHECK(cuStreamSynchronize(s));
		if (i >= 0)
			t[i] = now_us() - t0;
	}
	report("cuStreamSynchronize (idle)", "us", t, iters);

	h4k = lake_host_alloc(4096);
	CHECK(cuMemAlloc(&d, 4096));
	memset(h4k, 1, 4096);
	for (i = -iters / 10; i < iters; i++) {
		double t0 = now_us();

		CHECK(cuMemcpyHtoD(d, h4k, 4096));
		if (i >= 0)
			t[i] = now_us() - t0;
	}
	report("cuMemcpyHtoD 4 KiB", "us", t, iters);
	CHECK(cuMemFree(d));
	lake_host_free(h4k, 4096);

	/* Bandwidth: 64 MiB host -> GPU (LAKE: from the arena; direct: pinned). */
	{
		size_t n = 64u << 20;
		void *h = lake_host_alloc(n);
		int reps = 30;

		if (!h) {
			fprintf(stderr, "lake_bench: no 64 MiB host buffer (LAKE_ARENA_MB too small?)\n");
			return 1;
		}
		memset(h, 7, n);
		CHECK(cuMemAlloc(&d, n));
		for (i = -3; i < reps; i++) {
			double t0 = now_us();

			CHECK(cuMemcpyHtoD(d, h, n));
			if (i >= 0)
				t[i] = (double)n / ((now_us() - t0) * 1e3);	/* GB/s */
		}
		report("HtoD 64 MiB bandwidth", "GB/s", t, reps);
		CHECK(cuMemFree(d));
		lake_host_free(h, n);
	}

mlp:
	bench_mlp(dense, s, 1, iters, t);
	report("MLP 31-256-2 batch 1", "us", t, iters);
	bench_mlp(dense, s, 1024, iters / 4, t);
	snprintf(label, sizeof(label), "MLP 31-256-2 batch 1024");
	report(label, "us", t, iters / 4);

	cuStreamDestroy(s);
	cuModuleUnload(mod);
	cuDevicePrimaryCtxRelease(dev);
	free(t);
	free(image);
	return 0;
}
