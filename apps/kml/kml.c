// SPDX-License-Identifier: GPL-2.0
/*
 * kml.c - KML (readahead class prediction) on the workload kit: the model,
 * its built-in weights (data/kml_weights.txt, the original LAKE's
 * src/kernel-ml/weights.c) and the GPU path's set-up and launch.  The
 * floating-point code is in kml_fpu.c and kml_row.h.
 */
#include "lake_app.h"
#include "kml_state.h"
#include "kml_fpu.h"
#include "kml_weights.h"

static int kml_init(struct lake_app *a)
{
	struct kml_state *s = lake_app_state(a);

	/* Bytes only: this file has no FPU. */
	memcpy(s->w.w0, kml_w_w0_arr, sizeof(s->w.w0));
	memcpy(s->w.b0, kml_w_b0_arr, sizeof(s->w.b0));
	memcpy(s->w.w1, kml_w_w1_arr, sizeof(s->w.w1));
	memcpy(s->w.b1, kml_w_b1_arr, sizeof(s->w.b1));
	memcpy(s->w.w2, kml_w_w2_arr, sizeof(s->w.w2));
	memcpy(s->w.b2, kml_w_b2_arr, sizeof(s->w.b2));
	memcpy(s->w.stats, kml_w_intial_stats, sizeof(s->w.stats));
	return 0;
}

static CUresult kml_gpu_init(struct lake_app *a)
{
	struct kml_state *s = lake_app_state(a);

	return lake_app_dev_upload(a, &s->d_w, &s->w, sizeof(s->w));
}

static const char *const kml_kernels[] = { "kml_infer", NULL };

/* One launch: a thread per row, each block computing the batch's statistics. */
static CUresult kml_gpu_launch(struct lake_app *a, const struct lake_app_gpu_io *io)
{
	struct kml_state *s = lake_app_state(a);
	CUdeviceptr in = io->in, out = io->out, done = io->done, blocks = io->blocks;
	unsigned int batch = io->batch, seq = io->seq;
	void *params[] = { &in, &out, &batch, &s->d_w, &done, &blocks, &seq };

	return lake_app_launch(a, 0, (batch + KML_THREADS - 1) / KML_THREADS, KML_THREADS, 0,
			       params);
}

static const struct lake_app_model kml = {
	.name = "kml",
	.doc = "KML: 5 -> 15 -> sigmoid -> 5 -> sigmoid -> 4, argmax; float32, batch-normalised",
	.in_row = KML_FEATURES * sizeof(float),
	.out_row = sizeof(struct kml_out),
	.max_batch = KML_MAX_BATCH,
	.fpu = true,
	.cpu_chunk = 128,
	.state_size = sizeof(struct kml_state),
	.kernels = kml_kernels,
	.signals = true,
	.init = kml_init,
	.cpu_prepare = kml_cpu_prepare,
	.cpu_rows = kml_cpu_rows,
	.gpu_init = kml_gpu_init,
	.gpu_launch = kml_gpu_launch,
	.fixed_input = kml_fixed_input,
	.random_input = kml_random_input,
	.compare = kml_compare,
	.format_row = kml_format_row,
};

LAKE_APP_BUNDLE(kml, kml_fatbin, &kml);

#ifdef __KERNEL__
#include <linux/module.h>
MODULE_DESCRIPTION("KML readahead class prediction on the CPU or, through LAKE, the GPU");
#endif
