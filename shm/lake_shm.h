/* SPDX-License-Identifier: GPL-2.0 */
/* lakeShm inside lake.ko: the arena's creation and its address checks. */
#ifndef LAKE_SHM_INTERNAL_H
#define LAKE_SHM_INTERNAL_H

#include <linux/types.h>

int lake_shm_init(void *base, size_t size);
void lake_shm_exit(void);
/* The offset of [ptr, ptr + len) in the arena, if it lies wholly in it. */
bool lake_shm_offset(const void *ptr, u64 len, u64 *off);
size_t lake_shm_size(void);
size_t lake_shm_avail(void);

#endif /* LAKE_SHM_INTERNAL_H */
