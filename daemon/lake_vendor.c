// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * lakeD's vendor libraries (see lake_vendor.h).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "lake_vendor.h"
#include "lake_log.h"
#include "lake_server.h"
#ifdef LAKED_FAKE_VENDOR
#include "lake_fake.h"
#endif

/* From cuda.h; lakeD builds without the vendor headers. */
#define LAKE_CUDA_ERROR_NO_DEVICE	100
#define LAKE_CU_MEMHOSTREGISTER_PORTABLE	0x01
/* Mapped too, so that kernels can read and write the arena directly
 * (cuMemHostGetDevicePointer gives the device address of an arena buffer). */
#define LAKE_CU_MEMHOSTREGISTER_DEVICEMAP	0x02

/* Stores symbol @name of @h (or NULL) into the function pointer at @fn. */
static inline void lake_dlsym_fn(void *h, const char *name, void *fn)
{
	void *p = dlsym(h, name);

	/* Function pointers are the size of void * on every target lakeD runs on. */
	_Static_assert(sizeof(void (*)(void)) == sizeof(void *), "function pointer size");
	memcpy(fn, &p, sizeof(p));
}

#ifndef LAKED_FAKE_VENDOR
/*
 * dlopen()s @lib and fills @table through @syms.  Returns the handle, or
 * NULL (after a warning saying what that means) when it cannot be loaded.
 */
static void *lake_vendor_open(const char *spec, const char *lib, void *table,
			      const struct lake_vendor_sym *syms, unsigned int nsyms,
			      const char *without)
{
	char missing[1024];
	size_t used = 0;
	unsigned int i, nmissing = 0;
	void *h;

	h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		lake_warn("%s: cannot load %s (%s): %s", spec, lib, dlerror(), without);
		return NULL;
	}
	missing[0] = 0;
	for (i = 0; i < nsyms; i++) {
		void *p;

		lake_dlsym_fn(h, syms[i].symbol, (char *)table + syms[i].offset);
		memcpy(&p, (char *)table + syms[i].offset, sizeof(p));
		if (p)
			continue;
		nmissing++;
		if (used < sizeof(missing)) {
			int w = snprintf(missing + used, sizeof(missing) - used, "%s%s",
					 used ? ", " : "", syms[i].symbol);

			used += w > 0 ? (size_t)w : 0;
		}
	}
	if (nmissing)
		lake_warn("%s: %s lacks %u of its %u functions; calls to them will fail as "
			  "unsupported: %s%s", spec, lib, nmissing, nsyms, missing,
			  used >= sizeof(missing) ? "..." : "");
	lake_info("%s: loaded %s (%u of %u functions)", spec, lib, nsyms - nmissing, nsyms);
	return h;
}
#endif

void lake_vendor_load(struct lake_vendor_state *v)
{
	memset(v, 0, sizeof(*v));
	v->ngpus = -1;
#ifdef LAKED_FAKE_VENDOR
	v->fake = true;
	v->vendors = lake_fake_vendors;
	lake_warn("vendor libraries: the recording TEST DOUBLE (lake_fake.c), not libcuda: "
		  "no GPU is used");
#else
	v->cuda_lib = lake_vendor_open("cuda", LAKE_VENDOR_LIB_cuda, &v->cuda,
				       lake_vendor_cuda_syms, lake_vendor_cuda_nsyms,
				       "every CUDA call will fail with CUDA_ERROR_NO_DEVICE");
	if (v->cuda_lib) {
		v->vendors.cuda = &v->cuda;
		lake_dlsym_fn(v->cuda_lib, "cuMemHostRegister_v2", &v->cu_mem_host_register);
		lake_dlsym_fn(v->cuda_lib, "cuMemHostUnregister", &v->cu_mem_host_unregister);
		lake_dlsym_fn(v->cuda_lib, "cuGetErrorName", &v->cu_get_error_name);
		if (!v->cu_mem_host_register || !v->cu_mem_host_unregister)
			lake_warn("cuda: %s lacks cuMemHostRegister_v2/cuMemHostUnregister: the "
				  "arena cannot be registered", LAKE_VENDOR_LIB_cuda);
	}
	v->nvml_lib = lake_vendor_open("nvml", LAKE_VENDOR_LIB_nvml, &v->nvml,
				       lake_vendor_nvml_syms, lake_vendor_nvml_nsyms,
				       "every NVML call will fail with NVML_ERROR_LIBRARY_NOT_FOUND");
	if (v->nvml_lib)
		v->vendors.nvml = &v->nvml;
#endif
}

const char *lake_vendor_cu_error(struct lake_vendor_state *v, int r, char *buf, size_t n)
{
	const char *name = NULL;

	if (v->cu_get_error_name && v->cu_get_error_name(r, &name) == 0 && name)
		snprintf(buf, n, "%s (%d)", name, r);
	else
		snprintf(buf, n, "CUresult %d", r);
	return buf;
}

#ifdef LAKED_FAKE_VENDOR
/* lakeD's own context calls into the double: neither recorded nor verified. */
static int lake_fake_own_set_current(void *ctx)
{
	lake_fake_set_current(ctx);
	return 0;
}
#endif

bool lake_vendor_gpu_init(struct lake_vendor_state *v, bool verbose)
{
	const struct lake_vendor_cuda *c = v->vendors.cuda;
	char e[96], name[256];
	int r, n, i, dev, ver = 0;

	if (v->fake) {
#ifdef LAKED_FAKE_VENDOR
		/* The double models contexts: lakeD holds its primary context and
		 * binds serving threads to it, as with libcuda. */
		lake_fake_ref_take();
		v->primary_ctx = lake_fake_primary_ctx();
		lake_srv_set_context_ops(lake_fake_own_set_current, v->primary_ctx);
		lake_vendor_bind_thread(v);
#endif
		if (verbose)
			lake_info("no GPU probe: the vendor libraries are the TEST DOUBLE");
		return false;
	}
	if (!c) {
		lake_warn("no GPU: libcuda is not loaded");
		return false;
	}
	if (!c->cuInit || !c->cuDeviceGetCount || !c->cuDeviceGet) {
		lake_warn("no GPU: libcuda lacks cuInit/cuDeviceGetCount/cuDeviceGet");
		return false;
	}
	r = c->cuInit(0);
	if (r == LAKE_CUDA_ERROR_NO_DEVICE) {
		lake_warn("no GPU: cuInit(0) found no CUDA device; CUDA calls will fail");
		return false;
	}
	if (r) {
		lake_warn("no GPU: cuInit(0) failed: %s; CUDA calls will fail",
			  lake_vendor_cu_error(v, r, e, sizeof(e)));
		return false;
	}
	if (verbose && c->cuDriverGetVersion && c->cuDriverGetVersion(&ver) == 0)
		lake_info("CUDA driver API version %d.%d", ver / 1000, (ver % 1000) / 10);
	r = c->cuDeviceGetCount(&n);
	if (r || n <= 0) {
		lake_warn("no GPU: %s", r ? lake_vendor_cu_error(v, r, e, sizeof(e)) :
			  "cuDeviceGetCount found no device");
		return false;
	}
	v->ngpus = n;
	if (verbose)
		lake_info("%d CUDA device%s", n, n == 1 ? "" : "s");
	for (i = 0; verbose && i < n; i++) {
		size_t bytes = 0;

		if (c->cuDeviceGet(&dev, i))
			continue;
		if (!c->cuDeviceGetName || c->cuDeviceGetName(name, sizeof(name), dev))
			snprintf(name, sizeof(name), "?");
		if (c->cuDeviceTotalMem)
			c->cuDeviceTotalMem(&bytes, dev);
		lake_info("GPU %d: %s, %.1f GiB", i, name, (double)bytes / (1u << 30));
	}
	/* lakeD's own context: device 0's primary one (cuMemHostRegister needs one). */
	r = c->cuDeviceGet(&v->dev, 0);
	if (!r && c->cuDevicePrimaryCtxRetain)
		r = c->cuDevicePrimaryCtxRetain(&v->primary_ctx, v->dev);
	if (r || !v->primary_ctx) {
		lake_warn("cannot retain device 0's primary context: %s",
			  r ? lake_vendor_cu_error(v, r, e, sizeof(e)) : "not supported");
		v->primary_ctx = NULL;
		return true;
	}
	/* Each calling thread's context is made current when it differs. */
	if (c->cuCtxSetCurrent)
		lake_srv_set_context_ops(c->cuCtxSetCurrent, v->primary_ctx);
	lake_vendor_bind_thread(v);
	return true;
}

void lake_vendor_bind_thread(struct lake_vendor_state *v)
{
	char e[96];
	int r;

#ifdef LAKED_FAKE_VENDOR
	if (v->fake && v->primary_ctx) {
		lake_fake_set_current(v->primary_ctx);
		lake_srv_thread_bound(v->primary_ctx);
		return;
	}
#endif
	if (!v->primary_ctx || !v->vendors.cuda->cuCtxSetCurrent)
		return;
	r = v->vendors.cuda->cuCtxSetCurrent(v->primary_ctx);
	if (r)
		lake_warn("cuCtxSetCurrent(primary context): %s",
			  lake_vendor_cu_error(v, r, e, sizeof(e)));
	else
		lake_srv_thread_bound(v->primary_ctx);
}

bool lake_vendor_pin(struct lake_vendor_state *v, void *p, size_t n, const char *what)
{
	static const char slow[] = "copies from the arena will run at pageable speed";
	struct timespec t0, t1;
	char e[96];
	int r;

	if (!p || !n)
		return false;
	if (v->fake) {
		lake_info("%s not registered with cuMemHostRegister: the vendor library is the "
			  "TEST DOUBLE", what);
		return false;
	}
	if (!v->cu_mem_host_register || !v->cu_mem_host_unregister) {
		lake_warn("%s not registered: no cuMemHostRegister (libcuda not loaded); %s",
			  what, slow);
		return false;
	}
	if (!v->primary_ctx) {
		lake_warn("%s not registered: no CUDA context; %s", what, slow);
		return false;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = v->cu_mem_host_register(p, n, LAKE_CU_MEMHOSTREGISTER_PORTABLE |
					    LAKE_CU_MEMHOSTREGISTER_DEVICEMAP);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r) {
		lake_warn("cuMemHostRegister of the %s (%zu MiB) failed: %s; %s", what, n >> 20,
			  lake_vendor_cu_error(v, r, e, sizeof(e)), slow);
		return false;
	}
	lake_info("%s registered with cuMemHostRegister: %zu MiB in %.1f ms", what, n >> 20,
		  (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return true;
}

void lake_vendor_unpin(struct lake_vendor_state *v, void *p)
{
	char e[96];
	int r;

	if (!p || !v->cu_mem_host_unregister)
		return;
	r = v->cu_mem_host_unregister(p);
	if (r)
		lake_warn("cuMemHostUnregister: %s", lake_vendor_cu_error(v, r, e, sizeof(e)));
}

void lake_vendor_unload(struct lake_vendor_state *v)
{
	lake_srv_set_context_ops(NULL, NULL);
#ifdef LAKED_FAKE_VENDOR
	if (v->fake && v->primary_ctx) {
		lake_fake_ref_drop();
		v->primary_ctx = NULL;
		return;
	}
#endif
	/* The libraries stay loaded: libcuda does not support dlclose() well. */
	if (v->primary_ctx && v->vendors.cuda->cuDevicePrimaryCtxRelease)
		v->vendors.cuda->cuDevicePrimaryCtxRelease(v->dev);
	v->primary_ctx = NULL;
}
