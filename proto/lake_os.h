/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The few primitives the portable protocol core needs from its host: memory,
 * a lock and single-copy loads of shared memory.  Kernel and user space each
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

typedef spinlock_t lake_os_lock_t;
#define lake_os_lock_init(l)	spin_lock_init(l)
#define lake_os_lock(l)		spin_lock(l)
#define lake_os_unlock(l)	spin_unlock(l)
#define lake_os_zalloc(n)	kzalloc(n, GFP_KERNEL)
#define lake_os_free(p)		kfree(p)
#define LAKE_READ_ONCE(x)	READ_ONCE(x)
#define LAKE_WRITE_ONCE(x, v)	WRITE_ONCE(x, v)
#define lake_cpu_relax()	cpu_relax()

#else /* user space */
#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>

typedef pthread_mutex_t lake_os_lock_t;
#define lake_os_lock_init(l)	pthread_mutex_init(l, NULL)
#define lake_os_lock(l)		pthread_mutex_lock(l)
#define lake_os_unlock(l)	pthread_mutex_unlock(l)
#define lake_os_zalloc(n)	calloc(1, n)
#define lake_os_free(p)		free(p)
#define LAKE_READ_ONCE(x)	__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define LAKE_WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

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

#endif /* LAKE_OS_H */
