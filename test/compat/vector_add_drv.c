// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Vector addition through the Driver API, in the style of NVIDIA's
 * vectorAddDrv sample (CUDA 13): a context made with a zeroed
 * CUctxCreateParams, the kernel loaded from a fatbin in memory, a
 * cuLaunchKernel and a cuLaunchKernelEx with a launch attribute, results
 * checked on the host.
 *
 * Usage: vector_add_drv KERNELS.fatbin [--no-verify]
 */
#include "compat_sample.h"

int main(int argc, char **argv)
{
	const int N = 50000;
	size_t size = N * sizeof(float);
	void *image = sample_args(argc, argv, "vector_add_drv");
	CUdevice cuDevice;
	CUcontext cuContext;
	CUctxCreateParams ctxCreateParams;
	CUmodule cuModule;
	CUfunction vecAdd_kernel;
	CUdeviceptr d_A, d_B, d_C;
	float *h_A, *h_B, *h_C;
	int i, n = N, threadsPerBlock = 256, blocksPerGrid, errors = 0;

	printf("Vector Addition (Driver API)\n");
	checkCudaErrors(cuInit(0));
	checkCudaErrors(cuDeviceGet(&cuDevice, 0));
	memset(&ctxCreateParams, 0, sizeof(ctxCreateParams));
	checkCudaErrors(cuCtxCreate(&cuContext, &ctxCreateParams, 0, cuDevice));
	checkCudaErrors(cuModuleLoadData(&cuModule, image));
	checkCudaErrors(cuModuleGetFunction(&vecAdd_kernel, cuModule, "VecAdd_kernel"));

	h_A = (float *)malloc(size);
	h_B = (float *)malloc(size);
	h_C = (float *)malloc(size);
	if (!h_A || !h_B || !h_C)
		return EXIT_FAILURE;
	for (i = 0; i < N; i++) {
		h_A[i] = (float)(i % 1000) / 7.0f;
		h_B[i] = (float)(i % 333) / 3.0f;
	}
	checkCudaErrors(cuMemAlloc(&d_A, size));
	checkCudaErrors(cuMemAlloc(&d_B, size));
	checkCudaErrors(cuMemAlloc(&d_C, size));
	checkCudaErrors(cuMemcpyHtoD(d_A, h_A, size));
	checkCudaErrors(cuMemcpyHtoD(d_B, h_B, size));

	blocksPerGrid = (N + threadsPerBlock - 1) / threadsPerBlock;
	{
		void *args[] = { &d_A, &d_B, &d_C, &n };

		checkCudaErrors(cuLaunchKernel(vecAdd_kernel, blocksPerGrid, 1, 1, threadsPerBlock, 1, 1,
					       0, 0, args, 0));
	}
	checkCudaErrors(cuCtxSynchronize());
	checkCudaErrors(cuMemcpyDtoH(h_C, d_C, size));
	for (i = 0; sample_verify && i < N; i++)
		if (h_C[i] != h_A[i] + h_B[i])
			errors++;

	/* The same launch with launch-time configuration (and a priority). */
	{
		CUlaunchAttribute attr;
		CUlaunchConfig config;
		void *args[] = { &d_A, &d_A, &d_C, &n };

		memset(&attr, 0, sizeof(attr));
		attr.id = CU_LAUNCH_ATTRIBUTE_PRIORITY;
		attr.value.priority = 0;
		memset(&config, 0, sizeof(config));
		config.gridDimX = blocksPerGrid;
		config.gridDimY = config.gridDimZ = 1;
		config.blockDimX = threadsPerBlock;
		config.blockDimY = config.blockDimZ = 1;
		config.attrs = &attr;
		config.numAttrs = 1;
		checkCudaErrors(cuLaunchKernelEx(&config, vecAdd_kernel, args, NULL));
	}
	checkCudaErrors(cuCtxSynchronize());
	checkCudaErrors(cuMemcpyDtoH(h_C, d_C, size));
	for (i = 0; sample_verify && i < N; i++)
		if (h_C[i] != h_A[i] + h_A[i])
			errors++;

	checkCudaErrors(cuMemFree(d_A));
	checkCudaErrors(cuMemFree(d_B));
	checkCudaErrors(cuMemFree(d_C));
	checkCudaErrors(cuModuleUnload(cuModule));
	checkCudaErrors(cuCtxDestroy(cuContext));
	free(h_A);
	free(h_B);
	free(h_C);
	free(image);
	return sample_result(errors);
}
