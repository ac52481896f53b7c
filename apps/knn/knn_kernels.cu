// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// KNN's GPU path: our own kernels, built by nvcc into a fatbin (sm_80,
// sm_90, compute_90 PTX) that the app embeds and loads with
// cuModuleLoadData.  One batch of queries is two launches:
//
//   knn_dist_<BM>   squared distances of BM queries x 64 reference points
//                   per block, in shared-memory tiles, into d2[nq][4096];
//                   each pair summed over k in order with explicitly
//                   rounded operations (no fused multiply-add), exactly as
//                   the CPU and numpy compute it (knn_model.h)
//   knn_topk_<TPQ>  per query, TPQ threads: each sorts its share of the
//                   4096 keys (distance bits << 32 | index) in chunks of 16
//                   with a bitonic network in registers, merges keeping
//                   the 16 smallest, then the threads' lists are merged by
//                   warp shuffles (and shared memory across warps); the
//                   16 winners, their distances and the majority label
//                   are written out
//
// Everything is allocated once by the app (d2 for KNN_QMAX queries).

#include "lake_app_kernels.cuh"
#include "lake_math.h"
#include "knn_model.h"

#define KNN_BK		16	// features per shared-memory tile
#define KNN_BN		64	// reference points per block
#define KNN_THREADS	256

template <int BM>
__device__ __forceinline__ void knn_dist(const float *__restrict__ q,
					 const float *__restrict__ refs, float *d2, int nq)
{
	constexpr int TM = BM / 16;
	__shared__ __align__(16) float qs[KNN_BK][BM + 4];
	__shared__ __align__(16) float rs[KNN_BK][KNN_BN + 4];

	const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
	const int r0 = blockIdx.x * KNN_BN, m0 = blockIdx.y * BM;
	const int qrow = (tid * TM) / KNN_BK, qcol = (tid * TM) % KNN_BK;
	const int rrow = tid / 4, rcol = (tid % 4) * 4;
	float acc[TM][4] = {};

	for (int k0 = 0; k0 < KNN_DIM; k0 += KNN_BK) {
		int row = m0 + qrow;

#pragma unroll
		for (int i = 0; i < TM; i++)
			qs[qcol + i][qrow] = row < nq ? q[(size_t)row * KNN_DIM + k0 + qcol + i] : 0.0f;
		float4 rv = *(const float4 *)&refs[(size_t)(r0 + rrow) * KNN_DIM + k0 + rcol];

		rs[rcol][rrow] = rv.x;
		rs[rcol + 1][rrow] = rv.y;
		rs[rcol + 2][rrow] = rv.z;
		rs[rcol + 3][rrow] = rv.w;
		__syncthreads();
#pragma unroll
		for (int k = 0; k < KNN_BK; k++) {
			float4 rk = *(const float4 *)&rs[k][tx * 4];
			float r[4] = { rk.x, rk.y, rk.z, rk.w };

			float qk[TM];	// a broadcast within half-warps

			lake_app_load_floats(qk, &qs[k][ty * TM]);
#pragma unroll
			for (int i = 0; i < TM; i++) {
				float qv = qk[i];

#pragma unroll
				for (int j = 0; j < 4; j++) {
					float d = __fsub_rn(qv, r[j]);

					acc[i][j] = __fadd_rn(acc[i][j], __fmul_rn(d, d));
				}
			}
		}
		__syncthreads();
	}
#pragma unroll
	for (int i = 0; i < TM; i++) {
		int row = m0 + ty * TM + i;

		if (row < nq)
			*(float4 *)&d2[(size_t)row * KNN_NREF + r0 + tx * 4] =
				make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
	}
}

#define KNN_DIST(BM)                                                                           \
	extern "C" __global__ void __launch_bounds__(KNN_THREADS)                              \
	knn_dist_##BM(const float *q, const float *refs, float *d2, int nq)                    \
	{                                                                                      \
		knn_dist<BM>(q, refs, d2, nq);                                                 \
	}
KNN_DIST(64)
KNN_DIST(32)
KNN_DIST(16)

typedef unsigned long long knn_key;

__device__ __forceinline__ void knn_ce(knn_key &a, knn_key &b, bool up)
{
	knn_key lo = a < b ? a : b, hi = a < b ? b : a;

	a = up ? lo : hi;
	b = up ? hi : lo;
}

// Sorts 16 keys ascending (a bitonic network: static indices, registers).
__device__ __forceinline__ void knn_sort16(knn_key (&a)[KNN_K])
{
#pragma unroll
	for (int k = 2; k <= KNN_K; k <<= 1)
#pragma unroll
		for (int j = k >> 1; j > 0; j >>= 1)
#pragma unroll
			for (int i = 0; i < KNN_K; i++) {
				int l = i ^ j;

				if (l > i)
					knn_ce(a[i], a[l], (i & k) == 0);
			}
}

// a = the 16 smallest of a and b (both ascending), ascending: min(a[i],
// b[15 - i]) is a bitonic sequence holding them; a bitonic merge sorts it.
__device__ __forceinline__ void knn_merge16(knn_key (&a)[KNN_K], const knn_key (&b)[KNN_K])
{
#pragma unroll
	for (int i = 0; i < KNN_K; i++)
		a[i] = a[i] < b[KNN_K - 1 - i] ? a[i] : b[KNN_K - 1 - i];
#pragma unroll
	for (int j = KNN_K / 2; j > 0; j >>= 1)
#pragma unroll
		for (int i = 0; i < KNN_K; i++) {
			int l = i ^ j;

			if (l > i)
				knn_ce(a[i], a[l], true);
		}
}

// Merges the lists of lanes lane ^ 1, ^ 2, ... up to @width (a power of
// two <= 32): afterwards every lane of each group of @width holds its
// group's 16 smallest.
__device__ __forceinline__ void knn_merge_lanes(knn_key (&a)[KNN_K], int width)
{
	for (int off = 1; off < width; off <<= 1) {
		knn_key b[KNN_K];

#pragma unroll
		for (int i = 0; i < KNN_K; i++)
			b[i] = __shfl_xor_sync(0xffffffffu, a[i], off);
		knn_merge16(a, b);
	}
}

// Chunk @c of a thread's keys: points (c * 16 + i) * @tpq + @part, coalesced
// over the threads of a query.
__device__ __forceinline__ void knn_load16(knn_key (&a)[KNN_K], const unsigned int *bits, int c,
					   int tpq, int part)
{
#pragma unroll
	for (int i = 0; i < KNN_K; i++) {
		unsigned int r = (c * KNN_K + i) * tpq + part;

		a[i] = (knn_key)bits[r] << 32 | r;
	}
}

template <int TPQ>
__device__ __forceinline__ void knn_topk(const float *__restrict__ d2,
					 const unsigned char *__restrict__ labels, int nq,
					 knn_out *out)
{
	constexpr int QPB = KNN_THREADS / TPQ;		// queries per block
	constexpr int WPQ = TPQ / 32 > 0 ? TPQ / 32 : 1;	// warps per query
	constexpr int CHUNKS = KNN_NREF / (TPQ * KNN_K);	// chunks of 16 per thread
	__shared__ knn_key lists[KNN_THREADS / 32][KNN_K];

	const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
	const int qi = tid / TPQ, part = tid % TPQ;
	const int query = blockIdx.x * QPB + qi;
	// Rows past the batch read row 0 and are not written: no branch around
	// the shuffles, which need every lane.
	const unsigned int *bits =
		(const unsigned int *)d2 + (size_t)(query < nq ? query : 0) * KNN_NREF;
	knn_key a[KNN_K], b[KNN_K];

	knn_load16(a, bits, 0, TPQ, part);
	knn_sort16(a);
#pragma unroll
	for (int c = 1; c < CHUNKS; c++) {
		knn_load16(b, bits, c, TPQ, part);
		knn_sort16(b);
		knn_merge16(a, b);
	}
	knn_merge_lanes(a, TPQ < 32 ? TPQ : 32);
	if (WPQ > 1) {
		// One list per warp; the query's first warp merges them.
		if (lane == 0)
#pragma unroll
			for (int i = 0; i < KNN_K; i++)
				lists[warp][i] = a[i];
		__syncthreads();
		if (warp % WPQ != 0)
			return;
#pragma unroll
		for (int i = 0; i < KNN_K; i++)
			a[i] = lane < WPQ ? lists[warp + lane][i] : ~0ull;
		knn_merge_lanes(a, WPQ);
	}
	if (part != 0 || query >= nq)
		return;

	int count[KNN_NLABELS] = {}, best = -1, best_count = 0;
#pragma unroll
	for (int i = 0; i < KNN_K; i++) {
		unsigned int r = (unsigned int)a[i];

		out[query].idx[i] = r;
		out[query].dist[i] = lake_sqrtf(__uint_as_float((unsigned int)(a[i] >> 32)));
		count[labels[r]]++;
	}
	// The most frequent label; on a tie, the nearer point's (as the CPU).
#pragma unroll
	for (int i = 0; i < KNN_K; i++) {
		int l = labels[(unsigned int)a[i]];

		if (count[l] > best_count) {
			best = l;
			best_count = count[l];
		}
	}
	out[query].label = best;
}

#define KNN_TOPK(TPQ)                                                                          \
	extern "C" __global__ void __launch_bounds__(KNN_THREADS)                              \
	knn_topk_##TPQ(const float *d2, const unsigned char *labels, int nq, knn_out *out)    \
	{                                                                                      \
		knn_topk<TPQ>(d2, labels, nq, out);                                            \
	}
KNN_TOPK(256)
KNN_TOPK(128)
KNN_TOPK(64)
KNN_TOPK(32)
