// SPDX-License-Identifier: GPL-2.0
/*
 * mllb.c - MLLB (load balancing) on the workload kit: the model, its
 * built-in weights (data/mllb_weights.txt, the original LAKE's
 * src/load_balancing/consts.c) and the GPU path's set-up and launch.  The
 * floating-point code is in mllb_fpu.c.
 */
#include "lake_app.h"
#include "mllb.h"
#include "mllb_fpu.h"
#include "mllb_weights.h"

struct mllb_state {
	struct mllb_weights w;		/* first: mllb_fpu.c reads it as the state */
	CUdeviceptr d_w;
};

static int mllb_init(struct lake_app *a)
{
	struct mllb_state *s = lake_app_state(a);

	/* Bytes only: this file has no FPU. */
	memcpy(s->w.w1, mllb_w_w1, sizeof(s->w.w1));
	memcpy(s->w.b1, mllb_w_b1, sizeof(s->w.b1));
	memcpy(s->w.w2, mllb_w_w2, sizeof(s->w.w2));
	memcpy(&s->w.b2, mllb_w_b2, sizeof(s->w.b2));
	return 0;
}

static CUresult mllb_gpu_init(struct lake_app *a)
{
	struct mllb_state *s = lake_app_state(a);

	return lake_app_dev_upload(a, &s->d_w, &s->w, sizeof(s->w));
}

static const char *const mllb_kernels[] = { "mllb_infer", NULL };

/* One launch: a thread per row. */
static CUresult mllb_gpu_launch(struct lake_app *a, const struct lake_app_gpu_io *io)
{
	struct mllb_state *s = lake_app_state(a);
	CUdeviceptr in = io->in, out = io->out, done = io->done, blocks = io->blocks;
	unsigned int batch = io->batch, seq = io->seq;
	void *params[] = { &in, &out, &batch, &s->d_w, &done, &blocks, &seq };

	return lake_app_launch(a, 0, (batch + MLLB_THREADS - 1) / MLLB_THREADS, MLLB_THREADS, 0,
			       params);
}

static const struct lake_app_model mllb = {
	.name = "mllb",
	.doc = "MLLB: 15 -> 10 -> 1, float32; migrate when > 0.5",
	.in_row = MLLB_FEATURES * sizeof(float),
	.out_row = sizeof(struct mllb_out),
	.max_batch = MLLB_MAX_BATCH,
	.fpu = true,
	.cpu_chunk = 256,
	.state_size = sizeof(struct mllb_state),
	.kernels = mllb_kernels,
	.signals = true,
	.init = mllb_init,
	.cpu_rows = mllb_cpu_rows,
	.gpu_init = mllb_gpu_init,
	.gpu_launch = mllb_gpu_launch,
	.fixed_input = mllb_fixed_input,
	.random_input = mllb_random_input,
	.compare = mllb_compare,
	.format_row = mllb_format_row,
};

LAKE_APP_BUNDLE(mllb, mllb_fatbin, &mllb);

#ifdef __KERNEL__
#include <linux/module.h>
MODULE_DESCRIPTION("MLLB load-balancing prediction on the CPU or, through LAKE, the GPU");
#endif
