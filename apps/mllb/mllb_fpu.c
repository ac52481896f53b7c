// SPDX-License-Identifier: GPL-2.0
/*
 * mllb_fpu.c - MLLB's floating-point code: the CPU path, its inputs, the
 * comparison with the GPU and the formatting of outputs.  An FPU file:
 * built with the kit's FPU flags, run only inside the kit's FPU regions
 * (never sleeping or allocating).  The network itself is mllb_row.h's,
 * which mllb.cu runs too.
 */
#include "lake_app_fpu.h"
#include "mllb.h"
#include "mllb_row.h"
#include "mllb_fpu.h"

void mllb_cpu_rows(struct lake_app *a, const void *in, void *out, unsigned int r0,
		   unsigned int r1, unsigned int batch)
{
	const struct mllb_weights *w = lake_app_state(a);
	const float *x = in;
	struct mllb_out *o = out;
	unsigned int r;

	for (r = r0; r < r1; r++) {
		float y = mllb_row(w, x + (size_t)r * MLLB_FEATURES);

		o[r].score = y;
		o[r].cls = y > 0.5f;
	}
}

/* The paper's input: 0.1f, 0.2f, 0.3f, -0.1f cycled over the flattened rows. */
void mllb_fixed_input(struct lake_app *a, void *in, unsigned int batch)
{
	static const float pattern[4] = { 0.1f, 0.2f, 0.3f, -0.1f };
	float *x = in;
	size_t i, n = (size_t)batch * MLLB_FEATURES;

	for (i = 0; i < n; i++)
		x[i] = pattern[i % 4];
}

/* Features uniform in [-2, 2), multiples of 2^-22 (exact in float). */
void mllb_random_input(struct lake_app *a, void *in, unsigned int batch, u64 *seed)
{
	float *x = in;
	size_t i, n = (size_t)batch * MLLB_FEATURES;

	for (i = 0; i < n; i++)
		x[i] = (float)(s32)(lake_app_rand(seed) >> 40) * (1.0f / 4194304.0f) - 2.0f;
}

/* Tolerance: 1e-5 of max(1, |score|); the class must be the same. */
void mllb_compare(struct lake_app *a, const void *cpu, const void *gpu, unsigned int batch,
		  struct lake_app_cmp *cmp)
{
	const struct mllb_out *c = cpu, *g = gpu;
	unsigned int r;

	for (r = 0; r < batch; r++) {
		cmp->beyond_tolerance += !lake_app_cmp_float(cmp, c[r].score, g[r].score,
							     MLLB_TOLERANCE);
		cmp->class_differs += c[r].cls != g[r].cls;
	}
}

int mllb_format_row(struct lake_app *a, const void *out, unsigned int r, char *buf, size_t len)
{
	const struct mllb_out *o = out;
	int n = lake_app_fmt_float(buf, len, o[r].score, 6);

	return n + snprintf(buf + n, len - n, " class %d", o[r].cls);
}
