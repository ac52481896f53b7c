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

/* A little-endian u32 of a file (LAKE runs on little-endian machines). */
static u32 kleio_le32(const unsigned char *p)
{
	u32 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

int kleio_parse_weights(const void *file, size_t len, float *params, const char **why)
{
	static const u32 sizes[KLEIO_NARRAYS] = {
		KLEIO_V * KLEIO_G, KLEIO_H * KLEIO_G, KLEIO_G,
		KLEIO_H * KLEIO_G, KLEIO_H * KLEIO_G, KLEIO_G,
		KLEIO_H * KLEIO_V, KLEIO_V,
	};
	const unsigned char *p = file;
	size_t i;
	int a;

	if (len != KLEIO_FILE_SIZE) {
		*why = "wrong size: a Kleio weights file is 6,335,988 bytes";
		return -EINVAL;
	}
	if (memcmp(p, KLEIO_FILE_MAGIC, 8)) {
		*why = "not a Kleio weights file (magic KLEIOW01)";
		return -EINVAL;
	}
	if (kleio_le32(p + 8) != KLEIO_FILE_HEADER || kleio_le32(p + 12) != KLEIO_T ||
	    kleio_le32(p + 16) != KLEIO_V || kleio_le32(p + 20) != KLEIO_H ||
	    kleio_le32(p + 24) != KLEIO_NPARAMS || kleio_le32(p + 28) != 0) {
		*why = "wrong model shape (expected 6 x 621 -> LSTM 256 -> LSTM 256 -> 621)";
		return -EINVAL;
	}
	for (a = 0; a < KLEIO_NARRAYS; a++) {
		if (kleio_le32(p + 32 + 4 * a) != sizes[a]) {
			*why = "wrong array sizes in the header";
			return -EINVAL;
		}
	}
	p += KLEIO_FILE_HEADER;
	for (i = 0; i < KLEIO_NPARAMS; i++) {
		if ((kleio_le32(p + 4 * i) & 0x7f800000u) == 0x7f800000u) {
			*why = "a parameter is infinite or NaN";
			return -EINVAL;
		}
	}
	/* Little endian on disk and in memory (x86, arm64 as LAKE runs them). */
	memcpy(params, p, 4 * (size_t)KLEIO_NPARAMS);
	return 0;
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
