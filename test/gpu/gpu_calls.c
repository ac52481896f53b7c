// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Every spec'd function against a real GPU, printing one line per call: its
 * result and the outputs that do not vary from run to run.  Built twice from
 * this one source: against liblake (LAKE: stubs -> lakeD -> libcuda) and
 * directly against libcuda (-DLAKE_DIRECT).  test/gpu/run-gpu-tests.sh runs
 * both and compares their output line by line.
 *
 * Usage: gpu_calls KERNELS.fatbin
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lake_nvml.h"
#include "lake_gpu_say.h"

#ifdef LAKE_DIRECT
NVML_FN(nvmlReturn_t, nvmlInit, "nvmlInit_v2", (void), ())
NVML_FN(nvmlReturn_t, nvmlShutdown, "nvmlShutdown", (void), ())
NVML_FN(nvmlReturn_t, nvmlDeviceGetCount, "nvmlDeviceGetCount_v2", (unsigned int *c), (c))
NVML_FN(nvmlReturn_t, nvmlDeviceGetHandleByIndex, "nvmlDeviceGetHandleByIndex_v2",
	(unsigned int i, nvmlDevice_t *d), (i, d))
NVML_FN(nvmlReturn_t, nvmlDeviceGetUtilizationRates, "nvmlDeviceGetUtilizationRates",
	(nvmlDevice_t d, nvmlUtilization_t *u), (d, u))
NVML_FN(nvmlReturn_t, nvmlDeviceGetMemoryInfo, "nvmlDeviceGetMemoryInfo",
	(nvmlDevice_t d, nvmlMemory_t *m), (d, m))
NVML_FN(nvmlReturn_t, nvmlDeviceGetComputeRunningProcesses, "nvmlDeviceGetComputeRunningProcesses_v3",
	(nvmlDevice_t d, unsigned int *c, nvmlProcessInfo_t *p), (d, c, p))
#endif

int main(int argc, char **argv)
{
	enum { N = 1000, BYTES = N * sizeof(float) };
	size_t image_len = 0, total = 0, free_mem = 0, pitch = 0, gbytes = 0;
	CUdevice dev;
	CUcontext pctx, cur, ctx;
	CUmodule mod, mod2;
	CUfunction vecadd, params_fn, missing;
	CUdeviceptr da, db, dc, dp, dglobal, dout;
	CUstream s;
	CUevent e1, e2;
	CUgraph g;
	CUgraphExec ge;
	int v = 0, n = 0, pi = 0, answer = 0, i, ok;
	char name[256];
	float *ha, *hb, *hc, ms = -1;
	unsigned char *bytes;
	unsigned int *words;
	void *image;

	image = gpu_test_start(argc, argv, "gpu_calls", &image_len);

	SAY("cuInit", cuInit(0), "");
	SAY("cuDriverGetVersion", cuDriverGetVersion(&v), "%d", v);
	SAY("cuDeviceGetCount", cuDeviceGetCount(&n), "%d", n);
	SAY("cuDeviceGet", cuDeviceGet(&dev, 0), "%d", dev);
	SAY("cuDeviceGetName", cuDeviceGetName(name, sizeof(name), dev), "%s", name);
	SAY("cuDeviceGetAttribute", cuDeviceGetAttribute(&pi, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev),
	    "sm_count=%d", pi);
	SAY("cuDeviceTotalMem", cuDeviceTotalMem(&total, dev), "%zu", total);
	SAY("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain(&pctx, dev), "");
	SAY("cuCtxSetCurrent", cuCtxSetCurrent(pctx), "");
	SAY("cuCtxGetCurrent", cuCtxGetCurrent(&cur), "%s", cur == pctx ? "primary" : "other");

	/* A context of our own, made current and destroyed. */
	SAY("cuCtxCreate", cuCtxCreate(&ctx, NULL, 0, dev), "");
	SAY("cuCtxGetCurrent", cuCtxGetCurrent(&cur), "%s", cur == ctx ? "created" : "other");
	SAY("cuCtxSynchronize", cuCtxSynchronize(), "");
	SAY("cuCtxDestroy", cuCtxDestroy(ctx), "");
	SAY("cuCtxSetCurrent", cuCtxSetCurrent(pctx), "");

	/* Modules: from memory (the fatbin nvcc built) and from a file. */
	SAY("cuModuleLoadData", cuModuleLoadData(&mod, image), "");
	SAY("cuModuleGetFunction", cuModuleGetFunction(&vecadd, mod, "lake_vecadd"), "");
	SAY("cuModuleGetFunction", cuModuleGetFunction(&params_fn, mod, "lake_params"), "");
	SAY("cuModuleGetFunction", cuModuleGetFunction(&missing, mod, "no_such_kernel"), "");
	SAY("cuFuncGetAttribute", cuFuncGetAttribute(&pi, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, vecadd),
	    "max_threads=%d", pi);
	SAY("cuModuleGetGlobal", cuModuleGetGlobal(&dglobal, &gbytes, mod, "lake_answer"), "bytes=%zu", gbytes);
	SAY("cuMemcpyDtoH", cuMemcpyDtoH(&answer, dglobal, sizeof(answer)), "lake_answer=%d", answer);
	SAY("cuModuleLoad", cuModuleLoad(&mod2, argv[1]), "");
	SAY("cuModuleUnload", cuModuleUnload(mod2), "");

	/* Memory. */
	SAY("cuMemGetInfo", cuMemGetInfo(&free_mem, &total), "total=%zu", total);
	check(free_mem > 0 && free_mem <= total, "free memory within total");
	SAY("cuMemAlloc", cuMemAlloc(&da, BYTES), "");
	SAY("cuMemAlloc", cuMemAlloc(&db, BYTES), "");
	SAY("cuMemAlloc", cuMemAlloc(&dc, BYTES), "");
	SAY("cuMemAlloc", cuMemAlloc(&dout, 3 * sizeof(unsigned long long)), "");
	SAY("cuMemAllocPitch", cuMemAllocPitch(&dp, &pitch, 1000, 10, 4), "pitch=%zu", pitch);
	ha = lake_host_alloc(BYTES);
	hb = lake_host_alloc(BYTES);
	hc = lake_host_alloc(BYTES);
	for (i = 0; i < N; i++) {
		ha[i] = (float)i;
		hb[i] = 2.0f * (float)i;
	}
	bytes = (unsigned char *)hc;
	words = (unsigned int *)hc;
	SAY("cuMemsetD8", cuMemsetD8(dc, 0x5a, BYTES), "");
	SAY("cuMemcpyDtoH", cuMemcpyDtoH(hc, dc, BYTES), "");
	for (ok = 1, i = 0; i < (int)BYTES; i++)
		ok &= bytes[i] == 0x5a;
	check(ok, "cuMemsetD8 bytes");
	SAY("cuMemsetD32", cuMemsetD32(dc, 0xdeadbeef, N), "");
	SAY("cuMemcpyDtoH", cuMemcpyDtoH(hc, dc, BYTES), "");
	for (ok = 1, i = 0; i < N; i++)
		ok &= words[i] == 0xdeadbeef;
	check(ok, "cuMemsetD32 words");
	SAY("cuMemcpyHtoD", cuMemcpyHtoD(da, ha, BYTES), "");
	SAY("cuMemcpyDtoD", cuMemcpyDtoD(db, da, BYTES), "");
	SAY("cuMemcpyDtoH", cuMemcpyDtoH(hc, db, BYTES), "");
	check(!memcmp(hc, ha, BYTES), "HtoD then DtoD then DtoH");

	/* Streams, async copies, events and a launch. */
	SAY("cuStreamCreate", cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "");
	SAY("cuEventCreate", cuEventCreate(&e1, CU_EVENT_DEFAULT), "");
	SAY("cuEventCreate", cuEventCreate(&e2, CU_EVENT_DEFAULT), "");
	SAY("cuMemcpyHtoDAsync", cuMemcpyHtoDAsync(da, ha, BYTES, s), "");
	SAY("cuMemcpyHtoDAsync", cuMemcpyHtoDAsync(db, hb, BYTES, s), "");
	SAY("cuEventRecord", cuEventRecord(e1, s), "");
	{
		int nn = N;
		void *args[] = { &da, &db, &dc, &nn };

		SAY("cuLaunchKernel", cuLaunchKernel(vecadd, (N + 255) / 256, 1, 1, 256, 1, 1, 0, s, args, NULL), "");
	}
	SAY("cuEventRecord", cuEventRecord(e2, s), "");
	memset(hc, 0, BYTES);
	SAY("cuMemcpyDtoHAsync", cuMemcpyDtoHAsync(hc, dc, BYTES, s), "");
	SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
	SAY("cuStreamQuery", cuStreamQuery(s), "");
	SAY("cuEventSynchronize", cuEventSynchronize(e2), "");
	SAY("cuEventQuery", cuEventQuery(e2), "");
	SAY("cuEventElapsedTime", cuEventElapsedTime(&ms, e1, e2), "");
	check(ms >= 0.0f && ms < 1000.0f, "elapsed time plausible");
	for (ok = 1, i = 0; i < N; i++)
		ok &= hc[i] == 3.0f * (float)i;
	check(ok, "vecadd result");
	SAY("cuMemsetD8Async", cuMemsetD8Async(dc, 0x11, BYTES, s), "");
	SAY("cuMemsetD32Async", cuMemsetD32Async(db, 0x22222222, N, s), "");
	SAY("cuMemcpyDtoDAsync", cuMemcpyDtoDAsync(da, dc, BYTES, s), "");
	SAY("cuMemcpyDtoHAsync", cuMemcpyDtoHAsync(hc, da, BYTES, s), "");
	SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
	for (ok = 1, i = 0; i < (int)BYTES; i++)
		ok &= bytes[i] == 0x11;
	check(ok, "async memset + DtoD + DtoH");

	/* Kernel parameters of mixed sizes (8, 1, 4, 8 bytes). */
	{
		unsigned char c = 0xab;
		int si = -123456;
		unsigned long long u = 0x0123456789abcdefULL, out[3] = { 0 };
		void *args[] = { &dout, &c, &si, &u };

		SAY("cuLaunchKernel", cuLaunchKernel(params_fn, 1, 1, 1, 1, 1, 1, 0, s, args, NULL), "");
		SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
		SAY("cuMemcpyDtoH", cuMemcpyDtoH(out, dout, sizeof(out)), "");
		check(out[0] == 0xab && (long long)out[1] == -123456 && out[2] == u, "kernel parameter packing");
	}

	/* The same parameters packed by the caller: extra's explicit buffer
	 * (laid out as the CUDA ABI does, like this struct). */
	{
		struct {
			CUdeviceptr out;
			unsigned char c;
			int i;
			unsigned long long u;
		} buf = { dout, 0x5c, 654321, 0xfedcba9876543210ULL };
		size_t size = sizeof(buf);
		void *extra[] = { CU_LAUNCH_PARAM_BUFFER_POINTER, &buf, CU_LAUNCH_PARAM_BUFFER_SIZE,
				  &size, CU_LAUNCH_PARAM_END };
		void *both[] = { &dout };
		unsigned long long out[3] = { 0 };

		SAY("cuMemsetD8", cuMemsetD8(dout, 0, sizeof(out)), "");
		SAY("cuLaunchKernel (extra)", cuLaunchKernel(params_fn, 1, 1, 1, 1, 1, 1, 0, s, NULL, extra), "");
		SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
		SAY("cuMemcpyDtoH", cuMemcpyDtoH(out, dout, sizeof(out)), "");
		check(out[0] == 0x5c && out[1] == 654321 && out[2] == buf.u, "explicit parameter buffer");
		SAY("cuLaunchKernel (kernelParams and extra)",
		    cuLaunchKernel(params_fn, 1, 1, 1, 1, 1, 1, 0, s, both, extra), "");
		SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
	}

	/* A CUDA graph captured from the stream. */
	SAY("cuStreamBeginCapture", cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), "");
	{
		int nn = N;
		void *args[] = { &da, &da, &dc, &nn };

		SAY("cuLaunchKernel", cuLaunchKernel(vecadd, (N + 255) / 256, 1, 1, 256, 1, 1, 0, s, args, NULL), "");
	}
	SAY("cuStreamEndCapture", cuStreamEndCapture(s, &g), "");
	SAY("cuGraphInstantiate", cuGraphInstantiate(&ge, g, 0), "");
	SAY("cuMemcpyHtoD", cuMemcpyHtoD(da, ha, BYTES), "");
	SAY("cuGraphLaunch", cuGraphLaunch(ge, s), "");
	SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
	SAY("cuMemcpyDtoH", cuMemcpyDtoH(hc, dc, BYTES), "");
	for (ok = 1, i = 0; i < N; i++)
		ok &= hc[i] == 2.0f * (float)i;
	check(ok, "graph launch result");
	SAY("cuGraphExecDestroy", cuGraphExecDestroy(ge), "");
	SAY("cuGraphDestroy", cuGraphDestroy(g), "");

	/* Errors the driver reports, passed through unchanged. */
	SAY("cuMemcpyHtoD (zero bytes)", cuMemcpyHtoD(da, ha, 0), "");
	{
		const char *str = NULL;

		SAY("cuGetErrorName", cuGetErrorName(CUDA_ERROR_INVALID_VALUE, &str), "%s", str);
		SAY("cuGetErrorString", cuGetErrorString(CUDA_ERROR_INVALID_VALUE, &str), "");
		check(str && *str, "error string not empty");
		SAY("cuGetErrorName (unknown code)", cuGetErrorName((CUresult)123456, &str), "");
	}

	/* Cleanup. */
	SAY("cuEventDestroy", cuEventDestroy(e1), "");
	SAY("cuEventDestroy", cuEventDestroy(e2), "");
	SAY("cuStreamDestroy", cuStreamDestroy(s), "");
	SAY("cuMemFree", cuMemFree(da), "");
	SAY("cuMemFree", cuMemFree(db), "");
	SAY("cuMemFree", cuMemFree(dc), "");
	SAY("cuMemFree", cuMemFree(dp), "");
	SAY("cuMemFree", cuMemFree(dout), "");
	SAY("cuModuleUnload", cuModuleUnload(mod), "");
	SAY("cuCtxSynchronize", cuCtxSynchronize(), "");
	SAY("cuDevicePrimaryCtxRelease", cuDevicePrimaryCtxRelease(dev), "");
	lake_host_free(ha, BYTES);
	lake_host_free(hb, BYTES);
	lake_host_free(hc, BYTES);
	free(image);

	/* NVML. */
	{
		nvmlDevice_t nd;
		nvmlUtilization_t util;
		nvmlMemory_t mem;
		nvmlProcessInfo_t procs[64];
		unsigned int count = 0, np = 64;

		nvmlReturn_t r;

		r = nvmlInit();
		printf("nvmlInit: %d\n", r);
		r = nvmlDeviceGetCount(&count);
		printf("nvmlDeviceGetCount: %d %u\n", r, count);
		r = nvmlDeviceGetHandleByIndex(0, &nd);
		printf("nvmlDeviceGetHandleByIndex: %d\n", r);
		r = nvmlDeviceGetUtilizationRates(nd, &util);
		printf("nvmlDeviceGetUtilizationRates: %d\n", r);
		check(util.gpu <= 100 && util.memory <= 100, "utilization is a percentage");
		r = nvmlDeviceGetMemoryInfo(nd, &mem);
		printf("nvmlDeviceGetMemoryInfo: %d total=%llu\n", r, mem.total);
		check(mem.used <= mem.total, "used memory within total");
		r = nvmlDeviceGetComputeRunningProcesses(nd, &np, procs);
		printf("nvmlDeviceGetComputeRunningProcesses: %d\n", r);
		check(np <= 64, "process count within buffer");
		r = nvmlShutdown();
		printf("nvmlShutdown: %d\n", r);
	}
	printf("# %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
