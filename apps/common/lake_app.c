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

#define LAKE_APP_MAX_FNS	8
#define LAKE_APP_MAX_DEV	16
#define LAKE_APP_NPOW		12	/* batch sizes 1, 2, ..., 2048 */
#define LAKE_APP_TUNE_RUNS	15
#define LAKE_APP_MAX_ITERS	100000
#define LAKE_APP_TEXT_MAX	(4u << 20)

struct lake_app {
	const struct lake_app_bundle *b;
	const struct lake_app_model *m;
	struct lake_app_opts opts;
	void *state;
	lake_app_lock_t lock;

	struct lake_app_buf in, out;	/* host buffers: what the GPU path reads and writes */
	void *ref_out;			/* the CPU's outputs when comparing */

	/* The GPU path. */
	bool cuda_up;			/* cuInit and the primary context worked */
	bool gpu_ready;			/* ... and everything else, checked */
	bool mapped_ok;			/* kernels can use the host buffers directly */
	char gpu_why[192];
	char mapped_why[128];
	CUdevice dev;
	CUcontext ctx;
	CUmodule mod;
	CUfunction fn[LAKE_APP_MAX_FNS];
	CUfunction empty;
	CUdeviceptr d_in, d_out;	/* device buffers (copies) */
	CUdeviceptr m_in, m_out;	/* device addresses of the host buffers (mapped) */
	CUdeviceptr dev_mem[LAKE_APP_MAX_DEV];
	unsigned int ndev;
	CUevent ev[2];
	bool events;

	/* Policy. */
	unsigned int crossover;		/* auto: GPU for batch >= crossover; 0 = never */
	bool crossover_measured;
	unsigned int mapped_max;	/* xfer=auto: mapped host memory for batch <= mapped_max */
	u64 tune_cpu[LAKE_APP_NPOW], tune_copy[LAKE_APP_NPOW], tune_mapped[LAKE_APP_NPOW];

	struct lake_app_counts counts;
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

/* The inputs in a->in.p; the outputs to a->out.p. */
static CUresult lake_app_gpu_run(struct lake_app *a, unsigned int batch, bool mapped)
{
	struct lake_app_gpu_io io = { .batch = batch };
	CUresult r;

	if (mapped) {
		io.in = a->m_in;
		io.out = a->m_out;
		r = a->m->gpu_launch(a, &io);
		if (!r)
			r = cuCtxSynchronize();
		return r;
	}
	io.in = a->d_in;
	io.out = a->d_out;
	r = cuMemcpyHtoDAsync(a->d_in, a->in.p, batch * a->m->in_row, NULL);
	if (!r)
		r = a->m->gpu_launch(a, &io);
	if (!r)
		r = cuMemcpyDtoH(a->out.p, a->d_out, batch * a->m->out_row);
	return r;
}

static bool lake_app_use_mapped(const struct lake_app *a, unsigned int batch)
{
	if (!a->mapped_ok || a->opts.xfer == LAKE_APP_XFER_COPY)
		return false;
	return a->opts.xfer == LAKE_APP_XFER_MAPPED || batch <= a->mapped_max;
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
		bool mapped = lake_app_use_mapped(a, batch);
		CUresult r;

		if (in != a->in.p)
			memcpy(a->in.p, in, batch * a->m->in_row);
		r = lake_app_gpu_run(a, batch, mapped);
		if (!r) {
			a->counts.gpu++;
			if (mapped)
				a->counts.mapped++;
			else
				a->counts.copied++;
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
#else
	if (a->in.p)
		return 0;
#endif
	err = lake_app_host_alloc(&a->in, m->max_batch * m->in_row, a->cuda_up);
	if (!err)
		err = lake_app_host_alloc(&a->out, m->max_batch * m->out_row, a->cuda_up);
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
	a->mapped_ok = false;
	if (a->events) {
		cuEventDestroy(a->ev[0]);
		cuEventDestroy(a->ev[1]);
		a->events = false;
	}
	for (i = 0; i < a->ndev; i++)
		cuMemFree(a->dev_mem[i]);
	a->ndev = 0;
	a->d_in = a->d_out = a->m_in = a->m_out = 0;
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
#endif
		cuDevicePrimaryCtxRelease(a->dev);
		a->cuda_up = false;
	}
}

/* The GPU's outputs on the fixed input must be the CPU's. */
static bool lake_app_gpu_check(struct lake_app *a, bool mapped)
{
	static const unsigned int sizes[] = { 1, 7, 0 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		unsigned int batch = sizes[i] ? min(sizes[i], a->m->max_batch) : a->m->max_batch;
		struct lake_app_cmp cmp = { 0 };
		CUresult r;

		lake_app_input_fill(a, a->in.p, batch, NULL);
		lake_app_cpu_run(a, a->in.p, a->ref_out, batch);
		memset(a->out.p, 0, batch * a->m->out_row);
		r = lake_app_gpu_run(a, batch, mapped);
		if (r) {
			if (mapped)
				snprintf(a->mapped_why, sizeof(a->mapped_why),
					 "a run on mapped host memory failed with %s",
					 lake_app_cu_name(r));
			else
				lake_app_gpu_off(a, "the first run (batch %u) failed with %s", batch,
						 lake_app_cu_name(r));
			return false;
		}
		lake_app_compare(a, a->ref_out, a->out.p, batch, &cmp);
		if (cmp.beyond_tolerance || cmp.class_differs) {
			if (mapped)
				snprintf(a->mapped_why, sizeof(a->mapped_why),
					 "outputs on mapped host memory differ from the CPU's");
			else
				lake_app_gpu_off(a, "its outputs differ from the CPU's on the fixed input (batch %u: %llu rows beyond tolerance): a kernel that computes something else, or lakeD's test double",
						 batch, (unsigned long long)cmp.beyond_tolerance);
			return false;
		}
	}
	return true;
}

static u64 lake_app_time_cpu(struct lake_app *a, unsigned int batch, unsigned int runs)
{
	u64 t[LAKE_APP_TUNE_RUNS];
	unsigned int i;

	for (i = 0; i < runs + 2; i++) {
		u64 t0 = lake_app_now_ns();

		lake_app_cpu_run(a, a->in.p, a->ref_out, batch);
		if (i >= 2)
			t[i - 2] = lake_app_now_ns() - t0;
	}
	return lake_app_median(t, runs);
}

static u64 lake_app_time_gpu(struct lake_app *a, unsigned int batch, bool mapped)
{
	u64 t[LAKE_APP_TUNE_RUNS];
	unsigned int i;

	for (i = 0; i < LAKE_APP_TUNE_RUNS + 3; i++) {
		u64 t0 = lake_app_now_ns();

		if (lake_app_gpu_run(a, batch, mapped))
			return U64_MAX;
		if (i >= 3)
			t[i - 3] = lake_app_now_ns() - t0;
	}
	return lake_app_median(t, LAKE_APP_TUNE_RUNS);
}

/*
 * Auto mode's crossover and the copies/mapped choice, measured on the
 * fixed input at batch 1, 2, 4, ..., max_batch: the GPU from the first size
 * at which its time with transfers beats the CPU's; mapped memory up to the
 * last size of the run of sizes where it beats copies.
 */
static void lake_app_tune(struct lake_app *a)
{
	unsigned int batch, k, crossover = 0, mapped_max = 0;
	bool mapped_run = true, cpu_done = a->opts.crossover >= 0;

	for (k = 0; k < LAKE_APP_NPOW; k++)
		a->tune_cpu[k] = a->tune_copy[k] = a->tune_mapped[k] = 0;
	for (batch = 1, k = 0; batch <= a->m->max_batch && k < LAKE_APP_NPOW; batch *= 2, k++) {
		u64 gpu;

		lake_app_input_fill(a, a->in.p, batch, NULL);
		a->tune_copy[k] = lake_app_time_gpu(a, batch, false);
		gpu = a->tune_copy[k];
		if (a->mapped_ok) {
			a->tune_mapped[k] = lake_app_time_gpu(a, batch, true);
			if (mapped_run && a->tune_mapped[k] <= a->tune_copy[k])
				mapped_max = batch;
			else
				mapped_run = false;
			gpu = min(gpu, a->tune_mapped[k]);
		}
		if (!cpu_done) {
			u64 once = lake_app_now_ns();

			lake_app_cpu_run(a, a->in.p, a->ref_out, batch);
			once = lake_app_now_ns() - once;
			a->tune_cpu[k] = lake_app_time_cpu(a, batch, once > 5000000 ? 3 : LAKE_APP_TUNE_RUNS);
			if (gpu < a->tune_cpu[k]) {
				crossover = batch;
				cpu_done = true;
			}
		}
	}
	a->mapped_max = mapped_max;
	if (a->opts.crossover >= 0) {
		a->crossover = a->opts.crossover;
		a->crossover_measured = false;
	} else {
		a->crossover = crossover;
		a->crossover_measured = true;
	}
}

static void lake_app_log_policy(struct lake_app *a)
{
	char cpu[48], gpu[48];
	unsigned int k = a->crossover ? lake_app_log2(a->crossover) : 0;

	lake_app_fmt_fixed(cpu, sizeof(cpu), (s64)(a->tune_cpu[k] / 100), 1);
	lake_app_fmt_fixed(gpu, sizeof(gpu), (s64)(min(a->tune_copy[k], a->mapped_ok ?
						     a->tune_mapped[k] : U64_MAX) / 100), 1);
	if (!a->crossover_measured)
		lake_app_info("%s: auto mode: GPU from batch %u (set, not measured)\n", a->m->name,
			      a->crossover);
	else if (a->crossover)
		lake_app_info("%s: auto mode: GPU from batch %u (measured there: CPU %s us, GPU %s us with transfers)\n",
			      a->m->name, a->crossover, cpu, gpu);
	else
		lake_app_info("%s: auto mode: CPU at every batch size (the GPU never beat it up to batch %u)\n",
			      a->m->name, a->m->max_batch);
	if (a->mapped_ok && a->opts.xfer != LAKE_APP_XFER_AUTO)
		lake_app_info("%s: GPU transfers: %s (set)\n", a->m->name,
			      a->opts.xfer == LAKE_APP_XFER_COPY ? "copies" : "mapped host memory");
	else if (a->mapped_ok && a->mapped_max)
		lake_app_info("%s: GPU transfers: kernels on mapped host memory up to batch %u, copies above\n",
			      a->m->name, a->mapped_max);
	else if (a->mapped_ok)
		lake_app_info("%s: GPU transfers: copies (mapped host memory was slower at batch 1)\n",
			      a->m->name);
	else
		lake_app_info("%s: GPU transfers: copies (mapped host memory: %s)\n", a->m->name,
			      a->mapped_why);
}

int lake_app_gpu_setup(struct lake_app *a)
{
	const struct lake_app_model *m = a->m;
	CUresult r;
	unsigned int i;
	int err;

	lake_app_lock(&a->lock);
	lake_app_gpu_teardown(a);
	a->mapped_why[0] = 0;
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
	r = cuMemHostGetDevicePointer(&a->m_in, a->in.p, 0);
	if (!r)
		r = cuMemHostGetDevicePointer(&a->m_out, a->out.p, 0);
	if (r)
		snprintf(a->mapped_why, sizeof(a->mapped_why),
			 "cuMemHostGetDevicePointer: %s", lake_app_cu_name(r));
	a->mapped_ok = !r;
	if (!lake_app_gpu_check(a, false))
		goto out;
	if (a->mapped_ok && !lake_app_gpu_check(a, true)) {
		a->mapped_ok = false;
		lake_app_info("%s: mapped host memory off: %s\n", m->name, a->mapped_why);
	}
	a->gpu_ready = true;
	snprintf(a->gpu_why, sizeof(a->gpu_why), "ready");
	if (a->opts.crossover >= 0 && a->opts.xfer != LAKE_APP_XFER_AUTO) {
		/* Both set: nothing to measure. */
		a->crossover = a->opts.crossover;
		a->crossover_measured = false;
		a->mapped_max = 0;
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
	if (!a->state || !a->ref_out)
		goto fail;
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
	lake_app_unlock(&a->lock);
	if (a->m->fini)
		a->m->fini(a);
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
	bool random, have_iters, have_warmup, have_rows;
	u64 seed;
	int crossover;			/* set: -2 = unchanged */
	int xfer;			/* set: -1 = unchanged */
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
			if (lake_app_is(v, vn, "auto"))
				c->xfer = LAKE_APP_XFER_AUTO;
			else if (lake_app_is(v, vn, "copy"))
				c->xfer = LAKE_APP_XFER_COPY;
			else if (lake_app_is(v, vn, "mapped"))
				c->xfer = LAKE_APP_XFER_MAPPED;
			else
				return lake_app_bad(out, "xfer must be auto, copy or mapped");
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
	LAKE_APP_M_COPY,
	LAKE_APP_M_MAPPED,
	LAKE_APP_M_DEVICE,
	LAKE_APP_M_DEVICE_XFER,
	LAKE_APP_M_AUTO,
};

/* One timed iteration of @what; its time in *@ns.  Returns a CUresult / -errno. */
static int lake_app_once(struct lake_app *a, enum lake_app_measure what, unsigned int batch,
			 u64 *ns)
{
	struct lake_app_gpu_io io = { .in = a->d_in, .out = a->d_out, .batch = batch };
	u64 t0 = lake_app_now_ns();
	u32 ms_bits = 0;
	CUresult r = CUDA_SUCCESS;
	int ret;

	switch (what) {
	case LAKE_APP_M_CPU:
		/* Through predict(), as auto mode: the same overhead on both. */
		ret = lake_app_predict_locked(a, a->in.p, a->out.p, batch, LAKE_APP_CPU);
		*ns = lake_app_now_ns() - t0;
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
	case LAKE_APP_M_COPY:
	case LAKE_APP_M_MAPPED:
		r = lake_app_gpu_run(a, batch, what == LAKE_APP_M_MAPPED);
		break;
	case LAKE_APP_M_DEVICE:
	case LAKE_APP_M_DEVICE_XFER:
		r = cuEventRecord(a->ev[0], NULL);
		if (!r && what == LAKE_APP_M_DEVICE_XFER)
			r = cuMemcpyHtoDAsync(a->d_in, a->in.p, batch * a->m->in_row, NULL);
		if (!r)
			r = a->m->gpu_launch(a, &io);
		if (!r && what == LAKE_APP_M_DEVICE_XFER)
			r = cuMemcpyDtoHAsync(a->out.p, a->d_out, batch * a->m->out_row, NULL);
		if (!r)
			r = cuEventRecord(a->ev[1], NULL);
		if (!r)
			r = cuEventSynchronize(a->ev[1]);
		if (!r)
			r = cuEventElapsedTime((float *)&ms_bits, a->ev[0], a->ev[1]);
		*ns = lake_app_ms_bits_to_ns(ms_bits);
		return r;
	case LAKE_APP_M_AUTO:
		ret = lake_app_predict_locked(a, a->in.p, a->out.p, batch, LAKE_APP_AUTO);
		*ns = lake_app_now_ns() - t0;
		return ret;
	}
	*ns = lake_app_now_ns() - t0;
	return r;
}

static const char *const lake_app_measure_name[] = {
	[LAKE_APP_M_CPU] = "cpu",
	[LAKE_APP_M_FLOOR] = "floor",
	[LAKE_APP_M_INFER] = "gpu_infer",
	[LAKE_APP_M_COPY] = "gpu_xfer_copy",
	[LAKE_APP_M_MAPPED] = "gpu_xfer_mapped",
	[LAKE_APP_M_DEVICE] = "device",
	[LAKE_APP_M_DEVICE_XFER] = "device_xfer",
	[LAKE_APP_M_AUTO] = "auto",
};

/* Times @what; one CSV row, and its median in *@median (U64_MAX on error). */
static int lake_app_measure(struct lake_app *a, const struct lake_app_cmd *c,
			    enum lake_app_measure what, unsigned int batch, u64 *t,
			    struct lake_app_text *out, const char *detail, u64 *median)
{
	unsigned int i, iters = c->iters, warmup = c->warmup;
	int r = 0;

	*median = U64_MAX;
	for (i = 0; i < warmup + iters; i++) {
		u64 ns;

		r = lake_app_once(a, what, batch, &ns);
		if (r)
			break;
		if (!i && c->budget_ms) {
			/* Within the budget: fewer iterations of slow measures (at least 5). */
			u64 fit = (u64)c->budget_ms * 1000000 / (ns ? ns : 1);

			if (fit < (u64)warmup + iters) {
				iters = max(5u, (unsigned int)min(fit, (u64)iters) * 10 / 11);
				warmup = min(warmup, max(1u, iters / 10));
			}
		}
		if (i >= warmup)
			t[i - warmup] = ns;
		if ((i & 15) == 15) {
			lake_app_yield();
			if (lake_app_interrupted()) {
				r = -EINTR;
				break;
			}
		}
	}
	lake_app_printf(out, "%s,%s,%u,%s,", a->m->name, LAKE_APP_BUILD, batch,
			lake_app_measure_name[what]);
	if (r) {
		lake_app_printf(out, "0,,,,,error %d (%s)\n", r,
				r > 0 ? lake_app_cu_name(r) : "errno");
		return -EIO;
	}
	lake_app_stats(out, t, iters);
	*median = t[iters / 2];
	lake_app_printf(out, ",%s\n", detail);
	return 0;
}

static int lake_app_bench(struct lake_app *a, const struct lake_app_cmd *c, u64 *t,
			  struct lake_app_text *out)
{
	unsigned int i;
	int ret = 0;

	/* The policy the auto rows and the transfer pick follow. */
	lake_app_printf(out, "%s,%s,0,policy,0,,,,,crossover=%u (%s) mapped_max=%u xfer=%s gpu=%s\n",
			a->m->name, LAKE_APP_BUILD, a->crossover,
			a->crossover_measured ? "measured" : "set", a->mapped_ok ? a->mapped_max : 0,
			a->opts.xfer == LAKE_APP_XFER_COPY ? "copy" :
			a->opts.xfer == LAKE_APP_XFER_MAPPED ? "mapped" : "auto",
			a->gpu_ready ? "ready" : a->gpu_why);
	for (i = 0; i < c->nbatch; i++) {
		unsigned int batch = c->batch[i];
		u64 seed = c->seed ^ ((u64)batch << 32), med, infer = 0, copy = U64_MAX;

		bool auto_gpu = lake_app_auto_gpu(a, batch);

		lake_app_input_fill(a, a->in.p, batch, c->random ? &seed : NULL);
		if (c->mode & LAKE_APP_RUN_CPU)
			ret |= lake_app_measure(a, c, LAKE_APP_M_CPU, batch, t, out, "", &med);
		/* Auto mode is timed next to the path it takes. */
		if ((c->mode & LAKE_APP_RUN_AUTO) && !auto_gpu)
			ret |= lake_app_measure(a, c, LAKE_APP_M_AUTO, batch, t, out, "cpu", &med);
		if ((c->mode & LAKE_APP_RUN_GPU) && a->gpu_ready) {
			char pick[96];
			CUresult r;

			ret |= lake_app_measure(a, c, LAKE_APP_M_FLOOR, batch, t, out,
						"empty launch + cuCtxSynchronize", &med);
			r = cuMemcpyHtoD(a->d_in, a->in.p, batch * a->m->in_row);
			if (r) {
				lake_app_printf(out, "%s,%s,%u,gpu_infer,0,,,,,error %d (%s)\n",
						a->m->name, LAKE_APP_BUILD, batch, r, lake_app_cu_name(r));
				ret = -EIO;
				continue;
			}
			ret |= lake_app_measure(a, c, LAKE_APP_M_INFER, batch, t, out,
						"launch + cuCtxSynchronize", &infer);
			ret |= lake_app_measure(a, c, LAKE_APP_M_COPY, batch, t, out,
						"H2D async + launch + D2H", &copy);
			if (a->mapped_ok)
				ret |= lake_app_measure(a, c, LAKE_APP_M_MAPPED, batch, t, out,
							"launch on mapped host memory + cuCtxSynchronize",
							&med);
			ret |= lake_app_measure(a, c, LAKE_APP_M_DEVICE, batch, t, out,
						"CUDA events around the launch", &med);
			ret |= lake_app_measure(a, c, LAKE_APP_M_DEVICE_XFER, batch, t, out,
						"CUDA events around H2D + launch + D2H", &med);
			snprintf(pick, sizeof(pick), "%s%s",
				 lake_app_use_mapped(a, batch) ? "mapped" : "copy",
				 copy < infer ? " ANOMALY: with transfers (copies) below inference only" : "");
			lake_app_printf(out, "%s,%s,%u,gpu_xfer_pick,0,,,,,%s\n", a->m->name,
					LAKE_APP_BUILD, batch, pick);
		}
		if ((c->mode & LAKE_APP_RUN_AUTO) && auto_gpu)
			ret |= lake_app_measure(a, c, LAKE_APP_M_AUTO, batch, t, out, "gpu", &med);
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

static int lake_app_verify(struct lake_app *a, const struct lake_app_cmd *c,
			   struct lake_app_text *out)
{
	size_t w = a->m->out_row;
	unsigned int i, j;
	int ret = 0;

	if (!a->gpu_ready) {
		lake_app_printf(out, "%s,%s,,skipped: GPU path off: %s,,,,,,,,\n", a->m->name,
				LAKE_APP_BUILD, a->gpu_why);
		return 0;
	}
	for (i = 0; i < c->nbatch; i++) {
		unsigned int batch = c->batch[i], n = lake_app_nbatches(c, batch), k;
		u64 seed = c->seed ^ ((u64)batch << 32), exact = 0, rows = 0;
		u64 cpu_hash = LAKE_APP_FNV_INIT, gpu_hash = LAKE_APP_FNV_INIT;
		u64 mapped_differs = 0, mapped_rows = 0;
		struct lake_app_cmp cmp = { 0 };
		char diff[48];
		CUresult r = CUDA_SUCCESS;

		for (j = 0; j < n && !r; j++) {
			lake_app_fill_nth(a, batch, j, &seed);
			lake_app_cpu_run(a, a->in.p, a->ref_out, batch);
			r = lake_app_gpu_run(a, batch, false);
			if (r)
				break;
			exact += lake_app_compare(a, a->ref_out, a->out.p, batch, &cmp);
			rows += batch;
			cpu_hash = lake_app_fnv(cpu_hash, a->ref_out, batch * w);
			gpu_hash = lake_app_fnv(gpu_hash, a->out.p, batch * w);
			if (a->mapped_ok) {
				/* The mapped path must give the copies' outputs exactly. */
				memcpy(a->ref_out, a->out.p, batch * w);
				r = lake_app_gpu_run(a, batch, true);
				if (r)
					break;
				for (k = 0; k < batch; k++)
					mapped_differs += !!memcmp((u8 *)a->ref_out + k * w,
								   (u8 *)a->out.p + k * w, w);
				mapped_rows += batch;
			}
			if ((j & 7) == 7) {
				lake_app_yield();
				if (lake_app_interrupted())
					return -EINTR;
			}
		}
		lake_app_fmt_fixed(diff, sizeof(diff), (s64)cmp.max_diff_e9, 9);
		lake_app_printf(out, "%s,%s,%u,%s,%llu,%llu,%llu,%llu,%s,%016llx,%016llx,%llu/%llu%s\n",
				a->m->name, LAKE_APP_BUILD, batch, r ? "error" : "ok",
				(unsigned long long)rows, (unsigned long long)exact,
				(unsigned long long)cmp.beyond_tolerance,
				(unsigned long long)cmp.class_differs, diff,
				(unsigned long long)cpu_hash, (unsigned long long)gpu_hash,
				(unsigned long long)(mapped_rows - mapped_differs),
				(unsigned long long)mapped_rows,
				r ? " (a GPU run failed)" : "");
		if (r || cmp.beyond_tolerance || cmp.class_differs || mapped_differs)
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
	unsigned int batch, k;

	lake_app_printf(out, "%s,build,%s\n", a->m->name, LAKE_APP_BUILD);
	lake_app_printf(out, "%s,gpu,%s\n", a->m->name, lake_app_gpu_status(a));
	lake_app_printf(out, "%s,mapped,%s\n", a->m->name,
			a->mapped_ok ? "yes" : a->mapped_why[0] ? a->mapped_why : "no");
	lake_app_printf(out, "%s,crossover,%u (%s)\n", a->m->name, a->crossover,
			a->crossover_measured ? "measured" : a->gpu_ready || a->opts.crossover >= 0 ?
			"set" : "no GPU");
	lake_app_printf(out, "%s,xfer,%s\n", a->m->name,
			a->opts.xfer == LAKE_APP_XFER_COPY ? "copy" :
			a->opts.xfer == LAKE_APP_XFER_MAPPED ? "mapped" : "auto");
	lake_app_printf(out, "%s,mapped_max,%u\n", a->m->name, a->mapped_ok ? a->mapped_max : 0);
	lake_app_printf(out, "%s,counts,cpu=%llu gpu=%llu auto_cpu=%llu auto_gpu=%llu gpu_failed=%llu fallback=%llu mapped=%llu copied=%llu rows=%llu\n",
			a->m->name, (unsigned long long)n->cpu, (unsigned long long)n->gpu,
			(unsigned long long)n->auto_cpu, (unsigned long long)n->auto_gpu,
			(unsigned long long)n->gpu_failed, (unsigned long long)n->fallback,
			(unsigned long long)n->mapped, (unsigned long long)n->copied,
			(unsigned long long)n->rows);
	if (!a->gpu_ready)
		return;
	for (batch = 1, k = 0; batch <= a->m->max_batch && k < LAKE_APP_NPOW; batch *= 2, k++) {
		char cpu[48] = "", copy[48] = "", mapped[48] = "";

		if (a->tune_cpu[k])
			lake_app_fmt_fixed(cpu, sizeof(cpu), (s64)a->tune_cpu[k], 3);
		if (a->tune_copy[k] && a->tune_copy[k] != U64_MAX)
			lake_app_fmt_fixed(copy, sizeof(copy), (s64)a->tune_copy[k], 3);
		if (a->tune_mapped[k] && a->tune_mapped[k] != U64_MAX)
			lake_app_fmt_fixed(mapped, sizeof(mapped), (s64)a->tune_mapped[k], 3);
		lake_app_printf(out, "%s,tune_us,batch=%u cpu=%s copy=%s mapped=%s\n", a->m->name,
				batch, cpu, copy, mapped);
	}
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
		t = lake_app_zalloc(sizeof(*t) * c->iters);
		if (!t) {
			ret = -ENOMEM;
			goto out;
		}
		lake_app_printf(out, "app,build,batch,measure,iters,mean_us,median_us,p99_us,min_us,detail\n");
	} else if (!strcmp(c->verb, "verify")) {
		if (!c->have_rows)
			c->rows = 10000;
		lake_app_printf(out, "app,build,batch,status,rows,bit_exact,beyond_tolerance,class_differs,max_abs_diff,cpu_hash,gpu_hash,mapped_same\n");
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
