// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * knn-cpu-run: KNN's CPU path (the code the module and the programs run) on
 * any data and queries, for the numpy tests (test_knn.py).
 *
 *   knn-cpu-run DATA|seed=S QUERIES|queries=N OUT [dump=FILE]
 *
 * DATA: a data file (knn_model.h); seed=S: the default data set of seed S.
 * QUERIES: rows of KNN_DIM floats; queries=N: the first N default queries
 * of the seed.  OUT: one struct knn_out per query.  dump=FILE writes the
 * data set (points, then labels) and the queries, raw.  Exit 0, 1 on an
 * error (with a message naming it), 2 on bad usage.
 */
#include "lake_app.h"
#include "knn_io.h"

/* The kit's logging globals (lake_app_env.h), as the programs define them. */
const char *lake_app_log_name = "knn-cpu-run";
bool lake_app_quiet;

int main(int argc, char **argv)
{
	struct knn_data *data = malloc(sizeof(*data));
	struct knn_cpu_refs *refs = malloc(sizeof(*refs));
	struct knn_cpu_scratch *scratch = malloc(sizeof(*scratch));
	unsigned long long seed = KNN_DEFAULT_SEED;
	const char *why = NULL;
	struct knn_out *out;
	size_t len = 0;
	float *q;
	FILE *f;
	int nq;

	if (argc < 4 || argc > 5 || (argc == 5 && strncmp(argv[4], "dump=", 5))) {
		fprintf(stderr, "usage: knn-cpu-run DATA|seed=S QUERIES|queries=N OUT [dump=FILE]\n");
		return 2;
	}
	if (!data || !refs || !scratch)
		return 1;
	if (!strncmp(argv[1], "seed=", 5)) {
		seed = strtoull(argv[1] + 5, NULL, 0);
		knn_default_data(data, seed);
	} else {
		void *file;
		int err = lake_app_read_file(argv[1], &file, &len);

		if (err) {
			fprintf(stderr, "knn-cpu-run: %s: %s\n", argv[1], strerror(-err));
			return 1;
		}
		err = knn_parse_data(file, len, data, &why);
		lake_app_file_free(file);
		if (err) {
			fprintf(stderr, "knn-cpu-run: %s: %s\n", argv[1], why);
			return 1;
		}
	}
	if (!strncmp(argv[2], "queries=", 8)) {
		nq = atoi(argv[2] + 8);
		q = malloc(sizeof(float) * KNN_DIM * (nq > 0 ? nq : 1));
		if (!q || nq < 1)
			return 2;
		knn_default_queries(q, nq, seed);
	} else {
		if (lake_app_read_file(argv[2], (void **)&q, &len) || len % (KNN_DIM * sizeof(float))) {
			fprintf(stderr, "knn-cpu-run: %s: not rows of %d floats\n", argv[2], KNN_DIM);
			return 1;
		}
		nq = (int)(len / (KNN_DIM * sizeof(float)));
	}
	if (argc == 5) {
		f = fopen(argv[4] + 5, "wb");
		if (!f || fwrite(data->refs, sizeof(data->refs), 1, f) != 1 ||
		    fwrite(data->labels, sizeof(data->labels), 1, f) != 1 ||
		    fwrite(q, sizeof(float) * KNN_DIM, nq, f) != (size_t)nq || fclose(f))
			return 1;
	}
	knn_cpu_layout(data, refs);
	out = malloc(sizeof(*out) * nq);
	if (!out)
		return 1;
	knn_cpu_predict(refs, data->labels, q, nq, scratch, out);
	f = fopen(argv[3], "wb");
	if (!f || fwrite(out, sizeof(*out), nq, f) != (size_t)nq || fclose(f))
		return 1;
	return 0;
}
