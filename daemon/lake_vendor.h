/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * lakeD's vendor libraries: dlopen()ed per spec and bound through the
 * generated symbol tables (lake_vendor_gen.h).  A missing library leaves its
 * spec's table NULL (calls fail with the spec's no-vendor error), a missing
 * symbol leaves one entry NULL (that call fails as unsupported); neither
 * stops lakeD.
 *
 * Built with LAKED_FAKE_VENDOR, the tables are the recording TEST DOUBLE
 * (lake_fake.c) instead, and nothing touches a GPU: that is lakeD-fake.
 */
#ifndef LAKE_VENDOR_H
#define LAKE_VENDOR_H

#include <stdbool.h>
#include <stddef.h>
#include "lake_vendor_gen.h"

struct lake_vendor_state {
	struct lake_vendors vendors;	/* what client connections use */
	bool fake;			/* the TEST DOUBLE, not libcuda */
	struct lake_vendor_cuda cuda;
	struct lake_vendor_nvml nvml;
	void *cuda_lib, *nvml_lib;
	/* libcuda functions lakeD uses itself, outside the spec. */
	int (*cu_mem_host_register)(void *p, size_t bytesize, unsigned int flags);
	int (*cu_mem_host_unregister)(void *p);
	int (*cu_get_error_name)(int error, const char **name);
	/* After lake_vendor_gpu_init(). */
	int ngpus;			/* -1: unknown (no libcuda, cuInit failed) */
	int dev;			/* device 0 */
	void *primary_ctx;		/* its primary context, retained; NULL if none */
};

/* Loads the vendor libraries (or the test double); logs what is missing. */
void lake_vendor_load(struct lake_vendor_state *v);

/*
 * cuInit(0), logs (when @verbose) the driver version and each GPU (or that
 * there is none), retains device 0's primary context, makes it current on
 * the calling thread and the context every calling thread has until it sets
 * another (lake_srv_set_context_ops).  Returns true if a GPU is usable.
 */
bool lake_vendor_gpu_init(struct lake_vendor_state *v, bool verbose);

/* Makes the primary context current on the calling (serving) thread. */
void lake_vendor_bind_thread(struct lake_vendor_state *v);

/*
 * Page-locks @p (@n bytes: an arena) for DMA with cuMemHostRegister
 * (PORTABLE).  On failure logs a warning and returns false: copies from it
 * then run at pageable speed.  @what names it in messages.
 */
bool lake_vendor_pin(struct lake_vendor_state *v, void *p, size_t n, const char *what);
void lake_vendor_unpin(struct lake_vendor_state *v, void *p);

/* Releases the primary context. */
void lake_vendor_unload(struct lake_vendor_state *v);

/* "CUDA_ERROR_NO_DEVICE (100)", or "CUresult 100" without cuGetErrorName. */
const char *lake_vendor_cu_error(struct lake_vendor_state *v, int r, char *buf, size_t n);

#endif /* LAKE_VENDOR_H */
