// SPDX-License-Identifier: GPL-2.0
/*
 * knn.c - KNN, the LAKE paper's nearest-neighbour detector, on the workload
 * kit: 4096 labelled reference points of 128 float features; per query the
 * 16 nearest (indices and distances, sorted, ties by index) and their
 * majority label (knn_model.h).
 *
 * CPU path: knn_cpu.c (FPU file, with the callbacks that touch floats),
 * one FPU region per 4 queries (the kit's chunks).  GPU path: knn_kernels.cu, 2 launches per batch (distance tiles,
 * per-query top-k), bit-exact with the CPU path (.compare is NULL).
 *
 * Data: the seeded data set by default (seed KNN_DEFAULT_SEED); weights=FILE
 * loads a data file (knn_model.h, written by knn_data.py): for KNN the
 * reference points are the model.  The fixed input of the benchmark is the
 * seed's first queries.
 */
#include "lake_app.h"
#include "knn_io.h"

enum { KNN_FN_DIST64, KNN_FN_DIST32, KNN_FN_DIST16, KNN_FN_TOPK32, KNN_FN_TOPK64,
       KNN_FN_TOPK128, KNN_FN_TOPK256 };

static const char *const knn_kernels[] = {
	"knn_dist_64", "knn_dist_32", "knn_dist_16",
	"knn_topk_32", "knn_topk_64", "knn_topk_128", "knn_topk_256", NULL
};

static int knn_init(struct lake_app *a)
{
	struct knn_state *s = lake_app_state(a);
	const char *path = lake_app_weights_path(a), *why = NULL;
	void *file;
	size_t len = 0;
	int err;

	knn_default_queries(&s->fixed[0][0], KNN_QMAX, KNN_DEFAULT_SEED);
	if (!path) {
		knn_default_data(&s->data, KNN_DEFAULT_SEED);
		lake_app_info("%s: the seeded data set (seed %d)\n", lake_app_name(a),
			      KNN_DEFAULT_SEED);
	} else {
		err = lake_app_read_file(path, &file, &len);
		if (err) {
			lake_app_warn("%s: cannot read data file %s (%d)\n", lake_app_name(a), path,
				      err);
			return err;
		}
		err = knn_parse_data(file, len, &s->data, &why);
		lake_app_file_free(file);
		if (err) {
			lake_app_warn("%s: data file %s: %s\n", lake_app_name(a), path, why);
			return err;
		}
		lake_app_info("%s: reference points from %s\n", lake_app_name(a), path);
	}
	knn_cpu_layout(&s->data, &s->refs);
	return 0;
}

static void knn_fixed_input(struct lake_app *a, void *in, unsigned int batch)
{
	struct knn_state *s = lake_app_state(a);

	memcpy(in, s->fixed, (size_t)batch * sizeof(s->fixed[0]));
}

static CUresult knn_gpu_init(struct lake_app *a)
{
	struct knn_state *s = lake_app_state(a);
	CUresult r;

	r = lake_app_dev_upload(a, &s->d_refs, s->data.refs, sizeof(s->data.refs));
	if (!r)
		r = lake_app_dev_upload(a, &s->d_labels, s->data.labels, sizeof(s->data.labels));
	if (!r)	/* the distance tiles of the largest batch: allocated once */
		r = lake_app_dev_upload(a, &s->d_d2, NULL, (size_t)KNN_QMAX * KNN_NREF * 4);
	if (!r)
		r = cuDeviceGetAttribute(&s->sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0);
	if (s->sms <= 0 || s->sms > 4096)	/* lakeD's answer, checked */
		s->sms = 1;
	return r;
}

/*
 * The distance pass: the largest query tile that still gives every
 * multiprocessor two blocks (64 point tiles x query tiles).  The top-k: the
 * fewest threads per query (more keys each) that still give every
 * multiprocessor a block.
 */
static CUresult knn_gpu_launch(struct lake_app *a, const struct lake_app_gpu_io *io)
{
	struct knn_state *s = lake_app_state(a);
	unsigned int nq = io->batch, sms = s->sms, bm, tpq, fn;
	CUdeviceptr in = io->in, out = io->out;
	int n = nq;
	CUresult r;

	for (bm = 64; bm > 16; bm /= 2)
		if ((KNN_NREF / 64) * ((nq + bm - 1) / bm) >= 2 * sms)
			break;
	fn = bm == 64 ? KNN_FN_DIST64 : bm == 32 ? KNN_FN_DIST32 : KNN_FN_DIST16;
	{
		void *params[] = { &in, &s->d_refs, &s->d_d2, &n };

		r = cuLaunchKernel(lake_app_fn(a, fn), KNN_NREF / 64, (nq + bm - 1) / bm, 1, 256,
				   1, 1, 0, NULL, params, NULL);
	}
	for (tpq = 32, fn = KNN_FN_TOPK32; tpq < 256; tpq *= 2, fn++)
		if ((nq * tpq + 255) / 256 >= sms)
			break;
	if (!r) {
		void *params[] = { &s->d_d2, &s->d_labels, &n, &out };

		r = lake_app_launch(a, fn, (nq * tpq + 255) / 256, 256, 0, params);
	}
	return r;
}

static const struct lake_app_model knn_model = {
	.name = "knn",
	.doc = "KNN: 16 nearest of 4096 points x 128 floats and their majority label",
	.in_row = KNN_DIM * sizeof(float),
	.out_row = sizeof(struct knn_out),
	.max_batch = KNN_QMAX,
	.fpu = true,
	.cpu_chunk = KNN_CPU_QBLOCK,
	.state_size = sizeof(struct knn_state),
	.kernels = knn_kernels,
	.init = knn_init,
	.cpu_rows = knn_cpu_rows,
	.gpu_init = knn_gpu_init,
	.gpu_launch = knn_gpu_launch,
	.fixed_input = knn_fixed_input,
	.random_input = knn_random_input,
	.format_row = knn_format_row,
};

LAKE_APP_BUNDLE(knn, knn_fatbin, &knn_model);

#ifdef __KERNEL__
#include <linux/module.h>
MODULE_DESCRIPTION("KNN nearest-neighbour detection on the CPU or, through LAKE, the GPU");
#endif
