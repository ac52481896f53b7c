// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Kleio's integer-only code (no FPU flags): inputs, the weights file, and
 * the CPU path's driver that runs kleio_fpu_*() in short FPU regions.
 */
#include "lake_app.h"
#include "kleio_io.h"

/* The original benchmark's 26 page classes. */
const s32 kleio_values[KLEIO_NVALUES] = {
	60, 500, 560, 60, 320, 620, 440, 180, 60, 620, 560, 240, 60,
	360, 620, 380, 180, 120, 620, 620, 100, 60, 420, 620, 340, 140,
};

void kleio_inputs(s32 *cls, int n)
{
	int s, t;

	for (s = 0; s < n; s++)
		for (t = 0; t < KLEIO_T; t++)
			cls[s * KLEIO_T + t] = kleio_values[s % KLEIO_NWINDOWS + t];
}

int kleio_parse_weights(const void *file, size_t len, float *params, const char **why)
{
	static const u32 header[] = {
		KLEIO_FILE_HEADER, KLEIO_T, KLEIO_V, KLEIO_H, KLEIO_NPARAMS, 0,
		KLEIO_V * KLEIO_G, KLEIO_H * KLEIO_G, KLEIO_G,	/* each array's floats */
		KLEIO_H * KLEIO_G, KLEIO_H * KLEIO_G, KLEIO_G,
		KLEIO_H * KLEIO_V, KLEIO_V,
	};
	int err;

	err = lake_app_check_binary(file, len, KLEIO_FILE_SIZE, KLEIO_FILE_MAGIC, header,
				    ARRAY_SIZE(header), KLEIO_FILE_HEADER, KLEIO_NPARAMS, why);
	if (!err)	/* little endian on disk and in memory */
		memcpy(params, (const u8 *)file + KLEIO_FILE_HEADER, 4 * (size_t)KLEIO_NPARAMS);
	return err;
}

void kleio_default_weights(float *params, u64 seed)
{
	static const struct {
		unsigned int offset, rows, cols;
	} arrays[KLEIO_NARRAYS] = {
		{ KLEIO_K1, KLEIO_V, KLEIO_G }, { KLEIO_R1, KLEIO_H, KLEIO_G }, { KLEIO_B1, 0, KLEIO_G },
		{ KLEIO_K2, KLEIO_H, KLEIO_G }, { KLEIO_R2, KLEIO_H, KLEIO_G }, { KLEIO_B2, 0, KLEIO_G },
		{ KLEIO_KD, KLEIO_H, KLEIO_V }, { KLEIO_BD, 0, KLEIO_V },
	};
	const u32 one = 0x3f800000;	/* 1.0f, written as bits: no FPU needed */
	unsigned int a, j;
	size_t i, n;

	for (a = 0; a < KLEIO_NARRAYS; a++) {
		float *dst = params + arrays[a].offset;
		u64 state = seed ^ a;

		if (!arrays[a].rows) {	/* a bias */
			memset(dst, 0, arrays[a].cols * sizeof(float));
			if (arrays[a].cols == KLEIO_G)
				for (j = KLEIO_H; j < 2 * KLEIO_H; j++)
					memcpy(&dst[j], &one, sizeof(one));
			continue;
		}
		state = lake_app_rand(&state);
		n = (size_t)arrays[a].rows * arrays[a].cols;
		for (i = 0; i < n; i += KLEIO_INIT_CHUNK) {
			lake_app_fpu_begin();
			kleio_fpu_glorot(dst + i, min(n - i, (size_t)KLEIO_INIT_CHUNK), &state,
					 arrays[a].rows + arrays[a].cols);
			lake_app_fpu_end();
			lake_app_yield();
		}
	}
}

void kleio_cpu_predict(const float *params, struct kleio_block *blk, const s32 *cls, int n,
		       struct kleio_out *out, float *probs)
{
	int s0, t;

	for (s0 = 0; s0 < n; s0 += KLEIO_CPU_BLOCK) {
		int nb = n - s0 < KLEIO_CPU_BLOCK ? n - s0 : KLEIO_CPU_BLOCK;
		const s32 *bcls = cls + s0 * KLEIO_T;

		memset(blk, 0, sizeof(*blk));	/* h = c = 0 (all-zero bits are 0.0f) */
		for (t = 0; t < KLEIO_T; t++) {
			lake_app_fpu_begin();
			kleio_fpu_lstm1(params, blk, bcls, nb, t);
			lake_app_fpu_end();
			lake_app_yield();
			lake_app_fpu_begin();
			kleio_fpu_lstm2(params, blk, nb, t);
			lake_app_fpu_end();
			lake_app_yield();
		}
		lake_app_fpu_begin();
		kleio_fpu_output(params, blk, nb, out + s0,
				 probs ? probs + (size_t)s0 * KLEIO_V : NULL);
		lake_app_fpu_end();
		lake_app_yield();
	}
}
