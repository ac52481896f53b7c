/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lake_app.h - the workload kit: one ML model source, three builds
 * (kernel module, program on liblake, program on libcuda), a CPU and a GPU
 * path behind predict(), timing as the LAKE paper measured it, and a run
 * interface (debugfs for modules, the command line for programs).
 * docs/apps.md describes it; apps/linnos is a complete example.
 *
 * An app describes each of its models with a struct lake_app_model and
 * collects them in one struct lake_app_bundle (LAKE_APP_BUNDLE), together
 * with its embedded GPU image.  The kit does the rest: CUDA set-up, module
 * load, host and device buffers, the CPU/GPU crossover for auto mode, the
 * choice between copies and mapped host memory, FPU regions, timing and
 * results.
 *
 * For the apps' FPU files: lake_app_fpu.h (float formatting, tolerance
 * comparison); for FPU files and CUDA kernels alike: lake_math.h (expf,
 * sigmoid, sqrt with the same bits on both sides).
 */
#ifndef LAKE_APP_H
#define LAKE_APP_H

#include "lake_app_env.h"

struct lake_app;

/* How predict() runs a batch. */
enum lake_app_mode {
	LAKE_APP_CPU,		/* the CPU path */
	LAKE_APP_GPU,		/* the GPU path (fails if the GPU is not usable) */
	LAKE_APP_AUTO,		/* GPU from the crossover batch size up, else CPU */
};

/*
 * How the GPU path moves inputs and outputs, and how the host learns that
 * the inference is done.
 */
enum lake_app_xfer {
	LAKE_APP_XFER_AUTO,	/* measured at set-up, per batch size */
	LAKE_APP_XFER_COPY,	/* H2D async + launch(es) + synchronous D2H */
	LAKE_APP_XFER_MAPPED,	/* launch(es) on mapped host memory + cuCtxSynchronize */
	LAKE_APP_XFER_POLL,	/* launch(es) on mapped host memory; the host polls the completion word */
	LAKE_APP_XFER_COPY_POLL,	/* H2D async + launch(es) writing mapped host memory; polled */
	LAKE_APP_NXFER
};

/*
 * What a model's gpu_launch() gets: device addresses of B rows, the kernel
 * variant to run and, for the polled transfers, the completion to signal.
 */
struct lake_app_gpu_io {
	CUdeviceptr in;		/* batch rows of input: device memory or mapped host memory */
	CUdeviceptr out;	/* batch rows of output, likewise */
	unsigned int batch;
	unsigned int variant;	/* index into the model's variants */
	/*
	 * The inference's last kernel passes these three to lake_app_signal()
	 * (lake_app_kernels.cuh): done is the completion word in mapped host
	 * memory (0: the host synchronises instead), blocks a counter in
	 * device memory, seq the value to store.
	 */
	CUdeviceptr done;
	CUdeviceptr blocks;
	unsigned int seq;
};

/* One way of a model to compute on the GPU (its kernels and their shapes). */
struct lake_app_variant {
	const char *name;	/* "split": what variant= selects, what results name */
	unsigned int max_batch;	/* the largest batch it serves; 0: the model's maximum */
};

/* Filled by a model's compare(): how its GPU output differs from the CPU's. */
struct lake_app_cmp {
	u64 beyond_tolerance;	/* rows outside the model's stated tolerance */
	u64 class_differs;	/* rows whose class (the decision) differs */
	u64 max_diff_e9;	/* the largest difference seen, in units of 1e-9 */
};

/*
 * One model.  Callbacks marked (FPU) run inside an FPU region when @fpu is
 * set: they live in the app's FPU files and must not sleep, allocate or
 * call CUDA.  The others run in process context and may.
 */
struct lake_app_model {
	const char *name;		/* "linnos+0": what app= selects */
	const char *doc;		/* one line */
	size_t in_row;			/* bytes of one input row */
	size_t out_row;			/* bytes of one output row */
	unsigned int max_batch;		/* rows per predict() at most */
	bool fpu;			/* the CPU path uses floating point */
	unsigned int cpu_chunk;		/* rows per FPU region / between reschedules */
	size_t state_size;		/* bytes of model state, zeroed, lake_app_state() */
	const char *const *kernels;	/* GPU kernels by name, NULL-terminated (lake_app_fn()) */
	/* The last kernel of gpu_launch() calls lake_app_signal(): the polled transfers work. */
	bool signals;
	/*
	 * The GPU path's variants, a NULL name last (NULL: one, "default").
	 * Set-up measures each with each transfer at batch 1, 2, 4, ... and
	 * uses the fastest per batch size; unmeasured, the first that serves
	 * the batch.
	 */
	const struct lake_app_variant *variants;

	/* CPU state (weights): at create, and at fini. */
	int (*init)(struct lake_app *a);
	void (*fini)(struct lake_app *a);
	/* (FPU) Optional: work over the whole batch before its rows. */
	void (*cpu_prepare)(struct lake_app *a, const void *in, unsigned int batch);
	/* (FPU) The CPU path for rows [r0, r1) of a batch of @batch rows. */
	void (*cpu_rows)(struct lake_app *a, const void *in, void *out, unsigned int r0,
			 unsigned int r1, unsigned int batch);
	/* Device state (weights uploaded once); device memory from lake_app_dev_upload(). */
	CUresult (*gpu_init)(struct lake_app *a);
	/*
	 * The GPU path: launch(es) only, asynchronous, on the default stream,
	 * of variant io->variant; the last kernel signals io->done.
	 */
	CUresult (*gpu_launch)(struct lake_app *a, const struct lake_app_gpu_io *io);
	/* (FPU) The benchmark's fixed input, @batch rows. */
	void (*fixed_input)(struct lake_app *a, void *in, unsigned int batch);
	/* (FPU) Random rows from lake_app_rand(@seed). */
	void (*random_input)(struct lake_app *a, void *in, unsigned int batch, u64 *seed);
	/* (FPU) Optional: GPU vs CPU output within tolerance; NULL = must be bit-exact. */
	void (*compare)(struct lake_app *a, const void *cpu, const void *gpu, unsigned int batch,
			struct lake_app_cmp *cmp);
	/* (FPU) Row @r of @out as text ("272198 543598 slow"); returns the length. */
	int (*format_row)(struct lake_app *a, const void *out, unsigned int r, char *buf,
			  size_t len);
};

/* The models of one module or program and their GPU image. */
struct lake_app_bundle {
	const char *name;			/* "linnos" */
	const struct lake_app_model *const *models;
	unsigned int nmodels;
	const unsigned char *image;		/* the embedded fatbin (cuModuleLoadData) */
	const size_t *image_size;		/* 0: built without nvcc, no GPU path */
};

/*
 * Defines lake_app_this, the bundle the kit's module and program glue run:
 *   LAKE_APP_BUNDLE(linnos, linnos_fatbin, &linnos0, &linnos1, &linnos2);
 */
#define LAKE_APP_BUNDLE(app, fatbin, ...)					\
	extern const unsigned char fatbin[];					\
	extern const size_t fatbin##_size;					\
	static const struct lake_app_model *const app##_models[] = { __VA_ARGS__ }; \
	const struct lake_app_bundle lake_app_this = {				\
		.name = #app,							\
		.models = app##_models,						\
		.nmodels = ARRAY_SIZE(app##_models),				\
		.image = fatbin,						\
		.image_size = &fatbin##_size,					\
	}
extern const struct lake_app_bundle lake_app_this;

/*
 * True when @name is in @list, a comma-separated list of model names (NULL
 * or "" or "all": every model): the models= setting of modules and programs.
 */
bool lake_app_selected(const char *list, const char *name);

/* Settings fixed at create (module parameters, or the program's key=value). */
struct lake_app_opts {
	bool gpu;		/* set the GPU path up (default true) */
	int crossover;		/* auto: GPU from this batch up; < 0: measure at init */
	enum lake_app_xfer xfer;
	const char *variant;	/* a variant by name, or NULL: measured (models without it: measured) */
	const char *weights;	/* a weights file, or NULL for the built-in weights */
};

#define LAKE_APP_OPTS_DEFAULT { .gpu = true, .crossover = -1, .xfer = LAKE_APP_XFER_AUTO }

/* An xfer= value ("auto", "copy", "mapped", "poll", "copy_poll") as an enum lake_app_xfer; -1: none. */
int lake_app_parse_xfer(const char *name);

/* Counters: every choice predict() made. */
struct lake_app_counts {
	u64 cpu;		/* batches run on the CPU (any mode) */
	u64 gpu;		/* batches run on the GPU */
	u64 auto_cpu;		/* auto mode chose the CPU */
	u64 auto_gpu;		/* auto mode chose the GPU */
	u64 gpu_failed;		/* GPU runs that returned an error */
	u64 fallback;		/* auto mode fell back to the CPU after a GPU error */
	u64 mapped;		/* GPU runs on mapped host memory (inputs and outputs) */
	u64 copied;		/* GPU runs with copies (of the inputs at least) */
	u64 polled;		/* GPU runs whose completion was polled */
	u64 rows;		/* rows predicted */
};

/*
 * Creates model @m of bundle @b: CPU state, host buffers, and (opts->gpu)
 * the GPU path: cuInit, primary context, the embedded image, device
 * buffers, a check of the GPU's outputs against the CPU's on the fixed
 * input (every variant, every transfer), then the measurement of the
 * crossover and of the fastest variant and transfer per batch size.  A GPU that is missing or unusable is logged and leaves the CPU
 * path (and auto mode, which falls back to it) working.  Returns the app, or
 * NULL with *@err set (-ENOMEM, a bad weights file, ...).
 */
struct lake_app *lake_app_create(const struct lake_app_bundle *b, const struct lake_app_model *m,
				 const struct lake_app_opts *opts, int *err);
void lake_app_destroy(struct lake_app *a);

/* (Re)sets up the GPU path of @a (after lakeD came up, for example). */
int lake_app_gpu_setup(struct lake_app *a);

/*
 * Runs @batch rows (1..max_batch) of @in to @out in @mode.  @in and @out may
 * be anywhere; lake_app_input()/lake_app_output() are the zero-copy ones
 * (the host buffers the GPU path uses).  Returns 0, -EINVAL (bad batch),
 * -ENODEV (GPU mode without a usable GPU) or -EIO (a CUDA error; auto mode
 * falls back to the CPU instead).  One caller at a time per app (serialised
 * by a lock); process context.
 */
int lake_app_predict(struct lake_app *a, const void *in, void *out, unsigned int batch,
		     enum lake_app_mode mode);
void *lake_app_input(struct lake_app *a);
void *lake_app_output(struct lake_app *a);

/* What auto mode uses: GPU for batch >= crossover (0: never). */
unsigned int lake_app_crossover(const struct lake_app *a);
void lake_app_counts(struct lake_app *a, struct lake_app_counts *c);
const char *lake_app_name(const struct lake_app *a);
bool lake_app_gpu_ready(const struct lake_app *a);
/* Why the GPU path is off (or "ready"). */
const char *lake_app_gpu_status(const struct lake_app *a);

/* ---- for models ---------------------------------------------------------- */

void *lake_app_state(struct lake_app *a);
const char *lake_app_weights_path(const struct lake_app *a);
/* The kernel named kernels[@i] of the model. */
CUfunction lake_app_fn(struct lake_app *a, unsigned int i);
/* Device memory of @size bytes holding @src (NULL: zeroed); freed by the kit. */
CUresult lake_app_dev_upload(struct lake_app *a, CUdeviceptr *d, const void *src, size_t size);
/* cuLaunchKernel of kernels[@i] on the default stream, 1-D grid and block. */
CUresult lake_app_launch(struct lake_app *a, unsigned int i, unsigned int grid,
			 unsigned int block, unsigned int shmem, void **params);

/* splitmix64: the kit's deterministic random numbers (inputs, tests). */
static inline u64 lake_app_rand(u64 *s)
{
	u64 z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * Finds "# NAME ROWSxCOLS" in a weights text (the format of apps/<app>/data)
 * and parses its ROWS*COLS integers into @dst.  Returns 0, -ENOENT (no such
 * array), -EINVAL (other dimensions, or not enough numbers: *@why says).
 */
int lake_app_parse_s64(const char *text, size_t len, const char *name, unsigned int rows,
		       unsigned int cols, s64 *dst, const char **why);
/* The "# model NAME" line of a weights text, copied into @buf ("" if none). */
void lake_app_weights_model(const char *text, size_t len, char *buf, size_t buflen);

/*
 * Checks a binary weights file (Kleio's, KNN's): @len must be @size; it
 * starts with the 8 bytes of @magic, then @nwords little-endian u32 words
 * equal to @words; the @nfloats floats at byte @floats must be finite.
 * Returns 0, or -EINVAL with *@why naming the failed check.  Integer code
 * (the floats' bits): no FPU region needed.
 */
int lake_app_check_binary(const void *file, size_t len, size_t size, const char *magic,
			  const u32 *words, unsigned int nwords, size_t floats, size_t nfloats,
			  const char **why);

/* Fixed-point text: @v in units of 10^-@decimals, e.g. (500133, 6) -> "0.500133". */
int lake_app_fmt_fixed(char *buf, size_t len, s64 v, unsigned int decimals);

/* ---- the run interface ------------------------------------------------------ */

/* A growing text buffer (the results CSV). */
struct lake_app_text {
	char *buf;
	size_t len, cap;
	bool truncated;
};

__printf(2, 3) void lake_app_printf(struct lake_app_text *t, const char *fmt, ...);
void lake_app_text_free(struct lake_app_text *t);

/*
 * Runs one command over @apps (those of the bundle that were created) and
 * writes its results as CSV to @out.  Commands (docs/apps.md):
 *
 *   bench  app=NAME|all mode=cpu|gpu|auto|all[,...] batch=LIST iters=N warmup=N
 *          budget_ms=MS min_iters=N input=fixed|random seed=S
 *   verify app=... batch=LIST rows=N seed=S      GPU vs CPU
 *   hash   app=... mode=cpu|gpu|auto batch=LIST rows=N seed=S
 *   info   app=...
 *   set    app=... crossover=N xfer=auto|copy|mapped|poll|copy_poll variant=auto|NAME
 *   gpu    app=...                               set the GPU path up again
 *
 * LIST is "1,2,4" or "1..1024" (the powers of two in between).  Returns 0,
 * -EINVAL (a bad command: the results say why) or -EIO (verify found
 * differences, or a path failed).
 */
int lake_app_run(struct lake_app *const *apps, unsigned int napps, const char *cmd,
		 struct lake_app_text *out);

#endif /* LAKE_APP_H */
