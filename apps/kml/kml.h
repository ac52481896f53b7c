/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kml.h - KML, readahead class prediction: 5 float32 features, normalised
 * with running statistics over the batch, -> linear 15 -> sigmoid ->
 * linear 5 -> sigmoid -> linear 4 -> argmax (the original KML network).
 * Shared by the C code and the GPU kernel (kml.cu).
 */
#ifndef KML_H
#define KML_H

#define KML_FEATURES	5
#define KML_H0		15
#define KML_H1		5
#define KML_CLASSES	4
#define KML_MAX_BATCH	1024
#define KML_LANES	32	/* the batch sums' partial sums (kml_row.h) */
#define KML_THREADS	256	/* GPU: rows per block (at least 32 x KML_FEATURES) */
#define KML_TOLERANCE	1e-5f	/* GPU vs CPU, relative to max(1, |score|) */

/* One output row: the four scores and the class (their argmax). */
struct kml_out {
	float score[KML_CLASSES];
	int cls;
};

/* The weights, as in data/kml_weights.txt: w0 is out x in (15 x 5), ... */
struct kml_weights {
	float w0[KML_H0 * KML_FEATURES];
	float b0[KML_H0];
	float w1[KML_H1 * KML_H0];
	float b1[KML_H1];
	float w2[KML_CLASSES * KML_H1];
	float b2[KML_CLASSES];
	float stats[KML_FEATURES];	/* initial mean and variance (intial_stats) */
};

#endif /* KML_H */
