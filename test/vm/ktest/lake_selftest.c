// SPDX-License-Identifier: GPL-2.0
/*
 * lake_selftest.ko: LAKE's tests from kernel context, run in the test VM.
 *
 * Write a command to /sys/kernel/debug/lake_selftest/run; the write returns
 * once the test is over, with an error (-EIO) when it failed, and the
 * details go to the kernel log:
 *
 *   roundtrip            every remoted function (lakeD-fake in verify mode)
 *   load THREADS CALLS   THREADS kthreads x CALLS mixed sync/async calls
 *   faults THREADS       THREADS kthreads calling until lakeD goes away;
 *                        every one must get -ENODEV back, none may hang
 *   fail-fast            with no daemon, a call fails at once with -ENODEV
 *   bench ITERATIONS     null round trips: median and p99 in ns
 *   null CALLS           CALLS sequential null round trips, whatever the
 *                        daemon does; the write fails with the first call's
 *                        error (-ENODEV, -ETIMEDOUT, -EPROTO, ...) if any
 *                        failed, and the result file counts them by error
 *   dtoh BYTES           one cuMemcpyDtoH into a kmalloc'ed buffer of BYTES
 *                        (staged through the arena when it does not fit in
 *                        the slot); the daemon must fill it with 0x5a:
 *                        -ETIMEDOUT, -ENODEV, -EIO (another CUDA error) or
 *                        -EBADMSG (wrong bytes) if not
 *   timeout MS [NULLS]   with a daemon that never answers and timeout_ms
 *                        set to MS: NULLS (default 1) null calls must fail
 *                        with -ETIMEDOUT, then cuDeviceGetCount with
 *                        CUDA_ERROR_TIMEOUT and nvmlDeviceGetCount with
 *                        NVML_ERROR_TIMEOUT, each after MS ms (not sooner,
 *                        and not much later)
 *
 *   leak BYTES           lake_shm_alloc() BYTES and never free them (the
 *                        unload of lake.ko must reclaim them, not BUG)
 *   fuzz SECONDS THREADS THREADS kthreads calling every remoted function
 *                        (and the calls below) for SECONDS, whatever the
 *                        daemon answers; only the kernel's health is judged
 *
 * Against a daemon a test program plays (test_hostile.c), one step each;
 * the result line says what the caller got:
 *
 *   load IMAGE           cuModuleLoadData of test image IMAGE (0: LAKE_TEST_PTX,
 *                        1: kernels hk_a and hk_b) -> "load: r=R"
 *   getfunc KERNEL       cuModuleGetFunction on the last module, kernel
 *                        KERNEL (0: LAKE_TEST_KERNEL, 1: hk_a, 2: hk_b)
 *                        -> "getfunc: r=R"
 *   getfuncs N           N x getfunc 0 -> "getfuncs: ok=N failed=N"
 *   launch [EXTRA]       cuLaunchKernel of the last function with kernelParams
 *                        (8, 4, 8 bytes: LAKE_TEST_KV0..2), or with EXTRA = 1
 *                        the same packed in a CU_LAUNCH_PARAM_BUFFER, then
 *                        cuCtxSynchronize -> "launch: r=R sync=S"
 *   getname LEN ARENA    cuDeviceGetName into LEN bytes (kmalloc, or the
 *                        arena), a guard byte after them
 *                        -> "getname: r=R nul=0|1 len=L guard=0|1"
 *   procs CAP            nvmlDeviceGetComputeRunningProcesses with room for
 *                        CAP entries and a guard entry
 *                        -> "procs: r=R count=C guard=0|1"
 *   stale                cuMemcpyHtoD of 256 bytes of 0x5e, then a
 *                        cuMemcpyDtoH of 256 -> "stale: htod=R dtoh=R nonzero=N"
 *   modfile PATH         cuModuleLoad(PATH) -> "modfile: r=R ms=T"
 *   timed-null           one null call -> "timed-null: r=R ms=T"
 *
 * /sys/kernel/debug/lake_selftest/result holds one line about the last
 * command (the counts of `null`, the timings of `timeout`).
 */
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>
#include "lake_cuda.h"
#include "lake_nvml.h"
#include "lake_kernel.h"
#include "lake_proto_gen.h"
#include "lake_testvals.h"
#include "lake_ktest.h"

static struct dentry *lake_st_dir;

/*
 * Commands run one at a time (lake_st_lock), except the single null calls
 * ("null 1", "timed-null"), which test programs make from several callers
 * at once to fill the slots.  The last summary (the result file) has a lock
 * of its own; "null 1" leaves it alone.
 */
static DEFINE_MUTEX(lake_st_lock);
static DEFINE_MUTEX(lake_st_result_lock);
static char lake_st_result[256];

static __printf(2, 3) void lake_st_report(bool log, const char *fmt, ...)
{
	va_list ap;

	mutex_lock(&lake_st_result_lock);
	va_start(ap, fmt);
	vscnprintf(lake_st_result, sizeof(lake_st_result), fmt, ap);
	va_end(ap);
	if (log)
		pr_info("lake_selftest: %s", lake_st_result);
	mutex_unlock(&lake_st_result_lock);
}

struct lake_st_worker {
	struct task_struct *task;
	struct completion done;
	unsigned int id;
	unsigned int calls;
	unsigned int made;	/* calls made */
	unsigned int failed;	/* calls that went wrong */
	int last_error;
	u64 ended_ns;		/* faults: when the first error came back */
};

/* One iteration of the load mix: null (echo-checked), a sync query, an
 * async launch, and a sync call that reports any sticky async error. */
static int lake_st_load_fn(void *data)
{
	struct lake_st_worker *w = data;
	unsigned long long kv0 = LAKE_TEST_KV0, kv2 = LAKE_TEST_KV2;
	unsigned int kv1 = LAKE_TEST_KV1;
	void *params[3] = { &kv0, &kv1, &kv2 };
	CUmodule mod = NULL;
	CUfunction fn = NULL;
	unsigned int i;
	int r, count;

	r = cuModuleLoadData(&mod, LAKE_TEST_PTX);
	if (!r)
		r = cuModuleGetFunction(&fn, mod, LAKE_TEST_KERNEL);
	if (r) {
		w->failed++;
		w->last_error = r;
		goto out;
	}
	for (i = 0; i < w->calls; i++) {
		switch (i % 4) {
		case 0:
			r = lake_null_call();
			break;
		case 1:
			count = -1;
			r = cuDeviceGetCount(&count);
			if (!r && count != (int)lake_fake_out(LAKE_API_cuDeviceGetCount, 0))
				r = -EBADMSG;
			break;
		case 2:
			r = cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL);
			break;
		default:
			r = cuCtxSynchronize();
			break;
		}
		w->made++;
		if (r) {
			w->failed++;
			w->last_error = r;
		}
	}
	/* No cuModuleUnload: the test double hands every thread the same
	 * module, and unloading it would pull it from under the others. */
out:
	complete(&w->done);
	return 0;
}

/* Calls until the daemon goes away (or 60 s pass); records when. */
static int lake_st_faults_fn(void *data)
{
	struct lake_st_worker *w = data;
	u64 end = ktime_get_ns() + 60 * NSEC_PER_SEC;
	int r;

	do {
		r = lake_null_call();
		w->made++;
	} while (!r && ktime_get_ns() < end);
	w->last_error = r;
	w->ended_ns = ktime_get_ns();
	complete(&w->done);
	return 0;
}

static int lake_st_run_workers(int (*fn)(void *), unsigned int threads, unsigned int calls,
			       struct lake_st_worker **out)
{
	struct lake_st_worker *w;
	unsigned int i;

	w = kcalloc(threads, sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	for (i = 0; i < threads; i++) {
		w[i].id = i;
		w[i].calls = calls;
		init_completion(&w[i].done);
		w[i].task = kthread_run(fn, &w[i], "lake_st/%u", i);
		if (IS_ERR(w[i].task)) {
			w[i].failed = 1;
			w[i].last_error = PTR_ERR(w[i].task);
			complete(&w[i].done);
		}
	}
	for (i = 0; i < threads; i++)
		wait_for_completion(&w[i].done);
	*out = w;
	return 0;
}

static int lake_st_load_threads(unsigned int threads, unsigned int calls)
{
	struct lake_st_worker *w;
	unsigned long long made = 0, failed = 0;
	u64 t0 = ktime_get_ns();
	unsigned int i;
	int ret;

	ret = lake_st_run_workers(lake_st_load_fn, threads, calls, &w);
	if (ret)
		return ret;
	for (i = 0; i < threads; i++) {
		made += w[i].made;
		failed += w[i].failed;
		if (w[i].failed)
			pr_err("lake_selftest: load: thread %u: %u of %u calls failed (last %d)\n",
			       i, w[i].failed, w[i].made, w[i].last_error);
	}
	pr_info("lake_selftest: load: %u threads, %llu calls, %llu failed, %llu ms\n",
		threads, made, failed, (ktime_get_ns() - t0) / NSEC_PER_MSEC);
	kfree(w);
	return failed || made != (unsigned long long)threads * calls ? -EIO : 0;
}

static int lake_st_faults(unsigned int threads)
{
	struct lake_st_worker *w;
	u64 first = U64_MAX, last = 0;
	unsigned int i, bad = 0;
	int ret;

	ret = lake_st_run_workers(lake_st_faults_fn, threads, 0, &w);
	if (ret)
		return ret;
	for (i = 0; i < threads; i++) {
		if (w[i].last_error != -ENODEV) {
			pr_err("lake_selftest: faults: thread %u ended with %d, not -ENODEV\n",
			       i, w[i].last_error);
			bad++;
		}
		first = min(first, w[i].ended_ns);
		last = max(last, w[i].ended_ns);
	}
	pr_info("lake_selftest: faults: %u threads all returned within %llu ms of each other, %u wrong\n",
		threads, (last - first) / NSEC_PER_MSEC, bad);
	kfree(w);
	return bad ? -EIO : 0;
}

static int lake_st_fail_fast(void)
{
	u64 t0 = ktime_get_ns();
	CUdeviceptr d;
	int r = lake_null_call();
	int c = cuMemAlloc(&d, 64);
	u64 us = (ktime_get_ns() - t0) / NSEC_PER_USEC;

	pr_info("lake_selftest: fail-fast: null %d, cuMemAlloc %d, in %llu us\n", r, c, us);
	return r == -ENODEV && c == CUDA_ERROR_DEVICE_UNAVAILABLE && us < 100000 ? 0 : -EIO;
}

static int lake_st_cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

static int lake_st_bench(unsigned int n)
{
	u64 *t;
	unsigned int i;
	int r = 0;

	if (n < 10 || n > 1000000)
		return -EINVAL;
	t = kvmalloc_array(n, sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	for (i = 0; i < n / 10 && !r; i++)	/* warm-up */
		r = lake_null_call();
	for (i = 0; i < n && !r; i++) {
		u64 t0 = ktime_get_ns();

		r = lake_null_call();
		t[i] = ktime_get_ns() - t0;
	}
	if (!r) {
		sort(t, n, sizeof(*t), lake_st_cmp_u64, NULL);
		pr_info("lake_selftest: bench: null round trip from kernel context: n=%u median_ns=%llu p99_ns=%llu\n",
			n, t[n / 2], t[(u64)n * 99 / 100]);
	}
	kvfree(t);
	return r ? -EIO : 0;
}

/* CALLS null round trips, one after another, counting the outcomes. */
static int lake_st_null(unsigned int calls)
{
	unsigned int i, ok = 0, nodev = 0, timedout = 0, proto = 0, intr = 0, other = 0;
	int r, first = 0;

	for (i = 0; i < calls; i++) {
		r = lake_null_call();
		switch (r) {
		case 0:
			ok++;
			break;
		case -ENODEV:
			nodev++;
			break;
		case -ETIMEDOUT:
			timedout++;
			break;
		case -EPROTO:
			proto++;
			break;
		case -EINTR:
			intr++;
			break;
		default:
			other++;
			break;
		}
		if (r && !first)
			first = r;
		if (r == -EINTR)
			break;	/* killed: stop */
	}
	if (calls == 1)
		return first;	/* one of several concurrent callers: errno only */
	lake_st_report(true, "null: calls=%u ok=%u enodev=%u etimedout=%u eproto=%u eintr=%u other=%u first_error=%d\n",
		       i, ok, nodev, timedout, proto, intr, other, first);
	return first;
}

static int lake_st_dtoh(unsigned int bytes)
{
	u8 *buf = kvmalloc(bytes, GFP_KERNEL);
	unsigned int i, bad = 0;
	CUresult r;
	int ret;

	if (!buf)
		return -ENOMEM;
	memset(buf, 0xee, bytes);
	r = cuMemcpyDtoH(buf, 0x1000, bytes);
	switch (r) {
	case CUDA_SUCCESS:
		for (i = 0; i < bytes; i++)
			bad += buf[i] != 0x5a;
		ret = bad ? -EBADMSG : 0;
		break;
	case CUDA_ERROR_TIMEOUT:
		ret = -ETIMEDOUT;
		break;
	case CUDA_ERROR_DEVICE_UNAVAILABLE:
		ret = -ENODEV;
		break;
	default:
		ret = -EIO;
		break;
	}
	lake_st_report(false, "dtoh: bytes=%u result=%d wrong_bytes=%u\n", bytes, r, bad);
	kvfree(buf);
	return ret;
}

/* One call that must time out: its result and how long it took. */
static bool lake_st_timed_out(const char *what, int r, int want, u64 t0, unsigned int ms,
			      u64 *took_ms)
{
	u64 took = (ktime_get_ns() - t0) / NSEC_PER_MSEC;
	/* Jiffies round the wait; TCG adds its own delays: allow a little
	 * less and a second or so more than timeout_ms. */
	bool ok = r == want && took + 20 >= ms && took <= 2ull * ms + 2000;

	*took_ms = took;
	if (!ok)
		pr_err("lake_selftest: timeout: %s returned %d after %llu ms, expected %d after %u ms\n",
		       what, r, took, want, ms);
	return ok;
}

/* ---- steps driven by a hostile daemon (test_hostile.c) ---- */

#define LAKE_ST_PTX_AB								\
	".version 8.0\n.target sm_90\n.address_size 64\n"			\
	".visible .entry hk_a(.param .u64 a, .param .u32 b, .param .u64 c) { ret; }\n" \
	".visible .entry hk_b(.param .u64 a, .param .u32 b, .param .u64 c) { ret; }\n"

static CUmodule lake_st_mod;
static CUfunction lake_st_fn;
static void *lake_st_leaked;

static int lake_st_load(unsigned int image)
{
	int r = cuModuleLoadData(&lake_st_mod, image ? LAKE_ST_PTX_AB : LAKE_TEST_PTX);

	lake_st_report(false, "load: r=%d\n", r);
	return 0;
}

static const char *lake_st_kernel(unsigned int k)
{
	return k == 0 ? LAKE_TEST_KERNEL : k == 1 ? "hk_a" : "hk_b";
}

static int lake_st_getfunc(unsigned int k)
{
	CUfunction fn = NULL;
	int r = cuModuleGetFunction(&fn, lake_st_mod, lake_st_kernel(k));

	if (!r)
		lake_st_fn = fn;
	lake_st_report(false, "getfunc: r=%d\n", r);
	return 0;
}

static int lake_st_getfuncs(unsigned int n)
{
	unsigned int i, ok = 0;
	CUfunction fn;

	for (i = 0; i < n; i++)
		ok += cuModuleGetFunction(&fn, lake_st_mod, LAKE_TEST_KERNEL) == CUDA_SUCCESS;
	lake_st_report(false, "getfuncs: ok=%u failed=%u\n", ok, n - ok);
	return 0;
}

static int lake_st_launch(bool extra)
{
	unsigned long long kv0 = LAKE_TEST_KV0, kv2 = LAKE_TEST_KV2;
	unsigned int kv1 = LAKE_TEST_KV1;
	void *params[3] = { &kv0, &kv1, &kv2 };
	u8 buf[24] = { 0 };
	size_t size = sizeof(buf);
	void *x[] = { CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
		      CU_LAUNCH_PARAM_END };
	int r, s;

	memcpy(buf, &kv0, 8);
	memcpy(buf + 8, &kv1, 4);
	memcpy(buf + 16, &kv2, 8);
	r = cuLaunchKernel(lake_st_fn, 1, 1, 1, 32, 1, 1, 0, NULL, extra ? NULL : params,
			   extra ? x : NULL);
	s = cuCtxSynchronize();
	lake_st_report(false, "launch: r=%d sync=%d\n", r, s);
	return 0;
}

static int lake_st_getname(unsigned int len, bool arena)
{
	char *buf = arena ? lake_shm_alloc(len + 1) : kmalloc(len + 1, GFP_KERNEL);
	int r;

	if (!buf)
		return -ENOMEM;
	memset(buf, 'x', len);
	buf[len] = 'G';
	r = cuDeviceGetName(buf, len, 0);
	lake_st_report(false, "getname: r=%d nul=%d len=%zu guard=%d\n", r,
		       memchr(buf, 0, len) != NULL, strnlen(buf, len), buf[len] == 'G');
	if (arena)
		lake_shm_free(buf, len + 1);
	else
		kfree(buf);
	return 0;
}

static int lake_st_procs(unsigned int cap)
{
	nvmlProcessInfo_t *infos = kcalloc(cap + 1, sizeof(*infos), GFP_KERNEL);
	unsigned int count = cap;
	int r;

	if (!infos)
		return -ENOMEM;
	memset(&infos[cap], 0x77, sizeof(infos[cap]));
	r = nvmlDeviceGetComputeRunningProcesses((nvmlDevice_t)(uintptr_t)0x1234, &count, infos);
	lake_st_report(false, "procs: r=%d count=%u guard=%d\n", r, count,
		       ((u8 *)&infos[cap])[0] == 0x77 && ((u8 *)&infos[cap + 1])[-1] == 0x77);
	kfree(infos);
	return 0;
}

static int lake_st_stale(void)
{
	u8 *secret = kmalloc(256, GFP_KERNEL), *dst = kmalloc(256, GFP_KERNEL);
	unsigned int i, nonzero = 0;
	int h = -1, d = -1;

	if (secret && dst) {
		memset(secret, 0x5e, 256);
		memset(dst, 0xee, 256);
		h = cuMemcpyHtoD(0x1000, secret, 256);
		d = cuMemcpyDtoH(dst, 0x1000, 256);
		for (i = 0; i < 256; i++)
			nonzero += dst[i] != 0;
	}
	lake_st_report(false, "stale: htod=%d dtoh=%d nonzero=%u\n", h, d, nonzero);
	kfree(secret);
	kfree(dst);
	return secret && dst ? 0 : -ENOMEM;
}

static int lake_st_modfile(const char *path)
{
	u64 t0 = ktime_get_ns();
	CUmodule mod = NULL;
	int r = cuModuleLoad(&mod, path);

	lake_st_report(false, "modfile: r=%d ms=%llu\n", r, (ktime_get_ns() - t0) / NSEC_PER_MSEC);
	return 0;
}

static int lake_st_timed_null(void)
{
	u64 t0 = ktime_get_ns();
	int r = lake_null_call();

	lake_st_report(false, "timed-null: r=%d ms=%llu\n", r, (ktime_get_ns() - t0) / NSEC_PER_MSEC);
	return 0;
}

/* The fuzz load: every remoted function and the steps above, over and over,
 * from several kthreads, whatever comes back. */
static u64 lake_st_fuzz_end;

static int lake_st_fuzz_fn(void *data)
{
	struct lake_st_worker *w = data;
	unsigned int ncalls;

	while (ktime_get_ns() < lake_st_fuzz_end) {
		CUmodule mod = NULL;
		CUfunction fn = NULL;
		unsigned long long kv0 = LAKE_TEST_KV0, kv2 = LAKE_TEST_KV2;
		unsigned int kv1 = LAKE_TEST_KV1, count = 3;
		void *params[3] = { &kv0, &kv1, &kv2 };
		nvmlProcessInfo_t infos[3];
		char name[24];

		w->failed += lake_ktest_roundtrip(&ncalls);
		w->made += ncalls;
		if (!cuModuleLoadData(&mod, w->id & 1 ? LAKE_ST_PTX_AB : LAKE_TEST_PTX) &&
		    !cuModuleGetFunction(&fn, mod, lake_st_kernel(w->id & 1)))
			cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL);
		cuDeviceGetName(name, sizeof(name), 0);
		if (memchr(name, 0, sizeof(name)) == NULL)
			w->last_error = -EBADMSG;	/* a string past its buffer */
		nvmlDeviceGetComputeRunningProcesses(NULL, &count, infos);
		lake_null_call();
		w->made += 6;
		cond_resched();
	}
	complete(&w->done);
	return 0;
}

static int lake_st_fuzz(unsigned int seconds, unsigned int threads)
{
	struct lake_st_worker *w;
	unsigned long long made = 0;
	unsigned int i, bad = 0;
	int ret;

	lake_st_fuzz_end = ktime_get_ns() + (u64)seconds * NSEC_PER_SEC;
	lake_ktest_quiet = true;
	ret = lake_st_run_workers(lake_st_fuzz_fn, threads, 0, &w);
	lake_ktest_quiet = false;
	if (ret)
		return ret;
	for (i = 0; i < threads; i++) {
		made += w[i].made;
		bad += w[i].last_error == -EBADMSG;
	}
	lake_st_report(true, "fuzz: %u threads, %llu calls in %u s, %u saw an unterminated string\n",
		       threads, made, seconds, bad);
	kfree(w);
	return bad ? -EIO : 0;
}

static int lake_st_timeout(unsigned int ms, unsigned int nulls)
{
	u64 t0, took, max_took = 0, min_took = U64_MAX;
	unsigned int i, bad = 0, dev_count;
	int count;
	int r;

	for (i = 0; i < nulls; i++) {
		t0 = ktime_get_ns();
		r = lake_null_call();
		bad += !lake_st_timed_out("lake_null_call", r, -ETIMEDOUT, t0, ms, &took);
		min_took = min(min_took, took);
		max_took = max(max_took, took);
	}
	t0 = ktime_get_ns();
	r = cuDeviceGetCount(&count);
	bad += !lake_st_timed_out("cuDeviceGetCount", r, CUDA_ERROR_TIMEOUT, t0, ms, &took);
	min_took = min(min_took, took);
	max_took = max(max_took, took);
	t0 = ktime_get_ns();
	r = nvmlDeviceGetCount(&dev_count);
	bad += !lake_st_timed_out("nvmlDeviceGetCount", r, NVML_ERROR_TIMEOUT, t0, ms, &took);
	min_took = min(min_took, took);
	max_took = max(max_took, took);
	lake_st_report(true, "timeout: calls=%u timeout_ms=%u min_ms=%llu max_ms=%llu wrong=%u\n",
		       nulls + 2, ms, min_took, max_took, bad);
	return bad ? -EIO : 0;
}

static ssize_t lake_st_run_write(struct file *file, const char __user *ubuf,
				 size_t len, loff_t *ppos)
{
	char cmd[96], name[16], path[80];
	unsigned int a = 0, b = 0, ncalls;
	int n, ret;

	if (len >= sizeof(cmd))
		return -EINVAL;
	if (copy_from_user(cmd, ubuf, len))
		return -EFAULT;
	cmd[len] = 0;
	n = sscanf(cmd, "%15s %u %u", name, &a, &b);
	if (n < 1)
		return -EINVAL;
	if ((!strcmp(name, "null") && n == 2 && a == 1) || !strcmp(name, "timed-null")) {
		ret = a == 1 ? lake_st_null(1) : lake_st_timed_null();
		return ret ? ret : len;
	}
	mutex_lock(&lake_st_lock);
	lake_st_report(false, "%s", "");
	if (!strcmp(name, "roundtrip")) {
		int fails = lake_ktest_roundtrip(&ncalls);

		pr_info("lake_selftest: roundtrip: %u calls from kernel context, %d failed\n",
			ncalls, fails);
		ret = fails ? -EIO : 0;
	} else if (!strcmp(name, "load") && n == 3 && a && a <= 256 && b) {
		ret = lake_st_load_threads(a, b);
	} else if (!strcmp(name, "faults") && n == 2 && a && a <= 256) {
		ret = lake_st_faults(a);
	} else if (!strcmp(name, "fail-fast")) {
		ret = lake_st_fail_fast();
	} else if (!strcmp(name, "bench") && n == 2) {
		ret = lake_st_bench(a);
	} else if (!strcmp(name, "null") && n == 2 && a && a <= 1000000) {
		ret = lake_st_null(a);
	} else if (!strcmp(name, "dtoh") && n == 2 && a && a <= (16u << 20)) {
		ret = lake_st_dtoh(a);
	} else if (!strcmp(name, "timeout") && n >= 2 && a >= 100 && a <= 60000 &&
		   (n == 2 || b <= 64)) {
		ret = lake_st_timeout(a, n == 3 ? b : 1);
	} else if (!strcmp(name, "leak") && n == 2 && a && a <= (1u << 20) && !lake_st_leaked) {
		lake_st_leaked = lake_shm_alloc(a);	/* never freed, on purpose */
		ret = lake_st_leaked ? 0 : -ENOMEM;
	} else if (!strcmp(name, "fuzz") && n == 3 && a && a <= 600 && b && b <= 64) {
		ret = lake_st_fuzz(a, b);
	} else if (!strcmp(name, "load") && n == 2 && a <= 1) {
		ret = lake_st_load(a);
	} else if (!strcmp(name, "getfunc") && n == 2 && a <= 2) {
		ret = lake_st_getfunc(a);
	} else if (!strcmp(name, "getfuncs") && n == 2 && a && a <= 100000) {
		ret = lake_st_getfuncs(a);
	} else if (!strcmp(name, "launch")) {
		ret = lake_st_launch(n == 2 && a);
	} else if (!strcmp(name, "getname") && n == 3 && a && a <= 4096) {
		ret = lake_st_getname(a, b);
	} else if (!strcmp(name, "procs") && n == 2 && a <= 64) {
		ret = lake_st_procs(a);
	} else if (!strcmp(name, "stale")) {
		ret = lake_st_stale();
	} else if (!strcmp(name, "modfile") && sscanf(cmd, "%15s %79s", name, path) == 2) {
		ret = lake_st_modfile(path);
	} else if (!strcmp(name, "timed-null")) {
		ret = lake_st_timed_null();
	} else {
		ret = -EINVAL;
	}
	mutex_unlock(&lake_st_lock);
	return ret ? ret : len;
}

static ssize_t lake_st_result_read(struct file *file, char __user *ubuf, size_t len,
				   loff_t *ppos)
{
	char buf[sizeof(lake_st_result)];

	mutex_lock(&lake_st_result_lock);
	memcpy(buf, lake_st_result, sizeof(buf));
	mutex_unlock(&lake_st_result_lock);
	return simple_read_from_buffer(ubuf, len, ppos, buf, strnlen(buf, sizeof(buf)));
}

static const struct file_operations lake_st_result_fops = {
	.owner = THIS_MODULE,
	.read = lake_st_result_read,
	.llseek = default_llseek,
};

static const struct file_operations lake_st_run_fops = {
	.owner = THIS_MODULE,
	.write = lake_st_run_write,
	.llseek = noop_llseek,
};

static int __init lake_st_init(void)
{
	lake_st_dir = debugfs_create_dir("lake_selftest", NULL);
	debugfs_create_file("run", 0200, lake_st_dir, NULL, &lake_st_run_fops);
	debugfs_create_file("result", 0400, lake_st_dir, NULL, &lake_st_result_fops);
	return 0;
}

static void __exit lake_st_exit(void)
{
	debugfs_remove(lake_st_dir);
}

module_init(lake_st_init);
module_exit(lake_st_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LAKE self-tests from kernel context (test VM only)");
