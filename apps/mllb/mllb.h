/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mllb.h - MLLB, load balancing: 15 float32 features of a task ->
 * dense 10 + ReLU -> dense 1; migrate (class 1) when the output is > 0.5.
 * Shared by the C code and the GPU kernel (mllb.cu).
 */
#ifndef MLLB_H
#define MLLB_H

#define MLLB_FEATURES	15
#define MLLB_HIDDEN	10
#define MLLB_MAX_BATCH	1024
#define MLLB_THREADS	128	/* GPU: one thread per row */
#define MLLB_TOLERANCE	1e-5f	/* GPU vs CPU, relative to max(1, |score|) */

/* One output row. */
struct mllb_out {
	float score;
	int cls;		/* 1: migrate (score > 0.5) */
};

/* The weights, as in data/mllb_weights.txt: w1[k][j] is feature k -> hidden j. */
struct mllb_weights {
	float w1[MLLB_FEATURES * MLLB_HIDDEN];
	float b1[MLLB_HIDDEN];
	float w2[MLLB_HIDDEN];
	float b2;
};

#endif /* MLLB_H */
