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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "knn_io.h"

static void *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	void *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET)) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

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
		void *file = read_all(argv[1], &len);

		if (!file) {
			fprintf(stderr, "knn-cpu-run: %s: %s\n", argv[1], strerror(errno));
			return 1;
		}
		if (knn_parse_data(file, len, data, &why)) {
			fprintf(stderr, "knn-cpu-run: %s: %s\n", argv[1], why);
			return 1;
		}
		free(file);
	}
	if (!strncmp(argv[2], "queries=", 8)) {
		nq = atoi(argv[2] + 8);
		q = malloc(sizeof(float) * KNN_DIM * (nq > 0 ? nq : 1));
		if (!q || nq < 1)
			return 2;
		knn_default_queries(q, nq, seed);
	} else {
		q = read_all(argv[2], &len);
		if (!q || len % (KNN_DIM * sizeof(float))) {
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
