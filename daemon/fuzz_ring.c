// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Fuzz target: what a hostile user client can send lakeD -- a hello, then
 * command slots -- against lakeD's hello checks, the server core and the
 * generated dispatch, over the recording TEST DOUBLE (no GPU).  Each input
 * is a hello candidate (the first 120 bytes) and a series of slots, each
 * "length (2 bytes) + bytes", processed in turn on one connection whose
 * arena also holds part of the input (for arena buffer references).
 *
 * Built by scripts/fuzz.sh: with clang's libFuzzer (-fsanitize=fuzzer plus
 * ASan and UBSan), or -- without libFuzzer -- with LAKE_FUZZ_STANDALONE, a
 * self-contained random mutator of a few valid seeds.  A crash, a sanitizer
 * report or a leak fails the run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lake_fake.h"
#include "lake_log.h"
#include "lake_server.h"
#include "lake_uchan.h"

#define FUZZ_ARENA	(64u << 10)

static __u8 fuzz_arena[FUZZ_ARENA] __attribute__((aligned(4096)));
static __u8 fuzz_slot[LAKE_SLOT_SIZE] __attribute__((aligned(64)));
static struct lake_srv_conn *fuzz_conn;
static unsigned long fuzz_inputs;

static int fuzz_set_current(void *ctx)
{
	lake_fake_set_current(ctx);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	if (!fuzz_conn) {
		lake_log_init("fuzz_ring");
		lake_log_level = LAKE_LOG_ERROR;
		lake_srv_set_context_ops(fuzz_set_current, lake_fake_primary_ctx());
	}
	/* Now and then a fresh connection: cleanup of whatever the last one made. */
	if (!fuzz_conn || !(++fuzz_inputs % 512)) {
		lake_srv_conn_free(fuzz_conn);
		fuzz_conn = lake_srv_conn_new(&lake_fake_vendors, fuzz_arena, FUZZ_ARENA);
		if (!fuzz_conn)
			abort();
	}
	if (size >= sizeof(struct lake_uhello)) {
		struct lake_uhello h;
		char why[LAKE_UREPLY_REASON];

		memcpy(&h, data, sizeof(h));
		lake_uchan_check_hello(&h, why, sizeof(why));
		off = sizeof(h);
	}
	/* The input's tail lands at the arena's end too (images, buffers there). */
	if (size) {
		size_t n = size < FUZZ_ARENA ? size : FUZZ_ARENA;

		memcpy(fuzz_arena + FUZZ_ARENA - n, data + size - n, n);
	}
	while (off + 2 <= size) {
		size_t len = (size_t)data[off] | ((size_t)data[off + 1] << 8);
		struct lake_msg_hdr *h = (struct lake_msg_hdr *)fuzz_slot;

		off += 2;
		if (len > size - off)
			len = size - off;
		if (len > LAKE_SLOT_SIZE)
			len = LAKE_SLOT_SIZE;
		memset(fuzz_slot, 0, sizeof(fuzz_slot));
		/* Header bytes first, then the arguments: an api worth dispatching
		 * most of the time, so the checks behind it are reached. */
		if (len > 0 && len <= sizeof(*h)) {
			memcpy(fuzz_slot, data + off, len);
		} else if (len > sizeof(*h)) {
			memcpy(fuzz_slot, data + off, sizeof(*h));
			memcpy(fuzz_slot + LAKE_ARGS_OFFSET, data + off + sizeof(*h),
			       len - sizeof(*h) < LAKE_ARGS_MAX ? len - sizeof(*h) : LAKE_ARGS_MAX);
		}
		if (h->api % 8)
			h->api = 1 + h->api % LAKE_API_MAX;
		if (h->args_len % 4)
			h->args_len %= LAKE_ARGS_MAX + 64;
		lake_srv_process(fuzz_conn, fuzz_slot);
		off += len;
	}
	return 0;
}

#ifdef LAKE_FUZZ_STANDALONE
/* Without libFuzzer: random mutations of a few valid inputs, for a budget. */
static __u64 fuzz_rng = 0x9E3779B97F4A7C15ull;

static __u64 fuzz_next(void)
{
	fuzz_rng ^= fuzz_rng << 13;
	fuzz_rng ^= fuzz_rng >> 7;
	fuzz_rng ^= fuzz_rng << 17;
	return fuzz_rng;
}

/* A valid hello, then one well-formed command of @api with @args. */
static size_t fuzz_seed(__u8 *buf, __u32 api, const void *args, __u32 len)
{
	struct lake_msg_hdr h = { .api = api, .client = 1, .seq = 1, .args_len = len, .present = 3 };
	struct lake_uhello hello;
	size_t n = 0, cmd = sizeof(h) + len;

	lake_uring_layout(&hello, 8, 1 << 20);
	hello.spec_hash = LAKE_SPEC_HASH;
	memcpy(buf, &hello, sizeof(hello));
	n = sizeof(hello);
	buf[n++] = (__u8)cmd;
	buf[n++] = (__u8)(cmd >> 8);
	memcpy(buf + n, &h, sizeof(h));
	memcpy(buf + n + sizeof(h), args, len);
	return n + cmd;
}

int main(int argc, char **argv)
{
	static __u8 seeds[4][4096], in[16384];
	struct lake_args_cuMemAlloc alloc = { .bytesize = 4096 };
	struct lake_args_cuMemcpyHtoD htod = {
		.dstDevice = LAKE_FAKE_DEV_BASE,
		.srcHost = { .off = LAKE_ARGS_OFFSET + 64, .len = 64, .where = LAKE_BUF_SLOT },
		.ByteCount = 64,
	};
	struct lake_args_cuModuleLoadData load = {
		.image = { .off = FUZZ_ARENA - 8, .len = 8, .where = LAKE_BUF_ARENA },
	};
	struct lake_args_cuDevicePrimaryCtxRelease rel = { .dev = 0 };
	size_t seedlen[4];
	double budget = argc > 1 ? atof(argv[1]) : 10;
	unsigned long runs = 0;
	time_t end = time(NULL) + (time_t)budget;

	seedlen[0] = fuzz_seed(seeds[0], LAKE_API_cuMemAlloc, &alloc, sizeof(alloc));
	{
		__u8 args[sizeof(htod) + 128] = { 0 };	/* the copy's 64 bytes staged after the arguments */

		memcpy(args, &htod, sizeof(htod));
		seedlen[1] = fuzz_seed(seeds[1], LAKE_API_cuMemcpyHtoD, args, sizeof(args));
	}
	seedlen[2] = fuzz_seed(seeds[2], LAKE_API_cuModuleLoadData, &load, sizeof(load));
	seedlen[3] = fuzz_seed(seeds[3], LAKE_API_cuDevicePrimaryCtxRelease, &rel, sizeof(rel));
	fuzz_rng ^= (__u64)time(NULL);
	while (time(NULL) < end) {
		unsigned int s = (unsigned int)(fuzz_next() % 4), k, flips;
		size_t n = seedlen[s] + fuzz_next() % 64;

		if (n > sizeof(in))
			n = sizeof(in);
		memcpy(in, seeds[s], seedlen[s]);
		for (k = (unsigned int)seedlen[s]; k < n; k++)
			in[k] = (__u8)fuzz_next();
		flips = 1 + (unsigned int)(fuzz_next() % 16);
		for (k = 0; k < flips; k++)
			in[fuzz_next() % n] ^= (__u8)(1u << (fuzz_next() % 8));
		LLVMFuzzerTestOneInput(in, n);
		runs++;
	}
	lake_srv_conn_free(fuzz_conn);
	printf("fuzz_ring (standalone): %lu inputs in %.0f s, no crash\n", runs, budget);
	return 0;
}
#endif
