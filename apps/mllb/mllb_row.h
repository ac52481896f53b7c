/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mllb_row.h - MLLB's network for one row: the one definition that the CPU
 * path (mllb_fpu.c) and the GPU kernel (mllb.cu) both run.  Floating
 * point: include only from FPU files and .cu files.
 */
#ifndef MLLB_ROW_H
#define MLLB_ROW_H

#include "lake_math.h"
#include "mllb.h"

/* out = relu(x . w1 + b1) . w2 + b2, each sum in index order. */
LAKE_MATH_FN float mllb_row(const struct mllb_weights *w, const float *x)
{
	float y = 0.0f;
	int j, k;

	for (j = 0; j < MLLB_HIDDEN; j++) {
		float acc = 0.0f;

		for (k = 0; k < MLLB_FEATURES; k++)
			acc = acc + x[k] * w->w1[k * MLLB_HIDDEN + j];
		acc = acc + w->b1[j];
		y = y + (acc > 0.0f ? acc : 0.0f) * w->w2[j];
	}
	return y + w->b2;
}

#endif /* MLLB_ROW_H */
