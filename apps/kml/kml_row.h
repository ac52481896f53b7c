/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kml_row.h - KML's arithmetic, the one definition that the CPU path
 * (kml_fpu.c) and the GPU kernel (kml.cu) both run.  Floating point:
 * include only from FPU files and .cu files.
 *
 * Normalisation, per feature i over a batch of B rows (the original's online
 * statistics with k1 = 10, k2 = 9 and last = 0):
 *   mean[i] = stats[i] * 10 / (9 + B) + S[i] / (9 + B),  S[i] = sum_j x[j][i]
 *   var[i]  = stats[i] * 10 / (9 + B) + Q[i] / (9 + B),  Q[i] = sum_j (0 - x[j][i])^2
 *   x'[i]   = (x[i] - mean[i]) / sqrt(var[i])
 * The sums S and Q are taken in one fixed order on both sides: KML_LANES
 * partial sums, lane t adding rows t, t + 32, t + 64, ... in order, then a
 * tree: for off = 16, 8, 4, 2, 1, p[t] = p[t] + p[t + off] (a warp's
 * shuffle-down reduction); the result is p[0].
 */
#ifndef KML_ROW_H
#define KML_ROW_H

#include "lake_math.h"
#include "kml.h"

/* mean and standard deviation of feature @i from its sums over @batch rows. */
LAKE_MATH_FN void kml_norm(const struct kml_weights *w, int i, float sum, float sumsq,
			   unsigned int batch, float *mean, float *std)
{
	float n = (float)(9 + batch);

	*mean = w->stats[i] * 10.0f / n + sum / n;
	*std = lake_sqrtf(w->stats[i] * 10.0f / n + sumsq / n);
}

/* The network on one normalised row: scores and argmax (the first maximum). */
LAKE_MATH_FN void kml_row(const struct kml_weights *w, const float *x, const float *mean,
			  const float *std, struct kml_out *o)
{
	float xn[KML_FEATURES], h0[KML_H0], h1[KML_H1];
	int i, j, best = 0;

	LAKE_UNROLL
	for (i = 0; i < KML_FEATURES; i++)
		xn[i] = (x[i] - mean[i]) / std[i];
	for (j = 0; j < KML_H0; j++) {
		float acc = 0.0f;

		LAKE_UNROLL
		for (i = 0; i < KML_FEATURES; i++)
			acc = acc + w->w0[j * KML_FEATURES + i] * xn[i];
		h0[j] = lake_sigmoidf(acc + w->b0[j]);
	}
	for (j = 0; j < KML_H1; j++) {
		float acc = 0.0f;

		LAKE_UNROLL
		for (i = 0; i < KML_H0; i++)
			acc = acc + w->w1[j * KML_H0 + i] * h0[i];
		h1[j] = lake_sigmoidf(acc + w->b1[j]);
	}
	LAKE_UNROLL
	for (j = 0; j < KML_CLASSES; j++) {
		float acc = 0.0f;

		LAKE_UNROLL
		for (i = 0; i < KML_H1; i++)
			acc = acc + w->w2[j * KML_H1 + i] * h1[i];
		o->score[j] = acc + w->b2[j];
		if (o->score[j] > o->score[best])
			best = j;
	}
	o->cls = best;
}

#endif /* KML_ROW_H */
