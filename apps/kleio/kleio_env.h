/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* FPU regions and rescheduling: the kernel's, or nothing in user space. */
#ifndef KLEIO_ENV_H
#define KLEIO_ENV_H

#ifdef __KERNEL__
#include <linux/errno.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <asm/fpu/api.h>
#define kleio_fpu_begin()	kernel_fpu_begin()
#define kleio_fpu_end()		kernel_fpu_end()
#define kleio_yield()		cond_resched()
#else
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#define kleio_fpu_begin()	do { } while (0)
#define kleio_fpu_end()		do { } while (0)
#define kleio_yield()		do { } while (0)
#endif

#endif /* KLEIO_ENV_H */
