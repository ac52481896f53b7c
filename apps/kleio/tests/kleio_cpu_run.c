// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kleio-cpu-run: Kleio's CPU path (the code the module and the programs
 * run) on any inputs, with every probability out, for the numpy tests
 * (test_kleio.py).
 *
 *   kleio-cpu-run WEIGHTS|seed=S IN OUT [dump=FILE]
 *
 * WEIGHTS: a weights file (kleio_model.h); seed=S: the default weights of
 * seed S.  IN: int32 rows of KLEIO_T classes.  OUT: per sample an int32
 * class, a float probability and KLEIO_V float probabilities.  dump=FILE
 * writes the KLEIO_NPARAMS parameters as raw floats.  Exit 0, 1 on an error
 * (with a message naming it), 2 on bad usage.
 */
#include "lake_app.h"
#include "kleio_io.h"

/* The kit's logging globals (lake_app_env.h), as the programs define them. */
const char *lake_app_log_name = "kleio-cpu-run";
bool lake_app_quiet;

int main(int argc, char **argv)
{
	float *params = malloc(sizeof(float) * KLEIO_NPARAMS), *probs;
	struct kleio_block *blk = malloc(sizeof(*blk));
	struct kleio_out *out;
	const char *why = NULL;
	size_t len = 0, s;
	int32_t *cls;
	FILE *f;
	int n, err;

	if (argc < 4 || argc > 5 || (argc == 5 && strncmp(argv[4], "dump=", 5))) {
		fprintf(stderr, "usage: kleio-cpu-run WEIGHTS|seed=S IN OUT [dump=FILE]\n");
		return 2;
	}
	if (!params || !blk)
		return 1;
	if (!strncmp(argv[1], "seed=", 5)) {
		kleio_default_weights(params, strtoull(argv[1] + 5, NULL, 0));
	} else {
		void *file;

		err = lake_app_read_file(argv[1], &file, &len);
		if (err) {
			fprintf(stderr, "kleio-cpu-run: %s: %s\n", argv[1], strerror(-err));
			return 1;
		}
		err = kleio_parse_weights(file, len, params, &why);
		lake_app_file_free(file);
		if (err) {
			fprintf(stderr, "kleio-cpu-run: %s: %s\n", argv[1], why);
			return 1;
		}
	}
	if (argc == 5) {
		f = fopen(argv[4] + 5, "wb");
		if (!f || fwrite(params, sizeof(float), KLEIO_NPARAMS, f) != KLEIO_NPARAMS || fclose(f))
			return 1;
	}
	if (lake_app_read_file(argv[2], (void **)&cls, &len) || len % (KLEIO_T * sizeof(int32_t))) {
		fprintf(stderr, "kleio-cpu-run: %s: not rows of %d int32 classes\n", argv[2], KLEIO_T);
		return 1;
	}
	n = (int)(len / (KLEIO_T * sizeof(int32_t)));
	out = malloc(sizeof(*out) * n);
	probs = malloc(sizeof(float) * KLEIO_V * n);
	if (!out || !probs)
		return 1;
	kleio_cpu_predict(params, blk, cls, n, out, probs);
	f = fopen(argv[3], "wb");
	if (!f)
		return 1;
	for (s = 0; s < (size_t)n; s++) {
		fwrite(&out[s], sizeof(out[s]), 1, f);
		fwrite(probs + s * KLEIO_V, sizeof(float), KLEIO_V, f);
	}
	return fclose(f) ? 1 : 0;
}
