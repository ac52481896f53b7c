/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Parameter types of the kernels in kparams.cu, shared with the parser tests
 * (test_protocol.c), where the host compiler's offsetof() gives the layout
 * the CUDA ABI lays kernel parameters out by: the ground truth.
 */
#ifndef KP_TYPES_H
#define KP_TYPES_H

struct kp_s3 {		/* padding inside */
	char c;
	double d;
	int i;
};

struct __attribute__((aligned(16))) kp_a16 {	/* an over-aligned struct */
	float x, y, z, w;
};

struct kp_big {		/* 1200 bytes */
	int v[300];
};

struct kp_huge {	/* past LAKE_KPARAMS_MAX_SIZE: EIATTR_KPARAM_INFO_V2 records */
	int v[5000];
};

#endif
