/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * KNN's CPU path.  knn_fpu_*() are the floating-point code (knn_cpu.c,
 * compiled with FPU flags): call them only inside an FPU region, which
 * they never leave, and in which they neither sleep nor allocate.  Each
 * does a bounded piece of work (a block of KNN_CPU_QBLOCK queries, or a
 * slice of the data set).  No float crosses this interface by value.
 */
#ifndef KNN_CPU_H
#define KNN_CPU_H

#include "lake_app_env.h"
#include "knn_model.h"

/* Queries per FPU region: 4 x 4096 distances, ~6 MFLOP. */
#define KNN_CPU_QBLOCK	4
/* Reference points side by side in the CPU's layout (two SSE vectors). */
#define KNN_CPU_RBLOCK	8
/* Values generated per FPU region by knn_fpu_uniform(). */
#define KNN_INIT_CHUNK	(64 * 1024)

/* The CPU's copy of the reference points: [KNN_NREF / 8][KNN_DIM][8]. */
struct knn_cpu_refs {
	float rt[KNN_NREF / KNN_CPU_RBLOCK][KNN_DIM][KNN_CPU_RBLOCK];
};

/* Scratch for one block of queries. */
struct knn_cpu_scratch {
	float q[KNN_DIM][KNN_CPU_QBLOCK][4] __attribute__((aligned(16)));	/* broadcast */
	float d2[KNN_CPU_QBLOCK][KNN_NREF] __attribute__((aligned(16)));	/* squared distances */
};

/**
 * knn_fpu_uniform() - uniform floats in [0, 1), a slice at a time
 * @out: where they go
 * @count: how many (at most KNN_INIT_CHUNK per FPU region)
 * @state: a lake_app_rand() state, advanced by @count
 *
 * Each is (lake_app_rand() >> 40) * 2^-24, exactly.
 */
void knn_fpu_uniform(float *out, size_t count, u64 *state);



/**
 * knn_fpu_queries() - the k nearest neighbours of a block of queries
 * @refs: the reference points in the CPU's layout
 * @labels: [KNN_NREF] labels, each < KNN_NLABELS
 * @q: [@nq][KNN_DIM] queries
 * @nq: 1..KNN_CPU_QBLOCK
 * @scratch: scratch space
 * @out: [@nq] out: the nearest points, nearest first (ties: the lower index
 *       first), their distances, the majority label
 */
void knn_fpu_queries(const struct knn_cpu_refs *refs, const u8 *labels, const float *q,
		     int nq, struct knn_cpu_scratch *scratch, struct knn_out *out);

#endif /* KNN_CPU_H */
