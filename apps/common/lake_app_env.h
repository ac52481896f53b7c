/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lake_app_env.h - the thin per-environment layer of the workload kit.
 *
 * One app source builds three ways; only what is in this file differs:
 *
 *   kernel  (__KERNEL__)     a module calling lake.ko's CUDA Driver API
 *                            (lake_cuda.h); host buffers in lakeShm
 *   lake    (default)        a user program on liblake: the same remoted
 *                            path; host buffers in liblake's arena
 *   direct  (LAKE_APP_DIRECT) a user program on the vendor's libcuda
 *                            (cuda.h); host buffers pinned with
 *                            cuMemHostAlloc: the direct-CUDA baseline
 *
 * It provides: the fixed-size integer types (u8 ... s64), the clock, zeroed
 * memory, host buffers for the GPU, FPU regions, rescheduling points,
 * polling a word the GPU writes, logging, a lock and reading a whole file.  Nothing here uses floating
 * point: kit and app code outside FPU files must not either (the kernel is
 * built without SSE).
 */
#ifndef LAKE_APP_ENV_H
#define LAKE_APP_ENV_H

#ifdef __KERNEL__
/* ------------------------------------------------------------------ kernel */
#ifndef pr_fmt
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#endif
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/kernel_read_file.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/types.h>
#include <linux/vmalloc.h>
#include <asm/barrier.h>
#include <asm/fpu/api.h>
#include <asm/processor.h>
#include "lake_cuda.h"
#include "lake_kernel.h"

#define LAKE_APP_BUILD "kernel"

static inline u64 lake_app_now_ns(void)
{
	return ktime_get_ns();
}

static inline void *lake_app_zalloc(size_t n)
{
	return kvzalloc(n, GFP_KERNEL);
}

static inline void lake_app_free(void *p)
{
	kvfree(p);
}

/*
 * FPU regions: floating-point code (in the app's FPU files, built with the
 * kernel's FPU flags) runs only between these.  Inside, preemption is off:
 * never sleep, allocate or call CUDA there; keep regions short (the kit
 * chunks long CPU work and reschedules between chunks).
 */
static inline void lake_app_fpu_begin(void)
{
	kernel_fpu_begin();
}

static inline void lake_app_fpu_end(void)
{
	kernel_fpu_end();
}

/* A rescheduling point between chunks of long CPU work. */
static inline void lake_app_yield(void)
{
	cond_resched();
}

/* A long run command stops when its writer is being killed. */
static inline bool lake_app_interrupted(void)
{
	return fatal_signal_pending(current);
}

/*
 * A word the GPU writes in host memory (the completion of a polled
 * inference), read with acquire order: what the GPU wrote before it is
 * visible after.  cpu_relax() between reads.
 */
static inline u32 lake_app_load_acquire(const u32 *p)
{
	return smp_load_acquire(p);
}

static inline void lake_app_cpu_relax(void)
{
	cpu_relax();
}

#define lake_app_info(fmt, ...) pr_info(fmt, ##__VA_ARGS__)
#define lake_app_warn(fmt, ...) pr_warn(fmt, ##__VA_ARGS__)

typedef struct mutex lake_app_lock_t;
#define lake_app_lock_init(l)	mutex_init(l)
#define lake_app_lock(l)	mutex_lock(l)
#define lake_app_unlock(l)	mutex_unlock(l)
#define lake_app_lock_destroy(l) mutex_destroy(l)

/* The whole file @path (at most 64 MiB) into *@buf; free with lake_app_file_free(). */
static inline int lake_app_read_file(const char *path, void **buf, size_t *len)
{
	ssize_t n;

	*buf = NULL;
	n = kernel_read_file_from_path(path, 0, buf, 64 << 20, NULL, READING_UNKNOWN);
	if (n < 0)
		return (int)n;
	*len = n;
	return 0;
}

static inline void lake_app_file_free(void *buf)
{
	vfree(buf);
}

#else
/* --------------------------------------------------------------- user space */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef LAKE_APP_DIRECT
#include <cuda.h>
#define LAKE_APP_BUILD "direct"
#else
#include "lake_cuda.h"
#include "liblake.h"
#define LAKE_APP_BUILD "lake"
#endif

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int32_t s32;
typedef int64_t s64;

#ifndef min
#define min(a, b) ((a) < (b) ? (a) : (b))
#define max(a, b) ((a) > (b) ? (a) : (b))
#endif
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif
#ifndef __printf
#define __printf(a, b) __attribute__((format(printf, a, b)))
#endif
#ifndef U64_MAX
#define U64_MAX UINT64_MAX
#endif

static inline u64 lake_app_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000ull + (u64)ts.tv_nsec;
}

static inline void *lake_app_zalloc(size_t n)
{
	return calloc(1, n ? n : 1);
}

static inline void lake_app_free(void *p)
{
	free(p);
}

/* User space may use the FPU anywhere: the regions are empty. */
static inline void lake_app_fpu_begin(void)
{
}

static inline void lake_app_fpu_end(void)
{
}

static inline void lake_app_yield(void)
{
}

/* A user-space program dies of its signals: nothing to check. */
static inline bool lake_app_interrupted(void)
{
	return false;
}

static inline u32 lake_app_load_acquire(const u32 *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void lake_app_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Logs go to stderr, prefixed with the program's name; results (stdout) stay CSV. */
extern const char *lake_app_log_name;
extern bool lake_app_quiet;
#define lake_app_info(fmt, ...)							\
	do {									\
		if (!lake_app_quiet)						\
			fprintf(stderr, "%s: " fmt, lake_app_log_name, ##__VA_ARGS__); \
	} while (0)
#define lake_app_warn(fmt, ...) fprintf(stderr, "%s: warning: " fmt, lake_app_log_name, ##__VA_ARGS__)

typedef pthread_mutex_t lake_app_lock_t;
#define lake_app_lock_init(l)	pthread_mutex_init(l, NULL)
#define lake_app_lock(l)	pthread_mutex_lock(l)
#define lake_app_unlock(l)	pthread_mutex_unlock(l)
#define lake_app_lock_destroy(l) pthread_mutex_destroy(l)

static inline int lake_app_read_file(const char *path, void **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long n = -1;
	int err = 0;

	*buf = NULL;
	if (!f)
		return -errno;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		err = -errno;
	else if (n > (64l << 20))
		err = -EFBIG;
	else if (!(*buf = malloc((size_t)n + 1)))
		err = -ENOMEM;
	else if (fread(*buf, 1, (size_t)n, f) != (size_t)n)
		err = -EIO;
	fclose(f);
	if (err) {
		free(*buf);
		*buf = NULL;
		return err;
	}
	*len = (size_t)n;
	return 0;
}

static inline void lake_app_file_free(void *buf)
{
	free(buf);
}
#endif /* __KERNEL__ */

/*
 * Host buffers the GPU reads and writes: the inputs and outputs of an
 * inference.  lakeShm (kernel), liblake's arena (lake): both cross to lakeD
 * as offsets and lakeD has registered them with the driver, mapped.  direct:
 * pinned, mapped cuMemHostAlloc memory once CUDA is up (@pinned), plain
 * memory otherwise (a CPU-only run without a GPU).
 */
struct lake_app_buf {
	void *p;
	size_t size;
	bool pinned;		/* direct: from cuMemHostAlloc */
};

static inline int lake_app_host_alloc(struct lake_app_buf *b, size_t size, bool cuda_up)
{
	b->size = size;
	b->pinned = false;
#if defined(__KERNEL__) || !defined(LAKE_APP_DIRECT)
	(void)cuda_up;
	b->p = lake_shm_alloc(size);
#else
	b->p = NULL;
	if (cuda_up && cuMemHostAlloc(&b->p, size, CU_MEMHOSTALLOC_PORTABLE |
				      CU_MEMHOSTALLOC_DEVICEMAP) == CUDA_SUCCESS)
		b->pinned = true;
	else
		b->p = aligned_alloc(64, (size + 63) & ~(size_t)63);
#endif
	if (!b->p)
		return -ENOMEM;
	memset(b->p, 0, size);
	return 0;
}

static inline void lake_app_host_free(struct lake_app_buf *b)
{
	if (!b->p)
		return;
#if defined(__KERNEL__) || !defined(LAKE_APP_DIRECT)
	lake_shm_free(b->p, b->size);
#else
	if (b->pinned)
		cuMemFreeHost(b->p);
	else
		free(b->p);
#endif
	b->p = NULL;
}

#endif /* LAKE_APP_ENV_H */
