// SPDX-License-Identifier: GPL-2.0
/*
 * lake_hello.ko: a kernel module that uses the GPU through LAKE.
 *
 * It is written against the usual CUDA Driver API names and signatures
 * (lake_cuda.h) plus the lakeShm arena (lake_kernel.h).  Every cu* call
 * below is remoted by lake.ko over /dev/lake to lakeD, which runs it with
 * libcuda.  At load it runs one demo sequence and logs each call and its
 * result by name:
 *
 *   cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet,
 *   cuDeviceGetName, cuDeviceTotalMem, cuDevicePrimaryCtxRetain,
 *   cuCtxSetCurrent, cuModuleLoadData (the GPU image embedded in the
 *   module, built by nvcc from hello.cu), cuModuleGetFunction, cuMemAlloc,
 *   three host buffers in lakeShm (a and b filled), cuMemcpyHtoD of a and
 *   b, cuLaunchKernel of a vector add c = a + b, cuMemcpyDtoH of c, a
 *   check of every element, cuMemFree, cuModuleUnload,
 *   cuDevicePrimaryCtxRelease.
 *
 * On a machine without a GPU, lakeD answers cuInit with
 * CUDA_ERROR_NO_DEVICE: the module says so and stops there, which still
 * shows a call going kernel -> lakeD and back.
 *
 * Loading succeeds whatever the calls return (the log says how far the
 * demo got), and everything the demo allocated is released before init
 * returns, so the module can be unloaded at any time.
 *
 * Parameter: size_kb, the KiB of each vector (default 1024).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/string.h>
#include "lake_cuda.h"
#include "lake_kernel.h"

static unsigned int size_kb = 1024;
module_param(size_kb, uint, 0444);
MODULE_PARM_DESC(size_kb, "KiB of each vector added on the GPU (1-16384, default 1024)");

/* The GPU image, embedded at build time (hello_fatbin.c, from hello.cu). */
extern const unsigned char hello_fatbin[];
extern const size_t hello_fatbin_size;

struct lake_hello {
	unsigned int calls;	/* cu* calls that went to lakeD */
	unsigned int failed;	/* ... and returned an error */
	const char *stopped_at;	/* the call the demo stopped at, or NULL */
	CUresult stop_result;
};

static const char *lake_hello_name(CUresult r)
{
	const char *s = NULL;

	/* Answered inside lake.ko from the spec's enum: no round trip. */
	if (cuGetErrorName(r, &s) != CUDA_SUCCESS || !s)
		return "an unknown CUresult";
	return s;
}

/*
 * Logs @call and its result @r, followed on success by the details that
 * @fmt formats (none when @fmt is NULL).  Returns true when @r is
 * CUDA_SUCCESS; otherwise records that the demo stopped at @call.
 */
static __printf(4, 5) bool lake_hello_ok(struct lake_hello *h, const char *call, CUresult r,
					 const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	h->calls++;
	if (r != CUDA_SUCCESS) {
		pr_info("  %-28s -> %s (%d)\n", call, lake_hello_name(r), r);
		h->failed++;
		if (!h->stopped_at) {
			h->stopped_at = call;
			h->stop_result = r;
		}
		return false;
	}
	if (!fmt) {
		pr_info("  %-28s -> %s\n", call, lake_hello_name(r));
		return true;
	}
	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	pr_info("  %-28s -> %s: %pV\n", call, lake_hello_name(r), &vaf);
	va_end(args);
	return true;
}

/* The inputs: distinct words, and their sums overflow (checked modulo 2^32). */
static u32 lake_hello_a(u32 i)
{
	return i * 2654435761u ^ 0x4c414b45;	/* "LAKE" */
}

static u32 lake_hello_b(u32 i)
{
	return ~i * 40503u + 7;
}

/*
 * The GPU part: load the embedded image, copy two vectors from lakeShm to
 * the GPU, launch a vector add, copy the sum back into lakeShm and check
 * every element.
 */
static void lake_hello_vecadd(struct lake_hello *h, size_t bytes)
{
	CUdeviceptr da = 0, db = 0, dc = 0;
	unsigned int n = bytes / sizeof(u32), i, bad = 0, first_bad = 0;
	unsigned int threads = 256, blocks = (n + threads - 1) / threads;
	void *params[] = { &da, &db, &dc, &n };
	CUmodule mod = NULL;
	CUfunction fn = NULL;
	u32 *a, *b = NULL, *c = NULL;
	CUresult r;

	if (!hello_fatbin_size) {
		pr_info("  this module was built without its GPU kernel (nvcc was not found): no launch\n");
		h->stopped_at = "cuModuleLoadData";
		h->stop_result = CUDA_ERROR_NOT_FOUND;
		return;
	}
	r = cuModuleLoadData(&mod, hello_fatbin);
	if (!lake_hello_ok(h, "cuModuleLoadData", r, "the embedded image, %zu bytes",
			   hello_fatbin_size))
		return;
	r = cuModuleGetFunction(&fn, mod, "lake_hello_vecadd");
	if (!lake_hello_ok(h, "cuModuleGetFunction", r, "lake_hello_vecadd"))
		goto unload;

	r = cuMemAlloc(&da, bytes);
	if (!r)
		r = cuMemAlloc(&db, bytes);
	if (!r)
		r = cuMemAlloc(&dc, bytes);
	if (!lake_hello_ok(h, "cuMemAlloc", r, "3 x %zu bytes of GPU memory", bytes))
		goto free;

	a = lake_shm_alloc(bytes);
	if (a)
		b = lake_shm_alloc(bytes);
	if (b)
		c = lake_shm_alloc(bytes);
	if (!c) {
		pr_info("  lake_shm_alloc failed: the arena has no room for 3 x %zu KiB (see lake.ko's arena_mb)\n",
			bytes >> 10);
		h->stopped_at = "lake_shm_alloc";
		h->stop_result = CUDA_ERROR_OUT_OF_MEMORY;
		goto free_host;
	}
	for (i = 0; i < n; i++) {
		a[i] = lake_hello_a(i);
		b[i] = lake_hello_b(i);
	}
	memset(c, 0, bytes);
	pr_info("  %-28s    3 x %zu KiB host buffers in lakeShm: a, b filled, c zeroed\n",
		"lake_shm_alloc", bytes >> 10);

	r = cuMemcpyHtoD(da, a, bytes);
	if (!r)
		r = cuMemcpyHtoD(db, b, bytes);
	if (!lake_hello_ok(h, "cuMemcpyHtoD", r, "a and b, lakeShm -> GPU"))
		goto free_host;
	r = cuLaunchKernel(fn, blocks, 1, 1, threads, 1, 1, 0, NULL, params, NULL);
	if (!lake_hello_ok(h, "cuLaunchKernel", r, "lake_hello_vecadd <<<%u, %u>>>: c = a + b, %u elements",
			   blocks, threads, n))
		goto free_host;
	r = cuMemcpyDtoH(c, dc, bytes);
	if (!lake_hello_ok(h, "cuMemcpyDtoH", r, "c, GPU -> lakeShm (after the kernel)"))
		goto free_host;

	for (i = 0; i < n; i++) {
		if (c[i] != a[i] + b[i] && !bad++)
			first_bad = i;
	}
	if (!bad) {
		pr_info("  %-28s    all %u elements of c equal a + b\n", "check", n);
	} else {
		pr_info("  %-28s    %u of %u elements WRONG; the first at %u: %#x + %#x gave %#x\n",
			"check", bad, n, first_bad, a[first_bad], b[first_bad], c[first_bad]);
		h->stopped_at = "check";
		h->stop_result = CUDA_ERROR_UNKNOWN;
	}

free_host:
	lake_shm_free(c, bytes);
	lake_shm_free(b, bytes);
	lake_shm_free(a, bytes);
free:
	if (dc)
		lake_hello_ok(h, "cuMemFree", cuMemFree(dc), NULL);
	if (db)
		lake_hello_ok(h, "cuMemFree", cuMemFree(db), NULL);
	if (da)
		lake_hello_ok(h, "cuMemFree", cuMemFree(da), NULL);
unload:
	lake_hello_ok(h, "cuModuleUnload", cuModuleUnload(mod), NULL);
}

static void lake_hello_run(struct lake_hello *h, size_t bytes)
{
	char name[128] = "";
	CUcontext ctx = NULL;
	CUdevice dev = 0;
	size_t total = 0;
	int ver = 0, count = 0;
	unsigned int i;
	CUresult r;

	r = cuInit(0);
	if (r == CUDA_ERROR_NO_DEVICE) {
		lake_hello_ok(h, "cuInit(0)", r, NULL);
		pr_info("no GPU on this machine: lakeD answered CUDA_ERROR_NO_DEVICE; the calls went kernel -> lakeD and back\n");
		return;
	}
	if (r == CUDA_ERROR_DEVICE_UNAVAILABLE) {
		lake_hello_ok(h, "cuInit(0)", r, NULL);
		pr_info("lakeD is not attached to /dev/lake (it answered nothing): start lakeD, then reload lake_hello\n");
		return;
	}
	if (!lake_hello_ok(h, "cuInit(0)", r, NULL))
		return;

	r = cuDriverGetVersion(&ver);
	if (!lake_hello_ok(h, "cuDriverGetVersion", r, "CUDA %d.%d", ver / 1000, ver % 1000 / 10))
		return;
	r = cuDeviceGetCount(&count);
	if (!lake_hello_ok(h, "cuDeviceGetCount", r, "%d device%s", count, count == 1 ? "" : "s"))
		return;
	r = cuDeviceGet(&dev, 0);
	if (!lake_hello_ok(h, "cuDeviceGet(0)", r, "device %d", dev))
		return;
	r = cuDeviceGetName(name, sizeof(name), dev);
	name[sizeof(name) - 1] = 0;
	for (i = 0; name[i]; i++)	/* it came from user space: print it safely */
		if (name[i] < 0x20 || name[i] > 0x7e)
			name[i] = '?';
	if (!lake_hello_ok(h, "cuDeviceGetName", r, "\"%s\"", name))
		return;
	r = cuDeviceTotalMem(&total, dev);
	if (!lake_hello_ok(h, "cuDeviceTotalMem", r, "%zu MiB", total >> 20))
		return;

	r = cuDevicePrimaryCtxRetain(&ctx, dev);
	if (!lake_hello_ok(h, "cuDevicePrimaryCtxRetain", r, NULL))
		return;
	r = cuCtxSetCurrent(ctx);
	if (lake_hello_ok(h, "cuCtxSetCurrent", r, NULL))
		lake_hello_vecadd(h, bytes);
	r = cuDevicePrimaryCtxRelease(dev);
	lake_hello_ok(h, "cuDevicePrimaryCtxRelease", r, NULL);
}

static int __init lake_hello_init(void)
{
	struct lake_hello h = { 0 };

	if (!size_kb || size_kb > 16384) {
		pr_err("size_kb=%u: must be 1 to 16384\n", size_kb);
		return -EINVAL;
	}
	pr_info("calling the CUDA Driver API from the kernel (each call: lake.ko -> /dev/lake -> lakeD -> libcuda)\n");
	lake_hello_run(&h, (size_t)size_kb << 10);

	/* The last line says how it went: "done: OK", "done: NO GPU" or "done: FAILED". */
	if (!h.stopped_at)
		pr_info("done: OK: %u calls through lakeD, all CUDA_SUCCESS; the GPU added two %u KiB vectors, every element checked\n",
			h.calls, size_kb);
	else if (h.stop_result == CUDA_ERROR_NO_DEVICE && h.calls == 1)
		pr_info("done: NO GPU: 1 call through lakeD, answered CUDA_ERROR_NO_DEVICE; the path kernel -> lakeD -> kernel works\n");
	else if (!strcmp(h.stopped_at, "check"))
		pr_info("done: FAILED: %u calls through lakeD, all CUDA_SUCCESS, but the sums that came back are wrong\n",
			h.calls);
	else
		pr_info("done: FAILED: %u calls through lakeD, %u failed; the demo stopped at %s (%s)\n",
			h.calls, h.failed, h.stopped_at, lake_hello_name(h.stop_result));
	return 0;	/* the module loads whatever the GPU said */
}

static void __exit lake_hello_exit(void)
{
	pr_info("unloaded\n");
}

module_init(lake_hello_init);
module_exit(lake_hello_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LAKE demo: the CUDA Driver API from a kernel module, remoted to lakeD");
