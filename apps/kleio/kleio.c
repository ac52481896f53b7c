// SPDX-License-Identifier: GPL-2.0
/*
 * kleio.c - Kleio, the LAKE paper's page-warmth classifier, on the workload
 * kit: LSTM(621 one-hot -> 256, sequences) -> LSTM(256) -> Dense(621) +
 * softmax over the last 6 page classes; per sample the predicted class and
 * its probability (kleio_model.h).
 *
 * CPU path: kleio_cpu.c (FPU file) driven by kleio_cpu_predict(), which
 * opens its own FPU regions, one per layer and timestep of a block of 4
 * samples (~1-4 MFLOP each, rescheduling between them): shorter than the
 * kit's one region per chunk of rows would be around the whole network.
 * Hence .fpu = false; the other callbacks that touch floats open regions
 * around their helpers themselves.
 *
 * GPU path: kleio_kernels.cu, 8 launches per inference, bit-exact with the
 * CPU path (so .compare is NULL: the kit compares rows bit for bit).
 *
 * Weights: seeded Glorot-uniform by default (kleio_default_weights(), seed
 * KLEIO_DEFAULT_SEED); weights=FILE loads a weights file (kleio_model.h,
 * written by kleio_weights.py, e.g. from a trained Keras model).
 */
#include "lake_app.h"
#include "kleio_io.h"

struct kleio_state {
	float params[KLEIO_NPARAMS];
	struct kleio_block blk;		/* CPU scratch (one caller at a time) */
	/* GPU */
	CUdeviceptr d_params, d_wg1, d_u1, d_w2, d_b2, d_h1, d_c1, d_h2, d_c2;
	int sms;
};

/* Kernels, in the order of kleio_kernels[]. */
enum { KLEIO_FN_PREP, KLEIO_FN_WAVE64, KLEIO_FN_WAVE32, KLEIO_FN_WAVE16,
       KLEIO_FN_OUT16, KLEIO_FN_OUT4 };

static const char *const kleio_kernels[] = {
	"kleio_prep", "kleio_wave_64", "kleio_wave_32", "kleio_wave_16",
	"kleio_out_16", "kleio_out_4", NULL
};

static int kleio_init(struct lake_app *a)
{
	struct kleio_state *s = lake_app_state(a);
	const char *path = lake_app_weights_path(a), *why = NULL;
	void *file;
	size_t len = 0;
	int err;

	if (!path) {
		kleio_default_weights(s->params, KLEIO_DEFAULT_SEED);
		lake_app_info("%s: seeded Glorot-uniform weights (seed %d)\n", lake_app_name(a),
			      KLEIO_DEFAULT_SEED);
		return 0;
	}
	err = lake_app_read_file(path, &file, &len);
	if (err) {
		lake_app_warn("%s: cannot read weights file %s (%d)\n", lake_app_name(a), path, err);
		return err;
	}
	err = kleio_parse_weights(file, len, s->params, &why);
	lake_app_file_free(file);
	if (err) {
		lake_app_warn("%s: weights file %s: %s\n", lake_app_name(a), path, why);
		return err;
	}
	lake_app_info("%s: weights from %s\n", lake_app_name(a), path);
	return 0;
}

static void kleio_cpu_rows(struct lake_app *a, const void *in, void *out, unsigned int r0,
			   unsigned int r1, unsigned int batch)
{
	struct kleio_state *s = lake_app_state(a);

	kleio_cpu_predict(s->params, &s->blk, (const s32 *)in + r0 * KLEIO_T, r1 - r0,
			  (struct kleio_out *)out + r0, NULL);
}

static void kleio_fixed_input(struct lake_app *a, void *in, unsigned int batch)
{
	kleio_inputs(in, batch);
}

/* Six classes uniform in 0..620 per sample; one row in 64 has one outside (all-zero input). */
static void kleio_random_input(struct lake_app *a, void *in, unsigned int batch, u64 *seed)
{
	s32 *cls = in;
	unsigned int i;

	for (i = 0; i < batch * KLEIO_T; i++)
		cls[i] = lake_app_rand(seed) % KLEIO_V;
	for (i = 0; i < batch; i += 64)
		cls[i * KLEIO_T + i % KLEIO_T] = (s32)lake_app_rand(seed);	/* likely out of range */
}

static int kleio_format_row(struct lake_app *a, const void *out, unsigned int r, char *buf,
			    size_t len)
{
	int n;

	lake_app_fpu_begin();
	n = kleio_fpu_format((const struct kleio_out *)out + r, buf, len);
	lake_app_fpu_end();
	return n;
}

static CUresult kleio_gpu_init(struct lake_app *a)
{
	struct kleio_state *s = lake_app_state(a);
	size_t h = (size_t)KLEIO_NMAX * KLEIO_H * sizeof(float);
	CUresult r;

	r = lake_app_dev_upload(a, &s->d_params, s->params, sizeof(s->params));
	if (!r)
		r = lake_app_dev_upload(a, &s->d_wg1, NULL, (size_t)(KLEIO_V + 1) * KLEIO_G * 4);
	if (!r)
		r = lake_app_dev_upload(a, &s->d_u1, NULL, (size_t)KLEIO_H * KLEIO_G * 4);
	if (!r)
		r = lake_app_dev_upload(a, &s->d_w2, NULL, (size_t)2 * KLEIO_H * KLEIO_G * 4);
	if (!r)
		r = lake_app_dev_upload(a, &s->d_b2, NULL, (size_t)KLEIO_G * 4);
	if (!r)
		r = lake_app_dev_upload(a, &s->d_h1, NULL, 2 * h);
	if (!r)
		r = lake_app_dev_upload(a, &s->d_c1, NULL, h);
	if (!r)
		r = lake_app_dev_upload(a, &s->d_h2, NULL, 2 * h);
	if (!r)
		r = lake_app_dev_upload(a, &s->d_c2, NULL, h);
	if (!r)
		r = cuDeviceGetAttribute(&s->sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0);
	if (s->sms <= 0 || s->sms > 4096)	/* lakeD's answer, checked */
		s->sms = 1;
	if (!r) {
		/* The device layouts, once (kleio_kernels.cu). */
		void *params[] = { &s->d_params, &s->d_wg1, &s->d_u1, &s->d_w2, &s->d_b2 };

		r = lake_app_launch(a, KLEIO_FN_PREP, 2 * s->sms, 256, 0, params);
	}
	return r;
}

/*
 * Samples per block of a wave: the largest tile that still gives every
 * multiprocessor two blocks (16 column blocks x row blocks x 2 layers),
 * else the smallest.  No larger than 64: 128-sample tiles (n > 1024 on
 * the H200's 132 multiprocessors) left a second, nearly empty round of
 * blocks and took 1.6x the 64-sample tiles' time at n = 1040.
 */
static unsigned int kleio_tile(const struct kleio_state *s, unsigned int n)
{
	unsigned int bm;

	for (bm = 64; bm > 16; bm /= 2)
		if (16 * ((n + bm - 1) / bm) * 2 >= 2 * (unsigned int)s->sms)
			break;
	return bm;
}

static CUresult kleio_gpu_launch(struct lake_app *a, const struct lake_app_gpu_io *io)
{
	struct kleio_state *s = lake_app_state(a);
	unsigned int bm = kleio_tile(s, io->batch), fn, ds;
	CUdeviceptr in = io->in, out = io->out, probs = 0, h2_last;
	int n = io->batch, wave;
	CUresult r = CUDA_SUCCESS;

	fn = bm == 64 ? KLEIO_FN_WAVE64 :
	     bm == 32 ? KLEIO_FN_WAVE32 : KLEIO_FN_WAVE16;
	for (wave = 0; wave <= KLEIO_T && !r; wave++) {
		void *params[] = { &s->d_wg1, &s->d_u1, &s->d_w2, &s->d_b2, &in, &s->d_h1,
				   &s->d_c1, &s->d_h2, &s->d_c2, &n, &wave };
		unsigned int jobs = (wave < KLEIO_T) + (wave > 0);

		r = cuLaunchKernel(lake_app_fn(a, fn), KLEIO_G / 64, (n + bm - 1) / bm, jobs, 256,
				   1, 1, 0, NULL, params, NULL);
	}
	/* Layer 2's output at the last step is in its second h buffer. */
	h2_last = s->d_h2 + (size_t)n * KLEIO_H * sizeof(float);
	ds = n >= 320 ? 16 : 4;
	if (!r) {
		CUdeviceptr kd = s->d_params + KLEIO_KD * sizeof(float);
		CUdeviceptr bd = s->d_params + KLEIO_BD * sizeof(float);
		void *params[] = { &kd, &bd, &h2_last, &n, &out, &probs };

		r = lake_app_launch(a, ds == 16 ? KLEIO_FN_OUT16 : KLEIO_FN_OUT4,
				    (n + ds - 1) / ds, 256, 0, params);
	}
	return r;
}

static const struct lake_app_model kleio_model = {
	.name = "kleio",
	.doc = "Kleio: LSTM 621 one-hot -> 256 -> LSTM 256 -> dense 621 + softmax, float32",
	.in_row = KLEIO_T * sizeof(s32),
	.out_row = sizeof(struct kleio_out),
	.max_batch = KLEIO_NMAX,
	.fpu = false,		/* kleio_cpu_predict() opens shorter regions itself */
	.cpu_chunk = KLEIO_CPU_BLOCK,
	.state_size = sizeof(struct kleio_state),
	.kernels = kleio_kernels,
	.init = kleio_init,
	.cpu_rows = kleio_cpu_rows,
	.gpu_init = kleio_gpu_init,
	.gpu_launch = kleio_gpu_launch,
	.fixed_input = kleio_fixed_input,
	.random_input = kleio_random_input,
	.format_row = kleio_format_row,
};

LAKE_APP_BUNDLE(kleio, kleio_fatbin, &kleio_model);

#ifdef __KERNEL__
#include <linux/module.h>
MODULE_DESCRIPTION("Kleio page-warmth classification (LSTM) on the CPU or, through LAKE, the GPU");
#endif
