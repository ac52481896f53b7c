// SPDX-License-Identifier: GPL-2.0
/*
 * linnos.c - LinnOS (+0, +1, +2) on the workload kit: the models, their
 * weights, the CPU path and the GPU path's set-up and launch.
 *
 * Integer arithmetic only (no FPU region needed): every product and sum is
 * unsigned 64-bit, i.e. int64 with defined wrap-around; ReLU reads the
 * value as signed.  linnos.cu computes exactly the same function.
 *
 * Weights: apps/linnos/data/linnos_weights.txt (the original LAKE's
 * test_weights.c), built in; weights=FILE loads another file of that format
 * (apps/linnos/train writes them).  A file with a "# model linnos+N" line
 * applies to that model only; one without applies to every model.
 */
#include "lake_app.h"
#include "linnos.h"
#include "linnos_weights.h"

struct linnos_state {
	unsigned int extra;				/* 0, 1, 2 */
	u64 w0[LINNOS_HIDDEN][LINNOS_FEATURES];		/* neuron j's weights in row j */
	u64 b0[LINNOS_HIDDEN];
	u64 wm[LINNOS_MAX_EXTRA][LINNOS_HIDDEN][LINNOS_HIDDEN];
	u64 bm[LINNOS_MAX_EXTRA][LINNOS_HIDDEN];
	u64 w1[LINNOS_OUTPUTS][LINNOS_HIDDEN];
	u64 b1[LINNOS_OUTPUTS];
	u64 h[2][LINNOS_HIDDEN];			/* CPU scratch (one caller at a time) */
	/* GPU */
	CUdeviceptr d_w0t, d_b0, d_wmt, d_bm, d_w1, d_b1;
	CUdeviceptr d_h[LINNOS_MAX_EXTRA];		/* "wide": each extra layer's outputs */
	CUdeviceptr d_count;				/* "wide": blocks done (lake_app_last_block()) */
	int sms;					/* multiprocessors: rows per block */
};

/* The arrays of the weights file, in the order of struct linnos_state. */
struct linnos_array {
	const char *name;
	unsigned int rows, cols;
	const long long *builtin;
	size_t offset;
	unsigned int extra;				/* needed from this depth up */
};

#define LINNOS_ARRAY(n, r, c, field, ex) \
	{ #n, r, c, linnos_w_##n, offsetof(struct linnos_state, field), ex }

static const struct linnos_array linnos_arrays[] = {
	LINNOS_ARRAY(weight_0_T, LINNOS_HIDDEN, LINNOS_FEATURES, w0, 0),
	LINNOS_ARRAY(bias_0, 1, LINNOS_HIDDEN, b0, 0),
	LINNOS_ARRAY(weight_1_T, LINNOS_OUTPUTS, LINNOS_HIDDEN, w1, 0),
	LINNOS_ARRAY(bias_1, 1, LINNOS_OUTPUTS, b1, 0),
	LINNOS_ARRAY(weight_M_1_T, LINNOS_HIDDEN, LINNOS_HIDDEN, wm[0], 1),
	LINNOS_ARRAY(bias_M_1, 1, LINNOS_HIDDEN, bm[0], 1),
	LINNOS_ARRAY(weight_M_2_T, LINNOS_HIDDEN, LINNOS_HIDDEN, wm[1], 2),
	LINNOS_ARRAY(bias_M_2, 1, LINNOS_HIDDEN, bm[1], 2),
};

static unsigned int linnos_extra(const struct lake_app *a);

/* Loads the model's arrays from the weights file (when one applies) or the built-in ones. */
static int linnos_init(struct lake_app *a)
{
	struct linnos_state *s = lake_app_state(a);
	const char *path = lake_app_weights_path(a), *why = NULL;
	char model[32] = "";
	void *text = NULL;
	size_t len = 0;
	unsigned int i;
	int err;

	s->extra = linnos_extra(a);
	if (path) {
		err = lake_app_read_file(path, &text, &len);
		if (err) {
			lake_app_warn("%s: cannot read weights file %s (%d)\n", lake_app_name(a), path,
				      err);
			return err;
		}
		lake_app_weights_model(text, len, model, sizeof(model));
		if (model[0] && strcmp(model, lake_app_name(a))) {
			lake_app_info("%s: %s is for %s: using the built-in weights\n",
				      lake_app_name(a), path, model);
			lake_app_file_free(text);
			text = NULL;
		}
	}
	for (i = 0; i < ARRAY_SIZE(linnos_arrays); i++) {
		const struct linnos_array *w = &linnos_arrays[i];
		u64 *dst = (u64 *)((u8 *)s + w->offset);
		unsigned int k, n = w->rows * w->cols;

		if (w->extra > s->extra)
			continue;
		if (text) {
			/* s64 and u64 share their representation: parse straight in. */
			err = lake_app_parse_s64(text, len, w->name, w->rows, w->cols, (s64 *)dst,
						 &why);
			if (err) {
				lake_app_warn("%s: weights file %s: %s %ux%u: %s\n", lake_app_name(a),
					      path, w->name, w->rows, w->cols, why);
				lake_app_file_free(text);
				return err;
			}
			continue;
		}
		for (k = 0; k < n; k++)
			dst[k] = (u64)w->builtin[k];
	}
	if (text) {
		lake_app_info("%s: weights from %s\n", lake_app_name(a), path);
		lake_app_file_free(text);
	}
	return 0;
}

static inline u64 linnos_relu(u64 v)
{
	return (s64)v < 0 ? 0 : v;
}

static void linnos_cpu_rows(struct lake_app *a, const void *in, void *out, unsigned int r0,
			    unsigned int r1, unsigned int batch)
{
	struct linnos_state *s = lake_app_state(a);
	struct linnos_out *o = out;
	unsigned int r, i, j, k, l;

	for (r = r0; r < r1; r++) {
		const u8 *x = (const u8 *)in + (size_t)r * LINNOS_FEATURES;
		u64 *h = s->h[0], *h2 = s->h[1], *t;

		for (j = 0; j < LINNOS_HIDDEN; j++) {
			const u64 *w = s->w0[j];
			u64 acc = s->b0[j];

			for (i = 0; i < LINNOS_FEATURES; i++)
				acc += w[i] * x[i];
			h[j] = linnos_relu(acc);
		}
		for (l = 0; l < s->extra; l++) {
			for (j = 0; j < LINNOS_HIDDEN; j++) {
				const u64 *w = s->wm[l][j];
				u64 acc = s->bm[l][j];

				for (k = 0; k < LINNOS_HIDDEN; k++)
					acc += w[k] * h[k];
				h2[j] = linnos_relu(acc);
			}
			t = h;
			h = h2;
			h2 = t;
		}
		for (j = 0; j < LINNOS_OUTPUTS; j++) {
			u64 acc = s->b1[j];

			for (k = 0; k < LINNOS_HIDDEN; k++)
				acc += s->w1[j][k] * h[k];
			o[r].score[j] = (s64)acc;
		}
	}
}

/* The paper's input: pending 0; the last four reads 10, 9, 9, 9 us. */
static const u8 linnos_fixed[LINNOS_FEATURES] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 1, 0, 0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 0, 9,
};

static void linnos_fixed_input(struct lake_app *a, void *in, unsigned int batch)
{
	unsigned int r;

	for (r = 0; r < batch; r++)
		memcpy((u8 *)in + (size_t)r * LINNOS_FEATURES, linnos_fixed, LINNOS_FEATURES);
}

/* Digits 0-9; one row in 16 has arbitrary bytes (beyond the digits' range). */
static void linnos_random_input(struct lake_app *a, void *in, unsigned int batch, u64 *seed)
{
	u8 *x = in;
	unsigned int r, i;

	for (r = 0; r < batch; r++) {
		bool wide = (lake_app_rand(seed) & 15) == 0;

		for (i = 0; i < LINNOS_FEATURES; i++) {
			u64 v = lake_app_rand(seed);

			x[(size_t)r * LINNOS_FEATURES + i] = wide ? (u8)v : (u8)(v % 10);
		}
	}
}

static int linnos_format_row(struct lake_app *a, const void *out, unsigned int r, char *buf,
			     size_t len)
{
	const struct linnos_out *o = out;

	return snprintf(buf, len, "%lld %lld %s", o[r].score[0], o[r].score[1],
			o[r].score[0] >= o[r].score[1] ? "fast" : "slow");
}

/* Device weights, laid out for coalesced reads: input-major (transposed). */
static CUresult linnos_gpu_init(struct lake_app *a)
{
	struct linnos_state *s = lake_app_state(a);
	size_t n = (size_t)LINNOS_MAX_EXTRA * LINNOS_HIDDEN * LINNOS_HIDDEN;
	u64 *t = lake_app_zalloc(n * sizeof(*t));
	unsigned int i, j, k, l;
	CUresult r;

	if (!t)
		return CUDA_ERROR_OUT_OF_MEMORY;
	for (i = 0; i < LINNOS_FEATURES; i++)
		for (j = 0; j < LINNOS_HIDDEN; j++)
			t[i * LINNOS_HIDDEN + j] = s->w0[j][i];
	r = lake_app_dev_upload(a, &s->d_w0t, t, sizeof(s->w0));
	for (l = 0; l < s->extra; l++)
		for (k = 0; k < LINNOS_HIDDEN; k++)
			for (j = 0; j < LINNOS_HIDDEN; j++)
				t[((size_t)l * LINNOS_HIDDEN + k) * LINNOS_HIDDEN + j] = s->wm[l][j][k];
	if (!r)
		r = lake_app_dev_upload(a, &s->d_wmt, s->extra ? t : NULL,
					s->extra ? sizeof(s->wm[0]) * s->extra : 8);
	lake_app_free(t);
	if (!r)
		r = lake_app_dev_upload(a, &s->d_b0, s->b0, sizeof(s->b0));
	if (!r)
		r = lake_app_dev_upload(a, &s->d_bm, s->bm, sizeof(s->bm));
	if (!r)
		r = lake_app_dev_upload(a, &s->d_w1, s->w1, sizeof(s->w1));
	if (!r)
		r = lake_app_dev_upload(a, &s->d_b1, s->b1, sizeof(s->b1));
	/* The "wide" variant's scratch, zeroed: each extra layer's outputs, the block counter. */
	for (l = 0; l < s->extra && !r; l++)
		r = lake_app_dev_upload(a, &s->d_h[l], NULL,
					LINNOS_WIDE_MAX_BATCH * LINNOS_HIDDEN * sizeof(u64));
	if (!r && s->extra)
		r = lake_app_dev_upload(a, &s->d_count, NULL, 64);
	s->sms = 0;
	if (!r)
		r = cuDeviceGetAttribute(&s->sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0);
	if (s->sms <= 0)
		s->sms = 1;
	return r;
}

/* linnos.cu's kernels: rows per block, and threads per block (256 x split). */
static const char *const linnos_kernels[] = {
	"linnos_r1", "linnos_r2", "linnos_r4", "linnos_r8", "linnos_r1s4", "linnos_r2s2",
	"linnos_wide_first_r1", "linnos_wide_first_r2", "linnos_wide_first_r4",
	"linnos_wide_next_r1", "linnos_wide_next_r2", "linnos_wide_next_r4", NULL
};

#define LINNOS_FN_WIDE_FIRST	6	/* + 0, 1, 2: 1, 2, 4 rows */
#define LINNOS_FN_WIDE_NEXT	9

/* +1/+2: one fused launch (a block per rows), or "wide" for small batches. */
static const struct lake_app_variant linnos_variants[] = {
	{ "fused", 0 },
	{ "wide", LINNOS_WIDE_MAX_BATCH },
	{ NULL, 0 }
};

/*
 * The "wide" variant: an extra layer's neurons over LINNOS_WIDE_BLOCKS
 * blocks; +2's second extra layer (and the output layer) in a second
 * launch, after the first's outputs.  The last launch signals.
 */
static CUresult linnos_gpu_launch_wide(struct lake_app *a, const struct lake_app_gpu_io *io)
{
	struct linnos_state *s = lake_app_state(a);
	CUdeviceptr in = io->in, out = io->out, done = io->done, none = 0;
	unsigned int batch = io->batch, last = s->extra == 1, seq = io->seq, r;
	void *first[] = { &in, &s->d_h[0], &out, &batch, &last, &s->d_w0t, &s->d_b0, &s->d_wmt,
			  &s->d_bm, &s->d_w1, &s->d_b1, &s->d_count, last ? &done : &none, &seq };
	void *next[] = { &s->d_h[0], &s->d_h[1], &out, &batch, &s->d_wmt, &s->d_bm, &s->d_w1,
			 &s->d_b1, &s->d_count, &done, &seq };
	CUresult ret;

	if (batch > LINNOS_WIDE_MAX_BATCH || !s->extra)
		return CUDA_ERROR_INVALID_VALUE;
	r = batch <= 1 ? 0 : batch <= 2 ? 1 : 2;
	ret = lake_app_launch(a, LINNOS_FN_WIDE_FIRST + r, LINNOS_WIDE_BLOCKS, LINNOS_THREADS, 0,
			      first);
	if (!ret && s->extra == 2)
		ret = lake_app_launch(a, LINNOS_FN_WIDE_NEXT + r, LINNOS_WIDE_BLOCKS,
				      LINNOS_THREADS, 0, next);
	return ret;
}

static const struct {
	unsigned int rows, split;
} linnos_kernel_shape[] = { { 1, 1 }, { 2, 1 }, { 4, 1 }, { 8, 1 }, { 1, 4 }, { 2, 2 } };

/*
 * One fused launch: a block per 1, 2, 4 or 8 rows, more rows per block once
 * there are more rows than multiprocessors (each block then reads the
 * weights once for several rows).  +1/+2 with 1 or 2 rows per block split
 * each extra layer's sums over 4 or 2 groups of 256 threads.
 */
static CUresult linnos_gpu_launch(struct lake_app *a, const struct lake_app_gpu_io *io)
{
	struct linnos_state *s = lake_app_state(a);
	CUdeviceptr in = io->in, out = io->out, done = io->done, blocks = io->blocks;
	unsigned int batch = io->batch, extra = s->extra, k = 0, sms = s->sms, rows, seq = io->seq;
	void *params[] = { &in, &out, &batch, &extra, &s->d_w0t, &s->d_b0,
			   &s->d_wmt, &s->d_bm, &s->d_w1, &s->d_b1, &done, &blocks, &seq };

	if (io->variant == 1)
		return linnos_gpu_launch_wide(a, io);
	while (k < 3 && batch > (sms << k))
		k++;
	if (extra && k < 2)
		k += 4;			/* linnos_r1s4, linnos_r2s2 */
	rows = linnos_kernel_shape[k].rows;
	return lake_app_launch(a, k, (batch + rows - 1) / rows,
			       LINNOS_THREADS * linnos_kernel_shape[k].split, 0, params);
}

#define LINNOS_MODEL(n, doc_, chunk, variants_)					\
	static const struct lake_app_model linnos##n = {			\
		.name = "linnos+" #n,						\
		.doc = doc_,							\
		.in_row = LINNOS_FEATURES,					\
		.out_row = sizeof(struct linnos_out),				\
		.max_batch = LINNOS_MAX_BATCH,					\
		.fpu = false,							\
		.cpu_chunk = chunk,						\
		.state_size = sizeof(struct linnos_state),			\
		.kernels = linnos_kernels,					\
		.signals = true,						\
		.variants = variants_,						\
		.init = linnos_init,						\
		.cpu_rows = linnos_cpu_rows,					\
		.gpu_init = linnos_gpu_init,					\
		.gpu_launch = linnos_gpu_launch,				\
		.fixed_input = linnos_fixed_input,				\
		.random_input = linnos_random_input,				\
		.format_row = linnos_format_row,				\
	}

LINNOS_MODEL(0, "LinnOS: 31 -> 256 -> 2, int64", 64, NULL);
LINNOS_MODEL(1, "LinnOS+1: 31 -> 256 -> 256 -> 2, int64", 4, linnos_variants);
LINNOS_MODEL(2, "LinnOS+2: 31 -> 256 -> 256 -> 256 -> 2, int64", 2, linnos_variants);

static unsigned int linnos_extra(const struct lake_app *a)
{
	const char *n = lake_app_name(a);

	return n[strlen(n) - 1] - '0';
}

LAKE_APP_BUNDLE(linnos, linnos_fatbin, &linnos0, &linnos1, &linnos2);

#ifdef __KERNEL__
#include <linux/module.h>
MODULE_DESCRIPTION("LinnOS I/O latency prediction (+0, +1, +2) on the CPU or, through LAKE, the GPU");
#endif
