// SPDX-License-Identifier: GPL-2.0
/*
 * kml_fpu.c - KML's floating-point code: the CPU path (the batch's
 * normalisation, then kml_row.h's network on each row), its inputs, the
 * comparison with the GPU and the formatting of outputs.  An FPU file:
 * built with the kit's FPU flags, run only inside the kit's FPU regions.
 */
#include "lake_app_fpu.h"
#include "kml_row.h"
#include "kml_state.h"
#include "kml_fpu.h"

/* The batch sums in kml_row.h's order: KML_LANES strided partials, then a tree. */
static float kml_tree(float *p)
{
	int off, t;

	for (off = KML_LANES / 2; off; off >>= 1)
		for (t = 0; t < off; t++)
			p[t] = p[t] + p[t + off];
	return p[0];
}

void kml_cpu_prepare(struct lake_app *a, const void *in, unsigned int batch)
{
	struct kml_state *s = lake_app_state(a);
	const float *x = in;
	float ps[KML_LANES], pq[KML_LANES];
	unsigned int i, j, t;

	for (i = 0; i < KML_FEATURES; i++) {
		for (t = 0; t < KML_LANES; t++) {
			ps[t] = 0.0f;
			pq[t] = 0.0f;
			for (j = t; j < batch; j += KML_LANES) {
				float v = x[(size_t)j * KML_FEATURES + i], d = 0.0f - v;

				ps[t] = ps[t] + v;
				pq[t] = pq[t] + d * d;
			}
		}
		kml_norm(&s->w, i, kml_tree(ps), kml_tree(pq), batch, &s->mean[i], &s->std[i]);
	}
}

void kml_cpu_rows(struct lake_app *a, const void *in, void *out, unsigned int r0,
		  unsigned int r1, unsigned int batch)
{
	struct kml_state *s = lake_app_state(a);
	const float *x = in;
	struct kml_out *o = out;
	unsigned int r;

	for (r = r0; r < r1; r++)
		kml_row(&s->w, x + (size_t)r * KML_FEATURES, s->mean, s->std, &o[r]);
}

/* The paper's input row, repeated. */
void kml_fixed_input(struct lake_app *a, void *in, unsigned int batch)
{
	static const float row[KML_FEATURES] = {
		-0.586797f, 5.456822f, 5.456966f, -0.297318f, -1.184651f
	};
	float *x = in;
	unsigned int r, i;

	for (r = 0; r < batch; r++)
		for (i = 0; i < KML_FEATURES; i++)
			x[r * KML_FEATURES + i] = row[i];
}

/*
 * Feature i uniform in [0, 2 stats[i]): on the scale of the initial
 * statistics, which dominate the normalisation of small batches (inputs far
 * below them all normalise to nearly the same row).
 */
void kml_random_input(struct lake_app *a, void *in, unsigned int batch, u64 *seed)
{
	const struct kml_state *s = lake_app_state(a);
	float *x = in;
	unsigned int r, i;

	for (r = 0; r < batch; r++)
		for (i = 0; i < KML_FEATURES; i++)
			x[r * KML_FEATURES + i] = s->w.stats[i] *
				((float)(s32)(lake_app_rand(seed) >> 40) * (1.0f / 8388608.0f));
}

void kml_compare(struct lake_app *a, const void *cpu, const void *gpu, unsigned int batch,
		 struct lake_app_cmp *cmp)
{
	const struct kml_out *c = cpu, *g = gpu;
	unsigned int r, k;

	for (r = 0; r < batch; r++) {
		bool ok = true;

		for (k = 0; k < KML_CLASSES; k++)
			ok &= lake_app_cmp_float(cmp, c[r].score[k], g[r].score[k], KML_TOLERANCE);
		cmp->beyond_tolerance += !ok;
		cmp->class_differs += c[r].cls != g[r].cls;
	}
}

int kml_format_row(struct lake_app *a, const void *out, unsigned int r, char *buf, size_t len)
{
	const struct kml_out *o = out;
	int n = 0, k;

	for (k = 0; k < KML_CLASSES && (size_t)n < len; k++) {
		n += lake_app_fmt_float(buf + n, len - n, o[r].score[k], 2);
		if ((size_t)n < len)
			n += snprintf(buf + n, len - n, " ");
	}
	if ((size_t)n < len)
		n += snprintf(buf + n, len - n, "class %d", o[r].cls);
	return n;
}
