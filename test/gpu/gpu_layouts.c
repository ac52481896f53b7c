// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The image parser (proto/lake_image.c) against the real driver: for every
 * image given, each kernel's parameter layout as LAKE reads it from the
 * image is compared with what cuFuncGetParamInfo reports for the loaded
 * module, and the number of kernels with cuModuleGetFunctionCount (unless
 * part of the image could not be read: a build without liblz4/libzstd skips
 * compressed entries).  Direct CUDA, no lakeD.  One line per kernel; exit
 * status 1 on any difference.
 *
 * Usage: gpu_layouts IMAGE...   (cubins, PTX, fatbins)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cuda.h>
#include "lake_call.h"

static int check_image(const char *path)
{
	struct lake_module *m = NULL;
	unsigned int count = 0, i, k;
	CUmodule mod;
	FILE *f = fopen(path, "rb");
	long n;
	char *img;
	int bad = 0;
	CUresult r;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0) {
		printf("%s: cannot read\n", path);
		return 1;
	}
	rewind(f);
	img = calloc(1, (size_t)n + 1);
	if (!img || fread(img, 1, (size_t)n, f) != (size_t)n) {
		printf("%s: cannot read\n", path);
		return 1;
	}
	fclose(f);
	if (lake_image_parse(img, (__u64)n + 1, &m) != LAKE_OK) {
		printf("%s: out of memory\n", path);
		return 1;
	}
	r = cuModuleLoadData(&mod, img);
	if (r != CUDA_SUCCESS) {
		printf("%s: cuModuleLoadData: %d\n", path, r);
		return 1;
	}
	if (m->partial)
		printf("%s: read only partly (entries compressed with a codec this build lacks?): "
		       "the kernels read are checked\n", path);
	else if (cuModuleGetFunctionCount(&count, mod) == CUDA_SUCCESS && count != m->nkernels) {
		printf("%s: MISMATCH: the driver has %u kernels, LAKE read %u\n", path, count,
		       m->nkernels);
		bad = 1;
	}
	for (i = 0; i < m->nkernels; i++) {
		struct lake_kernel *kn = &m->kernels[i];
		size_t off = 0, size = 0, end = 0;
		CUfunction fn;
		int same = 1;

		if (cuModuleGetFunction(&fn, mod, kn->name) != CUDA_SUCCESS) {
			printf("%s: %s: MISMATCH: not a kernel the driver knows\n", path, kn->name);
			bad = 1;
			continue;
		}
		for (k = 0; cuFuncGetParamInfo(fn, k, &off, &size) == CUDA_SUCCESS; k++) {
			if (kn->layout == LAKE_LAYOUT_KNOWN &&
			    (k >= kn->count || off != kn->offset[k] || size != kn->psize[k]))
				same = 0;
			end = off + size;
		}
		if (kn->layout != LAKE_LAYOUT_KNOWN) {
			/* Only for kernels LAKE cannot pack (larger than a slot). */
			same = end > LAKE_KPARAMS_MAX_SIZE || k > LAKE_MAX_KPARAMS;
			printf("%s: %s: layout unknown to LAKE (driver: %u parameters, %zu bytes)%s\n",
			       path, kn->name, k, end, same ? "" : ": MISMATCH");
		} else {
			same &= k == kn->count && end == kn->size;
			printf("%s: %s: %u parameters, %u bytes: %s\n", path, kn->name, kn->count,
			       kn->size, same ? "as the driver says" : "MISMATCH with the driver");
		}
		bad |= !same;
	}
	cuModuleUnload(mod);
	lake_module_free(m);
	free(img);
	return bad;
}

int main(int argc, char **argv)
{
	CUcontext ctx;
	CUdevice dev;
	int i, bad = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: gpu_layouts IMAGE...\n");
		return 2;
	}
	if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
	    cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS || cuCtxSetCurrent(ctx) != CUDA_SUCCESS) {
		fprintf(stderr, "gpu_layouts: no CUDA device\n");
		return 2;
	}
	for (i = 1; i < argc; i++)
		bad |= check_image(argv[i]);
	printf("gpu_layouts: %s\n", bad ? "FAILED" : "every layout LAKE read matches the driver's");
	return bad;
}
