/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * What the Driver API sample programs of test/compat share, in the style of
 * NVIDIA's cuda-samples helper_cuda_drvapi.h: error checks that print the
 * driver's name for an error, and reading the kernels' fatbin.  Plain
 * cuda.h usage only: these programs build against NVIDIA's header or LAKE's
 * compat one alike.
 *
 * Each program takes the fatbin's path and, optionally, --no-verify (results
 * are not compared and a failing call does not stop the program: for runs
 * against lakeD-fake, whose TEST DOUBLE computes nothing and hands out the
 * same handle for every creation).  Each call prints "name: RESULT", so that
 * runs can be compared.
 */
#ifndef COMPAT_SAMPLE_H
#define COMPAT_SAMPLE_H

#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gpu/lake_read_file.h"

#ifndef __cuda_cuda_h__
#error "cuda.h does not define __cuda_cuda_h__"
#endif

static int sample_verify = 1;

static inline const char *sample_error_name(CUresult r)
{
	const char *s = NULL;

	if (cuGetErrorName(r, &s) != CUDA_SUCCESS || !s)
		return "(unknown error)";
	return s;
}

/* Prints the call and its result; exits on an error, as checkCudaErrors
 * does (unless --no-verify). */
#define checkCudaErrors(call) sample_check((call), #call, __FILE__, __LINE__)

static inline void sample_check(CUresult r, const char *what, const char *file, int line)
{
	char name[64];
	size_t n = strcspn(what, "(");

	snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) - 1 ? n : sizeof(name) - 1), what);
	printf("%s: %s\n", name, sample_error_name(r));
	if (r != CUDA_SUCCESS && sample_verify) {
		const char *text = NULL;

		cuGetErrorString(r, &text);
		fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", file, line, what,
			sample_error_name(r), text ? text : "no description");
		exit(EXIT_FAILURE);
	}
}

/* The last line, as the samples print it, and the exit status. */
static inline int sample_result(int errors)
{
	if (!sample_verify) {
		printf("Result = NOT VERIFIED (--no-verify)\n");
		return EXIT_SUCCESS;
	}
	printf("Result = %s\n", errors ? "FAIL" : "PASS");
	return errors ? EXIT_FAILURE : EXIT_SUCCESS;
}

static inline void *sample_args(int argc, char **argv, const char *prog)
{
	size_t len = 0;
	void *image;

	if (argc < 2 || (argc == 3 && strcmp(argv[2], "--no-verify")) || argc > 3) {
		fprintf(stderr, "usage: %s KERNELS.fatbin [--no-verify]\n", prog);
		exit(2);
	}
	sample_verify = argc == 2;
	image = lake_read_file(argv[1], &len);
	if (!image) {
		fprintf(stderr, "%s: cannot read %s\n", prog, argv[1]);
		exit(2);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return image;
}

#endif /* COMPAT_SAMPLE_H */
