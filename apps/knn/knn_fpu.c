// SPDX-License-Identifier: GPL-2.0
/*
 * knn_fpu.c - KNN's callbacks that touch floats (the kit calls them inside
 * its FPU regions: .fpu is set): the CPU path's rows, random queries and the
 * formatting of an output.  An FPU file, like knn_cpu.c.
 */
#include "lake_app_fpu.h"
#include "knn_io.h"

void knn_cpu_rows(struct lake_app *a, const void *in, void *out, unsigned int r0,
		  unsigned int r1, unsigned int batch)
{
	struct knn_state *s = lake_app_state(a);

	knn_fpu_queries(&s->refs, s->data.labels, (const float *)in + (size_t)r0 * KNN_DIM,
			r1 - r0, &s->scratch, (struct knn_out *)out + r0);
}

/* Uniform features in [0, 1), like the data set's. */
void knn_random_input(struct lake_app *a, void *in, unsigned int batch, u64 *seed)
{
	knn_fpu_uniform(in, (size_t)batch * KNN_DIM, seed);
}

int knn_format_row(struct lake_app *a, const void *out, unsigned int r, char *buf, size_t len)
{
	const struct knn_out *o = (const struct knn_out *)out + r;
	int n;

	n = snprintf(buf, len, "label %d; nearest %d at ", o->label, o->idx[0]);
	n += lake_app_fmt_float(buf + n, len - n, o->dist[0], 6);
	n += snprintf(buf + n, len - n, " ... 16th %d at ", o->idx[KNN_K - 1]);
	return n + lake_app_fmt_float(buf + n, len - n, o->dist[KNN_K - 1], 6);
}
