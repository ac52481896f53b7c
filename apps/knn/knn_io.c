// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * KNN's integer-only code (no FPU flags): the data set, its checks, and the
 * CPU path's driver that runs knn_fpu_*() in short FPU regions.
 */
#include "lake_app.h"
#include "knn_io.h"

/* Stream @stream of @seed: a lake_app_rand() state started at lake_app_rand(seed ^ stream). */
static u64 knn_stream(u64 seed, unsigned int stream)
{
	u64 s = seed ^ stream;

	return lake_app_rand(&s);
}

/* @count uniform floats of a stream, in FPU regions of KNN_INIT_CHUNK. */
static void knn_uniform(float *out, size_t count, u64 seed, unsigned int stream)
{
	u64 state = knn_stream(seed, stream);
	size_t i;

	for (i = 0; i < count; i += KNN_INIT_CHUNK) {
		lake_app_fpu_begin();
		knn_fpu_uniform(out + i, min(count - i, (size_t)KNN_INIT_CHUNK), &state);
		lake_app_fpu_end();
		lake_app_yield();
	}
}

void knn_default_data(struct knn_data *data, u64 seed)
{
	u64 state = knn_stream(seed, KNN_STREAM_LABELS);
	int r;

	knn_uniform(&data->refs[0][0], (size_t)KNN_NREF * KNN_DIM, seed, KNN_STREAM_REFS);
	for (r = 0; r < KNN_NREF; r++)
		data->labels[r] = lake_app_rand(&state) >> 63;
}

void knn_default_queries(float *q, int nq, u64 seed)
{
	knn_uniform(q, (size_t)nq * KNN_DIM, seed, KNN_STREAM_QUERIES);
}

int knn_parse_data(const void *file, size_t len, struct knn_data *data, const char **why)
{
	static const u32 header[] = { KNN_FILE_HEADER, KNN_NREF, KNN_DIM, KNN_NLABELS, 0, 0 };
	const u8 *feat = (const u8 *)file + KNN_FILE_HEADER, *lab = feat + sizeof(data->refs);
	int err, r;

	err = lake_app_check_binary(file, len, KNN_FILE_SIZE, KNN_FILE_MAGIC, header,
				    ARRAY_SIZE(header), KNN_FILE_HEADER, (size_t)KNN_NREF * KNN_DIM,
				    why);
	if (err)
		return err;
	for (r = 0; r < KNN_NREF; r++) {
		if (lab[r] >= KNN_NLABELS) {
			*why = "a label is out of range";
			return -EINVAL;
		}
	}
	memcpy(data->refs, feat, sizeof(data->refs));	/* little endian, as the host */
	memcpy(data->labels, lab, sizeof(data->labels));
	return 0;
}

void knn_cpu_layout(const struct knn_data *data, struct knn_cpu_refs *refs)
{
	int r, k;

	/* As bits: kernel code outside FPU regions must not load floats. */
	for (r = 0; r < KNN_NREF; r++)
		for (k = 0; k < KNN_DIM; k++)
			memcpy(&refs->rt[r / KNN_CPU_RBLOCK][k][r % KNN_CPU_RBLOCK],
			       &data->refs[r][k], sizeof(float));
}

void knn_cpu_predict(const struct knn_cpu_refs *refs, const u8 *labels, const float *q,
		     int nq, struct knn_cpu_scratch *scratch, struct knn_out *out)
{
	int i;

	for (i = 0; i < nq; i += KNN_CPU_QBLOCK) {
		int nb = nq - i < KNN_CPU_QBLOCK ? nq - i : KNN_CPU_QBLOCK;

		lake_app_fpu_begin();
		knn_fpu_queries(refs, labels, q + (size_t)i * KNN_DIM, nb, scratch, out + i);
		lake_app_fpu_end();
		lake_app_yield();
	}
}
