// SPDX-License-Identifier: GPL-2.0
/*
 * lake_app_prog.c - the kit's program glue: the same models and commands as
 * the kernel module, from the command line.
 *
 *   lake-APP [gpu=0|1] [weights=FILE] [crossover=N]
 *            [xfer=auto|copy|mapped|poll|copy_poll] [variant=NAME]
 *            [models=NAME,...] [quiet=1] [COMMAND key=value...]
 *
 * Settings come first (the module's parameters), then one command of
 * lake_app_run() (default: info), whose results (CSV) go to stdout; logs go
 * to stderr.  One more command, for programs only:
 *
 *   predict app=NAME mode=cpu|gpu|auto batch=N in=FILE out=FILE
 *
 * runs the rows of FILE (raw input rows) in batches of N and writes the raw
 * output rows.  Exit status: 0, 1 (a command failed: -EIO), 2 (bad usage).
 */
#include "lake_app.h"

const char *lake_app_log_name = "lake-app";
bool lake_app_quiet;

static void usage(FILE *f, const char *prog)
{
	const struct lake_app_bundle *b = &lake_app_this;
	unsigned int i;

	fprintf(f, "usage: %s [gpu=0|1] [weights=FILE] [crossover=N] [xfer=auto|copy|mapped|poll|copy_poll]\n"
		   "       %*s [variant=NAME] [models=A,B] [quiet=1]\n"
		   "       %*s [bench|verify|hash|info|set|gpu|predict key=value...]\n"
		   "models:", prog, (int)strlen(prog), "", (int)strlen(prog), "");
	for (i = 0; i < b->nmodels; i++)
		fprintf(f, " %s", b->models[i]->name);
	fprintf(f, "\nsee docs/apps.md\n");
}

static const char *value_of(const char *arg, const char *key)
{
	size_t n = strlen(key);

	return !strncmp(arg, key, n) && arg[n] == '=' ? arg + n + 1 : NULL;
}

/* predict: raw rows from a file, through lake_app_predict(), to a file. */
static int predict(struct lake_app **apps, unsigned int napps, int argc, char **argv)
{
	const char *name = NULL, *inf = NULL, *outf = NULL, *v;
	enum lake_app_mode mode = LAKE_APP_CPU;
	const struct lake_app_model *m = NULL;
	struct lake_app *a = NULL;
	unsigned long batch = 0;
	size_t len = 0, rows, r;
	void *in = NULL;
	u8 *out = NULL;
	FILE *f;
	int i, err;

	for (i = 0; i < argc; i++) {
		if ((v = value_of(argv[i], "app")))
			name = v;
		else if ((v = value_of(argv[i], "in")))
			inf = v;
		else if ((v = value_of(argv[i], "out")))
			outf = v;
		else if ((v = value_of(argv[i], "batch")))
			batch = strtoul(v, NULL, 10);
		else if ((v = value_of(argv[i], "mode")) &&
			 (!strcmp(v, "cpu") || !strcmp(v, "gpu") || !strcmp(v, "auto")))
			mode = !strcmp(v, "cpu") ? LAKE_APP_CPU :
			       !strcmp(v, "gpu") ? LAKE_APP_GPU : LAKE_APP_AUTO;
		else {
			fprintf(stderr, "%s: predict: bad argument '%s'\n", lake_app_log_name, argv[i]);
			return 2;
		}
	}
	for (i = 0; i < (int)napps; i++)
		if (!name || !strcmp(name, lake_app_name(apps[i])))
			a = apps[i];
	if (!a || !inf || !outf) {
		fprintf(stderr, "%s: predict needs app=NAME in=FILE out=FILE\n", lake_app_log_name);
		return 2;
	}
	m = lake_app_this.models[0];
	for (i = 0; i < (int)lake_app_this.nmodels; i++)
		if (!strcmp(lake_app_this.models[i]->name, lake_app_name(a)))
			m = lake_app_this.models[i];
	err = lake_app_read_file(inf, &in, &len);
	if (err) {
		fprintf(stderr, "%s: %s: %s\n", lake_app_log_name, inf, strerror(-err));
		return 2;
	}
	if (!len || len % m->in_row) {
		fprintf(stderr, "%s: %s: %zu bytes is not a whole number of %zu-byte rows\n",
			lake_app_log_name, inf, len, m->in_row);
		lake_app_file_free(in);
		return 2;
	}
	rows = len / m->in_row;
	if (!batch)
		batch = min(rows, (size_t)m->max_batch);
	if (batch > m->max_batch) {
		fprintf(stderr, "%s: batch %lu is above %s's maximum (%u)\n", lake_app_log_name,
			batch, m->name, m->max_batch);
		lake_app_file_free(in);
		return 2;
	}
	out = malloc(rows * m->out_row);
	err = out ? 0 : -ENOMEM;
	for (r = 0; r < rows && !err; r += batch) {
		unsigned int n = min(batch, rows - r);

		err = lake_app_predict(a, (u8 *)in + r * m->in_row, out + r * m->out_row, n, mode);
	}
	lake_app_file_free(in);
	if (err) {
		fprintf(stderr, "%s: predict: %s\n", lake_app_log_name, strerror(-err));
		free(out);
		return 1;
	}
	f = fopen(outf, "wb");
	if (!f || fwrite(out, m->out_row, rows, f) != rows || fclose(f)) {
		fprintf(stderr, "%s: %s: %s\n", lake_app_log_name, outf, strerror(errno));
		free(out);
		return 1;
	}
	free(out);
	return 0;
}

int main(int argc, char **argv)
{
	const struct lake_app_bundle *b = &lake_app_this;
	struct lake_app_opts opts = LAKE_APP_OPTS_DEFAULT;
	const char *models = NULL;
	struct lake_app *apps[8];
	struct lake_app_text out = { 0 };
	char prog[64], cmd[1024] = "";
	unsigned int n = 0, i;
	int a, err = 0, status = 0;
	const char *v;

	snprintf(prog, sizeof(prog), "lake-%s", b->name);
	lake_app_log_name = prog;
	for (a = 1; a < argc && strchr(argv[a], '='); a++) {
		char *end;

		if ((v = value_of(argv[a], "gpu"))) {
			opts.gpu = strcmp(v, "0") != 0;
		} else if ((v = value_of(argv[a], "weights"))) {
			opts.weights = v;
		} else if ((v = value_of(argv[a], "crossover"))) {
			opts.crossover = (int)strtol(v, &end, 10);
			if (*end || opts.crossover < -1) {
				fprintf(stderr, "%s: crossover=%s: -1 (measure), 0 (never the GPU) or a batch size\n",
					prog, v);
				return 2;
			}
		} else if ((v = value_of(argv[a], "xfer"))) {
			int x = lake_app_parse_xfer(v);

			if (x < 0) {
				fprintf(stderr, "%s: xfer=%s: auto, copy, mapped, poll or copy_poll\n",
					prog, v);
				return 2;
			}
			opts.xfer = x;
		} else if ((v = value_of(argv[a], "variant"))) {
			opts.variant = v;
		} else if ((v = value_of(argv[a], "models"))) {
			models = v;
		} else if ((v = value_of(argv[a], "quiet"))) {
			lake_app_quiet = strcmp(v, "0") != 0;
		} else {
			fprintf(stderr, "%s: unknown setting '%s'\n", prog, argv[a]);
			usage(stderr, prog);
			return 2;
		}
	}
	if (a < argc && (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help"))) {
		usage(stdout, prog);
		return 0;
	}
	for (i = 0; i < b->nmodels && n < ARRAY_SIZE(apps); i++) {
		if (!lake_app_selected(models, b->models[i]->name))
			continue;
		apps[n] = lake_app_create(b, b->models[i], &opts, &err);
		if (!apps[n]) {
			fprintf(stderr, "%s: %s cannot be set up: %s\n", prog, b->models[i]->name,
				strerror(-err));
			status = 1;
			goto out;
		}
		n++;
	}
	if (!n) {
		fprintf(stderr, "%s: models=%s: none of this program's models\n", prog, models);
		usage(stderr, prog);
		status = 2;
		goto out;
	}
	if (a < argc && !strcmp(argv[a], "predict")) {
		status = predict(apps, n, argc - a - 1, argv + a + 1);
		goto out;
	}
	for (; a < argc; a++) {
		if (strlen(cmd) + strlen(argv[a]) + 2 > sizeof(cmd)) {
			fprintf(stderr, "%s: command too long\n", prog);
			status = 2;
			goto out;
		}
		strcat(cmd, argv[a]);
		strcat(cmd, " ");
	}
	err = lake_app_run(apps, n, cmd[0] ? cmd : "info", &out);
	if (out.buf)
		fputs(out.buf, stdout);
	if (out.truncated)
		fprintf(stderr, "%s: results truncated\n", prog);
	status = err == -EINVAL ? 2 : err ? 1 : 0;
	lake_app_text_free(&out);
out:
	while (n)
		lake_app_destroy(apps[--n]);
	return status;
}
