/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * What the GPU comparison programs (gpu_calls, gpu_compat_calls) share: one
 * line per call ("name: RESULT outputs"), checks, and in the direct build
 * NVML's vendor symbols behind the public names (nvml.h is not on every
 * build machine: the types come from lake_nvml.h, which the conformance
 * check proves equal to nvml.h's).
 */
#ifndef LAKE_GPU_SAY_H
#define LAKE_GPU_SAY_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "lake_gpu_util.h"

#ifdef LAKE_DIRECT
#include <dlfcn.h>

static inline void *nvml_sym(const char *name)
{
	static void *lib;
	void *p;

	if (!lib)
		lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	p = lib ? dlsym(lib, name) : NULL;
	if (!p) {
		fprintf(stderr, "%s not found in libnvidia-ml.so.1\n", name);
		exit(2);
	}
	return p;
}
#define NVML_FN(ret, name, sym, params, args) \
	ret name params { return ((ret(*) params)nvml_sym(sym)) args; }
#endif

static int failures;

static inline const char *cu_name(CUresult r)
{
	const char *s = NULL;

	cuGetErrorName(r, &s);
	return s ? s : "(unknown)";
}

/* One line per call: "name: RESULT outputs". */
static inline CUresult say(const char *name, CUresult r, const char *fmt, ...)
{
	va_list ap;

	printf("%s: %s", name, cu_name(r));
	if (fmt && *fmt) {
		putchar(' ');
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putchar('\n');
	return r;
}

/* The call runs before its outputs are printed (argument order is unspecified). */
#define SAY(name, call, ...)					\
	do {							\
		CUresult r_ = (call);				\
		say(name, r_, __VA_ARGS__);			\
	} while (0)

static inline void check(int ok, const char *what)
{
	printf("check %s: %s\n", what, ok ? "ok" : "FAILED");
	if (!ok)
		failures++;
}

/* A comparison program's start: "PROG KERNELS.fatbin", stdout line-buffered,
 * the variant printed, the fatbin read (exits 2 on a usage or read error). */
static inline void *gpu_test_start(int argc, char **argv, const char *prog, size_t *image_len)
{
	void *image;

	if (argc != 2) {
		fprintf(stderr, "usage: %s KERNELS.fatbin\n", argv[0]);
		exit(2);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# %s (%s)\n", prog, LAKE_VARIANT);
	image = lake_read_file(argv[1], image_len);
	if (!image) {
		fprintf(stderr, "%s: cannot read %s\n", prog, argv[1]);
		exit(2);
	}
	return image;
}

#endif /* LAKE_GPU_SAY_H */
