// SPDX-License-Identifier: GPL-2.0
// linnos.cu - LinnOS's GPU path: the whole network in one launch ("fused"),
// or for +1/+2 at batches of up to 4 rows one launch per extra layer spread
// over 64 blocks ("wide", at the end of this file).
//
// A block of 256 threads (one per hidden neuron) computes R consecutive
// rows of the batch (R = 1, 2, 4, 8: linnos_rR); for +1/+2 at small
// batches, 256 x S threads split each extra layer's sums (linnos_r1s4,
// linnos_r2s2).  Arithmetic is exactly
// linnos.c's: unsigned 64-bit products and sums (int64 with wrap-around),
// ReLU on the signed value.  Sums of the output layer are reduced in a
// different order than the CPU's (and the extra layers' in S pieces), which
// changes nothing: addition modulo
// 2^64 is associative and commutative, so the scores are bit-exact.
//
// Weights (uploaded once): w0t[i][j] = weight_0_T[j][i] (31 x 256),
// wmt[l][k][j] = weight_M_(l+1)_T[j][k] (extra x 256 x 256), b0[256],
// bm[extra][256], w1[2][256], b1[2].  in: batch x 31 bytes; out: batch x 2
// int64.  Either may be device memory or mapped host memory.  done, blocks,
// seq: the completion the host may poll (lake_app_signal()).
#include "lake_app_kernels.cuh"
#include "linnos.h"

typedef unsigned long long u64;

__device__ __forceinline__ u64 linnos_relu(u64 v)
{
	return (long long)v < 0 ? 0 : v;
}

// The output layer, 256 -> 2, of R rows of @h (shared memory): in threads
// 0..255 where @active (neuron t), each score reduced over their 8 warps;
// rows < @nrows of @out written.  Every thread of the block calls it.
template <int R>
__device__ __forceinline__ void linnos_output(const u64 (*h)[LINNOS_HIDDEN], bool active,
					      unsigned int nrows, const u64 *w1, const u64 *b1,
					      long long *out)
{
	__shared__ u64 part[R][LINNOS_OUTPUTS][LINNOS_THREADS / 32];
	const unsigned int t = threadIdx.x, lane = t & 31, warp = t >> 5;

	if (active) {
#pragma unroll
		for (int o = 0; o < LINNOS_OUTPUTS; o++) {
			u64 w = w1[o * LINNOS_HIDDEN + t];
#pragma unroll
			for (int r = 0; r < R; r++) {
				u64 v = w * h[r][t];

				for (int off = 16; off; off >>= 1)
					v += __shfl_down_sync(0xffffffffu, v, off);
				if (!lane)
					part[r][o][warp] = v;
			}
		}
	}
	__syncthreads();
	if (t < nrows * LINNOS_OUTPUTS) {
		unsigned int r = t / LINNOS_OUTPUTS, o = t % LINNOS_OUTPUTS;
		u64 s = b1[o];

		for (int w = 0; w < LINNOS_THREADS / 32; w++)
			s += part[r][o][w];
		out[(size_t)r * LINNOS_OUTPUTS + o] = (long long)s;
	}
}

// R rows per block; the extra layers' sums split over S groups of 256
// threads (thread t: neuron j = t % 256, group q = t / 256, which sums
// k in [q * 256 / S, (q + 1) * 256 / S)); group 0 adds the S partial sums
// in order.  S > 1 shortens the dependent chain of a thread at small
// batches, where the block's latency is the inference's.
template <int R, int S>
__device__ __forceinline__ void linnos_rows(const unsigned char *in, long long *out,
					    unsigned int batch, unsigned int extra,
					    const u64 *w0t, const u64 *b0, const u64 *wmt,
					    const u64 *bm, const u64 *w1, const u64 *b1)
{
	__shared__ u64 h[2][R][LINNOS_HIDDEN];
	__shared__ u64 psum[S > 1 ? S : 1][R][LINNOS_HIDDEN];
	__shared__ unsigned char x[R][LINNOS_FEATURES + 1];
	const unsigned int t = threadIdx.x, j = t % LINNOS_HIDDEN, q = t / LINNOS_HIDDEN;
	const unsigned int row0 = blockIdx.x * R;
	const unsigned int nrows = min((unsigned int)R, batch - row0);
	u64 acc[R];
	int cur = 0;

	// The block's input rows (rows past the batch read as zeros).
	for (unsigned int i = t; i < R * LINNOS_FEATURES; i += LINNOS_THREADS * S) {
		unsigned int r = i / LINNOS_FEATURES, f = i % LINNOS_FEATURES;

		x[r][f] = r < nrows ? in[(size_t)(row0 + r) * LINNOS_FEATURES + f] : 0;
	}
	__syncthreads();

	// Layer 0: 31 -> 256, ReLU (group 0).
	if (q == 0) {
#pragma unroll
		for (int r = 0; r < R; r++)
			acc[r] = b0[j];
		for (int i = 0; i < LINNOS_FEATURES; i++) {
			u64 w = w0t[i * LINNOS_HIDDEN + j];
#pragma unroll
			for (int r = 0; r < R; r++)
				acc[r] += w * x[r][i];
		}
#pragma unroll
		for (int r = 0; r < R; r++)
			h[0][r][j] = linnos_relu(acc[r]);
	}

	// The extra layers of +1 / +2: 256 -> 256, ReLU.
	for (unsigned int l = 0; l < extra; l++) {
		const u64 *w = wmt + (size_t)l * LINNOS_HIDDEN * LINNOS_HIDDEN;
		const int k0 = q * (LINNOS_HIDDEN / S), k1 = k0 + LINNOS_HIDDEN / S;

		__syncthreads();
#pragma unroll
		for (int r = 0; r < R; r++)
			acc[r] = q == 0 ? bm[l * LINNOS_HIDDEN + j] : 0;
		for (int k = k0; k < k1; k++) {
			u64 wk = w[k * LINNOS_HIDDEN + j];
#pragma unroll
			for (int r = 0; r < R; r++)
				acc[r] += wk * h[cur][r][k];
		}
		if (S > 1) {
#pragma unroll
			for (int r = 0; r < R; r++)
				psum[q][r][j] = acc[r];
			__syncthreads();
			if (q == 0)
				for (int p = 1; p < S; p++)
#pragma unroll
					for (int r = 0; r < R; r++)
						acc[r] += psum[p][r][j];
		}
		if (q == 0)
#pragma unroll
			for (int r = 0; r < R; r++)
				h[cur ^ 1][r][j] = linnos_relu(acc[r]);
		cur ^= 1;
	}
	__syncthreads();

	// Output layer: 256 -> 2, in group 0.
	linnos_output<R>(h[cur], q == 0, nrows, w1, b1, out + (size_t)row0 * LINNOS_OUTPUTS);
}

// linnos_rR: R rows per block, 256 threads; linnos_rRsS: the same with the
// extra layers split over S groups, 256 x S threads (+1/+2 at small batches).
#define LINNOS_KERNEL(name, R, S)							\
	extern "C" __global__ void __launch_bounds__(LINNOS_THREADS * S)		\
	name(const unsigned char *in, long long *out, unsigned int batch,		\
	     unsigned int extra, const u64 *w0t, const u64 *b0, const u64 *wmt,		\
	     const u64 *bm, const u64 *w1, const u64 *b1, unsigned int *done,		\
	     unsigned int *blocks, unsigned int seq)					\
	{										\
		linnos_rows<R, S>(in, out, batch, extra, w0t, b0, wmt, bm, w1, b1);	\
		lake_app_signal(done, blocks, seq);					\
	}

LINNOS_KERNEL(linnos_r1, 1, 1)
LINNOS_KERNEL(linnos_r2, 2, 1)
LINNOS_KERNEL(linnos_r4, 4, 1)
LINNOS_KERNEL(linnos_r8, 8, 1)
LINNOS_KERNEL(linnos_r1s4, 1, 4)
LINNOS_KERNEL(linnos_r2s2, 2, 2)

// The "wide" variant of +1/+2 for batches of at most LINNOS_WIDE_MAX_BATCH
// rows, where one block per row (above) is one multiprocessor reading each
// 256 x 256 layer (512 KiB) alone: an extra layer's neurons are spread over
// LINNOS_WIDE_BLOCKS blocks of LINNOS_WIDE_NEURONS neurons.  In a block of
// 256 threads, warp w sums k in [32 w, 32 w + 32) and lane l neuron
// j0 + l % 4 over k = 32 w + l / 4 + 8 i (four lanes read one 32-byte
// sector of a weight row); shuffles then shared memory add the partial sums.
// linnos_wide_first: every block computes layer 0 (31 -> 256, small) for
// itself, then its neurons of the first extra layer; linnos_wide_next:
// its neurons of the second extra layer from the first's outputs (the
// previous launch's, in device memory).  With @last, the last block to
// finish (lake_app_last_block(), @count) computes the output layer from the
// whole layer's outputs (read with volatile loads: not through L1) and
// signals the completion.  @hout: the layer's outputs, R x 256 u64.  The
// sums are the same sums modulo 2^64 in another order: bit-exact.
template <int R>
__device__ __forceinline__ void linnos_wide(const unsigned char *in, const u64 *hin, u64 *hout,
					    long long *out, unsigned int batch, unsigned int l,
					    bool last, const u64 *w0t, const u64 *b0,
					    const u64 *wmt, const u64 *bm, const u64 *w1,
					    const u64 *b1, unsigned int *count, unsigned int *done,
					    unsigned int seq)
{
	__shared__ u64 h[R][LINNOS_HIDDEN];
	__shared__ unsigned char x[R][LINNOS_FEATURES + 1];
	__shared__ u64 part[LINNOS_THREADS / 32][R][LINNOS_WIDE_NEURONS];
	const unsigned int t = threadIdx.x, lane = t & 31, warp = t >> 5;
	const unsigned int nrows = min((unsigned int)R, batch);
	const unsigned int j0 = blockIdx.x * LINNOS_WIDE_NEURONS;

	// This layer's inputs, all 256 per row (rows past the batch: zeros).
	if (!hin) {
		for (unsigned int i = t; i < R * LINNOS_FEATURES; i += LINNOS_THREADS) {
			unsigned int r = i / LINNOS_FEATURES, f = i % LINNOS_FEATURES;

			x[r][f] = r < nrows ? in[(size_t)r * LINNOS_FEATURES + f] : 0;
		}
		__syncthreads();
		u64 acc[R];

#pragma unroll
		for (int r = 0; r < R; r++)
			acc[r] = b0[t];
		for (int i = 0; i < LINNOS_FEATURES; i++) {
			u64 w = w0t[i * LINNOS_HIDDEN + t];
#pragma unroll
			for (int r = 0; r < R; r++)
				acc[r] += w * x[r][i];
		}
#pragma unroll
		for (int r = 0; r < R; r++)
			h[r][t] = linnos_relu(acc[r]);
	} else {
#pragma unroll
		for (int r = 0; r < R; r++)
			h[r][t] = hin[r * LINNOS_HIDDEN + t];
	}
	__syncthreads();

	// This block's neurons of extra layer l.
	{
		const u64 *w = wmt + (size_t)l * LINNOS_HIDDEN * LINNOS_HIDDEN;
		const unsigned int jj = lane % LINNOS_WIDE_NEURONS, kk = lane / LINNOS_WIDE_NEURONS;
		u64 acc[R];

#pragma unroll
		for (int r = 0; r < R; r++)
			acc[r] = 0;
#pragma unroll
		for (int i = 0; i < 32 / (32 / LINNOS_WIDE_NEURONS); i++) {
			unsigned int k = warp * 32 + kk + i * (32 / LINNOS_WIDE_NEURONS);
			u64 wk = w[k * LINNOS_HIDDEN + j0 + jj];
#pragma unroll
			for (int r = 0; r < R; r++)
				acc[r] += wk * h[r][k];
		}
#pragma unroll
		for (int r = 0; r < R; r++) {
			for (int off = LINNOS_WIDE_NEURONS; off < 32; off <<= 1)
				acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], off);
			if (lane < LINNOS_WIDE_NEURONS)
				part[warp][r][lane] = acc[r];
		}
		__syncthreads();
		if (t < R * LINNOS_WIDE_NEURONS) {
			unsigned int r = t / LINNOS_WIDE_NEURONS, n = t % LINNOS_WIDE_NEURONS;
			u64 sum = bm[l * LINNOS_HIDDEN + j0 + n];

			for (int q = 0; q < LINNOS_THREADS / 32; q++)
				sum += part[q][r][n];
			hout[r * LINNOS_HIDDEN + j0 + n] = linnos_relu(sum);
		}
	}
	if (!last || !lake_app_last_block(count, gridDim.x))
		return;

	// The last block: the output layer, 256 -> 2, from every block's outputs.
#pragma unroll
	for (int r = 0; r < R; r++)
		h[r][t] = ((volatile const u64 *)hout)[r * LINNOS_HIDDEN + t];
	__syncthreads();
	linnos_output<R>(h, true, nrows, w1, b1, out);
	lake_app_signal_block(done, seq);
}

// linnos_wide_first_rR / linnos_wide_next_rR: R rows (batch <= R), a grid
// of LINNOS_WIDE_BLOCKS blocks of 256 threads.
#define LINNOS_WIDE_KERNELS(R)								\
	extern "C" __global__ void __launch_bounds__(LINNOS_THREADS)			\
	linnos_wide_first_r##R(const unsigned char *in, u64 *hout, long long *out,	\
			       unsigned int batch, unsigned int last, const u64 *w0t,	\
			       const u64 *b0, const u64 *wmt, const u64 *bm,		\
			       const u64 *w1, const u64 *b1, unsigned int *count,	\
			       unsigned int *done, unsigned int seq)			\
	{										\
		linnos_wide<R>(in, NULL, hout, out, batch, 0, last, w0t, b0, wmt, bm,	\
			       w1, b1, count, done, seq);				\
	}										\
	extern "C" __global__ void __launch_bounds__(LINNOS_THREADS)			\
	linnos_wide_next_r##R(const u64 *hin, u64 *hout, long long *out,		\
			      unsigned int batch, const u64 *wmt, const u64 *bm,	\
			      const u64 *w1, const u64 *b1, unsigned int *count,	\
			      unsigned int *done, unsigned int seq)			\
	{										\
		linnos_wide<R>(NULL, hin, hout, out, batch, 1, true, NULL, NULL, wmt,	\
			       bm, w1, b1, count, done, seq);				\
	}

LINNOS_WIDE_KERNELS(1)
LINNOS_WIDE_KERNELS(2)
LINNOS_WIDE_KERNELS(4)
