/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * VM channels: lake.ko in a guest, served across QEMU's ivshmem device.
 *
 * Each VM is a tenant of its own: lakeD's supervisor opens and checks the
 * file behind the guest's ivshmem-plain device (vm_shm, lake_vchan_open())
 * and hands it to a worker process that serves that VM alone
 * (lake_vworker.c, "lakeD --worker vm N").  The worker maps the file
 * (MADV_DONTFORK) and serves the ring lake.ko lays out there with
 * lake_serve(), like the kernel's /dev/lake and each liblake client: its
 * complete() writes {slot, seq} entries into the shared completion queue
 * (lake.ko checks each against its own slot state), its wait() polls the
 * queue tail with a bounded, backing-off sleep while it watches the guest's
 * heartbeat.  The layout, the handshake and the roles of each word are in
 * include/lake/lake_ivshmem.h; the design in docs/vm-bridge.md.
 *
 * The guest is an untrusted client: its layout is read once per session and
 * checked (lake_ring_init() and more), every queue entry and slot is checked
 * by lake_serve() and the server core, it gets a connection (handle table,
 * resources) of its own, freed when its session ends: the guest unloads
 * lake.ko, its heartbeat stops (the VM died or hangs), or it corrupts its
 * ring.  The channel then waits for the next guest on the same file.  Its
 * arena is pinned (cuMemHostRegister) only when whoever holds the quota
 * (the supervisor, through the worker) grants it.
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

#define LAKE_VCHAN_MAX_SIZE		(64ull << 30)	/* largest shared file */

/*
 * Opens @path for a VM channel: a regular file (no symlink) whose size is a
 * power of two from LAKE_IVSHMEM_MIN_SIZE to LAKE_VCHAN_MAX_SIZE.  Returns
 * the fd (close-on-exec) with its size in *@size, or a negative errno with
 * the reason in @why.
 */
int lake_vchan_open(const char *path, __u64 *size, char *why, size_t whylen);

/* The same checks on an open file.  0, or a negative errno with @why. */
int lake_vchan_check_file(int fd, __u64 *size, char *why, size_t whylen);

struct lake_vchan_opts {
	int fd;				/* the shared file (lake_vchan_open()); the channel owns it */
	const char *path;		/* ...its name, for messages */
	unsigned int spin_us;		/* serve loop: spin after the last command */
	unsigned int threads;		/* serving threads (lake_serve_opts.threads) */
	atomic_int *stop;		/* the process's stop flag, or NULL */
	struct lake_vendor_state *vendor;
	unsigned int guest_timeout_ms;	/* a guest silent this long is gone (>= 200) */
	/*
	 * The pinned-memory quota: before pinning a session's arena the
	 * channel asks for its bytes (true: granted; false: @why says why,
	 * and the arena is served unpinned), and gives back what it was
	 * granted once the arena is unpinned.  NULL: never pin.
	 */
	bool (*pin_ask)(void *arg, __u64 bytes, char *why, size_t whylen);
	void (*pin_return)(void *arg, __u64 bytes);
	void *pin_arg;
};

/*
 * Checks and maps @o->fd (MADV_DONTFORK: no fork inherits the guest's
 * memory) and starts serving it: a thread that waits for a guest, offers
 * it a session and serves it, and a heartbeat thread.  Logs why on failure
 * (the fd is closed then too) and returns a negative errno.
 */
int lake_vchan_start(struct lake_vchan **out, const struct lake_vchan_opts *o);

/* Ends the session (the guest's callers fail at once), frees the guest's
 * resources, unmaps and closes the file.  NULL is ignored. */
void lake_vchan_stop(struct lake_vchan *v);

/* Is a guest's session being served now? */
bool lake_vchan_serving(struct lake_vchan *v);

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
