// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Misuse of LAKE against a real GPU: stale, forged and mistyped handles,
 * double frees, and a client killed mid-call.  lakeD must answer each with
 * the CUDA error, keep serving, and free a dead client's resources.
 *
 * Usage: gpu_misuse KERNELS.fatbin   (--doomed FD is the killed client)
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lake_gpu_util.h"

static int failures;

static void expect(const char *what, CUresult got, CUresult want)
{
	const char *g = NULL, *w = NULL;

	cuGetErrorName(got, &g);
	cuGetErrorName(want, &w);
	printf("%-52s %s%s%s\n", what, g ? g : "?", got == want ? "" : " (expected ", got == want ? "" : w);
	if (got != want)
		failures++;
}

/* A client that takes 4 GiB of GPU memory and dies (SIGKILL) mid-work. */
static void doomed_client(int ready_fd)
{
	CUdevice dev;
	CUcontext ctx;
	CUdeviceptr d;
	CUstream s;

	if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) ||
	    cuCtxSetCurrent(ctx) || cuMemAlloc(&d, 4ull << 30) || cuStreamCreate(&s, 0))
		_exit(3);
	if (write(ready_fd, "x", 1) != 1)
		_exit(4);
	for (;;)
		cuMemsetD8Async(d, 1, 4ull << 30, s);	/* calls in flight when killed */
}

int main(int argc, char **argv)
{
	CUdevice dev;
	CUcontext ctx;
	CUmodule mod;
	CUfunction fn;
	CUstream s;
	CUevent e;
	CUdeviceptr d;
	size_t free0, free1, free2, total;
	void *image;
	size_t image_len;
	int pipefd[2], i, n;
	pid_t child;
	char c;

	if (argc == 3 && !strcmp(argv[1], "--doomed"))
		doomed_client(atoi(argv[2]));	/* a fresh process: its own connection */
	if (argc != 2 || !(image = lake_read_file(argv[1], &image_len))) {
		fprintf(stderr, "usage: %s KERNELS.fatbin\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	expect("cuInit", cuInit(0), CUDA_SUCCESS);
	expect("cuDeviceGet", cuDeviceGet(&dev, 0), CUDA_SUCCESS);
	expect("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain(&ctx, dev), CUDA_SUCCESS);
	expect("cuCtxSetCurrent", cuCtxSetCurrent(ctx), CUDA_SUCCESS);

	expect("cuStreamCreate", cuStreamCreate(&s, 0), CUDA_SUCCESS);
	expect("cuStreamDestroy", cuStreamDestroy(s), CUDA_SUCCESS);
	expect("stale stream: cuStreamSynchronize", cuStreamSynchronize(s), CUDA_ERROR_INVALID_HANDLE);
	expect("stale stream: cuStreamDestroy again", cuStreamDestroy(s), CUDA_ERROR_INVALID_HANDLE);
	expect("forged stream: cuStreamQuery", cuStreamQuery((CUstream)(uintptr_t)0x123456789ull),
	       CUDA_ERROR_INVALID_HANDLE);
	expect("cuEventCreate", cuEventCreate(&e, 0), CUDA_SUCCESS);
	expect("event passed as a stream: cuStreamSynchronize", cuStreamSynchronize((CUstream)(void *)e),
	       CUDA_ERROR_INVALID_HANDLE);
	expect("cuEventDestroy", cuEventDestroy(e), CUDA_SUCCESS);

	expect("cuMemAlloc", cuMemAlloc(&d, 1 << 20), CUDA_SUCCESS);
	expect("cuMemFree", cuMemFree(d), CUDA_SUCCESS);
	expect("double cuMemFree", cuMemFree(d), CUDA_ERROR_INVALID_VALUE);
	expect("cuMemFree of a pointer never allocated", cuMemFree(0xdead0000ull), CUDA_ERROR_INVALID_VALUE);

	expect("cuModuleLoadData", cuModuleLoadData(&mod, image), CUDA_SUCCESS);
	expect("cuModuleGetFunction", cuModuleGetFunction(&fn, mod, "lake_empty"), CUDA_SUCCESS);
	expect("cuModuleUnload", cuModuleUnload(mod), CUDA_SUCCESS);
	expect("function of an unloaded module: cuFuncGetAttribute",
	       cuFuncGetAttribute(&n, CU_FUNC_ATTRIBUTE_NUM_REGS, fn), CUDA_ERROR_INVALID_HANDLE);
	expect("unloaded module: cuModuleGetFunction", cuModuleGetFunction(&fn, mod, "lake_empty"),
	       CUDA_ERROR_INVALID_HANDLE);
	expect("still serving: cuDeviceGetCount", cuDeviceGetCount(&n), CUDA_SUCCESS);

	/* A client killed mid-call: its 4 GiB come back, others keep working. */
	expect("cuMemGetInfo", cuMemGetInfo(&free0, &total), CUDA_SUCCESS);
	if (pipe(pipefd))
		return 2;
	child = fork();
	if (child == 0) {
		char fd[16];

		close(pipefd[0]);
		snprintf(fd, sizeof(fd), "%d", pipefd[1]);
		execl("/proc/self/exe", "gpu_misuse", "--doomed", fd, (char *)NULL);
		_exit(5);
	}
	close(pipefd[1]);
	if (read(pipefd[0], &c, 1) != 1) {
		printf("the doomed client did not start\n");
		return 1;
	}
	usleep(200 * 1000);
	expect("cuMemGetInfo (client holds 4 GiB)", cuMemGetInfo(&free1, &total), CUDA_SUCCESS);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	for (i = 0; i < 100; i++) {	/* up to 10 s for lakeD to notice and free */
		expect("cuMemGetInfo", cuMemGetInfo(&free2, &total), CUDA_SUCCESS);
		if (free2 + (256u << 20) >= free0)
			break;
		usleep(100 * 1000);
	}
	printf("free GPU memory: before %zu MiB, with the client %zu MiB, after its death %zu MiB\n",
	       free0 >> 20, free1 >> 20, free2 >> 20);
	if (!(free1 + (3ull << 30) <= free0 && free2 + (256u << 20) >= free0)) {
		printf("FAILED: the dead client's memory did not come back\n");
		failures++;
	}
	expect("after the kill, still serving: cuDeviceGetCount", cuDeviceGetCount(&n), CUDA_SUCCESS);
	expect("lake_null_call", lake_null_call() == 0 ? CUDA_SUCCESS : CUDA_ERROR_UNKNOWN, CUDA_SUCCESS);
	expect("cuDevicePrimaryCtxRelease", cuDevicePrimaryCtxRelease(dev), CUDA_SUCCESS);
	printf("# %d failure(s)\n", failures);
	return failures ? 1 : 0;
}
