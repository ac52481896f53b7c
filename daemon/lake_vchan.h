/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * VM channels: lake.ko in a guest, served across QEMU's ivshmem device.
 *
 * lakeD maps the file behind the guest's ivshmem-plain device (--vm-shm
 * PATH) and serves the ring lake.ko lays out there with lake_serve(), like
 * the kernel's /dev/lake and each liblake client: its complete() writes
 * {slot, seq} entries into the shared completion queue (lake.ko checks each
 * against its own slot state), its wait() polls the queue tail with a
 * bounded, backing-off sleep while it watches the guest's heartbeat.  The
 * layout, the handshake and the roles of each word are in
 * include/lake/lake_ivshmem.h; the design in docs/vm-bridge.md.
 *
 * The guest is an untrusted client: its layout is read once per session and
 * checked (lake_ring_init() and more), every queue entry and slot is checked
 * by lake_serve() and the server core, it gets a connection (handle table,
 * resources) of its own, freed when its session ends: the guest unloads
 * lake.ko, its heartbeat stops (the VM died or hangs), or it corrupts its
 * ring.  lakeD then waits for the next guest on the same file.  Its arena is
 * pinned (cuMemHostRegister) only within vm_pin_max_mb, shared by all VMs.
 */
#ifndef LAKE_VCHAN_H
#define LAKE_VCHAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "lake_ivshmem.h"

struct lake_vendor_state;
struct lake_vchan;

#define LAKE_VCHAN_MAX			8u	/* VMs one lakeD serves */
#define LAKE_VCHAN_DEFAULT_GUEST_TIMEOUT_MS	5000u
#define LAKE_VCHAN_DEFAULT_PIN_MAX_MB	4096u
#define LAKE_VCHAN_MAX_SIZE		(64ull << 30)	/* largest shared file */

/* The VM settings of lakeD's config (keys vm_shm, vm_pin_max_mb, vm_guest_timeout_ms). */
struct lake_vchan_config {
	char shm[LAKE_VCHAN_MAX][256];	/* each VM's shared file */
	unsigned int nshm;
	unsigned int pin_max_mb;	/* arena lakeD pins for all VMs together */
	unsigned int guest_timeout_ms;	/* a guest silent this long is gone */
};

void lake_vchan_config_defaults(struct lake_vchan_config *c);
/*
 * Applies one "vm_*" config key.  Returns 0, 1 if @key is not one of them,
 * or -1 with the reason in @err.
 */
int lake_vchan_config_set(struct lake_vchan_config *c, const char *key, const char *val,
			  char *err, size_t errlen);

struct lake_vchan_opts {
	const char *path;		/* the shared file (QEMU's memory-backend-file) */
	unsigned int spin_us;		/* serve loop: spin after the last command */
	atomic_int *stop;		/* lakeD's stop flag */
	struct lake_vendor_state *vendor;
	unsigned int guest_timeout_ms;	/* 0: LAKE_VCHAN_DEFAULT_GUEST_TIMEOUT_MS */
	__u64 pin_max;			/* bytes pinned for all VMs together */
};

/*
 * Maps @o->path (a regular file whose size is a power of two, at least
 * LAKE_IVSHMEM_MIN_SIZE) and starts serving it: a thread that waits for a
 * guest, offers it a session and serves it, and a heartbeat thread.  Logs
 * why on failure and returns a negative errno.
 */
int lake_vchan_start(struct lake_vchan **out, const struct lake_vchan_opts *o);

/* Ends the session (the guest's callers fail at once), frees the guest's
 * resources, unmaps the file.  NULL is ignored. */
void lake_vchan_stop(struct lake_vchan *v);

struct lake_ring;

/*
 * Checks a guest's header (a private copy) against the @file_size bytes
 * mapped at @base: every field lakeD uses, then the ring's parts
 * (lake_ring_init(), which points @ring into @base).  Returns 0, or
 * -EPROTO with the reason in @why.
 */
int lake_vchan_check_layout(const struct lake_ivshmem_hdr *h, void *base, __u64 file_size,
			    struct lake_ring *ring, char *why, size_t whylen);

#endif /* LAKE_VCHAN_H */
