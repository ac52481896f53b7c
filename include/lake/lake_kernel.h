/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What lake.ko exports to kernel modules besides the CUDA Driver API itself
 * (lake_cuda.h): the lakeShm arena, a null round trip and the transport's
 * name.
 */
#ifndef LAKE_KERNEL_H
#define LAKE_KERNEL_H

#include <linux/types.h>

/**
 * lake_shm_alloc() - allocate memory in the lakeShm arena
 * @size: bytes wanted
 *
 * Buffers in the arena cross to lakeD as offsets, with no copy, and lakeD
 * has registered the arena with the GPU driver, so copies from it run at
 * pinned-memory speed.  Use them for tensors passed to cuMemcpy*.
 *
 * Return: the kernel address of the allocation (64-byte aligned), or NULL
 * when the arena has no room.
 */
void *lake_shm_alloc(size_t size);

/**
 * lake_shm_free() - free memory from lake_shm_alloc()
 * @ptr: the allocation (NULL is ignored)
 * @size: the size it was allocated with
 */
void lake_shm_free(void *ptr, size_t size);

/**
 * lake_shm_contains() - test whether a range lies in the arena
 * @ptr: start of the range
 * @len: its length in bytes
 *
 * Return: true when [@ptr, @ptr + @len) lies wholly in lakeShm.
 */
bool lake_shm_contains(const void *ptr, size_t len);

/**
 * lake_null_call() - a round trip to lakeD that does no work
 *
 * lakeD echoes a cookie unique to the call, which is checked, so this also
 * proves the reply came back to the right caller.
 *
 * Return: 0, or a negative errno: -ENODEV (no daemon attached or it went
 * away), -ETIMEDOUT, -EINTR (fatal signal), -EPROTO (bad reply).
 */
int lake_null_call(void);

/**
 * lake_transport_name() - how this kernel's calls reach lakeD
 *
 * Fixed when lake.ko loads: "/dev/lake" (lakeD on this machine attached to
 * /dev/lake) or "ivshmem" (the VM bridge: lake.ko runs in a VM and the
 * host's lakeD serves it across QEMU's ivshmem device, docs/vm-bridge.md).
 *
 * Return: a static string, never NULL.
 */
const char *lake_transport_name(void);

#endif /* LAKE_KERNEL_H */
