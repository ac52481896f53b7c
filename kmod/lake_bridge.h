/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VM bridge, guest side: lake.ko served by the host's lakeD across
 * QEMU's ivshmem device (include/lake/lake_ivshmem.h, docs/vm-bridge.md).
 */
#ifndef LAKE_BRIDGE_H
#define LAKE_BRIDGE_H

#include <linux/seq_file.h>
#include <linux/types.h>

int lake_ivshmem_probe(u32 nslots, size_t *arena_size, void **region);
int lake_ivshmem_start(void);
void lake_ivshmem_stop(void);
void lake_ivshmem_release(void);
bool lake_ivshmem_active(void);
void lake_ivshmem_show(struct seq_file *m);

#endif /* LAKE_BRIDGE_H */
