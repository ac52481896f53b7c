/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Size arithmetic for the size expressions of api-spec/ buffers: both the
 * client stubs and lakeD's dispatch evaluate them, overflow-checked.
 */
#ifndef LAKE_SIZE_H
#define LAKE_SIZE_H

#include "lake_os.h"

/* Overflow-checked size arithmetic for generated size expressions. */
static inline __u64 lake_sz_add(bool *ovf, __u64 a, __u64 b)
{
	__u64 r;

	if (__builtin_add_overflow(a, b, &r))
		*ovf = true;
	return r;
}

static inline __u64 lake_sz_sub(bool *ovf, __u64 a, __u64 b)
{
	__u64 r;

	if (__builtin_sub_overflow(a, b, &r))
		*ovf = true;
	return r;
}

static inline __u64 lake_sz_mul(bool *ovf, __u64 a, __u64 b)
{
	__u64 r;

	if (__builtin_mul_overflow(a, b, &r))
		*ovf = true;
	return r;
}

static inline __u64 lake_sz_from_s64(bool *ovf, long long v)
{
	if (v < 0)
		*ovf = true;
	return (__u64)v;
}

/* Size of a cubin (ELF), fatbin or NUL-terminated PTX image, reading at most
 * @max bytes of it; 0 if it is none of these or is truncated (lake_image.c). */
__u64 lake_module_image_size(const void *image, __u64 max);

#endif /* LAKE_SIZE_H */
