// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The loopback transport for unit tests (see lake_test_support.h).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lake_test_support.h"

static struct lake_transport loop_transport;
static struct lake_srv_conn *loop_conn;
static __u8 *loop_slot;
static __u8 *loop_arena;
static __u64 loop_arena_used;
static __u32 loop_seq;
static void *loop_allocs[256];
static unsigned int loop_nallocs;
static __u32 loop_client = 1;
static int loop_submit_status;
static void (*loop_reply_hook)(__u8 *slot);
static void (*loop_server)(__u8 *slot);
static unsigned int loop_arena_nalloc, loop_arena_nfree;
static char loop_image_path[64];

static int loop_begin(struct lake_transport *t, struct lake_call *call)
{
	(void)t;
	call->slot = loop_slot;
	call->slot_index = 0;
	call->seq = ++loop_seq;
	return LAKE_OK;
}

static int loop_submit(struct lake_transport *t, struct lake_call *call)
{
	(void)t;
	if (loop_submit_status)
		return loop_submit_status;
	if (loop_server)
		loop_server(call->slot);
	else
		lake_srv_process(loop_conn, call->slot);
	if (loop_reply_hook)
		loop_reply_hook(call->slot);
	return LAKE_OK;
}

static void loop_end(struct lake_transport *t, struct lake_call *call)
{
	(void)t;
	(void)call;
}

static bool loop_arena_find(struct lake_transport *t, const void *p, __u64 len, __u64 *off)
{
	const __u8 *b = p;

	(void)t;
	if (b < loop_arena || b >= loop_arena + LAKE_TEST_ARENA_SIZE ||
	    len > (__u64)(loop_arena + LAKE_TEST_ARENA_SIZE - b))
		return false;
	*off = (__u64)(b - loop_arena);
	return true;
}

static void *loop_arena_alloc(struct lake_transport *t, __u64 len, __u64 *off)
{
	__u64 start = (loop_arena_used + 63) & ~63ull;

	(void)t;
	if (len > LAKE_TEST_ARENA_SIZE - start)
		return NULL;
	loop_arena_used = start + len;
	*off = start;
	return loop_arena + start;
}

/* The transport's op: the same allocator, counted for leak checks. */
static void *loop_arena_stage(struct lake_transport *t, __u64 len, __u64 *off)
{
	void *p = loop_arena_alloc(t, len, off);

	if (p)
		loop_arena_nalloc++;
	return p;
}

static void loop_arena_free(struct lake_transport *t, void *p, __u64 len)
{
	(void)t;
	(void)p;
	(void)len;	/* a bump allocator: reset at teardown */
	loop_arena_nfree++;
}

static __u32 loop_client_id(struct lake_transport *t)
{
	(void)t;
	return loop_client;
}

static const struct lake_transport_ops loop_ops = {
	.begin = loop_begin,
	.submit = loop_submit,
	.end = loop_end,
	.arena_find = loop_arena_find,
	.arena_alloc = loop_arena_stage,
	.arena_free = loop_arena_free,
	.client_id = loop_client_id,
};

struct lake_transport *lake_transport_get(void)
{
	return &loop_transport;
}

void lake_test_setup(void)
{
	loop_slot = aligned_alloc(64, LAKE_SLOT_SIZE);
	loop_arena = aligned_alloc(4096, LAKE_TEST_ARENA_SIZE);
	ck_assert(loop_slot && loop_arena);
	memset(loop_slot, 0, LAKE_SLOT_SIZE);
	loop_arena_used = 0;
	loop_arena_nalloc = 0;
	loop_arena_nfree = 0;
	loop_client = 1;
	loop_submit_status = LAKE_OK;
	loop_reply_hook = NULL;
	lake_fake_model_reset();
	loop_server = NULL;
	loop_conn = lake_srv_conn_new(&lake_fake_vendors, loop_arena, LAKE_TEST_ARENA_SIZE);
	ck_assert_ptr_nonnull(loop_conn);
	ck_assert_int_eq(lake_srv_range_add(loop_conn, LAKE_RT_CUdeviceptr, LAKE_TEST_DPTR,
					    LAKE_TEST_DPTR_SIZE, 0, false), 0);
	lake_transport_init(&loop_transport, &loop_ops);
	lake_fake_reset();
}

void lake_test_teardown(void)
{
	unsigned int i;

	lake_srv_conn_free(loop_conn);
	loop_conn = NULL;
	lake_transport_destroy(&loop_transport);
	if (loop_image_path[0])
		unlink(loop_image_path);
	loop_image_path[0] = 0;
	for (i = 0; i < loop_nallocs; i++)
		free(loop_allocs[i]);
	loop_nallocs = 0;
	free(loop_slot);
	free(loop_arena);
}

void lake_test_reconnect(void)
{
	lake_srv_conn_free(loop_conn);
	loop_conn = lake_srv_conn_new(&lake_fake_vendors, loop_arena, LAKE_TEST_ARENA_SIZE);
	ck_assert_ptr_nonnull(loop_conn);
	ck_assert_int_eq(lake_srv_range_add(loop_conn, LAKE_RT_CUdeviceptr, LAKE_TEST_DPTR,
					    LAKE_TEST_DPTR_SIZE, 0, false), 0);
}

void lake_test_set_client(__u32 client)
{
	loop_client = client;
}

void lake_test_fail_submit(int status)
{
	loop_submit_status = status;
}

void lake_test_set_reply_hook(void (*hook)(__u8 *slot))
{
	loop_reply_hook = hook;
}

unsigned int lake_test_arena_allocs(void)
{
	return loop_arena_nalloc;
}

unsigned int lake_test_arena_frees(void)
{
	return loop_arena_nfree;
}

void lake_test_set_server(void (*server)(__u8 *slot))
{
	loop_server = server;
}

struct lake_srv_conn *lake_test_conn(void)
{
	return loop_conn;
}

struct lake_transport *lake_test_transport(void)
{
	return &loop_transport;
}

__u8 *lake_test_slot(void)
{
	return loop_slot;
}

void *lake_test_arena(void)
{
	return loop_arena;
}

void *lake_test_buffer(int variant, __u64 n, bool fill, unsigned int param)
{
	__u8 *p;
	__u64 off, i;

	if (variant) {
		p = loop_arena_alloc(&loop_transport, n ? n : 1, &off);
	} else {
		ck_assert(loop_nallocs < 256);
		p = malloc(n ? n : 1);
		loop_allocs[loop_nallocs++] = p;
	}
	ck_assert_ptr_nonnull(p);
	for (i = 0; i < n; i++)
		p[i] = fill ? lake_test_byte(i, param) : 0;
	return p;
}

bool lake_test_pattern_ok(const __u8 *p, __u64 n, unsigned int param)
{
	__u64 i;

	for (i = 0; i < n; i++)
		if (p[i] != lake_test_byte(i, param))
			return false;
	return true;
}

void *lake_test_image(int variant)
{
	static const char ptx[] = LAKE_TEST_PTX;
	char *p = lake_test_buffer(variant, sizeof(ptx), false, 0);

	memcpy(p, ptx, sizeof(ptx));
	return p;
}

const char *lake_test_image_file(void)
{
	static const char ptx[] = LAKE_TEST_PTX;
	int fd;

	if (loop_image_path[0])
		return loop_image_path;
	snprintf(loop_image_path, sizeof(loop_image_path), "/tmp/lake-test-image-XXXXXX");
	fd = mkstemp(loop_image_path);
	ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
	ck_assert_int_eq(write(fd, ptx, sizeof(ptx) - 1), (ssize_t)sizeof(ptx) - 1);	/* no NUL: a file */
	close(fd);
	return loop_image_path;
}

__u64 lake_test_handle(unsigned int type, __u64 real)
{
	__u64 token;

	ck_assert_int_eq(lake_srv_handle_add(loop_conn, type, (void *)(uintptr_t)real, 0, false, &token), 0);
	return token;
}

__u64 lake_test_owned_handle(unsigned int type, __u64 real)
{
	__u64 token;

	ck_assert_int_eq(lake_srv_handle_add(loop_conn, type, (void *)(uintptr_t)real, 0, true, &token), 0);
	return token;
}

__u64 lake_test_function(unsigned int type, __u64 real)
{
	struct lake_kparam_layout layout;
	struct lake_call call = { .t = &loop_transport, .epoch = loop_transport.kparams.epoch };
	__u64 token = lake_test_handle(type, real);
	__u64 module = lake_test_handle(LAKE_RT_CUmodule, real ^ 0x4000000ull);

	/* As if the test image had been loaded and the function looked up in it. */
	ck_assert_int_eq(lake_call_image(&call, LAKE_TEST_PTX, sizeof(LAKE_TEST_PTX)), LAKE_OK);
	ck_assert_int_eq(lake_call_module_loaded(&call, module), LAKE_OK);
	ck_assert_int_eq(lake_srv_kparams_learn(loop_conn, token, (void *)(uintptr_t)real, &layout), 0);
	ck_assert_int_eq(lake_call_learn(&call, token, module, LAKE_TEST_KERNEL, &layout), LAKE_OK);
	return token;
}

void lake_test_res(unsigned int type, __u64 value)
{
	ck_assert_int_eq(lake_srv_res_add(loop_conn, type, value), 0);
}

__u64 lake_test_real(unsigned int type, __u64 token)
{
	void *real;

	if (!token || lake_srv_handle_get(loop_conn, token, type, &real))
		return 0;
	return (__u64)(uintptr_t)real;
}

__u64 lake_test_bits(double v, bool is_float)
{
	__u64 bits = 0;

	if (is_float) {
		float f = (float)v;

		memcpy(&bits, &f, sizeof(f));
	} else {
		memcpy(&bits, &v, sizeof(v));
	}
	return bits;
}
