// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Matrix multiplication through the Driver API, in the style of NVIDIA's
 * matrixMulDrv sample: the primary context, a block size suggested by
 * cuOccupancyMaxPotentialBlockSize (no shared-memory callback), page-locked
 * host memory (cuMemAllocHost), dynamic shared memory, events for timing, a
 * check against the host's product.
 *
 * Usage: matrix_mul_drv KERNELS.fatbin [--no-verify]
 */
#include "compat_sample.h"

int main(int argc, char **argv)
{
	void *image = sample_args(argc, argv, "matrix_mul_drv");
	CUdevice dev;
	CUcontext ctx;
	CUmodule mod;
	CUfunction matrixMul;
	CUdeviceptr d_A, d_B, d_C;
	CUevent start, stop;
	float *h_A, *h_B, *h_C, ms = 0.0f;
	int minGridSize = 0, blockSize = 0, maxThreads = 0, bs = 16, wA, hA, wB, i, j, k, errors = 0;
	size_t sA, sB, sC;

	printf("Matrix Multiply (Driver API)\n");
	checkCudaErrors(cuInit(0));
	checkCudaErrors(cuDeviceGet(&dev, 0));
	checkCudaErrors(cuDevicePrimaryCtxRetain(&ctx, dev));
	checkCudaErrors(cuCtxSetCurrent(ctx));
	checkCudaErrors(cuModuleLoadData(&mod, image));
	checkCudaErrors(cuModuleGetFunction(&matrixMul, mod, "matrixMul"));
	checkCudaErrors(cuFuncGetAttribute(&maxThreads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, matrixMul));
	checkCudaErrors(cuOccupancyMaxPotentialBlockSize(&minGridSize, &blockSize, matrixMul, 0,
							 2 * bs * bs * sizeof(float), 0));
	if (sample_verify)
		printf("suggested block size %s\n", blockSize >= bs * bs ? ">= 256" : "< 256");
	if (sample_verify && blockSize < bs * bs)
		bs = 8;		/* as matrixMulDrv falls back to a smaller block */

	wA = 5 * 2 * bs;
	hA = 5 * bs;
	wB = 5 * 4 * bs;
	sA = (size_t)wA * hA * sizeof(float);
	sB = (size_t)wB * wA * sizeof(float);
	sC = (size_t)wB * hA * sizeof(float);
	checkCudaErrors(cuMemAllocHost((void **)&h_A, sA));
	checkCudaErrors(cuMemAllocHost((void **)&h_B, sB));
	checkCudaErrors(cuMemAllocHost((void **)&h_C, sC));
	for (i = 0; i < wA * hA; i++)
		h_A[i] = 1.0f;
	for (i = 0; i < wB * wA; i++)
		h_B[i] = 0.01f * (float)(i % 7);
	checkCudaErrors(cuMemAlloc(&d_A, sA));
	checkCudaErrors(cuMemAlloc(&d_B, sB));
	checkCudaErrors(cuMemAlloc(&d_C, sC));
	checkCudaErrors(cuMemcpyHtoD(d_A, h_A, sA));
	checkCudaErrors(cuMemcpyHtoD(d_B, h_B, sB));
	checkCudaErrors(cuEventCreate(&start, CU_EVENT_DEFAULT));
	checkCudaErrors(cuEventCreate(&stop, CU_EVENT_DEFAULT));
	checkCudaErrors(cuEventRecord(start, NULL));
	{
		void *args[] = { &d_C, &d_A, &d_B, &wA, &wB };

		checkCudaErrors(cuLaunchKernel(matrixMul, wB / bs, hA / bs, 1, bs, bs, 1,
					       2 * bs * bs * sizeof(float), NULL, args, NULL));
	}
	checkCudaErrors(cuEventRecord(stop, NULL));
	checkCudaErrors(cuEventSynchronize(stop));
	checkCudaErrors(cuEventElapsedTime(&ms, start, stop));
	checkCudaErrors(cuMemcpyDtoH(h_C, d_C, sC));
	for (i = 0; sample_verify && i < hA; i++) {
		for (j = 0; j < wB; j++) {
			float want = 0.0f;

			for (k = 0; k < wA; k++)
				want += h_A[i * wA + k] * h_B[k * wB + j];
			if (h_C[i * wB + j] < want - 1e-3f || h_C[i * wB + j] > want + 1e-3f)
				errors++;
		}
	}
	checkCudaErrors(cuEventDestroy(start));
	checkCudaErrors(cuEventDestroy(stop));
	checkCudaErrors(cuMemFree(d_A));
	checkCudaErrors(cuMemFree(d_B));
	checkCudaErrors(cuMemFree(d_C));
	checkCudaErrors(cuMemFreeHost(h_A));
	checkCudaErrors(cuMemFreeHost(h_B));
	checkCudaErrors(cuMemFreeHost(h_C));
	checkCudaErrors(cuModuleUnload(mod));
	checkCudaErrors(cuDevicePrimaryCtxRelease(dev));
	free(image);
	return sample_result(errors);
}
