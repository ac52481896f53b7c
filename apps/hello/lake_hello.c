// SPDX-License-Identifier: GPL-2.0
/*
 * lake_hello.ko: a kernel module that uses the GPU through LAKE.
 *
 * It is written against the usual CUDA Driver API names and signatures
 * (lake_cuda.h) plus the lakeShm arena (lake_kernel.h).  Every cu* call
 * below is remoted by lake.ko to lakeD, which runs it with libcuda: over
 * /dev/lake to the lakeD of this machine, or, in a VM, over the VM bridge
 * (ivshmem) to the host's lakeD; the log says which.  At load it runs one
 * demo sequence and logs each call and its result by name:
 *
 *   cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet,
 *   cuDeviceGetName, cuDeviceTotalMem, cuDevicePrimaryCtxRetain,
 *   cuCtxSetCurrent, cuMemAlloc, two host buffers in lakeShm (one filled
 *   with a pattern), cuMemcpyHtoD, cuMemcpyDtoH, compare, cuMemFree,
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
 * Parameter: size_kb, the KiB copied to the GPU and back (default 1024).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/string.h>
#include "lake_cuda.h"
#include "lake_kernel.h"

static unsigned int size_kb = 1024;
module_param(size_kb, uint, 0444);
MODULE_PARM_DESC(size_kb, "KiB copied to the GPU and back (1-16384, default 1024)");

struct lake_hello {
	unsigned int calls;	/* cu* calls that went to lakeD */
	unsigned int failed;	/* ... and returned an error */
	const char *stopped_at;	/* the call the demo stopped at, or NULL */
	CUresult stop_result;
};

/* Where the calls go, as lake.ko says (lake_transport_name()). */
static const char *lake_hello_route(void)
{
	return strcmp(lake_transport_name(), "ivshmem") ?
	       "lake.ko -> /dev/lake -> lakeD" :
	       "lake.ko -> ivshmem (the VM bridge) -> the host's lakeD";
}

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

/* The pattern the host buffer is filled with: distinct for every word. */
static u32 lake_hello_word(size_t i)
{
	return (u32)i * 2654435761u ^ 0x4c414b45;	/* "LAKE" */
}

/* Copies @bytes from a lakeShm buffer to the GPU and back, and compares. */
static void lake_hello_copy(struct lake_hello *h, size_t bytes)
{
	CUdeviceptr dptr = 0;
	u32 *src, *dst = NULL;
	size_t i, nwords = bytes / sizeof(u32);
	CUresult r;

	r = cuMemAlloc(&dptr, bytes);
	if (!lake_hello_ok(h, "cuMemAlloc", r, "%zu bytes of GPU memory at %#llx", bytes,
			   (unsigned long long)dptr))
		return;

	src = lake_shm_alloc(bytes);
	if (src)
		dst = lake_shm_alloc(bytes);
	if (!dst) {
		pr_info("  lake_shm_alloc failed: the arena has no room for 2 x %zu KiB (see lake.ko's arena_mb)\n",
			bytes >> 10);
		h->stopped_at = "lake_shm_alloc";
		h->stop_result = CUDA_ERROR_OUT_OF_MEMORY;
		goto free;
	}
	for (i = 0; i < nwords; i++)
		src[i] = lake_hello_word(i);
	memset(dst, 0, bytes);
	pr_info("  %-28s    2 x %zu KiB host buffers in lakeShm; the first filled with a pattern\n",
		"lake_shm_alloc", bytes >> 10);

	r = cuMemcpyHtoD(dptr, src, bytes);
	if (!lake_hello_ok(h, "cuMemcpyHtoD", r, "%zu bytes lakeShm -> GPU", bytes))
		goto free;
	r = cuMemcpyDtoH(dst, dptr, bytes);
	if (!lake_hello_ok(h, "cuMemcpyDtoH", r, "%zu bytes GPU -> lakeShm", bytes))
		goto free;

	for (i = 0; i < nwords && dst[i] == src[i]; i++)
		;
	if (i == nwords) {
		pr_info("  %-28s    all %zu bytes came back intact\n", "compare", bytes);
	} else {
		pr_info("  %-28s    MISMATCH at byte %zu: sent %#x, got %#x\n", "compare",
			i * sizeof(u32), src[i], dst[i]);
		h->stopped_at = "compare";
		h->stop_result = CUDA_ERROR_UNKNOWN;
	}

free:
	lake_shm_free(dst, bytes);
	lake_shm_free(src, bytes);
	r = cuMemFree(dptr);
	lake_hello_ok(h, "cuMemFree", r, NULL);
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
		pr_info("no lakeD serves lake.ko (%s answered nothing): start lakeD, then reload lake_hello\n",
			lake_transport_name());
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
		lake_hello_copy(h, bytes);
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
	pr_info("calling the CUDA Driver API from the kernel (each call: %s -> libcuda)\n",
		lake_hello_route());
	lake_hello_run(&h, (size_t)size_kb << 10);

	/* The last line says how it went: "done: OK", "done: NO GPU" or "done: FAILED". */
	if (!h.stopped_at)
		pr_info("done: OK: %u calls through lakeD, all CUDA_SUCCESS; %u KiB went to the GPU and back intact\n",
			h.calls, size_kb);
	else if (h.stop_result == CUDA_ERROR_NO_DEVICE && h.calls == 1)
		pr_info("done: NO GPU: 1 call through lakeD, answered CUDA_ERROR_NO_DEVICE; the path kernel -> lakeD -> kernel works\n");
	else if (!strcmp(h.stopped_at, "compare"))
		pr_info("done: FAILED: %u calls through lakeD, all CUDA_SUCCESS, but the data that came back differs\n",
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
