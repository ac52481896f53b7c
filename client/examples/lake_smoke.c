// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * lake-smoke: a small program written purely against the CUDA Driver API.
 * It builds unchanged against NVIDIA's cuda.h + libcuda (-DLAKE_SMOKE_VENDOR,
 * -lcuda) or against LAKE's lake_cuda.h + liblake (-llake), and then runs
 * through lakeD.
 *
 * It initialises CUDA, names device 0, uses its primary context, loads a PTX
 * kernel (x[i] += inc), copies a vector in, launches, copies it back,
 * checks it and frees everything.
 *
 *   lake-smoke [--calls-only] [--quiet]
 *
 * --calls-only: check that every call succeeds but not the data (for runs
 * against lakeD-fake, the recording TEST DOUBLE, which moves no data).
 * Exit status: 0 when everything worked, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef LAKE_SMOKE_VENDOR
#include <cuda.h>
#else
#include "lake_cuda.h"
#endif

/* add1(float *x, int n, double inc): x[i] += (float)inc for i < n.  The
 * third parameter is a double so the layout (0/8, 8/4, 16/8) also matches
 * what lakeD-fake reports for every function. */
static const char ptx[] =
	".version 7.0\n"
	".target sm_52\n"
	".address_size 64\n"
	"\n"
	".visible .entry add1(\n"
	"	.param .u64 add1_x,\n"
	"	.param .u32 add1_n,\n"
	"	.param .f64 add1_inc\n"
	")\n"
	"{\n"
	"	.reg .pred %p<2>;\n"
	"	.reg .b32 %r<6>;\n"
	"	.reg .f32 %f<4>;\n"
	"	.reg .f64 %fd<2>;\n"
	"	.reg .b64 %rd<5>;\n"
	"\n"
	"	ld.param.u64 %rd1, [add1_x];\n"
	"	ld.param.u32 %r2, [add1_n];\n"
	"	ld.param.f64 %fd1, [add1_inc];\n"
	"	mov.u32 %r3, %ctaid.x;\n"
	"	mov.u32 %r4, %ntid.x;\n"
	"	mov.u32 %r5, %tid.x;\n"
	"	mad.lo.s32 %r1, %r3, %r4, %r5;\n"
	"	setp.ge.s32 %p1, %r1, %r2;\n"
	"	@%p1 bra DONE;\n"
	"	cvta.to.global.u64 %rd2, %rd1;\n"
	"	mul.wide.s32 %rd3, %r1, 4;\n"
	"	add.s64 %rd4, %rd2, %rd3;\n"
	"	ld.global.f32 %f1, [%rd4];\n"
	"	cvt.rn.f32.f64 %f2, %fd1;\n"
	"	add.f32 %f3, %f1, %f2;\n"
	"	st.global.f32 [%rd4], %f3;\n"
	"DONE:\n"
	"	ret;\n"
	"}\n";

static int failures;
static int quiet;

static int check(CUresult r, const char *what)
{
	const char *name = NULL;

	if (r == CUDA_SUCCESS) {
		if (!quiet)
			printf("  %-28s ok\n", what);
		return 0;
	}
	if (cuGetErrorName(r, &name) != CUDA_SUCCESS || !name)
		name = "?";
	printf("  %-28s FAILED: %s (%d)\n", what, name, (int)r);
	failures++;
	return 1;
}

int main(int argc, char **argv)
{
	const int n = 1 << 16;
	const double inc = 1.5;
	int calls_only = 0, count = 0, version = 0, i, bad = 0;
	CUdevice dev = 0;
	CUcontext ctx = NULL;
	CUmodule mod = NULL;
	CUfunction fn = NULL;
	CUdeviceptr d = 0;
	size_t total = 0;
	char name[128];
	float *host;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--calls-only")) {
			calls_only = 1;
		} else if (!strcmp(argv[i], "--quiet")) {
			quiet = 1;
		} else {
			fprintf(stderr, "usage: %s [--calls-only] [--quiet]\n", argv[0]);
			return 2;
		}
	}
	host = malloc((size_t)n * sizeof(*host));
	if (!host)
		return 1;
	for (i = 0; i < n; i++)
		host[i] = (float)i;

	printf("lake-smoke: CUDA Driver API smoke test\n");
	if (check(cuInit(0), "cuInit"))
		goto out;
	check(cuDriverGetVersion(&version), "cuDriverGetVersion");
	check(cuDeviceGetCount(&count), "cuDeviceGetCount");
	if (check(cuDeviceGet(&dev, 0), "cuDeviceGet(0)"))
		goto out;
	memset(name, 0, sizeof(name));
	check(cuDeviceGetName(name, sizeof(name), dev), "cuDeviceGetName");
	name[sizeof(name) - 1] = 0;
	for (i = 0; name[i]; i++)	/* a test double's name is not text */
		if (name[i] < 32 || name[i] > 126)
			name[i] = '?';
	check(cuDeviceTotalMem(&total, dev), "cuDeviceTotalMem");
	printf("  driver %d.%d, %d device(s); device 0: %s, %.1f GiB\n", version / 1000,
	       (version % 1000) / 10, count, name, (double)total / (1u << 30));
	if (check(cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain"))
		goto out;
	if (check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent"))
		goto release;
	if (check(cuMemAlloc(&d, (size_t)n * sizeof(*host)), "cuMemAlloc"))
		goto release;
	check(cuMemcpyHtoD(d, host, (size_t)n * sizeof(*host)), "cuMemcpyHtoD (256 KiB)");
	if (!check(cuModuleLoadData(&mod, ptx), "cuModuleLoadData (PTX)") &&
	    !check(cuModuleGetFunction(&fn, mod, "add1"), "cuModuleGetFunction")) {
		int nn = n;
		double dinc = inc;
		void *params[] = { &d, &nn, &dinc };

		check(cuLaunchKernel(fn, (unsigned int)((n + 255) / 256), 1, 1, 256, 1, 1, 0,
				     NULL, params, NULL), "cuLaunchKernel");
	}
	check(cuCtxSynchronize(), "cuCtxSynchronize");
	memset(host, 0, (size_t)n * sizeof(*host));
	check(cuMemcpyDtoH(host, d, (size_t)n * sizeof(*host)), "cuMemcpyDtoH (256 KiB)");
	if (!calls_only && !failures) {
		for (i = 0; i < n; i++)
			if (host[i] != (float)i + (float)inc)
				bad++;
		if (bad) {
			printf("  data: %d of %d elements wrong (x[1] = %g, want %g)\n", bad, n,
			       (double)host[1], 1.0 + inc);
			failures++;
		} else if (!quiet) {
			printf("  data                         ok (%d elements, x[i] = i + %g)\n",
			       n, inc);
		}
	}
	if (mod)
		check(cuModuleUnload(mod), "cuModuleUnload");
	check(cuMemFree(d), "cuMemFree");
release:
	check(cuDevicePrimaryCtxRelease(dev), "cuDevicePrimaryCtxRelease");
out:
	free(host);
	printf("lake-smoke: %s\n", failures ? "FAILED" : calls_only ? "OK (calls only)" : "OK");
	return failures ? 1 : 0;
}
