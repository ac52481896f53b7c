// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Kleio's floating-point code for the CPU path: compiled with FPU flags
 * (SSE2, no FMA contraction) and called only inside FPU regions.  The same
 * file builds into the kernel module and the user programs, with the same
 * operations in the same order, so both give bit-identical results.
 *
 * The matrix work is z[s][j] += h[s][k] * W[k][j] with k in order, in
 * GCC vector extensions (SSE in the kernel): element-wise, so nothing is
 * reassociated.  A block always computes KLEIO_CPU_BLOCK rows; rows past
 * the block's samples hold zeros and are not reported.
 */
#include "lake_app.h"
#include "kleio_cpu.h"
#include "kleio_math.h"

void kleio_fpu_glorot(float *dst, size_t count, u64 *state, unsigned int fans)
{
	float scale = lake_sqrtf(6.0f / (float)fans) * 0x1p-23f;
	size_t i;

	for (i = 0; i < count; i++)
		dst[i] = (float)((s32)(lake_app_rand(state) >> 40) - (1 << 23)) * scale;
}

/* Rows of W per pass over the columns: a few pages, hot in the TLB. */
#define KLEIO_KC 16

typedef float kleio_v4 __attribute__((vector_size(16), aligned(4)));

_Static_assert(KLEIO_CPU_BLOCK == 4 && KLEIO_H % KLEIO_KC == 0,
	       "kleio_gemm_block() is written for blocks of 4 samples");

/*
 * z[s][j] += sum over k of h[s][k] * W[k][j], k in order, for all
 * KLEIO_CPU_BLOCK rows of a block, @cols columns (row stride of z: G).
 * Eight columns of all rows accumulate in registers while k runs, so W's
 * rows are read once per block and z is not reloaded per k.
 */
static void kleio_gemm_block(float (*z)[KLEIO_G], const float (*h)[KLEIO_H], const float *w,
			     int cols)
{
	int j, k, k0, s;

	for (k0 = 0; k0 < KLEIO_H; k0 += KLEIO_KC) {
		kleio_v4 hb[KLEIO_KC][KLEIO_CPU_BLOCK], zero = { 0 };

		/* zero + x broadcasts x (and is how sparse can read it) */
		for (k = 0; k < KLEIO_KC; k++)
			for (s = 0; s < KLEIO_CPU_BLOCK; s++)
				hb[k][s] = zero + h[s][k0 + k];
		for (j = 0; j + 8 <= cols; j += 8) {
			const float *wj = w + (size_t)k0 * cols + j;
			kleio_v4 a00 = *(const kleio_v4 *)&z[0][j], a01 = *(const kleio_v4 *)&z[0][j + 4];
			kleio_v4 a10 = *(const kleio_v4 *)&z[1][j], a11 = *(const kleio_v4 *)&z[1][j + 4];
			kleio_v4 a20 = *(const kleio_v4 *)&z[2][j], a21 = *(const kleio_v4 *)&z[2][j + 4];
			kleio_v4 a30 = *(const kleio_v4 *)&z[3][j], a31 = *(const kleio_v4 *)&z[3][j + 4];

			for (k = 0; k < KLEIO_KC; k++, wj += cols) {
				kleio_v4 w0 = *(const kleio_v4 *)wj, w1 = *(const kleio_v4 *)(wj + 4);

				a00 += hb[k][0] * w0;
				a01 += hb[k][0] * w1;
				a10 += hb[k][1] * w0;
				a11 += hb[k][1] * w1;
				a20 += hb[k][2] * w0;
				a21 += hb[k][2] * w1;
				a30 += hb[k][3] * w0;
				a31 += hb[k][3] * w1;
			}
			*(kleio_v4 *)&z[0][j] = a00;
			*(kleio_v4 *)&z[0][j + 4] = a01;
			*(kleio_v4 *)&z[1][j] = a10;
			*(kleio_v4 *)&z[1][j + 4] = a11;
			*(kleio_v4 *)&z[2][j] = a20;
			*(kleio_v4 *)&z[2][j + 4] = a21;
			*(kleio_v4 *)&z[3][j] = a30;
			*(kleio_v4 *)&z[3][j + 4] = a31;
		}
		for (; j < cols; j++)
			for (s = 0; s < KLEIO_CPU_BLOCK; s++)
				for (k = k0; k < k0 + KLEIO_KC; k++)
					z[s][j] += h[s][k] * w[(size_t)k * cols + j];
	}
}

/* The gate nonlinearities and the cell update, for one sample. */
static void kleio_cell(const float *restrict z, float *restrict c, float *restrict h)
{
	int j;

	for (j = 0; j < KLEIO_H; j++) {
		float i = lake_sigmoidf(z[j]);
		float f = lake_sigmoidf(z[KLEIO_H + j]);
		float g = kleio_tanhf(z[2 * KLEIO_H + j]);
		float o = lake_sigmoidf(z[3 * KLEIO_H + j]);
		float cn = f * c[j] + i * g;

		c[j] = cn;
		h[j] = o * kleio_tanhf(cn);
	}
}

void kleio_fpu_lstm1(const float *params, struct kleio_block *b, const s32 *cls, int nb, int t)
{
	const float *k1 = params + KLEIO_K1, *b1 = params + KLEIO_B1;
	int s, j;

	for (s = 0; s < KLEIO_CPU_BLOCK; s++) {
		u32 c = (u32)cls[s < nb ? s * KLEIO_T + t : t];
		const float *row = k1 + (size_t)c * KLEIO_G;

		/* A class out of 0..620 encodes as all zeros, as tf.one_hot does. */
		for (j = 0; j < KLEIO_G; j++)
			b->z[s][j] = (c < KLEIO_V ? row[j] : 0.0f) + b1[j];
	}
	if (t > 0)	/* h1 is zero before the first step */
		kleio_gemm_block(b->z, (const float (*)[KLEIO_H])b->h1, params + KLEIO_R1, KLEIO_G);
	for (s = 0; s < nb; s++)
		kleio_cell(b->z[s], b->c1[s], b->h1[s]);
}

void kleio_fpu_lstm2(const float *params, struct kleio_block *b, int nb, int t)
{
	const float *b2 = params + KLEIO_B2;
	int s, j;

	for (s = 0; s < KLEIO_CPU_BLOCK; s++)
		for (j = 0; j < KLEIO_G; j++)
			b->z[s][j] = b2[j];
	kleio_gemm_block(b->z, (const float (*)[KLEIO_H])b->h1, params + KLEIO_K2, KLEIO_G);
	if (t > 0)
		kleio_gemm_block(b->z, (const float (*)[KLEIO_H])b->h2, params + KLEIO_R2, KLEIO_G);
	for (s = 0; s < nb; s++)
		kleio_cell(b->z[s], b->c2[s], b->h2[s]);
}

void kleio_fpu_output(const float *params, struct kleio_block *b, int nb, struct kleio_out *out,
		      float *probs)
{
	const float *bd = params + KLEIO_BD;
	int s, v;

	for (s = 0; s < KLEIO_CPU_BLOCK; s++)
		for (v = 0; v < KLEIO_V; v++)
			b->z[s][v] = bd[v];
	kleio_gemm_block(b->z, (const float (*)[KLEIO_H])b->h2, params + KLEIO_KD, KLEIO_V);

	for (s = 0; s < nb; s++) {
		float *l = b->z[s], max = l[0], sum = 0.0f;
		int arg = 0;

		for (v = 1; v < KLEIO_V; v++) {
			if (l[v] > max) {
				max = l[v];
				arg = v;
			}
		}
		for (v = 0; v < KLEIO_V; v++) {
			l[v] = lake_expf(l[v] - max);
			sum += l[v];
		}
		out[s].cls = arg;
		out[s].prob = l[arg] / sum;
		if (probs)
			for (v = 0; v < KLEIO_V; v++)
				probs[(size_t)s * KLEIO_V + v] = l[v] / sum;
	}
}
