/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * liblake: the CUDA Driver API for user-space programs, remoted to lakeD.
 *
 * Include the generated lake_cuda.h (and lake_nvml.h) for the API itself and
 * link with -llake; this header adds what lake.ko exports to kernel modules
 * besides the API (include/lake/lake_kernel.h), with the same names: the
 * client's arena (lakeShm) and a null round trip.
 *
 * liblake connects to lakeD at the first call (LAKE_SOCKET, default
 * /run/lake/lakeD.sock); see client/README.md for its environment variables.
 */
#ifndef LIBLAKE_H
#define LIBLAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Allocates @size bytes in this process's arena, shared with lakeD: buffers
 * there cross to lakeD as offsets (no copy), and lakeD registers the arena
 * with the GPU driver, so copies from it run at pinned-memory speed and async
 * copies stay async.  Works before lakeD is reachable; the arena survives
 * daemon restarts.  Returns 64-byte aligned memory, or NULL (no room, @size
 * 0, or the arena could not be created).  Thread-safe.
 */
void *lake_shm_alloc(size_t size);

/* Frees memory from lake_shm_alloc() (@size as allocated; NULL is ignored). */
void lake_shm_free(void *ptr, size_t size);

/* True when [@ptr, @ptr + @len) lies wholly in the arena. */
bool lake_shm_contains(const void *ptr, size_t len);

/*
 * A round trip to lakeD that does no work (LAKE_API_NOP); lakeD echoes a
 * cookie unique to the call, which is checked.  Returns 0, or a negative
 * errno: -ENODEV (no lakeD, or it went away), -ETIMEDOUT, -EPROTO (a reply
 * that is not ours).
 */
int lake_null_call(void);

/* Counters of this process's liblake (monotonic, all threads). */
struct lake_client_stats {
	uint64_t calls;			/* commands published */
	uint64_t async_calls;		/* of which did not wait */
	uint64_t sleeps;		/* sync waits that went to sleep after spinning */
	uint64_t slot_waits;		/* calls that waited for a free slot */
	uint64_t zero_copy;		/* buffers passed by arena offset */
	uint64_t staged;		/* buffers copied (into the slot or the arena) */
	uint64_t staged_arena;		/* of which through a temporary arena allocation */
	uint64_t timeouts;		/* calls that gave up waiting (LAKE_TIMEOUT_MS) */
	uint64_t unavailable;		/* calls failed for want of lakeD */
	uint64_t connects;		/* successful connections (1 + reconnections) */
	uint64_t arena_size;		/* bytes */
	uint64_t arena_used;		/* bytes allocated now (user + staging) */
	uint32_t nslots;
	uint32_t connected;		/* 1 while attached to a lakeD */
	uint32_t client;		/* lakeD's number for this client (its logs name it) */
	uint32_t server_pid;		/* the lakeD process serving it (0: unknown) */
};

/* Fills @st (initialising liblake if needed, without connecting). */
void lake_client_stats(struct lake_client_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* LIBLAKE_H */
