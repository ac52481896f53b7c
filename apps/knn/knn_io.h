/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * KNN's integer-only code, shared by every build: the data set (default or
 * from a file), the CPU's layout of it, checks of queries, and the CPU
 * path's driver (which opens and closes the FPU regions).
 */
#ifndef KNN_IO_H
#define KNN_IO_H

#include "lake_app.h"
#include "knn_cpu.h"

/* The reference set as the app keeps it (row-major, as the GPU reads it). */
struct knn_data {
	float refs[KNN_NREF][KNN_DIM];
	u8 labels[KNN_NREF];
};

/* The app's state (lake_app_state()). */
struct knn_state {
	struct knn_data data;
	struct knn_cpu_refs refs;	/* the CPU's layout */
	struct knn_cpu_scratch scratch;	/* CPU scratch (one caller at a time) */
	float fixed[KNN_QMAX][KNN_DIM];	/* the benchmark's queries */
	/* GPU */
	CUdeviceptr d_refs, d_labels, d_d2;
	int sms;
};

/* The model's callbacks that touch floats (knn_fpu.c, in the kit's FPU regions). */
void knn_cpu_rows(struct lake_app *a, const void *in, void *out, unsigned int r0,
		  unsigned int r1, unsigned int batch);
void knn_random_input(struct lake_app *a, void *in, unsigned int batch, u64 *seed);
int knn_format_row(struct lake_app *a, const void *out, unsigned int r, char *buf, size_t len);

/**
 * knn_default_data() - the seeded data set (knn_model.h says how)
 * @data: out
 * @seed: the PRNG seed
 */
void knn_default_data(struct knn_data *data, u64 seed);

/**
 * knn_default_queries() - the seeded queries: [@nq][KNN_DIM] into @q
 */
void knn_default_queries(float *q, int nq, u64 seed);

/**
 * knn_parse_data() - read a data file (format in knn_model.h)
 * @file: its bytes
 * @len: its length
 * @data: out (unchanged on error)
 * @why: set to a message naming the problem on error
 *
 * Return: 0, or -EINVAL.  Integer code only: needs no FPU region.
 */
int knn_parse_data(const void *file, size_t len, struct knn_data *data, const char **why);

/* The CPU's layout of @data's points (integer copies: no FPU region). */
void knn_cpu_layout(const struct knn_data *data, struct knn_cpu_refs *refs);

/**
 * knn_cpu_predict() - the CPU path for @nq queries
 * @refs: the CPU's layout of the points
 * @labels: their labels
 * @q: [@nq][KNN_DIM] queries (a NaN feature: NaN distances, which sort last)
 * @nq: queries
 * @scratch: scratch space
 * @out: [@nq] out
 *
 * One FPU region per block of KNN_CPU_QBLOCK queries, with a chance to
 * reschedule between regions.
 */
void knn_cpu_predict(const struct knn_cpu_refs *refs, const u8 *labels, const float *q,
		     int nq, struct knn_cpu_scratch *scratch, struct knn_out *out);

#endif /* KNN_IO_H */
