// SPDX-License-Identifier: GPL-2.0
/*
 * lake_app.c - the workload kit's core: set-up of the CPU and GPU paths,
 * predict(), the auto-mode policy and its measurement, and the run
 * commands (bench, verify, hash, info, set, gpu) with their CSV results.
 *
 * The same file builds into kernel modules and user programs
 * (lake_app_env.h hides the difference).  It uses no floating point: the
 * kernel builds it without SSE; the models' floating-point code is in their
 * FPU files and runs inside lake_app_fpu_begin/end.
 */
#include "lake_app.h"

#ifdef __KERNEL__
#include <linux/sort.h>
#endif

#define LAKE_APP_MAX_FNS	16
#define LAKE_APP_MAX_DEV	16
#define LAKE_APP_MAX_VARIANTS	4
#define LAKE_APP_NPOW		12	/* batch sizes 1, 2, ..., 2048 */
#define LAKE_APP_TUNE_RUNS	15
#define LAKE_APP_MAX_ITERS	100000
#define LAKE_APP_TEXT_MAX	(4u << 20)
/* A polled inference: poll this long, then cuCtxSynchronize (a failed launch, or a long one). */
#define LAKE_APP_POLL_NS	2000000ull
/* CPU timings: each sample at least this long (calls timed together), for the clock's sake. */
#define LAKE_APP_SAMPLE_NS	10000ull
#define LAKE_APP_MAX_GROUP	10000u

/* One way to run a batch on the GPU: a variant of the model and a transfer. */
struct lake_app_way {
	u8 variant;
	u8 xfer;		/* enum lake_app_xfer, never AUTO */
};

struct lake_app {
	const struct lake_app_bundle *b;
	const struct lake_app_model *m;
	struct lake_app_opts opts;
	void *state;
	lake_app_lock_t lock;

	struct lake_app_buf in, out;	/* host buffers: what the GPU path reads and writes */
	struct lake_app_buf done;	/* host buffer: the polled transfers' completion word */
	void *ref_out;			/* the CPU's outputs when comparing */
	void *way_out;			/* the first way's outputs when comparing ways */
	u8 *row_exact;			/* verify: rows bit-exact in every way so far */

	/* The GPU path. */
	bool cuda_up;			/* cuInit and the primary context worked */
	bool gpu_ready;			/* ... and everything else, checked */
	bool xfer_ok[LAKE_APP_NXFER];	/* the transfers this path can use (COPY: always) */
	char gpu_why[192];
	char xfer_why[LAKE_APP_NXFER][128];	/* why a transfer is off */
	CUdevice dev;
	CUcontext ctx;
	CUmodule mod;
	CUfunction fn[LAKE_APP_MAX_FNS];
	CUfunction empty;
	CUdeviceptr d_in, d_out;	/* device buffers (copies) */
	CUdeviceptr m_in, m_out;	/* device addresses of the host buffers (mapped) */
	CUdeviceptr m_done, d_blocks;	/* the completion word (mapped), the block counter */
	u32 seq;			/* the last completion value a launch signalled */
	CUdeviceptr dev_mem[LAKE_APP_MAX_DEV];
	unsigned int ndev;
	CUevent ev[2];
	bool events;

	/* Policy. */
	unsigned int nvariants;
	int variant;			/* the variant= setting's index; -1: measured */
	unsigned int crossover;		/* auto: GPU for batch >= crossover; 0 = never */
	bool crossover_measured;
	bool ways_measured;		/* pick[] measured (else the defaults) */
	struct lake_app_way pick[LAKE_APP_NPOW];	/* per batch size 2^k: the fastest way */
	u64 tune_cpu[LAKE_APP_NPOW];
	u64 tune_way[LAKE_APP_NPOW][LAKE_APP_MAX_VARIANTS][LAKE_APP_NXFER];

	struct lake_app_counts counts;
};

static const char *const lake_app_xfer_names[LAKE_APP_NXFER] = {
	[LAKE_APP_XFER_AUTO] = "auto",
	[LAKE_APP_XFER_COPY] = "copy",
	[LAKE_APP_XFER_MAPPED] = "mapped",
	[LAKE_APP_XFER_POLL] = "poll",
	[LAKE_APP_XFER_COPY_POLL] = "copy_poll",
};

/* ---- small helpers ------------------------------------------------------------ */

static const char *lake_app_cu_name(CUresult r)
{
	const char *s = NULL;

	if (cuGetErrorName(r, &s) != CUDA_SUCCESS || !s)
		return "an unknown CUresult";
	return s;
}

static unsigned int lake_app_log2(unsigned int b)
{
	unsigned int k = 0;

	while ((1u << (k + 1)) <= b && k + 1 < LAKE_APP_NPOW)
		k++;
	return k;
}

static int lake_app_cmp_u64(const void *x, const void *y)
{
	u64 a = *(const u64 *)x, b = *(const u64 *)y;

	return a < b ? -1 : a > b;
}

static void lake_app_sort(u64 *v, unsigned int n)
{
	unsigned int i, j;

	/* Insertion sort for the few samples of tuning; heapsort otherwise. */
#ifdef __KERNEL__
	if (n > 32) {
		sort(v, n, sizeof(*v), lake_app_cmp_u64, NULL);
		return;
	}
#else
	if (n > 32) {
		qsort(v, n, sizeof(*v), lake_app_cmp_u64);
		return;
	}
#endif
	for (i = 1; i < n; i++) {
		u64 x = v[i];

		for (j = i; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

static u64 lake_app_median(u64 *v, unsigned int n)
{
	lake_app_sort(v, n);
	return v[n / 2];
}

static u64 lake_app_fnv(u64 h, const void *p, size_t n)
{
	const u8 *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#define LAKE_APP_FNV_INIT 0xcbf29ce484222325ull

/* The bits of an IEEE single (a CUDA event time in ms) as integer ns, no FPU. */
static u64 lake_app_ms_bits_to_ns(u32 bits)
{
	u32 exp = (bits >> 23) & 0xff;
	u64 mant = (bits & 0x7fffff) | 0x800000;
	int shift;

	if (bits >> 31 || exp == 0 || exp == 0xff)
		return 0;
	/* value = mant * 2^(exp - 150) ms = mant * 10^6 * 2^(exp - 150) ns */
	shift = (int)exp - 150;
	mant *= 1000000;
	if (shift >= 0)
		return shift > 19 ? U64_MAX : mant << shift;
	return shift < -63 ? 0 : mant >> -shift;
}

int lake_app_fmt_fixed(char *buf, size_t len, s64 v, unsigned int decimals)
{
	u64 scale = 1, a;
	unsigned int i;

	for (i = 0; i < decimals; i++)
		scale *= 10;
	a = v < 0 ? -(u64)v : (u64)v;
	if (!decimals)
		return snprintf(buf, len, "%s%llu", v < 0 ? "-" : "", (unsigned long long)a);
	return snprintf(buf, len, "%s%llu.%0*llu", v < 0 ? "-" : "", (unsigned long long)(a / scale),
			(int)decimals, (unsigned long long)(a % scale));
}

/* ---- text ---------------------------------------------------------------------- */

void lake_app_printf(struct lake_app_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = t->cap - t->len;

		if (t->buf) {
			va_start(ap, fmt);
			n = vsnprintf(t->buf + t->len, room, fmt, ap);
			va_end(ap);
			if (n < 0)
				return;
			if ((size_t)n < room) {
				t->len += n;
				return;
			}
			t->buf[t->len] = 0;
		}
		if (t->cap >= LAKE_APP_TEXT_MAX) {
			t->truncated = true;
			return;
		} else {
			size_t cap = t->cap ? t->cap * 2 : 16384;
			char *nb = lake_app_zalloc(cap);

			if (!nb) {
				t->truncated = true;
				return;
			}
			if (t->buf)
				memcpy(nb, t->buf, t->len + 1);
			lake_app_free(t->buf);
			t->buf = nb;
			t->cap = cap;
		}
	}
}

void lake_app_text_free(struct lake_app_text *t)
{
	lake_app_free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
	t->truncated = false;
}

/* ---- weights files -------------------------------------------------------------------- */

static bool lake_app_isspace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The start of the line after the header "# @name RxC", or NULL; dims in *r, *c. */
static const char *lake_app_find_array(const char *t, const char *end, const char *name,
				       unsigned long *r, unsigned long *c)
{
	size_t nl = strlen(name);
	const char *p = t;

	while (p < end) {
		const char *eol = memchr(p, '\n', end - p);

		if (!eol)
			eol = end;
		if (eol - p > (long)nl + 2 && p[0] == '#' && p[1] == ' ' &&
		    !memcmp(p + 2, name, nl) && p[2 + nl] == ' ') {
			const char *q = p + 3 + nl;

			*r = 0;
			*c = 0;
			while (q < eol && *q >= '0' && *q <= '9' && *r < 1000000)
				*r = *r * 10 + (*q++ - '0');
			if (q < eol && *q == 'x') {
				q++;
				while (q < eol && *q >= '0' && *q <= '9' && *c < 1000000)
					*c = *c * 10 + (*q++ - '0');
			}
			return eol < end ? eol + 1 : end;
		}
		p = eol + 1;
	}
	return NULL;
}

int lake_app_parse_s64(const char *text, size_t len, const char *name, unsigned int rows,
		       unsigned int cols, s64 *dst, const char **why)
{
	const char *end = text + len, *p;
	unsigned long r, c, n = 0, want = (unsigned long)rows * cols;

	p = lake_app_find_array(text, end, name, &r, &c);
	if (!p) {
		*why = "no such array";
		return -ENOENT;
	}
	if (r != rows || c != cols) {
		*why = "its dimensions are not the model's";
		return -EINVAL;
	}
	while (n < want) {
		u64 v = 0;
		bool neg = false, digits = false;

		while (p < end && lake_app_isspace(*p))
			p++;
		if (p == end || *p == '#')
			break;
		if (*p == '-' || *p == '+')
			neg = *p++ == '-';
		while (p < end && *p >= '0' && *p <= '9') {
			if (v > (U64_MAX - 9) / 10) {
				*why = "a number out of range";
				return -EINVAL;
			}
			v = v * 10 + (*p++ - '0');
			digits = true;
		}
		if (!digits || (p < end && !lake_app_isspace(*p))) {
			*why = "something that is not an integer";
			return -EINVAL;
		}
		if (v > (neg ? (u64)1 << 63 : ((u64)1 << 63) - 1)) {
			*why = "a number out of the int64 range";
			return -EINVAL;
		}
		dst[n++] = neg ? (s64)(0 - v) : (s64)v;
	}
	if (n < want) {
		*why = "fewer numbers than its dimensions say";
		return -EINVAL;
	}
	return 0;
}

void lake_app_weights_model(const char *text, size_t len, char *buf, size_t buflen)
{
	const char *end = text + len, *p = text;
	static const char key[] = "# model ";

	buf[0] = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', end - p);
		size_t n;

		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > sizeof(key) - 1 && !memcmp(p, key, sizeof(key) - 1)) {
			p += sizeof(key) - 1;
			n = min((size_t)(eol - p), buflen - 1);
			while (n && lake_app_isspace(p[n - 1]))
				n--;
			memcpy(buf, p, n);
			buf[n] = 0;
			return;
		}
		p = eol + 1;
	}
}

int lake_app_check_binary(const void *file, size_t len, size_t size, const char *magic,
			  const u32 *words, unsigned int nwords, size_t floats, size_t nfloats,
			  const char **why)
{
	const u8 *p = file;
	unsigned int i;
	size_t k;
	u32 v;

	if (len != size) {
		*why = "wrong size for this model";
		return -EINVAL;
	}
	if (size < 8 + 4 * (size_t)nwords || memcmp(p, magic, 8)) {
		*why = "not this model's file (wrong magic)";
		return -EINVAL;
	}
	for (i = 0; i < nwords; i++) {
		memcpy(&v, p + 8 + 4 * i, sizeof(v));	/* little endian, as the host */
		if (v != words[i]) {
			*why = "wrong shape in the header (not this model's dimensions)";
			return -EINVAL;
		}
	}
	for (k = 0; k < nfloats; k++) {
		memcpy(&v, p + floats + 4 * k, sizeof(v));
		if ((v & 0x7f800000u) == 0x7f800000u) {
			*why = "a value is infinite or NaN";
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- the two paths ----------------------------------------------------------------------- */

void *lake_app_state(struct lake_app *a)
{
	return a->state;
}

const char *lake_app_weights_path(const struct lake_app *a)
{
	return a->opts.weights;
}

const char *lake_app_name(const struct lake_app *a)
{
	return a->m->name;
}

bool lake_app_gpu_ready(const struct lake_app *a)
{
	return a->gpu_ready;
}

const char *lake_app_gpu_status(const struct lake_app *a)
{
	return a->gpu_ready ? "ready" : a->gpu_why;
}

unsigned int lake_app_crossover(const struct lake_app *a)
{
	return a->crossover;
}

void *lake_app_input(struct lake_app *a)
{
	return a->in.p;
}

void *lake_app_output(struct lake_app *a)
{
	return a->out.p;
}

void lake_app_counts(struct lake_app *a, struct lake_app_counts *c)
{
	lake_app_lock(&a->lock);
	*c = a->counts;
	lake_app_unlock(&a->lock);
}

CUfunction lake_app_fn(struct lake_app *a, unsigned int i)
{
	return i < LAKE_APP_MAX_FNS ? a->fn[i] : NULL;
}

CUresult lake_app_dev_upload(struct lake_app *a, CUdeviceptr *d, const void *src, size_t size)
{
	CUresult r;

	*d = 0;
	if (a->ndev == LAKE_APP_MAX_DEV)
		return CUDA_ERROR_OUT_OF_MEMORY;
	r = cuMemAlloc(d, size ? size : 1);
	if (r)
		return r;
	a->dev_mem[a->ndev++] = *d;
	if (src)
		r = cuMemcpyHtoD(*d, src, size);
	else
		r = cuMemsetD8(*d, 0, size ? size : 1);
	return r;
}

CUresult lake_app_launch(struct lake_app *a, unsigned int i, unsigned int grid,
			 unsigned int block, unsigned int shmem, void **params)
{
	CUfunction f = lake_app_fn(a, i);

	if (!f)
		return CUDA_ERROR_INVALID_HANDLE;
	return cuLaunchKernel(f, grid, 1, 1, block, 1, 1, shmem, NULL, params, NULL);
}

/* The CPU path: FPU regions of cpu_chunk rows, a rescheduling point between. */
static void lake_app_cpu_run(struct lake_app *a, const void *in, void *out, unsigned int batch)
{
	const struct lake_app_model *m = a->m;
	unsigned int r0, r1, chunk = m->cpu_chunk ? m->cpu_chunk : batch;

	if (m->fpu)
		lake_app_fpu_begin();
	if (m->cpu_prepare)
		m->cpu_prepare(a, in, batch);
	for (r0 = 0; r0 < batch; r0 = r1) {
		r1 = r0 + min(chunk, batch - r0);
		m->cpu_rows(a, in, out, r0, r1, batch);
		if (r1 < batch) {
			if (m->fpu)
				lake_app_fpu_end();
			lake_app_yield();
			if (m->fpu)
				lake_app_fpu_begin();
		}
	}
	if (m->fpu)
		lake_app_fpu_end();
}

/* Callbacks that touch the model's numbers run inside an FPU region. */
static void lake_app_input_fill(struct lake_app *a, void *in, unsigned int batch, u64 *seed)
{
	if (a->m->fpu)
		lake_app_fpu_begin();
	if (seed)
		a->m->random_input(a, in, batch, seed);
	else
		a->m->fixed_input(a, in, batch);
	if (a->m->fpu)
		lake_app_fpu_end();
}

static int lake_app_format(struct lake_app *a, const void *out, unsigned int r, char *buf,
			   size_t len)
{
	int n;

	buf[0] = 0;
	if (!a->m->format_row)
		return 0;
	if (a->m->fpu)
		lake_app_fpu_begin();
	n = a->m->format_row(a, out, r, buf, len);
	if (a->m->fpu)
		lake_app_fpu_end();
	return n;
}

/* Bit-exact rows, and the model's own comparison (tolerance, classes). */
static u64 lake_app_compare(struct lake_app *a, const void *cpu, const void *gpu,
			    unsigned int batch, struct lake_app_cmp *cmp)
{
	size_t w = a->m->out_row;
	u64 exact = 0;
	unsigned int r;

	for (r = 0; r < batch; r++)
		exact += !memcmp((const u8 *)cpu + r * w, (const u8 *)gpu + r * w, w);
	if (a->m->compare) {
		if (a->m->fpu)
			lake_app_fpu_begin();
		a->m->compare(a, cpu, gpu, batch, cmp);
		if (a->m->fpu)
			lake_app_fpu_end();
	} else {
		cmp->beyond_tolerance += batch - exact;
		cmp->class_differs += batch - exact;
	}
	return exact;
}

static const char *lake_app_variant_name(const struct lake_app *a, unsigned int v)
{
	return a->m->variants ? a->m->variants[v].name : "default";
}

/* Variant @v serves batches of @batch rows. */
static bool lake_app_variant_serves(const struct lake_app *a, unsigned int v, unsigned int batch)
{
	unsigned int max;

	if (v >= a->nvariants)
		return false;
	max = a->m->variants ? a->m->variants[v].max_batch : 0;
	return !max || batch <= max;
}

/* ... and the variant= setting allows it. */
static bool lake_app_variant_ok(const struct lake_app *a, unsigned int v, unsigned int batch)
{
	return lake_app_variant_serves(a, v, batch) &&
	       (a->variant < 0 || v == (unsigned int)a->variant);
}

/* Transfer @x works here (and the xfer= setting allows it). */
static bool lake_app_xfer_usable(const struct lake_app *a, unsigned int x)
{
	return a->xfer_ok[x] && (a->opts.xfer == LAKE_APP_XFER_AUTO || a->opts.xfer == x);
}

static bool lake_app_xfer_polled(unsigned int x)
{
	return x == LAKE_APP_XFER_POLL || x == LAKE_APP_XFER_COPY_POLL;
}

/*
 * Waits for the completion word to reach @seq: polls it (no remoted call,
 * no system call), for LAKE_APP_POLL_NS at most, then synchronises (a
 * failed launch reports its error there; a long inference is simply done
 * then).  The kernels must have signalled by the time the GPU is idle.
 */
static CUresult lake_app_wait(struct lake_app *a, u32 seq)
{
	const u32 *done = a->done.p;
	u64 t0 = 0;
	unsigned int i;
	CUresult r;

	for (i = 1;; i++) {
		if (lake_app_load_acquire(done) == seq)
			return CUDA_SUCCESS;
		if (!(i & 255)) {
			u64 now = lake_app_now_ns();

			if (!t0)
				t0 = now;
			else if (now - t0 > LAKE_APP_POLL_NS)
				break;
			lake_app_yield();
		}
		lake_app_cpu_relax();
	}
	r = cuCtxSynchronize();
	if (r || lake_app_load_acquire(done) == seq)
		return r;
	/*
	 * Idle, and no signal: the kernels did not run as they should.  The
	 * block counter may be left counting: zero it for the next launch.
	 */
	lake_app_warn("%s: the GPU is idle but the inference did not signal its completion (word %u, expected %u)\n",
		      a->m->name, lake_app_load_acquire(done), seq);
	r = cuMemsetD8(a->d_blocks, 0, 64);
	return r ? r : CUDA_ERROR_UNKNOWN;
}

/* The inputs in a->in.p; the outputs to a->out.p, the way @w says. */
static CUresult lake_app_gpu_run(struct lake_app *a, unsigned int batch, struct lake_app_way w)
{
	struct lake_app_gpu_io io = { .batch = batch, .variant = w.variant };
	bool polled = lake_app_xfer_polled(w.xfer);
	CUresult r = CUDA_SUCCESS;

	io.in = w.xfer == LAKE_APP_XFER_MAPPED || w.xfer == LAKE_APP_XFER_POLL ? a->m_in : a->d_in;
	io.out = w.xfer == LAKE_APP_XFER_COPY ? a->d_out : a->m_out;
	if (polled) {
		if (!++a->seq)
			a->seq = 1;	/* 0: the word's value before any signal */
		io.done = a->m_done;
		io.blocks = a->d_blocks;
		io.seq = a->seq;
	}
	if (io.in == a->d_in)
		r = cuMemcpyHtoDAsync(a->d_in, a->in.p, batch * a->m->in_row, NULL);
	if (!r)
		r = a->m->gpu_launch(a, &io);
	if (r)
		return r;
	switch (w.xfer) {
	case LAKE_APP_XFER_COPY:
		return cuMemcpyDtoH(a->out.p, a->d_out, batch * a->m->out_row);
	case LAKE_APP_XFER_MAPPED:
		return cuCtxSynchronize();
	default:
		return lake_app_wait(a, io.seq);
	}
}

/* The way to run @batch rows: the measured pick of its size class, as the settings allow. */
static struct lake_app_way lake_app_way_for(const struct lake_app *a, unsigned int batch)
{
	struct lake_app_way w = a->pick[lake_app_log2(batch)];
	unsigned int v;

	if (!lake_app_variant_ok(a, w.variant, batch)) {
		for (v = 0; v < a->nvariants && !lake_app_variant_ok(a, v, batch); v++)
			;
		/* None serves it (a variant= setting beyond its batch): the model's widest. */
		if (v == a->nvariants)
			for (v = 0; v + 1 < a->nvariants && a->m->variants[v].max_batch; v++)
				;
		w.variant = v;
	}
	if (!lake_app_xfer_usable(a, w.xfer))
		w.xfer = a->opts.xfer != LAKE_APP_XFER_AUTO && a->xfer_ok[a->opts.xfer] ?
			 a->opts.xfer : LAKE_APP_XFER_COPY;
	return w;
}

static bool lake_app_auto_gpu(const struct lake_app *a, unsigned int batch)
{
	return a->gpu_ready && a->crossover && batch >= a->crossover;
}

/* predict() with the app's lock held. */
static int lake_app_predict_locked(struct lake_app *a, const void *in, void *out,
				   unsigned int batch, enum lake_app_mode mode)
{
	bool gpu = false;
	int ret = 0;

	if (!batch || batch > a->m->max_batch || !in || !out)
		return -EINVAL;
	switch (mode) {
	case LAKE_APP_AUTO:
		gpu = lake_app_auto_gpu(a, batch);
		if (gpu)
			a->counts.auto_gpu++;
		else
			a->counts.auto_cpu++;
		break;
	case LAKE_APP_GPU:
		if (!a->gpu_ready) {
			return -ENODEV;
		}
		gpu = true;
		break;
	case LAKE_APP_CPU:
		break;
	default:
		return -EINVAL;
	}
	if (gpu) {
		struct lake_app_way w = lake_app_way_for(a, batch);
		CUresult r;

		if (in != a->in.p)
			memcpy(a->in.p, in, batch * a->m->in_row);
		r = lake_app_gpu_run(a, batch, w);
		if (!r) {
			a->counts.gpu++;
			if (w.xfer == LAKE_APP_XFER_MAPPED || w.xfer == LAKE_APP_XFER_POLL)
				a->counts.mapped++;
			else
				a->counts.copied++;
			if (lake_app_xfer_polled(w.xfer))
				a->counts.polled++;
			if (out != a->out.p)
				memcpy(out, a->out.p, batch * a->m->out_row);
			goto done;
		}
		a->counts.gpu_failed++;
		if (mode != LAKE_APP_AUTO)
			return -EIO;
		a->counts.fallback++;
	}
	lake_app_cpu_run(a, in, out, batch);
	a->counts.cpu++;
done:
	a->counts.rows += batch;
	return ret;
}

int lake_app_predict(struct lake_app *a, const void *in, void *out, unsigned int batch,
		     enum lake_app_mode mode)
{
	int ret;

	lake_app_lock(&a->lock);
	ret = lake_app_predict_locked(a, in, out, batch, mode);
	lake_app_unlock(&a->lock);
	return ret;
}

/* ---- set-up -------------------------------------------------------------------------------- */

static __printf(2, 3) void lake_app_gpu_off(struct lake_app *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->gpu_why, sizeof(a->gpu_why), fmt, ap);
	va_end(ap);
	a->gpu_ready = false;
	lake_app_info("%s: GPU path off: %s; the CPU path works, auto mode uses it\n", a->m->name,
		      a->gpu_why);
}

/* Host buffers: (re)allocated pinned once CUDA is up in the direct build. */
static int lake_app_host_buffers(struct lake_app *a)
{
	const struct lake_app_model *m = a->m;
	int err;

#if !defined(__KERNEL__) && defined(LAKE_APP_DIRECT)
	if (a->in.p && a->in.pinned == a->cuda_up)
		return 0;
	lake_app_host_free(&a->in);
	lake_app_host_free(&a->out);
	lake_app_host_free(&a->done);
#else
	if (a->in.p)
		return 0;
#endif
	err = lake_app_host_alloc(&a->in, m->max_batch * m->in_row, a->cuda_up);
	if (!err)
		err = lake_app_host_alloc(&a->out, m->max_batch * m->out_row, a->cuda_up);
	if (!err)
		err = lake_app_host_alloc(&a->done, 64, a->cuda_up);
	if (err)
		lake_app_warn("%s: no room for %zu + %zu bytes of host buffers%s\n", m->name,
			      m->max_batch * m->in_row, m->max_batch * m->out_row,
#ifdef __KERNEL__
			      " in lakeShm (see lake.ko's arena_mb)"
#else
			      ""
#endif
			);
	return err;
}

static void lake_app_gpu_teardown(struct lake_app *a)
{
	unsigned int i;

	a->gpu_ready = false;
	memset(a->xfer_ok, 0, sizeof(a->xfer_ok));
	if (a->events) {
		cuEventDestroy(a->ev[0]);
		cuEventDestroy(a->ev[1]);
		a->events = false;
	}
	for (i = 0; i < a->ndev; i++)
		cuMemFree(a->dev_mem[i]);
	a->ndev = 0;
	a->d_in = a->d_out = a->m_in = a->m_out = a->m_done = a->d_blocks = 0;
	if (a->mod)
		cuModuleUnload(a->mod);
	a->mod = NULL;
	memset(a->fn, 0, sizeof(a->fn));
	a->empty = NULL;
	if (a->cuda_up) {
#if !defined(__KERNEL__) && defined(LAKE_APP_DIRECT)
		/* Pinned buffers go before their context. */
		lake_app_host_free(&a->in);
		lake_app_host_free(&a->out);
		lake_app_host_free(&a->done);
#endif
		cuDevicePrimaryCtxRelease(a->dev);
		a->cuda_up = false;
	}
}

static const char *const lake_app_xfer_doc[LAKE_APP_NXFER] = {
	[LAKE_APP_XFER_COPY] = "copies",
	[LAKE_APP_XFER_MAPPED] = "mapped host memory",
	[LAKE_APP_XFER_POLL] = "mapped host memory, completion polled",
	[LAKE_APP_XFER_COPY_POLL] = "inputs copied, outputs to mapped host memory, completion polled",
};

static __printf(3, 4) void lake_app_xfer_off(struct lake_app *a, unsigned int x,
					     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->xfer_why[x], sizeof(a->xfer_why[x]), fmt, ap);
	va_end(ap);
	a->xfer_ok[x] = false;
	lake_app_info("%s: GPU transfers by %s off: %s\n", a->m->name, lake_app_xfer_doc[x],
		      a->xfer_why[x]);
}

/*
 * The GPU's outputs on the fixed input must be the CPU's, for every
 * variant (at batch 1, 7 and the largest it serves) and every transfer.
 * Copies failing turn the GPU path off (a kernel that computes something
 * else); another transfer failing turns that transfer off.
 */
static bool lake_app_gpu_check(struct lake_app *a)
{
	static const unsigned int sizes[] = { 1, 7, 0 };
	unsigned int i, v, x;

	for (x = LAKE_APP_XFER_COPY; x < LAKE_APP_NXFER; x++) {
		for (v = 0; v < a->nvariants && a->xfer_ok[x]; v++) {
			unsigned int max = a->m->variants && a->m->variants[v].max_batch ?
					   a->m->variants[v].max_batch : a->m->max_batch;

			for (i = 0; i < ARRAY_SIZE(sizes) && a->xfer_ok[x]; i++) {
				unsigned int batch = sizes[i] ? min(sizes[i], max) : max;
				struct lake_app_way w = { .variant = v, .xfer = x };
				struct lake_app_cmp cmp = { 0 };
				CUresult r;

				lake_app_input_fill(a, a->in.p, batch, NULL);
				lake_app_cpu_run(a, a->in.p, a->ref_out, batch);
				memset(a->out.p, 0, batch * a->m->out_row);
				r = lake_app_gpu_run(a, batch, w);
				if (!r)
					lake_app_compare(a, a->ref_out, a->out.p, batch, &cmp);
				if (x != LAKE_APP_XFER_COPY) {
					if (r)
						lake_app_xfer_off(a, x, "variant %s, batch %u: %s",
								  lake_app_variant_name(a, v), batch,
								  lake_app_cu_name(r));
					else if (cmp.beyond_tolerance || cmp.class_differs)
						lake_app_xfer_off(a, x, "variant %s, batch %u: outputs differ from the CPU's",
								  lake_app_variant_name(a, v), batch);
					continue;
				}
				if (r) {
					lake_app_gpu_off(a, "the first run (variant %s, batch %u) failed with %s",
							 lake_app_variant_name(a, v), batch,
							 lake_app_cu_name(r));
					return false;
				}
				if (cmp.beyond_tolerance || cmp.class_differs) {
					lake_app_gpu_off(a, "its outputs differ from the CPU's on the fixed input (variant %s, batch %u: %llu rows beyond tolerance): a kernel that computes something else, or lakeD's test double",
							 lake_app_variant_name(a, v), batch,
							 (unsigned long long)cmp.beyond_tolerance);
					return false;
				}
			}
		}
	}
	return true;
}

/* One call of the CPU path; repeated @group times per sample (short calls, for the clock). */
static unsigned int lake_app_group(u64 once_ns)
{
	u64 k = LAKE_APP_SAMPLE_NS / (once_ns ? once_ns : 1);

	return k < 1 ? 1 : k > LAKE_APP_MAX_GROUP ? LAKE_APP_MAX_GROUP : (unsigned int)k;
}

static u64 lake_app_time_cpu(struct lake_app *a, unsigned int batch, unsigned int runs,
			     u64 once_ns)
{
	unsigned int i, j, group = lake_app_group(once_ns);
	u64 t[LAKE_APP_TUNE_RUNS];

	for (i = 0; i < runs + 2; i++) {
		u64 t0 = lake_app_now_ns();

		for (j = 0; j < group; j++)
			lake_app_cpu_run(a, a->in.p, a->ref_out, batch);
		if (i >= 2)
			t[i - 2] = (lake_app_now_ns() - t0) / group;
	}
	return lake_app_median(t, runs);
}

static u64 lake_app_time_gpu(struct lake_app *a, unsigned int batch, struct lake_app_way w)
{
	u64 t[LAKE_APP_TUNE_RUNS];
	unsigned int i;

	for (i = 0; i < LAKE_APP_TUNE_RUNS + 3; i++) {
		u64 t0 = lake_app_now_ns();

		if (lake_app_gpu_run(a, batch, w))
			return U64_MAX;
		if (i >= 3)
			t[i - 3] = lake_app_now_ns() - t0;
	}
	return lake_app_median(t, LAKE_APP_TUNE_RUNS);
}

/* Without measurements: per size, the first variant that serves it, the set transfer. */
static void lake_app_default_picks(struct lake_app *a)
{
	unsigned int k;

	for (k = 0; k < LAKE_APP_NPOW; k++) {
		a->pick[k].variant = 0;
		a->pick[k].xfer = a->opts.xfer != LAKE_APP_XFER_AUTO && a->xfer_ok[a->opts.xfer] ?
				  a->opts.xfer : LAKE_APP_XFER_COPY;
		a->pick[k] = lake_app_way_for(a, 1u << k);
	}
	a->ways_measured = false;
}

/*
 * Measured on the fixed input at batch 1, 2, 4, ..., max_batch: per size the
 * fastest way (variant x transfer) of the GPU, and auto mode's crossover:
 * the GPU from the first size at which that way beats the CPU.
 */
static void lake_app_tune(struct lake_app *a)
{
	unsigned int batch, k, v, x, crossover = 0;
	bool cpu_done = a->opts.crossover >= 0;

	memset(a->tune_cpu, 0, sizeof(a->tune_cpu));
	memset(a->tune_way, 0, sizeof(a->tune_way));
	lake_app_default_picks(a);
	for (batch = 1, k = 0; batch <= a->m->max_batch && k < LAKE_APP_NPOW; batch *= 2, k++) {
		u64 gpu = U64_MAX;

		lake_app_input_fill(a, a->in.p, batch, NULL);
		for (v = 0; v < a->nvariants; v++) {
			for (x = LAKE_APP_XFER_COPY; x < LAKE_APP_NXFER; x++) {
				struct lake_app_way w = { .variant = v, .xfer = x };
				u64 t;

				if (!lake_app_variant_ok(a, v, batch) || !lake_app_xfer_usable(a, x))
					continue;
				t = lake_app_time_gpu(a, batch, w);
				a->tune_way[k][v][x] = t;
				if (t < gpu) {
					gpu = t;
					a->pick[k] = w;
				}
			}
		}
		if (!cpu_done) {
			u64 once = lake_app_now_ns();

			lake_app_cpu_run(a, a->in.p, a->ref_out, batch);
			once = lake_app_now_ns() - once;
			a->tune_cpu[k] = lake_app_time_cpu(a, batch, once > 5000000 ? 3 : LAKE_APP_TUNE_RUNS,
							   once);
			if (gpu < a->tune_cpu[k]) {
				crossover = batch;
				cpu_done = true;
			}
		}
	}
	a->ways_measured = true;
	if (a->opts.crossover >= 0) {
		a->crossover = a->opts.crossover;
		a->crossover_measured = false;
	} else {
		a->crossover = crossover;
		a->crossover_measured = true;
	}
}

/* "copy default@1..8 poll split@16": the picks, runs of equal ones joined. */
static void lake_app_fmt_picks(const struct lake_app *a, char *buf, size_t len)
{
	unsigned int k, k0, n = 0;

	buf[0] = 0;
	for (k0 = 0; (1u << k0) <= a->m->max_batch && k0 < LAKE_APP_NPOW; k0 = k + 1) {
		for (k = k0; (2u << k) <= a->m->max_batch && k + 1 < LAKE_APP_NPOW &&
		     a->pick[k + 1].variant == a->pick[k0].variant &&
		     a->pick[k + 1].xfer == a->pick[k0].xfer; k++)
			;
		if (n < len)
			n += snprintf(buf + n, len - n, "%s%s %s@%u", n ? " " : "",
				      lake_app_xfer_names[a->pick[k0].xfer],
				      lake_app_variant_name(a, a->pick[k0].variant), 1u << k0);
		if (k > k0 && n < len)
			n += snprintf(buf + n, len - n, "..%u", 1u << k);
	}
}

static void lake_app_log_policy(struct lake_app *a)
{
	char cpu[48], gpu[48], picks[256];
	unsigned int k = a->crossover ? lake_app_log2(a->crossover) : 0;
	struct lake_app_way w = a->pick[k];

	lake_app_fmt_fixed(cpu, sizeof(cpu), (s64)(a->tune_cpu[k] / 100), 1);
	lake_app_fmt_fixed(gpu, sizeof(gpu), (s64)(a->tune_way[k][w.variant][w.xfer] / 100), 1);
	if (!a->crossover_measured)
		lake_app_info("%s: auto mode: GPU from batch %u (set, not measured)\n", a->m->name,
			      a->crossover);
	else if (a->crossover)
		lake_app_info("%s: auto mode: GPU from batch %u (measured there: CPU %s us, GPU %s us with transfers)\n",
			      a->m->name, a->crossover, cpu, gpu);
	else
		lake_app_info("%s: auto mode: CPU at every batch size (the GPU never beat it up to batch %u)\n",
			      a->m->name, a->m->max_batch);
	if (a->opts.xfer != LAKE_APP_XFER_AUTO && a->xfer_ok[a->opts.xfer])
		lake_app_info("%s: GPU transfers: %s (set)\n", a->m->name,
			      lake_app_xfer_doc[a->opts.xfer]);
	lake_app_fmt_picks(a, picks, sizeof(picks));
	lake_app_info("%s: GPU path per batch size (%s): %s\n", a->m->name,
		      a->ways_measured ? "measured" : "not measured", picks);
}

/* The variant= setting: its index, or -1 (measured; also for models without that variant). */
static int lake_app_variant_setting(struct lake_app *a, const char *name)
{
	unsigned int v;

	if (!name || !*name || !strcmp(name, "auto"))
		return -1;
	for (v = 0; v < a->nvariants; v++)
		if (!strcmp(name, lake_app_variant_name(a, v)))
			return v;
	lake_app_info("%s: has no GPU variant '%s': measured\n", a->m->name, name);
	return -1;
}

int lake_app_gpu_setup(struct lake_app *a)
{
	const struct lake_app_model *m = a->m;
	CUresult r;
	unsigned int i, x;
	int err;

	lake_app_lock(&a->lock);
	lake_app_gpu_teardown(a);
	memset(a->xfer_why, 0, sizeof(a->xfer_why));
	if (!a->opts.gpu) {
		lake_app_gpu_off(a, "disabled by the gpu=0 setting");
		goto host;
	}
	if (!*a->b->image_size) {
		lake_app_gpu_off(a, "this build has no GPU kernels (nvcc was not found when it was built)");
		goto host;
	}
	r = cuInit(0);
	if (r == CUDA_ERROR_NO_DEVICE) {
		lake_app_gpu_off(a, "no GPU (cuInit: CUDA_ERROR_NO_DEVICE%s)",
#ifdef LAKE_APP_DIRECT
				 ""
#else
				 ": lakeD has no GPU or no libcuda"
#endif
			);
		goto host;
	}
	if (r == CUDA_ERROR_DEVICE_UNAVAILABLE) {
		lake_app_gpu_off(a, "lakeD is not reachable (cuInit: CUDA_ERROR_DEVICE_UNAVAILABLE); start it, then run 'gpu'");
		goto host;
	}
	if (!r)
		r = cuDeviceGet(&a->dev, 0);
	if (!r)
		r = cuDevicePrimaryCtxRetain(&a->ctx, a->dev);
	if (r) {
		lake_app_gpu_off(a, "CUDA set-up failed: %s", lake_app_cu_name(r));
		goto host;
	}
	a->cuda_up = true;
	r = cuCtxSetCurrent(a->ctx);
	if (r) {
		lake_app_gpu_off(a, "cuCtxSetCurrent: %s", lake_app_cu_name(r));
		goto host;
	}
	err = lake_app_host_buffers(a);
	if (err) {
		lake_app_gpu_off(a, "no host buffers");
		goto out;
	}
	r = cuModuleLoadData(&a->mod, a->b->image);
	if (r) {
		a->mod = NULL;
		lake_app_gpu_off(a, "cuModuleLoadData of the embedded image (%zu bytes): %s",
				 *a->b->image_size, lake_app_cu_name(r));
		goto out;
	}
	r = cuModuleGetFunction(&a->empty, a->mod, "lake_app_empty");
	for (i = 0; !r && m->kernels && m->kernels[i]; i++) {
		if (i == LAKE_APP_MAX_FNS) {
			r = CUDA_ERROR_INVALID_VALUE;
			break;
		}
		r = cuModuleGetFunction(&a->fn[i], a->mod, m->kernels[i]);
	}
	if (r) {
		lake_app_gpu_off(a, "cuModuleGetFunction(%s): %s",
				 m->kernels && m->kernels[i] ? m->kernels[i] : "lake_app_empty",
				 lake_app_cu_name(r));
		goto out;
	}
	r = lake_app_dev_upload(a, &a->d_in, NULL, m->max_batch * m->in_row);
	if (!r)
		r = lake_app_dev_upload(a, &a->d_out, NULL, m->max_batch * m->out_row);
	if (!r)
		r = lake_app_dev_upload(a, &a->d_blocks, NULL, 64);
	if (!r && m->gpu_init)
		r = m->gpu_init(a);
	if (!r) {
		r = cuEventCreate(&a->ev[0], 0);
		if (!r) {
			r = cuEventCreate(&a->ev[1], 0);
			if (r)
				cuEventDestroy(a->ev[0]);
		}
		a->events = !r;
	}
	if (r) {
		lake_app_gpu_off(a, "device buffers and weights: %s", lake_app_cu_name(r));
		goto out;
	}
	/* Mapped host memory: the device addresses of the host buffers. */
	a->xfer_ok[LAKE_APP_XFER_COPY] = true;
	r = cuMemHostGetDevicePointer(&a->m_in, a->in.p, 0);
	if (!r)
		r = cuMemHostGetDevicePointer(&a->m_out, a->out.p, 0);
	if (!r)
		r = cuMemHostGetDevicePointer(&a->m_done, a->done.p, 0);
	for (x = LAKE_APP_XFER_MAPPED; x < LAKE_APP_NXFER; x++) {
		a->xfer_ok[x] = !r && (m->signals || !lake_app_xfer_polled(x));
		if (r)
			snprintf(a->xfer_why[x], sizeof(a->xfer_why[x]),
				 "cuMemHostGetDevicePointer: %s", lake_app_cu_name(r));
		else if (!a->xfer_ok[x])
			snprintf(a->xfer_why[x], sizeof(a->xfer_why[x]),
				 "the model's kernels do not signal their completion");
	}
	*(u32 *)a->done.p = a->seq;
	if (!lake_app_gpu_check(a))
		goto out;
	a->gpu_ready = true;
	snprintf(a->gpu_why, sizeof(a->gpu_why), "ready");
	if (a->opts.crossover >= 0 && a->opts.xfer != LAKE_APP_XFER_AUTO) {
		/* Both set: nothing to measure. */
		memset(a->tune_cpu, 0, sizeof(a->tune_cpu));
		memset(a->tune_way, 0, sizeof(a->tune_way));
		lake_app_default_picks(a);
		a->crossover = a->opts.crossover;
		a->crossover_measured = false;
	} else {
		lake_app_tune(a);
	}
	lake_app_log_policy(a);
	lake_app_unlock(&a->lock);
	return 0;
host:
	err = lake_app_host_buffers(a);
out:
	/* Without a GPU auto mode is the CPU; a set crossover still counts. */
	a->crossover = a->opts.crossover >= 0 ? a->opts.crossover : 0;
	a->crossover_measured = false;
	lake_app_unlock(&a->lock);
	return a->in.p ? 0 : -ENOMEM;
}

struct lake_app *lake_app_create(const struct lake_app_bundle *b, const struct lake_app_model *m,
				 const struct lake_app_opts *opts, int *err)
{
	struct lake_app *a = lake_app_zalloc(sizeof(*a));
	char row[96];

	*err = -ENOMEM;
	if (!a)
		return NULL;
	a->b = b;
	a->m = m;
	a->opts = *opts;
	lake_app_lock_init(&a->lock);
	a->state = lake_app_zalloc(m->state_size);
	a->ref_out = lake_app_zalloc(m->max_batch * m->out_row);
	a->way_out = lake_app_zalloc(m->max_batch * m->out_row);
	a->row_exact = lake_app_zalloc(m->max_batch);
	if (!a->state || !a->ref_out || !a->way_out || !a->row_exact)
		goto fail;
	a->nvariants = 1;
	if (m->variants)
		for (a->nvariants = 0; m->variants[a->nvariants].name; a->nvariants++)
			;
	*err = -EINVAL;
	if (!a->nvariants || a->nvariants > LAKE_APP_MAX_VARIANTS)
		goto fail;
	a->variant = lake_app_variant_setting(a, opts->variant);
	*err = m->init ? m->init(a) : 0;
	if (*err)
		goto fail;
	*err = lake_app_gpu_setup(a);
	if (*err)
		goto fail_fini;
	lake_app_input_fill(a, a->in.p, 1, NULL);
	lake_app_cpu_run(a, a->in.p, a->ref_out, 1);
	lake_app_format(a, a->ref_out, 0, row, sizeof(row));
	lake_app_info("%s: CPU path on the fixed input: %s\n", m->name, row);
	return a;
fail_fini:
	if (m->fini)
		m->fini(a);
fail:
	lake_app_free(a->row_exact);
	lake_app_free(a->way_out);
	lake_app_free(a->ref_out);
	lake_app_free(a->state);
	lake_app_lock_destroy(&a->lock);
	lake_app_free(a);
	return NULL;
}

void lake_app_destroy(struct lake_app *a)
{
	if (!a)
		return;
	lake_app_lock(&a->lock);
	lake_app_gpu_teardown(a);
	lake_app_host_free(&a->in);
	lake_app_host_free(&a->out);
	lake_app_host_free(&a->done);
	lake_app_unlock(&a->lock);
	if (a->m->fini)
		a->m->fini(a);
	lake_app_free(a->row_exact);
	lake_app_free(a->way_out);
	lake_app_free(a->ref_out);
	lake_app_free(a->state);
	lake_app_lock_destroy(&a->lock);
	lake_app_free(a);
}

bool lake_app_selected(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	if (!list || !*list || !strcmp(list, "all"))
		return true;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == n && !memcmp(p, name, n))
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

/* ---- the run commands ------------------------------------------------------------------------- */

#define LAKE_APP_MAX_BATCHES 64

struct lake_app_cmd {
	char verb[16];
	char app[32];
	unsigned int mode;		/* LAKE_APP_RUN_* bits */
	unsigned int batch[LAKE_APP_MAX_BATCHES];
	unsigned int nbatch;
	unsigned int iters, warmup, rows;
	unsigned int budget_ms;		/* bench: time per measure at most (0: none) */
	unsigned int min_iters;		/* bench: samples per measure at least, within the budget */
	bool random, have_iters, have_warmup, have_rows;
	u64 seed;
	int crossover;			/* set: -2 = unchanged */
	int xfer;			/* set: -1 = unchanged */
	char variant[32];		/* set: "" = unchanged */
};

#define LAKE_APP_RUN_CPU	1u
#define LAKE_APP_RUN_GPU	2u
#define LAKE_APP_RUN_AUTO	4u

static __printf(2, 3) int lake_app_bad(struct lake_app_text *out, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lake_app_printf(out, "error,%s\n", msg);
	return -EINVAL;
}

static bool lake_app_parse_u64(const char *s, size_t n, u64 *v)
{
	size_t i;

	*v = 0;
	if (!n)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || *v > (U64_MAX - 9) / 10)
			return false;
		*v = *v * 10 + (s[i] - '0');
	}
	return true;
}

static bool lake_app_is(const char *v, size_t n, const char *word)
{
	return strlen(word) == n && !memcmp(v, word, n);
}

/* "1,2,4" or "1..1024" (powers of two from the first to the last) or mixes. */
static int lake_app_parse_batches(struct lake_app_cmd *c, const char *v, size_t n,
				  struct lake_app_text *out)
{
	const char *end = v + n;

	c->nbatch = 0;
	while (v < end) {
		const char *comma = memchr(v, ',', end - v), *dots;
		u64 lo, hi;

		if (!comma)
			comma = end;
		dots = NULL;
		{
			const char *p;

			for (p = v; p + 1 < comma; p++)
				if (p[0] == '.' && p[1] == '.') {
					dots = p;
					break;
				}
		}
		if (dots) {
			if (!lake_app_parse_u64(v, dots - v, &lo) ||
			    !lake_app_parse_u64(dots + 2, comma - dots - 2, &hi) || !lo || hi < lo ||
			    hi > 1u << 20)
				return lake_app_bad(out, "bad batch range '%.*s'", (int)(comma - v), v);
			for (; lo <= hi; lo *= 2) {
				if (c->nbatch == LAKE_APP_MAX_BATCHES)
					return lake_app_bad(out, "more than %d batch sizes",
							    LAKE_APP_MAX_BATCHES);
				c->batch[c->nbatch++] = lo;
			}
		} else {
			if (!lake_app_parse_u64(v, comma - v, &lo) || !lo || lo > 1u << 20)
				return lake_app_bad(out, "bad batch size '%.*s'", (int)(comma - v), v);
			if (c->nbatch == LAKE_APP_MAX_BATCHES)
				return lake_app_bad(out, "more than %d batch sizes", LAKE_APP_MAX_BATCHES);
			c->batch[c->nbatch++] = lo;
		}
		v = comma + 1;
	}
	return c->nbatch ? 0 : lake_app_bad(out, "no batch sizes");
}

static int lake_app_parse_cmd(struct lake_app_cmd *c, const char *s, struct lake_app_text *out)
{
	bool first = true;

	memset(c, 0, sizeof(*c));
	strcpy(c->verb, "bench");
	strcpy(c->app, "all");
	c->mode = LAKE_APP_RUN_CPU | LAKE_APP_RUN_GPU | LAKE_APP_RUN_AUTO;
	c->iters = 100;
	c->rows = 1000;
	c->seed = 1;
	c->crossover = -2;
	c->xfer = -1;
	c->min_iters = 5;
	c->nbatch = 1;
	c->batch[0] = 1;
	while (*s) {
		const char *tok, *eq, *v;
		size_t n, kn, vn;
		u64 num = 0;
		bool isnum;

		while (lake_app_isspace(*s))
			s++;
		if (!*s)
			break;
		tok = s;
		while (*s && !lake_app_isspace(*s))
			s++;
		n = s - tok;
		eq = memchr(tok, '=', n);
		if (!eq) {
			if (!first || n >= sizeof(c->verb))
				return lake_app_bad(out, "'%.*s' is not key=value", (int)n, tok);
			memcpy(c->verb, tok, n);
			c->verb[n] = 0;
			first = false;
			continue;
		}
		first = false;
		kn = eq - tok;
		v = eq + 1;
		vn = n - kn - 1;
		isnum = lake_app_parse_u64(v, vn, &num);
		if (lake_app_is(tok, kn, "app")) {
			if (!vn || vn >= sizeof(c->app))
				return lake_app_bad(out, "bad app name");
			memcpy(c->app, v, vn);
			c->app[vn] = 0;
		} else if (lake_app_is(tok, kn, "mode")) {
			/* One mode, or a list: mode=gpu,auto. */
			const char *end = v + vn;

			c->mode = 0;
			while (v < end) {
				const char *comma = memchr(v, ',', end - v);
				size_t n1 = (comma ? comma : end) - v;

				if (lake_app_is(v, n1, "cpu"))
					c->mode |= LAKE_APP_RUN_CPU;
				else if (lake_app_is(v, n1, "gpu"))
					c->mode |= LAKE_APP_RUN_GPU;
				else if (lake_app_is(v, n1, "auto"))
					c->mode |= LAKE_APP_RUN_AUTO;
				else if (lake_app_is(v, n1, "all"))
					c->mode |= LAKE_APP_RUN_CPU | LAKE_APP_RUN_GPU | LAKE_APP_RUN_AUTO;
				else
					return lake_app_bad(out, "mode must be cpu, gpu, auto or all (or a list of them)");
				v += n1 + (comma != NULL);
			}
			if (!c->mode)
				return lake_app_bad(out, "mode must be cpu, gpu, auto or all (or a list of them)");
		} else if (lake_app_is(tok, kn, "batch")) {
			int err = lake_app_parse_batches(c, v, vn, out);

			if (err)
				return err;
		} else if (lake_app_is(tok, kn, "iters")) {
			if (!isnum || !num || num > LAKE_APP_MAX_ITERS)
				return lake_app_bad(out, "iters must be 1..%d", LAKE_APP_MAX_ITERS);
			c->iters = num;
			c->have_iters = true;
		} else if (lake_app_is(tok, kn, "warmup")) {
			if (!isnum || num > LAKE_APP_MAX_ITERS)
				return lake_app_bad(out, "warmup must be 0..%d", LAKE_APP_MAX_ITERS);
			c->warmup = num;
			c->have_warmup = true;
		} else if (lake_app_is(tok, kn, "budget_ms")) {
			if (!isnum || num > 3600000)
				return lake_app_bad(out, "budget_ms must be 0..3600000");
			c->budget_ms = num;
		} else if (lake_app_is(tok, kn, "min_iters")) {
			if (!isnum || !num || num > LAKE_APP_MAX_ITERS)
				return lake_app_bad(out, "min_iters must be 1..%d", LAKE_APP_MAX_ITERS);
			c->min_iters = num;
		} else if (lake_app_is(tok, kn, "rows")) {
			if (!isnum || !num || num > 10000000)
				return lake_app_bad(out, "rows must be 1..10000000");
			c->rows = num;
			c->have_rows = true;
		} else if (lake_app_is(tok, kn, "seed")) {
			if (!isnum)
				return lake_app_bad(out, "seed must be a number");
			c->seed = num;
		} else if (lake_app_is(tok, kn, "input")) {
			if (lake_app_is(v, vn, "fixed"))
				c->random = false;
			else if (lake_app_is(v, vn, "random"))
				c->random = true;
			else
				return lake_app_bad(out, "input must be fixed or random");
		} else if (lake_app_is(tok, kn, "crossover")) {
			if (!isnum || num > 1u << 20)
				return lake_app_bad(out, "crossover must be a batch size (0: never the GPU)");
			c->crossover = num;
		} else if (lake_app_is(tok, kn, "xfer")) {
			unsigned int x;

			for (x = 0; x < LAKE_APP_NXFER && !lake_app_is(v, vn, lake_app_xfer_names[x]); x++)
				;
			if (x == LAKE_APP_NXFER)
				return lake_app_bad(out, "xfer must be auto, copy, mapped, poll or copy_poll");
			c->xfer = x;
		} else if (lake_app_is(tok, kn, "variant")) {
			if (!vn || vn >= sizeof(c->variant))
				return lake_app_bad(out, "bad variant name");
			memcpy(c->variant, v, vn);
			c->variant[vn] = 0;
		} else {
			return lake_app_bad(out, "unknown key '%.*s'", (int)kn, tok);
		}
	}
	if (!c->have_warmup)
		c->warmup = c->iters / 10 + 1;
	return 0;
}

/* Timing statistics of @n samples (sorted in place), as CSV fields. */
static void lake_app_stats(struct lake_app_text *out, u64 *t, unsigned int n)
{
	char mean[48], med[48], p99[48], lo[48];
	u64 sum = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		sum += t[i];
	lake_app_sort(t, n);
	lake_app_fmt_fixed(mean, sizeof(mean), (s64)(sum / n), 3);
	lake_app_fmt_fixed(med, sizeof(med), (s64)t[n / 2], 3);
	lake_app_fmt_fixed(p99, sizeof(p99), (s64)t[(u64)n * 99 / 100], 3);
	lake_app_fmt_fixed(lo, sizeof(lo), (s64)t[0], 3);
	lake_app_printf(out, "%u,%s,%s,%s,%s", n, mean, med, p99, lo);
}

enum lake_app_measure {
	LAKE_APP_M_CPU,
	LAKE_APP_M_FLOOR,
	LAKE_APP_M_INFER,
	LAKE_APP_M_XFER,	/* with transfers, the way the measurement names */
	LAKE_APP_M_DEVICE,
	LAKE_APP_M_DEVICE_XFER,
	LAKE_APP_M_AUTO,
};

/* What to time: a measure, and for the GPU ones the way (variant, transfer). */
struct lake_app_what {
	enum lake_app_measure m;
	struct lake_app_way w;
};

/* One timed iteration of @what, @group calls; the time of one in *@ns.  A CUresult / -errno. */
static int lake_app_once(struct lake_app *a, const struct lake_app_what *what, unsigned int batch,
			 unsigned int group, u64 *ns)
{
	struct lake_app_gpu_io io = { .in = a->d_in, .out = a->d_out, .batch = batch,
				      .variant = what->w.variant };
	u64 t0 = lake_app_now_ns();
	u32 ms_bits = 0;
	CUresult r = CUDA_SUCCESS;
	unsigned int i;
	int ret = 0;

	switch (what->m) {
	case LAKE_APP_M_CPU:
	case LAKE_APP_M_AUTO:
		/* Through predict(), as auto mode: the same overhead on both. */
		for (i = 0; i < group && !ret; i++)
			ret = lake_app_predict_locked(a, a->in.p, a->out.p, batch,
						      what->m == LAKE_APP_M_CPU ? LAKE_APP_CPU :
						      LAKE_APP_AUTO);
		*ns = (lake_app_now_ns() - t0) / group;
		return ret;
	case LAKE_APP_M_FLOOR:
		r = cuLaunchKernel(a->empty, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL);
		if (!r)
			r = cuCtxSynchronize();
		break;
	case LAKE_APP_M_INFER:
		r = a->m->gpu_launch(a, &io);
		if (!r)
			r = cuCtxSynchronize();
		break;
	case LAKE_APP_M_XFER:
		r = lake_app_gpu_run(a, batch, what->w);
		break;
	case LAKE_APP_M_DEVICE:
	case LAKE_APP_M_DEVICE_XFER:
		r = cuEventRecord(a->ev[0], NULL);
		if (!r && what->m == LAKE_APP_M_DEVICE_XFER)
			r = cuMemcpyHtoDAsync(a->d_in, a->in.p, batch * a->m->in_row, NULL);
		if (!r)
			r = a->m->gpu_launch(a, &io);
		if (!r && what->m == LAKE_APP_M_DEVICE_XFER)
			r = cuMemcpyDtoHAsync(a->out.p, a->d_out, batch * a->m->out_row, NULL);
		if (!r)
			r = cuEventRecord(a->ev[1], NULL);
		if (!r)
			r = cuEventSynchronize(a->ev[1]);
		if (!r)
			r = cuEventElapsedTime((float *)&ms_bits, a->ev[0], a->ev[1]);
		*ns = lake_app_ms_bits_to_ns(ms_bits);
		return r;
	}
	*ns = lake_app_now_ns() - t0;
	return r;
}

static const char *const lake_app_measure_name[] = {
	[LAKE_APP_M_CPU] = "cpu",
	[LAKE_APP_M_FLOOR] = "floor",
	[LAKE_APP_M_INFER] = "gpu_infer",
	[LAKE_APP_M_XFER] = "gpu_xfer_",	/* + the transfer's name */
	[LAKE_APP_M_DEVICE] = "device",
	[LAKE_APP_M_DEVICE_XFER] = "device_xfer",
	[LAKE_APP_M_AUTO] = "auto",
};

/* CPU-path measures time several calls per sample where one is short (the clock's resolution). */
static bool lake_app_grouped(const struct lake_app *a, const struct lake_app_what *what,
			     unsigned int batch)
{
	return what->m == LAKE_APP_M_CPU ||
	       (what->m == LAKE_APP_M_AUTO && !lake_app_auto_gpu(a, batch));
}

/*
 * Times @what[0] (and, interleaved with it, @what[1] when @npair is 2:
 * the same number of samples, alternating which goes first); each one's
 * samples in @t[i * c->iters ...].  Returns the number of samples (0 on an
 * error: *@err), the calls per sample in *@group.
 */
static unsigned int lake_app_sample(struct lake_app *a, const struct lake_app_cmd *c,
				    const struct lake_app_what *what, unsigned int npair,
				    unsigned int batch, u64 *t, unsigned int *group, int *err)
{
	unsigned int i, j, iters = c->iters, warmup = c->warmup;
	u64 ns;

	*group = 1;
	*err = 0;
	if (lake_app_grouped(a, &what[0], batch)) {
		/* Calls per sample from the fastest of three single calls. */
		u64 fastest = U64_MAX;

		for (i = 0; i < 3; i++) {
			*err = lake_app_once(a, &what[0], batch, 1, &ns);
			if (*err)
				return 0;
			fastest = min(fastest, ns);
		}
		*group = lake_app_group(fastest);
	}
	for (i = 0; i < warmup + iters; i++) {
		for (j = 0; j < npair; j++) {
			const struct lake_app_what *wj = &what[(i & 1) ? npair - 1 - j : j];

			*err = lake_app_once(a, wj, batch, *group, &ns);
			if (*err)
				return 0;
			if (i >= warmup)
				t[(wj - what) * c->iters + i - warmup] = ns;
		}
		if (!i) {
			u64 fit;

			/* Within the budget: fewer samples of slow measures (at least min_iters). */
			fit = c->budget_ms ? (u64)c->budget_ms * 1000000 /
					     ((ns ? ns : 1) * *group * npair) : U64_MAX;
			if (fit < (u64)warmup + iters) {
				iters = max(c->min_iters, (unsigned int)min(fit, (u64)iters) * 10 / 11);
				iters = min(iters, c->iters);
				warmup = min(warmup, max(1u, iters / 10));
				if (!fit && c->min_iters == 1 && npair == 1 && *group == 1) {
					/* One call alone is over the budget: it is the sample. */
					t[0] = ns;
					return 1;
				}
			}
		}
		if ((i & 15) == 15) {
			lake_app_yield();
			if (lake_app_interrupted()) {
				*err = -EINTR;
				return 0;
			}
		}
	}
	return iters;
}

static void lake_app_measure_head(struct lake_app *a, const struct lake_app_what *what,
				  unsigned int batch, struct lake_app_text *out)
{
	lake_app_printf(out, "%s,%s,%u,%s%s,", a->m->name, LAKE_APP_BUILD, batch,
			lake_app_measure_name[what->m],
			what->m == LAKE_APP_M_XFER ? lake_app_xfer_names[what->w.xfer] : "");
}

static int lake_app_measure_error(struct lake_app *a, const struct lake_app_what *what,
				  unsigned int batch, struct lake_app_text *out, int r)
{
	lake_app_measure_head(a, what, batch, out);
	lake_app_printf(out, "0,,,,,error %d (%s)\n", r, r > 0 ? lake_app_cu_name(r) : "errno");
	return -EIO;
}

/* The detail of a row: @detail, the variant of a GPU measure, the calls per sample. */
static void lake_app_measure_tail(struct lake_app *a, const struct lake_app_what *what,
				  unsigned int group, const char *detail, struct lake_app_text *out)
{
	lake_app_printf(out, ",%s", detail);
	if (what->m != LAKE_APP_M_CPU && what->m != LAKE_APP_M_FLOOR && what->m != LAKE_APP_M_AUTO)
		lake_app_printf(out, "%svariant=%s", detail[0] ? " " : "",
				lake_app_variant_name(a, what->w.variant));
	if (group > 1)
		lake_app_printf(out, "%s%u calls per sample", detail[0] ? " " : "", group);
	lake_app_printf(out, "\n");
}

/* Times @what; one CSV row, and its median in *@median (U64_MAX on error). */
static int lake_app_measure(struct lake_app *a, const struct lake_app_cmd *c,
			    const struct lake_app_what *what, unsigned int batch, u64 *t,
			    struct lake_app_text *out, const char *detail, u64 *median)
{
	unsigned int n, group;
	int r;

	*median = U64_MAX;
	n = lake_app_sample(a, c, what, 1, batch, t, &group, &r);
	if (!n)
		return lake_app_measure_error(a, what, batch, out, r);
	lake_app_measure_head(a, what, batch, out);
	lake_app_stats(out, t, n);
	*median = t[n / 2];
	lake_app_measure_tail(a, what, group, detail, out);
	return 0;
}

/*
 * Auto mode, interleaved with the path it takes (the CPU path, or the GPU
 * way it uses), sample for sample: its overhead over that path, free of
 * drift between measurements.  The detail: "cpu|gpu paired_us=MEDIAN".
 */
static int lake_app_measure_auto(struct lake_app *a, const struct lake_app_cmd *c,
				 unsigned int batch, u64 *t, struct lake_app_text *out)
{
	bool gpu = lake_app_auto_gpu(a, batch);
	struct lake_app_what what[2] = {
		{ .m = LAKE_APP_M_AUTO },
		{ .m = gpu ? LAKE_APP_M_XFER : LAKE_APP_M_CPU, .w = lake_app_way_for(a, batch) },
	};
	char detail[64], paired[32];
	unsigned int n, group;
	int r;

	n = lake_app_sample(a, c, what, 2, batch, t, &group, &r);
	if (!n)
		return lake_app_measure_error(a, what, batch, out, r);
	lake_app_sort(t + c->iters, n);
	lake_app_fmt_fixed(paired, sizeof(paired), (s64)t[c->iters + n / 2], 3);
	snprintf(detail, sizeof(detail), "%s paired_us=%s", gpu ? "gpu" : "cpu", paired);
	lake_app_measure_head(a, what, batch, out);
	lake_app_stats(out, t, n);
	lake_app_measure_tail(a, what, group, detail, out);
	return 0;
}

/*
 * Set-up's measurement @i at size class @k: 0 the CPU path (*@w's xfer
 * AUTO), then every way; its median in *@ns (0 or U64_MAX: none).  False
 * past the last.
 */
static bool lake_app_tune_at(const struct lake_app *a, unsigned int k, unsigned int i, u64 *ns,
			     struct lake_app_way *w)
{
	const unsigned int nx = LAKE_APP_NXFER - LAKE_APP_XFER_COPY;

	if (!i) {
		w->variant = 0;
		w->xfer = LAKE_APP_XFER_AUTO;
		*ns = a->tune_cpu[k];
		return true;
	}
	w->variant = (i - 1) / nx;
	w->xfer = LAKE_APP_XFER_COPY + (i - 1) % nx;
	if (w->variant >= a->nvariants)
		return false;
	*ns = a->tune_way[k][w->variant][w->xfer];
	return true;
}

/* Its name: "cpu", or "TRANSFER VARIANT". */
static void lake_app_tune_name(const struct lake_app *a, struct lake_app_way w, char *buf,
			       size_t len)
{
	if (w.xfer == LAKE_APP_XFER_AUTO)
		snprintf(buf, len, "cpu");
	else
		snprintf(buf, len, "%s %s", lake_app_xfer_names[w.xfer],
			 lake_app_variant_name(a, w.variant));
}

/* The set-up's measurements: "tune" rows (median of LAKE_APP_TUNE_RUNS), the CPU and every way. */
static void lake_app_tune_rows(struct lake_app *a, struct lake_app_text *out)
{
	unsigned int batch, k, i;
	struct lake_app_way w;
	char us[48], name[64];
	u64 ns;

	for (batch = 1, k = 0; batch <= a->m->max_batch && k < LAKE_APP_NPOW; batch *= 2, k++)
		for (i = 0; lake_app_tune_at(a, k, i, &ns, &w); i++) {
			if (!ns || ns == U64_MAX)
				continue;
			lake_app_fmt_fixed(us, sizeof(us), (s64)ns, 3);
			lake_app_tune_name(a, w, name, sizeof(name));
			lake_app_printf(out, "%s,%s,%u,tune,%u,,%s,,,%s%s\n", a->m->name,
					LAKE_APP_BUILD, batch, LAKE_APP_TUNE_RUNS, us, name,
					w.xfer != LAKE_APP_XFER_AUTO && a->pick[k].variant == w.variant &&
					a->pick[k].xfer == w.xfer ? " (picked)" : "");
		}
}

static int lake_app_bench(struct lake_app *a, const struct lake_app_cmd *c, u64 *t,
			  struct lake_app_text *out)
{
	char picks[256];
	unsigned int i, x;
	int ret = 0;

	/* The policy the auto rows and the transfer pick follow, and what set-up measured. */
	lake_app_fmt_picks(a, picks, sizeof(picks));
	lake_app_printf(out, "%s,%s,0,policy,0,,,,,crossover=%u (%s) xfer=%s ways (%s): %s gpu=%s\n",
			a->m->name, LAKE_APP_BUILD, a->crossover,
			a->crossover_measured ? "measured" : "set", lake_app_xfer_names[a->opts.xfer],
			a->ways_measured ? "measured" : "set", a->gpu_ready ? picks : "-",
			a->gpu_ready ? "ready" : a->gpu_why);
	if (a->gpu_ready && (c->mode & LAKE_APP_RUN_GPU))
		lake_app_tune_rows(a, out);
	for (i = 0; i < c->nbatch; i++) {
		unsigned int batch = c->batch[i];
		u64 seed = c->seed ^ ((u64)batch << 32), med, infer = 0, copy = U64_MAX;
		struct lake_app_way w = lake_app_way_for(a, batch);
		struct lake_app_what what = { .w = w };

		lake_app_input_fill(a, a->in.p, batch, c->random ? &seed : NULL);
		if (c->mode & LAKE_APP_RUN_CPU) {
			what.m = LAKE_APP_M_CPU;
			ret |= lake_app_measure(a, c, &what, batch, t, out, "", &med);
		}
		/* Auto mode is timed interleaved with the path it takes. */
		if (c->mode & LAKE_APP_RUN_AUTO)
			ret |= lake_app_measure_auto(a, c, batch, t, out);
		if ((c->mode & LAKE_APP_RUN_GPU) && a->gpu_ready) {
			CUresult r;

			what.m = LAKE_APP_M_FLOOR;
			ret |= lake_app_measure(a, c, &what, batch, t, out,
						"empty launch + cuCtxSynchronize", &med);
			r = cuMemcpyHtoD(a->d_in, a->in.p, batch * a->m->in_row);
			if (r) {
				what.m = LAKE_APP_M_INFER;
				ret |= lake_app_measure_error(a, &what, batch, out, r);
				continue;
			}
			what.m = LAKE_APP_M_INFER;
			ret |= lake_app_measure(a, c, &what, batch, t, out,
						"launch + cuCtxSynchronize", &infer);
			what.m = LAKE_APP_M_XFER;
			for (x = LAKE_APP_XFER_COPY; x < LAKE_APP_NXFER; x++) {
				static const char *const doc[LAKE_APP_NXFER] = {
					[LAKE_APP_XFER_COPY] = "H2D async + launch + D2H",
					[LAKE_APP_XFER_MAPPED] = "launch on mapped host memory + cuCtxSynchronize",
					[LAKE_APP_XFER_POLL] = "launch on mapped host memory + polling its completion",
					[LAKE_APP_XFER_COPY_POLL] = "H2D async + launch writing mapped host memory + polling",
				};

				if (!a->xfer_ok[x])
					continue;
				what.w.xfer = x;
				ret |= lake_app_measure(a, c, &what, batch, t, out, doc[x],
							x == LAKE_APP_XFER_COPY ? &copy : &med);
			}
			what.w = w;
			what.m = LAKE_APP_M_DEVICE;
			ret |= lake_app_measure(a, c, &what, batch, t, out,
						"CUDA events around the launch", &med);
			what.m = LAKE_APP_M_DEVICE_XFER;
			ret |= lake_app_measure(a, c, &what, batch, t, out,
						"CUDA events around H2D + launch + D2H", &med);
			lake_app_printf(out, "%s,%s,%u,gpu_xfer_pick,0,,,,,%s %s%s\n", a->m->name,
					LAKE_APP_BUILD, batch, lake_app_xfer_names[w.xfer],
					lake_app_variant_name(a, w.variant),
					copy < infer ? " ANOMALY: with transfers (copies) below inference only" : "");
		}
	}
	return ret ? -EIO : 0;
}

/* Random rows for batch size @batch: the fixed input first, then random batches. */
static void lake_app_fill_nth(struct lake_app *a, unsigned int batch, unsigned int nth, u64 *seed)
{
	lake_app_input_fill(a, a->in.p, batch, nth ? seed : NULL);
}

static unsigned int lake_app_nbatches(const struct lake_app_cmd *c, unsigned int batch)
{
	return 1 + (c->rows + batch - 1) / batch;
}

/*
 * GPU vs CPU: per batch size, every way (each variant that serves it, with
 * each transfer) on the fixed input and the random rows; each against the
 * CPU (the model's tolerance and classes), and every way after the first
 * bit for bit against the first (copies, the first variant).
 */
static int lake_app_verify(struct lake_app *a, const struct lake_app_cmd *c,
			   struct lake_app_text *out)
{
	size_t w = a->m->out_row;
	unsigned int i, j;
	int ret = 0;

	if (!a->gpu_ready) {
		lake_app_printf(out, "%s,%s,,skipped: GPU path off: %s,,,,,,,,,\n", a->m->name,
				LAKE_APP_BUILD, a->gpu_why);
		return 0;
	}
	for (i = 0; i < c->nbatch; i++) {
		unsigned int batch = c->batch[i], n = lake_app_nbatches(c, batch), k, v, x, nways;
		u64 seed = c->seed ^ ((u64)batch << 32), exact = 0, rows = 0;
		u64 cpu_hash = LAKE_APP_FNV_INIT, gpu_hash = LAKE_APP_FNV_INIT;
		u64 ways_differ = 0, ways_rows = 0;
		struct lake_app_cmp cmp = { 0 };
		char diff[48], ways[160] = "";
		CUresult r = CUDA_SUCCESS;
		size_t wl = 0;

		for (v = 0; v < a->nvariants; v++)
			for (x = LAKE_APP_XFER_COPY; x < LAKE_APP_NXFER; x++)
				if (lake_app_variant_serves(a, v, batch) && a->xfer_ok[x] && wl < sizeof(ways))
					wl += snprintf(ways + wl, sizeof(ways) - wl, "%s%s:%s",
						       wl ? " " : "", lake_app_xfer_names[x],
						       lake_app_variant_name(a, v));
		for (j = 0; j < n && !r; j++) {
			lake_app_fill_nth(a, batch, j, &seed);
			lake_app_cpu_run(a, a->in.p, a->ref_out, batch);
			memset(a->row_exact, 1, batch);
			nways = 0;
			for (v = 0; v < a->nvariants && !r; v++) {
				for (x = LAKE_APP_XFER_COPY; x < LAKE_APP_NXFER && !r; x++) {
					struct lake_app_way wy = { .variant = v, .xfer = x };

					if (!lake_app_variant_serves(a, v, batch) || !a->xfer_ok[x])
						continue;
					memset(a->out.p, 0, batch * w);
					r = lake_app_gpu_run(a, batch, wy);
					if (r)
						break;
					lake_app_compare(a, a->ref_out, a->out.p, batch, &cmp);
					for (k = 0; k < batch; k++)
						a->row_exact[k] &= !memcmp((u8 *)a->ref_out + k * w,
									   (u8 *)a->out.p + k * w, w);
					if (!nways++) {
						gpu_hash = lake_app_fnv(gpu_hash, a->out.p, batch * w);
						memcpy(a->way_out, a->out.p, batch * w);
						continue;
					}
					/* Every way must give the first way's outputs exactly. */
					for (k = 0; k < batch; k++)
						ways_differ += !!memcmp((u8 *)a->way_out + k * w,
									(u8 *)a->out.p + k * w, w);
					ways_rows += batch;
				}
			}
			if (r)
				break;
			for (k = 0; k < batch; k++)
				exact += a->row_exact[k];
			rows += batch;
			cpu_hash = lake_app_fnv(cpu_hash, a->ref_out, batch * w);
			if ((j & 7) == 7) {
				lake_app_yield();
				if (lake_app_interrupted())
					return -EINTR;
			}
		}
		lake_app_fmt_fixed(diff, sizeof(diff), (s64)cmp.max_diff_e9, 9);
		lake_app_printf(out, "%s,%s,%u,%s,%llu,%llu,%llu,%llu,%s,%016llx,%016llx,%llu/%llu,%s%s\n",
				a->m->name, LAKE_APP_BUILD, batch, r ? "error" : "ok",
				(unsigned long long)rows, (unsigned long long)exact,
				(unsigned long long)cmp.beyond_tolerance,
				(unsigned long long)cmp.class_differs, diff,
				(unsigned long long)cpu_hash, (unsigned long long)gpu_hash,
				(unsigned long long)(ways_rows - ways_differ),
				(unsigned long long)ways_rows, ways,
				r ? " (a GPU run failed)" : "");
		if (r || cmp.beyond_tolerance || cmp.class_differs || ways_differ)
			ret = -EIO;
	}
	return ret;
}

static int lake_app_hash(struct lake_app *a, const struct lake_app_cmd *c,
			 struct lake_app_text *out)
{
	enum lake_app_mode mode = c->mode == LAKE_APP_RUN_GPU ? LAKE_APP_GPU :
				  c->mode == LAKE_APP_RUN_AUTO ? LAKE_APP_AUTO : LAKE_APP_CPU;
	const char *mname = mode == LAKE_APP_GPU ? "gpu" : mode == LAKE_APP_AUTO ? "auto" : "cpu";
	unsigned int i, j;
	int ret = 0;

	for (i = 0; i < c->nbatch; i++) {
		unsigned int batch = c->batch[i], n = lake_app_nbatches(c, batch);
		u64 seed = c->seed ^ ((u64)batch << 32), h = LAKE_APP_FNV_INIT;
		char row0[96] = "";
		int r = 0;

		for (j = 0; j < n && !r; j++) {
			lake_app_fill_nth(a, batch, j, &seed);
			r = lake_app_predict_locked(a, a->in.p, a->ref_out, batch, mode);
			if (r)
				break;
			h = lake_app_fnv(h, a->ref_out, batch * a->m->out_row);
			if (!j)
				lake_app_format(a, a->ref_out, 0, row0, sizeof(row0));
			if ((j & 7) == 7) {
				lake_app_yield();
				if (lake_app_interrupted())
					return -EINTR;
			}
		}
		if (r) {
			lake_app_printf(out, "%s,%s,%s,%u,error %d,,,\n", a->m->name, LAKE_APP_BUILD,
					mname, batch, r);
			ret = -EIO;
			continue;
		}
		lake_app_printf(out, "%s,%s,%s,%u,%u,%llu,%016llx,%s\n", a->m->name, LAKE_APP_BUILD,
				mname, batch, n, (unsigned long long)n * batch,
				(unsigned long long)h, row0);
	}
	return ret;
}

static void lake_app_info_rows(struct lake_app *a, struct lake_app_text *out)
{
	const struct lake_app_counts *n = &a->counts;
	unsigned int batch, k, v, x, i;
	char picks[256];

	lake_app_printf(out, "%s,build,%s\n", a->m->name, LAKE_APP_BUILD);
	lake_app_printf(out, "%s,gpu,%s\n", a->m->name, lake_app_gpu_status(a));
	for (x = LAKE_APP_XFER_MAPPED; x < LAKE_APP_NXFER; x++)
		lake_app_printf(out, "%s,%s,%s\n", a->m->name, lake_app_xfer_names[x],
				a->xfer_ok[x] ? "yes" : a->xfer_why[x][0] ? a->xfer_why[x] : "no");
	lake_app_printf(out, "%s,crossover,%u (%s)\n", a->m->name, a->crossover,
			a->crossover_measured ? "measured" : a->gpu_ready || a->opts.crossover >= 0 ?
			"set" : "no GPU");
	lake_app_printf(out, "%s,xfer,%s\n", a->m->name, lake_app_xfer_names[a->opts.xfer]);
	lake_app_printf(out, "%s,variants,", a->m->name);
	for (v = 0; v < a->nvariants; v++)
		lake_app_printf(out, "%s%s%s", v ? " " : "", lake_app_variant_name(a, v),
				(int)v == a->variant ? " (set)" : "");
	lake_app_printf(out, "\n");
	lake_app_fmt_picks(a, picks, sizeof(picks));
	lake_app_printf(out, "%s,ways,%s (%s)\n", a->m->name, a->gpu_ready ? picks : "-",
			a->ways_measured ? "measured" : "set");
	lake_app_printf(out, "%s,counts,cpu=%llu gpu=%llu auto_cpu=%llu auto_gpu=%llu gpu_failed=%llu fallback=%llu mapped=%llu copied=%llu polled=%llu rows=%llu\n",
			a->m->name, (unsigned long long)n->cpu, (unsigned long long)n->gpu,
			(unsigned long long)n->auto_cpu, (unsigned long long)n->auto_gpu,
			(unsigned long long)n->gpu_failed, (unsigned long long)n->fallback,
			(unsigned long long)n->mapped, (unsigned long long)n->copied,
			(unsigned long long)n->polled, (unsigned long long)n->rows);
	if (!a->gpu_ready)
		return;
	for (batch = 1, k = 0; batch <= a->m->max_batch && k < LAKE_APP_NPOW; batch *= 2, k++) {
		struct lake_app_way w;
		char us[48], name[64];
		u64 ns;

		lake_app_printf(out, "%s,tune_us,batch=%u", a->m->name, batch);
		for (i = 0; lake_app_tune_at(a, k, i, &ns, &w); i++) {
			if (!ns || ns == U64_MAX)
				continue;
			lake_app_fmt_fixed(us, sizeof(us), (s64)ns, 3);
			lake_app_tune_name(a, w, name, sizeof(name));
			name[strcspn(name, " ")] = w.xfer == LAKE_APP_XFER_AUTO ? 0 : ':';
			lake_app_printf(out, " %s=%s", name, us);
		}
		lake_app_printf(out, "\n");
	}
}

int lake_app_parse_xfer(const char *name)
{
	unsigned int x;

	for (x = 0; x < LAKE_APP_NXFER; x++)
		if (!strcmp(name, lake_app_xfer_names[x]))
			return x;
	return -1;
}

int lake_app_run(struct lake_app *const *apps, unsigned int napps, const char *cmd,
		 struct lake_app_text *out)
{
	struct lake_app_cmd *c = lake_app_zalloc(sizeof(*c));
	bool all, matched = false;
	u64 *t = NULL;
	unsigned int i, j;
	int ret = 0;

	if (!c)
		return -ENOMEM;
	ret = lake_app_parse_cmd(c, cmd, out);
	if (ret)
		goto out;
	all = !strcmp(c->app, "all");
	for (i = 0; i < napps; i++) {
		if (!all && strcmp(c->app, apps[i]->m->name))
			continue;
		matched = true;
		for (j = 0; j < c->nbatch; j++)
			if (c->batch[j] > apps[i]->m->max_batch) {
				ret = lake_app_bad(out, "batch %u is above %s's maximum (%u)",
						   c->batch[j], apps[i]->m->name,
						   apps[i]->m->max_batch);
				goto out;
			}
	}
	if (!matched) {
		ret = lake_app_bad(out, "no app '%s' here (app=all, or one of this build's models)",
				   c->app);
		goto out;
	}
	if (!strcmp(c->verb, "bench")) {
		t = lake_app_zalloc(sizeof(*t) * 2 * c->iters);	/* auto's rows: two series */
		if (!t) {
			ret = -ENOMEM;
			goto out;
		}
		lake_app_printf(out, "app,build,batch,measure,iters,mean_us,median_us,p99_us,min_us,detail\n");
	} else if (!strcmp(c->verb, "verify")) {
		if (!c->have_rows)
			c->rows = 10000;
		lake_app_printf(out, "app,build,batch,status,rows,bit_exact,beyond_tolerance,class_differs,max_abs_diff,cpu_hash,gpu_hash,ways_same,ways\n");
	} else if (!strcmp(c->verb, "hash")) {
		if (c->mode != LAKE_APP_RUN_CPU && c->mode != LAKE_APP_RUN_GPU &&
		    c->mode != LAKE_APP_RUN_AUTO)
			c->mode = LAKE_APP_RUN_CPU;
		lake_app_printf(out, "app,build,mode,batch,batches,rows,hash,row0\n");
	} else if (!strcmp(c->verb, "info") || !strcmp(c->verb, "set") || !strcmp(c->verb, "gpu")) {
		lake_app_printf(out, "app,key,value\n");
	} else {
		ret = lake_app_bad(out, "unknown command '%s' (bench, verify, hash, info, set, gpu)",
				   c->verb);
		goto out;
	}
	for (i = 0; i < napps; i++) {
		struct lake_app *a = apps[i];
		int r = 0;

		if (!all && strcmp(c->app, a->m->name))
			continue;
		if (!strcmp(c->verb, "gpu")) {
			r = lake_app_gpu_setup(a);
			lake_app_lock(&a->lock);
			lake_app_info_rows(a, out);
			lake_app_unlock(&a->lock);
			ret = ret ? ret : r;
			continue;
		}
		lake_app_lock(&a->lock);
		if (!strcmp(c->verb, "bench")) {
			r = lake_app_bench(a, c, t, out);
		} else if (!strcmp(c->verb, "verify")) {
			r = lake_app_verify(a, c, out);
		} else if (!strcmp(c->verb, "hash")) {
			r = lake_app_hash(a, c, out);
		} else {
			if (!strcmp(c->verb, "set")) {
				if (c->crossover != -2) {
					a->crossover = c->crossover;
					a->crossover_measured = false;
					a->opts.crossover = c->crossover;
				}
				if (c->xfer >= 0)
					a->opts.xfer = c->xfer;
				if (c->variant[0])
					a->variant = lake_app_variant_setting(a, c->variant);
			}
			lake_app_info_rows(a, out);
		}
		lake_app_unlock(&a->lock);
		ret = ret ? ret : r;
	}
out:
	lake_app_free(t);
	lake_app_free(c);
	return ret;
}
