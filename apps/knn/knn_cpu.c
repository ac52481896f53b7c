// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * KNN's floating-point code for the CPU path: compiled with FPU flags
 * (SSE2, no contraction) and called only inside FPU regions.  Distances
 * follow the exact order of knn_model.h; eight reference points side by
 * side (GCC vector extensions) and four queries at a time, so each lane
 * accumulates its own pair in order and the data are read once per block.
 */
#include "lake_app.h"
#include "lake_math.h"
#include "knn_cpu.h"

typedef float knn_v4 __attribute__((vector_size(16)));

void knn_fpu_uniform(float *out, size_t count, u64 *state)
{
	size_t i;

	for (i = 0; i < count; i++)
		out[i] = (float)(u32)(lake_app_rand(state) >> 40) * 0x1p-24f;
}

/* The squared distances of one query (a batch of 1: a quarter of the work). */
static void knn_distances1(const struct knn_cpu_refs *refs, const knn_v4 (*qb)[KNN_CPU_QBLOCK],
			   float *d2)
{
	int b, k;

	for (b = 0; b < KNN_NREF / KNN_CPU_RBLOCK; b++) {
		const float (*rt)[KNN_CPU_RBLOCK] = refs->rt[b];
		knn_v4 a0 = { 0 }, a1 = { 0 };

		for (k = 0; k < KNN_DIM; k++) {
			knn_v4 d0 = qb[k][0] - *(const knn_v4 *)&rt[k][0];
			knn_v4 d1 = qb[k][0] - *(const knn_v4 *)&rt[k][4];

			a0 += d0 * d0;
			a1 += d1 * d1;
		}
		*(knn_v4 *)&d2[b * 8] = a0;
		*(knn_v4 *)&d2[b * 8 + 4] = a1;
	}
}

/* Squared distances of @nq queries to all reference points (rows past @nq: of zeros). */
static void knn_distances(const struct knn_cpu_refs *refs, const float *q, int nq,
			  struct knn_cpu_scratch *s)
{
	knn_v4 (*qb)[KNN_CPU_QBLOCK] = (knn_v4 (*)[KNN_CPU_QBLOCK])s->q, zero = { 0 };
	int b, k, i;

	/* zero + x broadcasts x (and is how sparse can read it) */
	for (k = 0; k < KNN_DIM; k++)
		for (i = 0; i < KNN_CPU_QBLOCK; i++)
			qb[k][i] = zero + (i < nq ? q[i * KNN_DIM + k] : 0.0f);
	if (nq == 1) {
		knn_distances1(refs, (const knn_v4 (*)[KNN_CPU_QBLOCK])qb, s->d2[0]);
		return;
	}
	for (b = 0; b < KNN_NREF / KNN_CPU_RBLOCK; b++) {
		const float (*rt)[KNN_CPU_RBLOCK] = refs->rt[b];
		knn_v4 a00 = { 0 }, a01 = { 0 }, a10 = { 0 }, a11 = { 0 };
		knn_v4 a20 = { 0 }, a21 = { 0 }, a30 = { 0 }, a31 = { 0 };

		for (k = 0; k < KNN_DIM; k++) {
			knn_v4 r0 = *(const knn_v4 *)&rt[k][0], r1 = *(const knn_v4 *)&rt[k][4];
			knn_v4 d;

			d = qb[k][0] - r0;
			a00 += d * d;
			d = qb[k][0] - r1;
			a01 += d * d;
			d = qb[k][1] - r0;
			a10 += d * d;
			d = qb[k][1] - r1;
			a11 += d * d;
			d = qb[k][2] - r0;
			a20 += d * d;
			d = qb[k][2] - r1;
			a21 += d * d;
			d = qb[k][3] - r0;
			a30 += d * d;
			d = qb[k][3] - r1;
			a31 += d * d;
		}
		*(knn_v4 *)&s->d2[0][b * 8] = a00;
		*(knn_v4 *)&s->d2[0][b * 8 + 4] = a01;
		*(knn_v4 *)&s->d2[1][b * 8] = a10;
		*(knn_v4 *)&s->d2[1][b * 8 + 4] = a11;
		*(knn_v4 *)&s->d2[2][b * 8] = a20;
		*(knn_v4 *)&s->d2[2][b * 8 + 4] = a21;
		*(knn_v4 *)&s->d2[3][b * 8] = a30;
		*(knn_v4 *)&s->d2[3][b * 8 + 4] = a31;
	}
}

/*
 * The KNN_K smallest of @d2 as sorted keys (squared-distance bits << 32 |
 * index: non-negative floats order as their bits, so the keys order by
 * distance, then index).  Insertion into a sorted list; most points are
 * rejected by one compare.
 */
static void knn_select(const float *d2, u64 *best)
{
	int r, j;

	for (j = 0; j < KNN_K; j++)
		best[j] = ~0ull;
	for (r = 0; r < KNN_NREF; r++) {
		u32 bits;
		u64 key;

		__builtin_memcpy(&bits, &d2[r], sizeof(bits));
		key = (u64)bits << 32 | (u32)r;

		if (key >= best[KNN_K - 1])
			continue;
		for (j = KNN_K - 1; j > 0 && best[j - 1] > key; j--)
			best[j] = best[j - 1];
		best[j] = key;
	}
}

/* The most frequent label among the neighbours; on a tie, the nearer's. */
static int knn_majority(const u8 *labels, const int *idx)
{
	int count[KNN_NLABELS] = { 0 };
	int j, best = -1, best_count = 0;

	for (j = 0; j < KNN_K; j++)
		count[labels[idx[j]]]++;
	for (j = 0; j < KNN_K; j++) {
		int l = labels[idx[j]];

		if (count[l] > best_count) {
			best = l;
			best_count = count[l];
		}
	}
	return best;
}

void knn_fpu_queries(const struct knn_cpu_refs *refs, const u8 *labels, const float *q,
		     int nq, struct knn_cpu_scratch *scratch, struct knn_out *out)
{
	u64 best[KNN_K];
	int i, j;

	knn_distances(refs, q, nq, scratch);
	for (i = 0; i < nq; i++) {
		knn_select(scratch->d2[i], best);
		for (j = 0; j < KNN_K; j++) {
			int r = (int)(u32)best[j];

			out[i].idx[j] = r;
			out[i].dist[j] = lake_sqrtf(scratch->d2[i][r]);
		}
		out[i].label = knn_majority(labels, out[i].idx);
	}
}
