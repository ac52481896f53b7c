/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The few primitives the portable protocol core needs from its host: memory,
 * a lock, single-copy loads of shared memory, and (lake_os.c) reading a
 * module file and decompressing a fatbin entry.  Kernel and user space each
 * supply theirs here; nothing else in proto/ knows where it runs.
 */
#ifndef LAKE_OS_H
#define LAKE_OS_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/string.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/compiler.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/printk.h>

typedef spinlock_t lake_os_lock_t;
#define lake_os_lock_init(l)	spin_lock_init(l)
#define lake_os_lock(l)		spin_lock(l)
#define lake_os_unlock(l)	spin_unlock(l)
/* Large for a decompressed fatbin entry or a module file: kvzalloc. */
#define lake_os_zalloc(n)	kvzalloc(n, GFP_KERNEL)
#define lake_os_free(p)		kvfree(p)
#define LAKE_READ_ONCE(x)	READ_ONCE(x)
#define LAKE_WRITE_ONCE(x, v)	WRITE_ONCE(x, v)
#define lake_cpu_relax()	cpu_relax()
/* A call that waits for lakeD sleeps: only from process context. */
#define lake_os_might_sleep()	might_sleep()
#define lake_os_warn(fmt, ...)	pr_warn_ratelimited("lake: " fmt, ##__VA_ARGS__)

#else /* user space */
#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

typedef pthread_mutex_t lake_os_lock_t;
#define lake_os_lock_init(l)	pthread_mutex_init(l, NULL)
#define lake_os_lock(l)		pthread_mutex_lock(l)
#define lake_os_unlock(l)	pthread_mutex_unlock(l)
#define lake_os_zalloc(n)	calloc(1, n)
#define lake_os_free(p)		free(p)
#define LAKE_READ_ONCE(x)	__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define LAKE_WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define lake_os_might_sleep()	do { } while (0)
#define lake_os_warn(fmt, ...)	fprintf(stderr, "liblake: " fmt, ##__VA_ARGS__)

/* A spin-wait hint for the other hyperthread and the memory system. */
static inline void lake_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
#endif
}

/* Monotonic nanoseconds, for spin windows and timeouts. */
static inline __u64 lake_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}
#endif

/*
 * Reads the regular file at @path (at most @max bytes) into a new buffer
 * (*@buf, freed with lake_os_free()) of *@len bytes plus a NUL.  Opened with
 * the caller's own credentials, never blocking on a FIFO or a device.
 * Returns 0, or -ENOENT and friends from the open, -EINVAL (not a regular
 * file, empty), -EFBIG (larger than @max), -ENOMEM, -EIO.
 */
int lake_os_read_file(const char *path, __u64 max, void **buf, __u64 *len);

/*
 * Decompresses @srclen bytes of @src (enum lake_codec) into @dst, which
 * holds @dstlen bytes; *@outlen gets the bytes written.  Returns 0,
 * -EOPNOTSUPP (this host lacks the codec), -EINVAL (corrupt or larger than
 * @dstlen) or -ENOMEM.
 */
int lake_os_decompress(int codec, const void *src, __u64 srclen, void *dst, __u64 dstlen,
		       __u64 *outlen);

#endif /* LAKE_OS_H */
