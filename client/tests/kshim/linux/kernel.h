/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The few kernel facilities the generated kernel-context round trip
 * (build/gen/lake_ktest_roundtrip.c) uses, in user space, so that the same
 * generated test runs through liblake.  Test code only.
 */
#ifndef LAKE_KSHIM_KERNEL_H
#define LAKE_KSHIM_KERNEL_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;

#define GFP_KERNEL		0
#define kmalloc(n, gfp)		((void)(gfp), malloc(n))
#define kzalloc(n, gfp)		((void)(gfp), calloc(1, (n)))
#define kfree(p)		free(p)
#define pr_err(...)		fprintf(stderr, __VA_ARGS__)
#define pr_info(...)		fprintf(stderr, __VA_ARGS__)

#endif
