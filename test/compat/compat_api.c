// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The compatibility layer through liblake, against lakeD-fake (its TEST
 * DOUBLE computes nothing: these checks are about LAKE, not a GPU): built
 * with the vendor-named headers (build/include/cuda-compat), as C and as
 * C++.  Checks cuGetProcAddress's answers, page-locked host memory from the
 * arena, refused functions and attributes, a zeroed CUctxCreateParams, and
 * error texts kept after one round trip.  Prints "ok NAME" per check and
 * exits non-zero if one failed.
 */
#include <cuda.h>
#include <nvml.h>
#include <stdio.h>
#include <string.h>
#include "liblake.h"

#if !defined(__cuda_cuda_h__) || !defined(__nvml_nvml_h__) || CUDA_VERSION < 12000
#error "the compat headers lack the vendor's guards or CUDA_VERSION"
#endif

static int failures;

#define CHECK(name, cond)						\
	do {								\
		if (cond) {						\
			printf("ok %s\n", name);			\
		} else {						\
			printf("FAILED %s (%s:%d)\n", name, __FILE__, __LINE__); \
			failures++;					\
		}							\
	} while (0)

typedef CUresult (*alloc_fn)(CUdeviceptr *, size_t);

static void proc_address(void)
{
	CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SUCCESS;
	void *p = NULL, *q = NULL;
	CUdeviceptr d = 0;

	CHECK("proc: cuMemAlloc at 12000",
	      cuGetProcAddress("cuMemAlloc", &p, 12000, CU_GET_PROC_ADDRESS_DEFAULT, &st) == CUDA_SUCCESS &&
	      p && st == CU_GET_PROC_ADDRESS_SUCCESS);
	CHECK("proc: the entry point works", p && ((alloc_fn)p)(&d, 64) == CUDA_SUCCESS && d);
	CHECK("proc: cuMemAlloc's 32-bit ABI (version 3000) is not offered",
	      cuGetProcAddress("cuMemAlloc", &q, 3000, 0, &st) == CUDA_SUCCESS && !q &&
	      st == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
	CHECK("proc: a version before the first is not sufficient",
	      cuGetProcAddress("cuMemAlloc", &q, 1000, 0, &st) == CUDA_SUCCESS &&
	      st == CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
	CHECK("proc: cuCtxSynchronize has another ABI from 13000",
	      cuGetProcAddress("cuCtxSynchronize", &p, 12080, 0, &st) == CUDA_SUCCESS &&
	      cuGetProcAddress("cuCtxSynchronize", &q, 13000, 0, &st) == CUDA_SUCCESS && p && q && p != q);
	CHECK("proc: an unknown function is not found",
	      cuGetProcAddress("cuNoSuchFunction", &p, 13000, 0, &st) == CUDA_SUCCESS && !p &&
	      st == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
	CHECK("proc: not found, and no status asked for",
	      cuGetProcAddress("cuNoSuchFunction", &p, 13000, 0, NULL) == CUDA_ERROR_NOT_FOUND && !p);
	CHECK("proc: per-thread default streams are not offered",
	      cuGetProcAddress("cuMemcpyHtoD", &p, 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
			       &st) == CUDA_SUCCESS && !p &&
	      cuGetProcAddress("cuInit", &p, 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
			       &st) == CUDA_SUCCESS);
	CHECK("proc: bad arguments",
	      cuGetProcAddress(NULL, &p, 13000, 0, &st) == CUDA_ERROR_INVALID_VALUE &&
	      cuGetProcAddress("cuInit", NULL, 13000, 0, &st) == CUDA_ERROR_INVALID_VALUE &&
	      cuGetProcAddress("cuInit", &p, 13000, 0x100, &st) == CUDA_ERROR_INVALID_VALUE);
	CHECK("proc: a refused function answers its refusing entry point",
	      cuGetProcAddress("cuStreamAddCallback", &p, 13000, 0, NULL) == CUDA_SUCCESS && p);
	cuMemFree(d);
}

static void host_memory(void)
{
	void *p = NULL, *q = NULL;
	unsigned int flags = 0;
	char local[64];
	CUdeviceptr d = 0;

	CHECK("host: cuMemHostAlloc",
	      cuMemHostAlloc(&p, 8192, CU_MEMHOSTALLOC_PORTABLE) == CUDA_SUCCESS && p);
	CHECK("host: the memory is the arena's (zero copy, pinned by lakeD)", lake_shm_contains(p, 8192));
	CHECK("host: cuMemHostGetFlags inside the block",
	      cuMemHostGetFlags(&flags, (char *)p + 100) == CUDA_SUCCESS && flags == CU_MEMHOSTALLOC_PORTABLE);
	{
		struct lake_client_stats a, b;

		memset(p, 0x5a, 8192);
		cuMemAlloc(&d, 8192);
		lake_client_stats(&a);
		cuMemcpyHtoD(d, p, 8192);
		lake_client_stats(&b);
		CHECK("host: copies from it travel by offset", b.zero_copy == a.zero_copy + 1);
		cuMemFree(d);
	}
	CHECK("host: cuMemFreeHost", cuMemFreeHost(p) == CUDA_SUCCESS);
	CHECK("host: a second cuMemFreeHost is refused", cuMemFreeHost(p) == CUDA_ERROR_INVALID_VALUE);
	CHECK("host: memory not from cuMemHostAlloc is refused",
	      cuMemFreeHost(local) == CUDA_ERROR_INVALID_VALUE &&
	      cuMemHostGetFlags(&flags, local) == CUDA_ERROR_INVALID_VALUE &&
	      cuMemFreeHost(NULL) == CUDA_ERROR_INVALID_VALUE);
	CHECK("host: unknown flags and size 0 are refused",
	      cuMemHostAlloc(&q, 64, 0x80) == CUDA_ERROR_INVALID_VALUE &&
	      cuMemAllocHost(&q, 0) == CUDA_ERROR_INVALID_VALUE && !q);
	CHECK("host: cuMemAllocHost", cuMemAllocHost(&q, 100) == CUDA_SUCCESS &&
	      cuMemHostGetFlags(&flags, q) == CUDA_SUCCESS && flags == 0 && cuMemFreeHost(q) == CUDA_SUCCESS);
}

static void refusals(void)
{
	CUcontext ctx = NULL;
	CUctxCreateParams params;
	CUexecAffinityParam aff;
	CUdeviceptr d = 0;
	unsigned int v = 0;

	memset(&params, 0, sizeof(params));
	CHECK("ctx: a zeroed CUctxCreateParams is NULL's twin",
	      cuCtxCreate(&ctx, &params, 0, 0) == CUDA_SUCCESS && ctx);
	memset(&aff, 0, sizeof(aff));
	aff.type = CU_EXEC_AFFINITY_TYPE_SM_COUNT;
	aff.param.smCount.val = 8;
	params.execAffinityParams = &aff;
	params.numExecAffinityParams = 1;
	CHECK("ctx: execution affinity crosses", cuCtxCreate(&ctx, &params, 0, 0) == CUDA_SUCCESS);
	params.cigParams = (CUctxCigParam *)&aff;
	CHECK("ctx: shared (CIG) contexts are refused",
	      cuCtxCreate(&ctx, &params, 0, 0) == CUDA_ERROR_NOT_SUPPORTED);
	CHECK("refused: cuStreamAddCallback",
	      cuStreamAddCallback(NULL, NULL, NULL, 0) == CUDA_ERROR_NOT_SUPPORTED &&
	      cuStreamAddCallback(NULL, NULL, NULL, 0) == CUDA_ERROR_NOT_SUPPORTED);
	cuMemAlloc(&d, 16);
	CHECK("refused: an attribute whose value is a host address",
	      cuPointerGetAttribute(&v, CU_POINTER_ATTRIBUTE_HOST_POINTER, d) == CUDA_ERROR_NOT_SUPPORTED);
	CHECK("attribute: a known one is answered",
	      cuPointerGetAttribute(&v, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d) == CUDA_SUCCESS);
	{
		CUlaunchAttribute attr;
		CUlaunchConfig config;

		memset(&attr, 0, sizeof(attr));
		attr.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT;	/* holds an event: refused */
		memset(&config, 0, sizeof(config));
		config.gridDimX = config.gridDimY = config.gridDimZ = 1;
		config.blockDimX = config.blockDimY = config.blockDimZ = 1;
		config.attrs = &attr;
		config.numAttrs = 1;
		CHECK("refused: a launch attribute holding an event",
		      cuLaunchKernelEx(&config, NULL, NULL, NULL) == CUDA_ERROR_NOT_SUPPORTED);
	}
	cuMemFree(d);
}

static void error_texts(void)
{
	const char *a = NULL, *b = NULL;

	CHECK("errors: the name comes from lakeD",
	      cuGetErrorName(CUDA_ERROR_INVALID_VALUE, &a) == CUDA_SUCCESS && a &&
	      !strcmp(a, "lake fake text of cuGetErrorName"));
	CHECK("errors: and is kept", cuGetErrorName(CUDA_ERROR_INVALID_VALUE, &b) == CUDA_SUCCESS && a == b);
	CHECK("errors: an unknown code",
	      cuGetErrorString((CUresult)123456, &a) == CUDA_ERROR_INVALID_VALUE && !a);
}

static void nvml(void)
{
	nvmlDevice_t dev;
	char name[NVML_DEVICE_NAME_BUFFER_SIZE];
	unsigned int temp = 0;

	CHECK("nvml: init", nvmlInit() == NVML_SUCCESS);
	CHECK("nvml: a device", nvmlDeviceGetHandleByIndex(0, &dev) == NVML_SUCCESS);
	CHECK("nvml: its name", nvmlDeviceGetName(dev, name, sizeof(name)) == NVML_SUCCESS);
	CHECK("nvml: its temperature",
	      nvmlDeviceGetTemperature(dev, NVML_TEMPERATURE_GPU, &temp) == NVML_SUCCESS);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
#ifdef __cplusplus
	printf("# compat_api (C++)\n");
#else
	printf("# compat_api (C)\n");
#endif
	CHECK("init", cuInit(0) == CUDA_SUCCESS);
	proc_address();
	host_memory();
	refusals();
	error_texts();
	nvml();
	printf("# %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
