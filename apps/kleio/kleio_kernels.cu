// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// Kleio's GPU path: our own kernels, built by nvcc into a fatbin (sm_80,
// sm_90, compute_90 PTX) that the app embeds and loads with
// cuModuleLoadData.  extern "C" so the app finds them by name and lakeD
// learns their parameter layouts.
//
// One inference over n samples is:
//   kleio_wave_<BM>  x 7   the two LSTM layers as a wavefront: wave w runs
//                          layer 1 at step w and layer 2 at step w - 1 in one
//                          launch (blockIdx.z picks the layer), so there are
//                          7 dependent launches instead of 12
//   kleio_out_<DS>   x 1   dense + softmax + argmax
// Each wave is a tiled matrix product over the n samples (z = h W, shared-
// memory tiles, a TM x 4 register tile per thread) whose epilogue applies
// the gates: the gate columns are interleaved at upload (column 4u + g is
// gate g of unit u), so every thread holds the four gates of its units and
// updates c and h in registers.  Layer 1's one-hot input is a row gather
// that initialises the accumulators (with the bias folded in at upload);
// layer 2's input and recurrent products are one product with K = 512
// ([h1_t | h2_{t-1}] times the stacked kernels).
//
// The GPU computes the CPU path's floats bit for bit: every sum starts where
// the CPU's does and adds the same products in the same order (k ascending,
// a rounded product then a rounded sum: the kit builds with --fmad=false),
// the nonlinearities are the CPU's own (kleio_math.h), and each softmax sum
// runs in class order.  So the GPU never predicts another class than the
// CPU, however close two classes' probabilities are (random weights give
// gaps of 1e-6).  That costs separate multiplies and adds (twice the FMA
// count) and rules out TF32 tensor cores (a 10-bit mantissa).

#include "lake_app_kernels.cuh"
#include "kleio_model.h"
#include "kleio_math.h"

#define KLEIO_BN	64	// gate columns per block (16 units)
#define KLEIO_THREADS	256

// Device layouts made by kleio_prep from the Keras parameters.
//   wg1  [V+1][G] lstm/kernel + lstm/bias, columns interleaved; row V is the
//                 bias alone: the row of an input class outside 0..620, whose
//                 one-hot vector is all zeros (as tf.one_hot and the CPU)
//   u1   [H][G]   lstm/recurrent_kernel, interleaved
//   w2   [2H][G]  lstm_1/kernel over lstm_1/recurrent_kernel, interleaved
//   b2   [G]      lstm_1/bias, interleaved
// Interleaved column 4u + g holds Keras column g * H + u.
__device__ __forceinline__ int kleio_keras_col(int p)
{
	return (p & 3) * KLEIO_H + (p >> 2);
}

extern "C" __global__ void kleio_prep(const float *params, float *wg1, float *u1, float *w2,
				      float *b2)
{
	const float *k1 = params + KLEIO_K1, *r1 = params + KLEIO_R1, *b1 = params + KLEIO_B1;
	const float *k2 = params + KLEIO_K2, *r2 = params + KLEIO_R2, *bb2 = params + KLEIO_B2;
	int stride = gridDim.x * blockDim.x;

	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (KLEIO_V + 1) * KLEIO_G;
	     i += stride) {
		int row = i / KLEIO_G, j = kleio_keras_col(i % KLEIO_G);

		// The CPU adds the bias to the gathered row first too (0 + b = b).
		wg1[i] = (row < KLEIO_V ? k1[row * KLEIO_G + j] : 0.0f) + b1[j];
	}
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < KLEIO_H * KLEIO_G; i += stride) {
		int row = i / KLEIO_G, j = kleio_keras_col(i % KLEIO_G);

		u1[i] = r1[row * KLEIO_G + j];
		w2[i] = k2[row * KLEIO_G + j];
		w2[KLEIO_H * KLEIO_G + i] = r2[row * KLEIO_G + j];
	}
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < KLEIO_G; i += stride)
		b2[i] = bb2[kleio_keras_col(i)];
}

// One wave: job z = 0 or 1 of wave w (see the file comment).  BM samples x
// 64 columns per block, TM = BM / 16 samples x 4 columns per thread.
template <int BM>
__device__ __forceinline__ void kleio_wave(const float *__restrict__ wg1,
					   const float *__restrict__ u1,
					   const float *__restrict__ w2,
					   const float *__restrict__ b2, const int *__restrict__ cls,
					   float *h1, float *c1, float *h2, float *c2, int n, int wave)
{
	constexpr int TM = BM / 16;
	// K per tile: small tiles (small n) are latency-bound, so fewer, longer
	// steps; large ones keep 16 to keep their registers (occupancy).
	constexpr int BK = BM <= 32 ? 32 : 16;
	constexpr int AT = BM * BK / KLEIO_THREADS;		// A floats per thread per tile
	constexpr int BT = BK * KLEIO_BN / 4 / KLEIO_THREADS;	// B float4s per thread per tile
	__shared__ __align__(16) float as[BK][BM + 4];	// A tile, k-major; +4 staggers banks
	__shared__ __align__(16) float bs[BK][KLEIO_BN];

	const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
	const int n0 = blockIdx.x * KLEIO_BN, m0 = blockIdx.y * BM;
	const bool layer1 = wave < KLEIO_T && blockIdx.z == 0;
	const int t = layer1 ? wave : wave - 1;
	const size_t plane = (size_t)n * KLEIO_H;	// one h buffer

	// Sources of the product A (rows: samples, K columns) B (K x G).
	const float *a0, *a1 = nullptr, *b;
	float *cst, *hout;
	int kdim;

	if (layer1) {
		a0 = h1 + ((t - 1) & 1) * plane;
		b = u1;
		kdim = t > 0 ? KLEIO_H : 0;
		cst = c1;
		hout = h1 + (t & 1) * plane;
	} else {
		a0 = h1 + (t & 1) * plane;
		a1 = h2 + ((t - 1) & 1) * plane;
		b = w2;
		kdim = t > 0 ? 2 * KLEIO_H : KLEIO_H;
		cst = c2;
		hout = h2 + (t & 1) * plane;
	}

	// Accumulators start at the gathered row (layer 1) or the bias (layer 2).
	float acc[TM][4];
#pragma unroll
	for (int i = 0; i < TM; i++) {
		int row = m0 + ty * TM + i;
		float4 init = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

		if (row < n && layer1) {
			// A class outside 0..620: row V, the bias alone.
			unsigned int c = min((unsigned int)cls[row * KLEIO_T + t], (unsigned int)KLEIO_V);

			init = *(const float4 *)&wg1[(size_t)c * KLEIO_G + n0 + tx * 4];
		} else if (row < n) {
			init = *(const float4 *)&b2[n0 + tx * 4];
		}
		acc[i][0] = init.x;
		acc[i][1] = init.y;
		acc[i][2] = init.z;
		acc[i][3] = init.w;
	}

	// Tile loads: each thread moves AT floats of A (one row) and BT float4s
	// of B (rows brow + 16 j).
	const int arow = (tid * AT) / BK, acol = (tid * AT) % BK;
	const int brow = tid / 16, bcol = (tid % 16) * 4;
	float ar[AT];
	float4 br[BT];

	auto load = [&](int k0) {
		const float *src = k0 < KLEIO_H ? a0 : a1;
		int kk = (k0 & (KLEIO_H - 1)) + acol, row = m0 + arow;

#pragma unroll
		for (int i = 0; i < AT; i++)
			ar[i] = row < n ? src[(size_t)row * KLEIO_H + kk + i] : 0.0f;
#pragma unroll
		for (int j = 0; j < BT; j++)
			br[j] = *(const float4 *)&b[(size_t)(k0 + brow + 16 * j) * KLEIO_G + n0 + bcol];
	};
	auto store = [&]() {
#pragma unroll
		for (int i = 0; i < AT; i++)
			as[acol + i][arow] = ar[i];
#pragma unroll
		for (int j = 0; j < BT; j++)
			*(float4 *)&bs[brow + 16 * j][bcol] = br[j];
	};

	if (kdim > 0) {
		load(0);
		store();
		__syncthreads();
	}
	for (int k0 = 0; k0 < kdim; k0 += BK) {
		bool more = k0 + BK < kdim;

		if (more)
			load(k0 + BK);	// in flight while this tile is used
#pragma unroll
		for (int k = 0; k < BK; k++) {
			float4 bv = *(const float4 *)&bs[k][tx * 4];
			float av[TM];

			lake_app_load_floats(av, &as[k][ty * TM]);
#pragma unroll
			for (int i = 0; i < TM; i++) {
				acc[i][0] += av[i] * bv.x;
				acc[i][1] += av[i] * bv.y;
				acc[i][2] += av[i] * bv.z;
				acc[i][3] += av[i] * bv.w;
			}
		}
		__syncthreads();
		if (more) {
			store();
			__syncthreads();
		}
	}

	// Epilogue: the gates of unit u for this thread's samples.
	const int u = n0 / 4 + tx;
#pragma unroll
	for (int i = 0; i < TM; i++) {
		int row = m0 + ty * TM + i;

		if (row >= n)
			continue;
		size_t at = (size_t)row * KLEIO_H + u;
		float ig = lake_sigmoidf(acc[i][0]);
		float fg = lake_sigmoidf(acc[i][1]);
		float g = kleio_tanhf(acc[i][2]);
		float og = lake_sigmoidf(acc[i][3]);
		float c = t > 0 ? cst[at] : 0.0f;

		c = fg * c + ig * g;
		cst[at] = c;
		hout[at] = og * kleio_tanhf(c);
	}
}

#define KLEIO_WAVE(BM)                                                                         \
	extern "C" __global__ void __launch_bounds__(KLEIO_THREADS)                            \
	kleio_wave_##BM(const float *wg1, const float *u1, const float *w2, const float *b2,   \
			const int *cls, float *h1, float *c1, float *h2, float *c2, int n,     \
			int wave)                                                              \
	{                                                                                      \
		kleio_wave<BM>(wg1, u1, w2, b2, cls, h1, c1, h2, c2, n, wave);                \
	}
KLEIO_WAVE(64)
KLEIO_WAVE(32)
KLEIO_WAVE(16)

// Dense + softmax + argmax, DS samples per block: each thread computes
// three of the 621 logits for every sample, one warp then reduces a
// sample's row.  h2 is layer 2's last output [n][H].
#define KLEIO_VPAD	624

template <int DS>
__device__ __forceinline__ void kleio_output(const float *__restrict__ kd,
					  const float *__restrict__ bd,
					  const float *__restrict__ h2, int n, kleio_out *out,
					  float *probs)
{
	__shared__ float buf[DS * KLEIO_VPAD];	// h rows [DS][H], then logits [DS][VPAD]
	const int tid = threadIdx.x, s0 = blockIdx.x * DS;
	float acc[DS][3];

	for (int i = tid; i < DS * KLEIO_H; i += KLEIO_THREADS) {
		int s = i / KLEIO_H;

		buf[i] = s0 + s < n ? h2[(size_t)(s0 + s) * KLEIO_H + i % KLEIO_H] : 0.0f;
	}
#pragma unroll
	for (int j = 0; j < 3; j++) {
		int v = tid + j * KLEIO_THREADS;
		float bias = v < KLEIO_V ? bd[v] : 0.0f;

#pragma unroll
		for (int s = 0; s < DS; s++)
			acc[s][j] = bias;
	}
	__syncthreads();
	for (int k = 0; k < KLEIO_H; k++) {
		float w[3];

#pragma unroll
		for (int j = 0; j < 3; j++) {
			int v = tid + j * KLEIO_THREADS;

			w[j] = v < KLEIO_V ? kd[k * KLEIO_V + v] : 0.0f;
		}
#pragma unroll
		for (int s = 0; s < DS; s++) {
			float h = buf[s * KLEIO_H + k];

#pragma unroll
			for (int j = 0; j < 3; j++)
				acc[s][j] += h * w[j];
		}
	}
	__syncthreads();
#pragma unroll
	for (int j = 0; j < 3; j++) {
		int v = tid + j * KLEIO_THREADS;

		if (v < KLEIO_V)
#pragma unroll
			for (int s = 0; s < DS; s++)
				buf[s * KLEIO_VPAD + v] = acc[s][j];
	}
	__syncthreads();

	const int warp = tid >> 5, lane = tid & 31;
	for (int s = warp; s < DS; s += KLEIO_THREADS / 32) {
		float *l = buf + s * KLEIO_VPAD;
		float max = l[lane], sum = 0.0f;
		int arg = lane;

		// The first of equal maxima, as the CPU path.
		for (int v = lane + 32; v < KLEIO_V; v += 32)
			if (l[v] > max) {
				max = l[v];
				arg = v;
			}
#pragma unroll
		for (int off = 16; off > 0; off >>= 1) {
			float om = __shfl_xor_sync(0xffffffffu, max, off);
			int oa = __shfl_xor_sync(0xffffffffu, arg, off);

			if (om > max || (om == max && oa < arg)) {
				max = om;
				arg = oa;
			}
		}
		for (int v = lane; v < KLEIO_V; v += 32)
			l[v] = lake_expf(l[v] - max);
		__syncwarp();
		if (s0 + s < n && lane == 0) {
			// In class order, as the CPU adds them: 621 dependent adds.
			for (int v = 0; v < KLEIO_V; v++)
				sum += l[v];
			out[s0 + s].cls = arg;
			out[s0 + s].prob = l[arg] / sum;
			l[KLEIO_VPAD - 1] = sum;
		}
		__syncwarp();
		if (probs && s0 + s < n) {
			sum = l[KLEIO_VPAD - 1];
			for (int v = lane; v < KLEIO_V; v += 32)
				probs[(size_t)(s0 + s) * KLEIO_V + v] = l[v] / sum;
		}
	}
}

#define KLEIO_OUT(DS)                                                                          \
	extern "C" __global__ void __launch_bounds__(KLEIO_THREADS)                            \
	kleio_out_##DS(const float *kd, const float *bd, const float *h2, int n,              \
		       kleio_out *out, float *probs)                                           \
	{                                                                                      \
		kleio_output<DS>(kd, bd, h2, n, out, probs);                                      \
	}
KLEIO_OUT(16)
KLEIO_OUT(4)
