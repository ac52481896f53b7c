// SPDX-License-Identifier: GPL-2.0
/*
 * A kernel module written against the vendor-named cuda.h and nvml.h
 * (build/include/cuda-compat): it builds with the vendor's names, versioned
 * ones included (cuMemAlloc is cuMemAlloc_v2 there), and links against
 * lake.ko's exports, which modpost checks.  Loaded in no test: building it
 * is the test.
 */
#include <linux/module.h>
#include <linux/init.h>
#include <cuda.h>
#include <nvml.h>

#if !defined(__cuda_cuda_h__) || !defined(__nvml_nvml_h__)
#error "the compat headers lack the vendor's include guards"
#endif

static int __init lake_compat_kmod_init(void)
{
	CUctxCreateParams params = { 0 };
	CUdeviceptr d = 0;
	CUcontext ctx;
	void *host = NULL;
	const char *name = NULL;
	nvmlDevice_t dev;
	CUresult r;

	r = cuInit(0);
	if (r == CUDA_SUCCESS)
		r = cuCtxCreate(&ctx, &params, 0, 0);
	if (r == CUDA_SUCCESS)
		r = cuMemAlloc(&d, 4096);
	if (r == CUDA_SUCCESS)
		r = cuMemHostAlloc(&host, 4096, CU_MEMHOSTALLOC_PORTABLE);
	if (r == CUDA_SUCCESS)
		r = cuMemcpyHtoD(d, host, 4096);
	if (host)
		cuMemFreeHost(host);
	if (d)
		cuMemFree(d);
	cuGetErrorName(r, &name);
	if (nvmlInit() == NVML_SUCCESS)
		nvmlDeviceGetHandleByIndex(0, &dev);
	pr_info("lake_compat_kmod: %s\n", name ? name : "?");
	return 0;
}

static void __exit lake_compat_kmod_exit(void)
{
}

module_init(lake_compat_kmod_init);
module_exit(lake_compat_kmod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LAKE: a module written against the vendor-named cuda.h");
