// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Hand-written protocol tests: the behaviour of the client core, the server
 * core and the generated stubs/dispatch that the per-function round trip
 * (test_roundtrip.c) does not reach: sticky errors, handle misuse, hostile
 * command slots, client-side refusals, outputs, resource cleanup, the local
 * functions and module image sizes.
 *
 * Everything runs through the in-process loopback (lake_test_support.c)
 * against the recording TEST DOUBLE of the vendor library (lake_fake.c);
 * "the fake was not called" means lake_fake_nlog stayed 0.
 */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "lake_test_support.h"
#include "lake_cuda.h"
#include "lake_nvml.h"

Suite *lake_protocol_suite(void);

/* ---- helpers ------------------------------------------------------------ */

/* A NUL-terminated PTX image (what cuModuleLoadData gets as text), with
 * LAKE_TEST_KERNEL: the layout the fake reports. */
static const char test_ptx[] = LAKE_TEST_PTX;

/* Kernel arguments matching the fake's layout: 8, 4 and 8 bytes at 0, 8, 16. */
static unsigned long long kv0 = 0x0123456789abcdefULL;
static unsigned int kv1 = 0x2468ace0u;
static unsigned long long kv2 = 0xfedcba9876543210ULL;
static void *kparams[3] = { &kv0, &kv1, &kv2 };

#define FAKE_KPARAMS_SIZE	24u	/* 16 + 8: the fake layout's packed size */

static CUresult launch(CUfunction f, CUstream s, void **params)
{
	return cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s, params, NULL);
}

static CUfunction test_function(__u64 real)
{
	return (CUfunction)(uintptr_t)lake_test_function(LAKE_RT_CUfunction, real);
}

static CUstream test_stream(__u64 real)
{
	return (CUstream)(uintptr_t)lake_test_handle(LAKE_RT_CUstream, real);
}

static CUevent test_event(__u64 real)
{
	return (CUevent)(uintptr_t)lake_test_handle(LAKE_RT_CUevent, real);
}

static void assert_fake_not_called(void)
{
	ck_assert_msg(lake_fake_nlog == 0, "the vendor was called (%s)",
		      lake_fake_nlog ? lake_fake_log[0].name : "");
}

static bool in_arena(const void *p, __u64 len)
{
	const __u8 *a = lake_test_arena(), *b = p;

	return b >= a && b + len <= a + LAKE_TEST_ARENA_SIZE;
}

/* Counts the commands lakeD answered, to show that a call sent nothing. */
static unsigned int commands_seen;

static void count_command(__u8 *slot)
{
	(void)slot;
	commands_seen++;
}

static void start_counting(void)
{
	commands_seen = 0;
	lake_test_set_reply_hook(count_command);
	lake_fake_reset();
}

static void assert_nothing_sent(void)
{
	assert_fake_not_called();
	ck_assert_uint_eq(commands_seen, 0);
}

/* The loopback slot, to show that a call did not even take a slot. */
static __u8 slot_before[LAKE_SLOT_SIZE];

static void slot_snapshot(void)
{
	memset(lake_test_slot(), 0xA5, LAKE_SLOT_SIZE);
	memcpy(slot_before, lake_test_slot(), LAKE_SLOT_SIZE);
}

static void assert_slot_untouched(void)
{
	ck_assert_msg(memcmp(slot_before, lake_test_slot(), LAKE_SLOT_SIZE) == 0,
		      "the command slot was written");
}

/*
 * Raw command slots, for acting as a hostile client: built by hand and
 * handed straight to lakeD's lake_srv_process().
 */
static __u8 raw_slot[LAKE_SLOT_SIZE] __attribute__((aligned(64)));

#define RAW_TAIL	(LAKE_ARGS_OFFSET + 256u)	/* slot offset for hand-staged data */

static struct lake_msg_hdr *raw_hdr(void)
{
	return (struct lake_msg_hdr *)raw_slot;
}

static void *raw_args(void)
{
	return raw_slot + LAKE_ARGS_OFFSET;
}

/* A well-formed synchronous command header; the reply fields hold junk so
 * that tests see lakeD write them. */
static void raw_begin(__u32 api, __u32 args_len)
{
	memset(raw_slot, 0, sizeof(raw_slot));
	raw_hdr()->api = api;
	raw_hdr()->client = 1;
	raw_hdr()->seq = 0x5eed;
	raw_hdr()->args_len = args_len;
	raw_hdr()->result = 0x7777;
	raw_hdr()->reply_len = 0xdead;
}

/* Runs the raw command with a clean fake log; returns the reply's result. */
static int raw_process(void)
{
	lake_fake_reset();
	lake_srv_process(lake_test_conn(), raw_slot);
	return raw_hdr()->result;
}

static void raw_ref(struct lake_buf_ref *ref, __u32 where, __u64 off, __u64 len)
{
	ref->where = where;
	ref->off = off;
	ref->len = len;
	ref->reserved = 0;
}

/* cuMemAlloc(&dptr, 4096): a command lakeD accepts, for the protocol checks. */
static void raw_mem_alloc(void)
{
	struct lake_args_cuMemAlloc *a = raw_args();

	raw_begin(LAKE_API_cuMemAlloc, sizeof(*a));
	a->bytesize = 4096;
	raw_hdr()->present = 1;
}

static void assert_raw_protocol_error(void)
{
	ck_assert_int_eq(raw_process(), LAKE_RESULT_PROTOCOL);
	ck_assert_uint_eq(raw_hdr()->reply_len, 0);
	assert_fake_not_called();
	ck_assert_uint_eq(lake_srv_res_count(lake_test_conn(), LAKE_RT_NONE), 0);
}

/* cuMemcpyHtoD(LAKE_TEST_DPTR, <ref>, count) */
static struct lake_args_cuMemcpyHtoD *raw_htod(__u32 where, __u64 off, __u64 len, __u64 count)
{
	struct lake_args_cuMemcpyHtoD *a = raw_args();

	raw_begin(LAKE_API_cuMemcpyHtoD, LAKE_ARGS_MAX);
	a->dstDevice = LAKE_TEST_DPTR;
	raw_ref(&a->srcHost, where, off, len);
	a->ByteCount = count;
	return a;
}

static void assert_raw_invalid(void)
{
	ck_assert_int_eq(raw_process(), CUDA_ERROR_INVALID_VALUE);
	assert_fake_not_called();
}

/* cuModuleGetGlobal(&dptr, NULL, module, <string in the slot tail>) with
 * @len bytes of @s (its name: at most 1024 bytes with the NUL). */
#define RAW_NAME_MAX	1024u

static void raw_string_call(const char *s, __u64 len)
{
	struct lake_args_cuModuleGetGlobal *a = raw_args();
	__u64 module = lake_test_handle(LAKE_RT_CUmodule, 0x60D);

	raw_begin(LAKE_API_cuModuleGetGlobal, LAKE_ARGS_MAX);
	raw_hdr()->present = 1;
	a->hmod = module;
	memcpy(raw_slot + RAW_TAIL, s, len);
	raw_ref(&a->name, LAKE_BUF_SLOT, RAW_TAIL, len);
}

/* cuLaunchKernel(f, ..., <kernel params ref>), sent synchronously so that
 * lakeD's verdict is in the reply rather than sticky. */
static struct lake_args_cuLaunchKernel *raw_launch(CUfunction f, __u64 params_len)
{
	struct lake_args_cuLaunchKernel *a = raw_args();

	raw_begin(LAKE_API_cuLaunchKernel, LAKE_ARGS_MAX);
	a->f = (__u64)(uintptr_t)f;
	a->gridDimX = a->gridDimY = a->gridDimZ = 1;
	a->blockDimX = a->blockDimY = a->blockDimZ = 1;
	memcpy(raw_slot + RAW_TAIL, &kv0, 8);
	memcpy(raw_slot + RAW_TAIL + 8, &kv1, 4);
	memcpy(raw_slot + RAW_TAIL + 16, &kv2, 8);
	raw_ref(&a->kernelParams, LAKE_BUF_SLOT, RAW_TAIL, params_len);
	return a;
}

static void put_le(__u8 *p, __u64 v, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		p[i] = (__u8)(v >> (8 * i));
}

/* A fatbin header: magic, version 1, header size 16, then @fat_size bytes. */
static void make_fatbin(__u8 *p, __u64 fat_size)
{
	put_le(p, 0xBA55ED50u, 4);
	put_le(p + 4, 1, 2);
	put_le(p + 6, 16, 2);
	put_le(p + 8, fat_size, 8);
}

/*
 * A 512-byte ELF64 image: three 64-byte section headers at 128 (ending at
 * 320); a PROGBITS section at [320, 420) and a NOBITS one that claims
 * [400, 100400) but occupies no file bytes.  Its size is 420.
 */
static void make_elf(__u8 *p)
{
	memset(p, 0, 512);
	p[0] = 0x7f;
	p[1] = 'E';
	p[2] = 'L';
	p[3] = 'F';
	p[4] = 2;		/* ELFCLASS64 */
	p[5] = 1;		/* little endian */
	p[6] = 1;		/* EV_CURRENT */
	put_le(p + 0x28, 128, 8);	/* e_shoff */
	put_le(p + 0x3A, 64, 2);	/* e_shentsize */
	put_le(p + 0x3C, 3, 2);		/* e_shnum */
	put_le(p + 128 + 64 + 4, 1, 4);		/* [1] SHT_PROGBITS */
	put_le(p + 128 + 64 + 0x18, 320, 8);
	put_le(p + 128 + 64 + 0x20, 100, 8);
	put_le(p + 128 + 128 + 4, 8, 4);	/* [2] SHT_NOBITS */
	put_le(p + 128 + 128 + 0x18, 400, 8);
	put_le(p + 128 + 128 + 0x20, 100000, 8);
}

/* ---- 1. sticky async errors --------------------------------------------- */

START_TEST(sticky_async_error_returned_once_by_next_sync)
{
	CUfunction f = test_function(0xF100);

	lake_fake_reset();
	lake_fake_result = CUDA_ERROR_LAUNCH_FAILED;
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_SUCCESS);
	ck_assert_ptr_nonnull(lake_fake_find("cuLaunchKernel"));
	lake_fake_result = 0;
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_ERROR_LAUNCH_FAILED);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_SUCCESS);
}
END_TEST

START_TEST(sticky_event_record_error_returned_by_next_sync)
{
	CUevent ev = test_event(0xE100);

	lake_fake_reset();
	lake_fake_result = CUDA_ERROR_ILLEGAL_ADDRESS;
	ck_assert_int_eq(cuEventRecord(ev, NULL), CUDA_SUCCESS);
	lake_fake_result = 0;
	ck_assert_int_eq(cuStreamSynchronize(NULL), CUDA_ERROR_ILLEGAL_ADDRESS);
	ck_assert_int_eq(cuStreamSynchronize(NULL), CUDA_SUCCESS);
}
END_TEST

START_TEST(sticky_failing_sync_reports_own_error_first)
{
	CUfunction f = test_function(0xF100);

	lake_fake_result = CUDA_ERROR_LAUNCH_FAILED;
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_SUCCESS);
	/* The vendor fails the sync call: its own error, sticky one kept. */
	lake_fake_result = CUDA_ERROR_INVALID_CONTEXT;
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
	/* lakeD refuses the sync call before the vendor: same. */
	lake_fake_result = 0;
	ck_assert_int_eq(cuStreamSynchronize((CUstream)(uintptr_t)0x1234567890abcdefULL),
			 CUDA_ERROR_INVALID_HANDLE);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_ERROR_LAUNCH_FAILED);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_SUCCESS);
}
END_TEST

START_TEST(sticky_error_is_per_client)
{
	CUfunction f = test_function(0xF100);

	lake_fake_result = CUDA_ERROR_LAUNCH_FAILED;
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_SUCCESS);
	lake_fake_result = 0;
	lake_test_set_client(2);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_SUCCESS);
	lake_fake_result = CUDA_ERROR_ILLEGAL_ADDRESS;
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_SUCCESS);
	lake_fake_result = 0;
	lake_test_set_client(1);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_ERROR_LAUNCH_FAILED);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_SUCCESS);
	lake_test_set_client(2);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_SUCCESS);
}
END_TEST

START_TEST(sticky_error_per_client_in_raw_slot)
{
	CUfunction f = test_function(0xF100);
	struct lake_args_cuCtxSynchronize *a = raw_args();

	lake_fake_result = CUDA_ERROR_LAUNCH_FAILED;
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_SUCCESS);
	raw_begin(LAKE_API_cuCtxSynchronize, sizeof(*a));
	raw_hdr()->client = 7;
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	ck_assert_ptr_nonnull(lake_fake_find("cuCtxSynchronize"));
	raw_begin(LAKE_API_cuCtxSynchronize, sizeof(*a));
	raw_hdr()->client = 1;
	ck_assert_int_eq(raw_process(), CUDA_ERROR_LAUNCH_FAILED);
}
END_TEST

START_TEST(sticky_first_async_error_wins)
{
	CUfunction f = test_function(0xF100);
	CUevent ev = test_event(0xE100);

	lake_fake_result = CUDA_ERROR_ILLEGAL_ADDRESS;
	ck_assert_int_eq(cuEventRecord(ev, NULL), CUDA_SUCCESS);
	lake_fake_result = CUDA_ERROR_LAUNCH_FAILED;
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_SUCCESS);
	lake_fake_result = 0;
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_SUCCESS);
}
END_TEST

/* A CUresult must not come back as an nvmlReturn_t: sticky errors are per spec. */
START_TEST(sticky_cuda_error_not_reported_by_nvml)
{
	CUfunction f = test_function(0xF100);
	unsigned int count = 0;

	lake_fake_result = CUDA_ERROR_LAUNCH_FAILED;
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_SUCCESS);
	lake_fake_result = 0;
	ck_assert_int_eq(nvmlInit(), NVML_SUCCESS);
	ck_assert_int_eq(nvmlDeviceGetCount(&count), NVML_SUCCESS);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_ERROR_LAUNCH_FAILED);
}
END_TEST

/* A staged buffer makes an async call synchronous: its error is returned
 * directly, not kept for later. */
START_TEST(sticky_staged_async_call_returns_own_error)
{
	void *src = lake_test_buffer(0, 64, true, 1);

	lake_fake_result = CUDA_ERROR_LAUNCH_FAILED;
	ck_assert_int_eq(cuMemcpyHtoDAsync(LAKE_TEST_DPTR, src, 64, NULL), CUDA_ERROR_LAUNCH_FAILED);
	lake_fake_result = 0;
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_SUCCESS);
}
END_TEST

START_TEST(sticky_staged_async_copy_syncs_its_stream)
{
	void *src = lake_test_buffer(0, 64, true, 1);
	CUstream s = test_stream(0x5100);

	lake_fake_reset();
	ck_assert_int_eq(cuMemcpyHtoDAsync(LAKE_TEST_DPTR, src, 64, s), CUDA_SUCCESS);
	ck_assert_uint_eq(lake_fake_nlog, 2);
	ck_assert_str_eq(lake_fake_log[0].name, "cuMemcpyHtoDAsync");
	ck_assert_str_eq(lake_fake_log[1].name, "cuStreamSynchronize");
	ck_assert_uint_eq(lake_fake_log[1].scalar[0], 0x5100);
}
END_TEST

START_TEST(sticky_arena_async_call_error_is_sticky)
{
	void *src = lake_test_buffer(1, 64, true, 1);
	const struct lake_fake_record *rec;

	lake_fake_reset();
	lake_fake_result = CUDA_ERROR_LAUNCH_FAILED;
	ck_assert_int_eq(cuMemcpyHtoDAsync(LAKE_TEST_DPTR, src, 64, NULL), CUDA_SUCCESS);
	rec = lake_fake_find("cuMemcpyHtoDAsync");
	ck_assert_ptr_nonnull(rec);
	ck_assert_ptr_eq(rec->ptr[1], src);	/* zero copy */
	ck_assert_ptr_null(lake_fake_find("cuStreamSynchronize"));
	lake_fake_result = 0;
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_ERROR_LAUNCH_FAILED);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_SUCCESS);
}
END_TEST

/* ---- 2. handle misuse --------------------------------------------------- */

START_TEST(handle_forged_token_rejected)
{
	__u64 s = lake_test_handle(LAKE_RT_CUstream, 0x5100);
	const __u64 forged[] = {
		0x1234567890abcdefULL,
		s ^ (1ull << 32),		/* a live index, the wrong generation */
		s + 1,				/* an index never used */
		1ull << 32,			/* index bits zero */
		~0ull,
	};
	unsigned int i;

	for (i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		lake_fake_reset();
		ck_assert_int_eq(cuStreamSynchronize((CUstream)(uintptr_t)forged[i]),
				 CUDA_ERROR_INVALID_HANDLE);
		assert_fake_not_called();
	}
	lake_fake_reset();
	ck_assert_int_eq(cuStreamSynchronize((CUstream)(uintptr_t)s), CUDA_SUCCESS);
	ck_assert_uint_eq(lake_fake_find("cuStreamSynchronize")->scalar[0], 0x5100);
}
END_TEST

START_TEST(handle_null_stream_passes_as_null)
{
	CUfunction f = test_function(0xF100);
	CUevent ev = test_event(0xE100);

	lake_fake_reset();
	ck_assert_int_eq(cuStreamSynchronize(NULL), CUDA_SUCCESS);
	ck_assert_uint_eq(lake_fake_find("cuStreamSynchronize")->scalar[0], 0);
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_SUCCESS);
	ck_assert_uint_eq(lake_fake_find("cuLaunchKernel")->scalar[8], 0);
	ck_assert_int_eq(cuEventRecord(ev, NULL), CUDA_SUCCESS);
	ck_assert_uint_eq(lake_fake_find("cuEventRecord")->scalar[0], 0xE100);
	ck_assert_uint_eq(lake_fake_find("cuEventRecord")->scalar[1], 0);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_SUCCESS);
}
END_TEST

START_TEST(handle_wrong_type_rejected)
{
	CUstream s = test_stream(0x5100);
	CUevent ev = test_event(0xE100);
	CUfunction f = test_function(0xF100);
	int pi = -1;

	lake_fake_reset();
	ck_assert_int_eq(cuEventSynchronize((CUevent)s), CUDA_ERROR_INVALID_HANDLE);
	ck_assert_int_eq(cuStreamSynchronize((CUstream)ev), CUDA_ERROR_INVALID_HANDLE);
	ck_assert_int_eq(cuFuncGetAttribute(&pi, (CUfunction_attribute)0, (CUfunction)s),
			 CUDA_ERROR_INVALID_HANDLE);
	ck_assert_int_eq(cuModuleUnload((CUmodule)f), CUDA_ERROR_INVALID_HANDLE);
	assert_fake_not_called();
	ck_assert_int_eq(pi, -1);
}
END_TEST

START_TEST(handle_stale_after_destroy_rejected)
{
	CUstream s = NULL, s2 = NULL;

	ck_assert_int_eq(cuStreamCreate(&s, 0), CUDA_SUCCESS);
	ck_assert_int_eq(cuStreamDestroy(s), CUDA_SUCCESS);
	lake_fake_reset();
	ck_assert_int_eq(cuStreamSynchronize(s), CUDA_ERROR_INVALID_HANDLE);
	ck_assert_int_eq(cuStreamDestroy(s), CUDA_ERROR_INVALID_HANDLE);
	assert_fake_not_called();
	/* The freed table entry is reused; the old token must stay dead. */
	ck_assert_int_eq(cuStreamCreate(&s2, 0), CUDA_SUCCESS);
	ck_assert_ptr_ne(s2, s);
	lake_fake_reset();
	ck_assert_int_eq(cuStreamSynchronize(s), CUDA_ERROR_INVALID_HANDLE);
	assert_fake_not_called();
	ck_assert_int_eq(cuStreamSynchronize(s2), CUDA_SUCCESS);
}
END_TEST

START_TEST(handle_failed_destroy_keeps_handle)
{
	CUstream s = NULL;

	ck_assert_int_eq(cuStreamCreate(&s, 0), CUDA_SUCCESS);
	lake_fake_result = CUDA_ERROR_NOT_READY;
	ck_assert_int_eq(cuStreamDestroy(s), CUDA_ERROR_NOT_READY);
	lake_fake_result = 0;
	ck_assert_int_eq(cuStreamSynchronize(s), CUDA_SUCCESS);
	ck_assert_int_eq(cuStreamDestroy(s), CUDA_SUCCESS);
}
END_TEST

START_TEST(handle_function_dies_with_module)
{
	CUmodule m = NULL;
	CUfunction f = NULL;
	int pi = -1;

	ck_assert_int_eq(cuModuleLoadData(&m, test_ptx), CUDA_SUCCESS);
	ck_assert_int_eq(cuModuleGetFunction(&f, m, LAKE_TEST_KERNEL), CUDA_SUCCESS);
	lake_fake_reset();
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_SUCCESS);
	ck_assert_ptr_nonnull(lake_fake_find("cuLaunchKernel"));
	ck_assert_int_eq(cuModuleUnload(m), CUDA_SUCCESS);

	/* The client forgot the function's layout: refused before sending. */
	start_counting();
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_ERROR_NOT_SUPPORTED);
	assert_nothing_sent();
	lake_test_set_reply_hook(NULL);
	/* lakeD forgot the handle. */
	ck_assert_int_eq(cuFuncGetAttribute(&pi, (CUfunction_attribute)0, f),
			 CUDA_ERROR_INVALID_HANDLE);
	assert_fake_not_called();
	ck_assert_int_eq(pi, -1);
	/* Without params the launch is sent; lakeD's refusal is sticky. */
	ck_assert_int_eq(launch(f, NULL, NULL), CUDA_SUCCESS);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_ERROR_INVALID_HANDLE);
	ck_assert_ptr_null(lake_fake_find("cuLaunchKernel"));
	ck_assert_uint_eq(lake_srv_res_count(lake_test_conn(), LAKE_RT_CUfunction), 0);
}
END_TEST

START_TEST(handle_memfree_of_unallocated_pointer_rejected)
{
	CUdeviceptr d = 0;

	lake_fake_reset();
	ck_assert_int_eq(cuMemFree(0xBADD00ull), CUDA_ERROR_INVALID_VALUE);
	assert_fake_not_called();
	/* Nor an address inside an allocation. */
	ck_assert_int_eq(cuMemAlloc(&d, 4096), CUDA_SUCCESS);
	lake_fake_reset();
	ck_assert_int_eq(cuMemFree(d + 16), CUDA_ERROR_INVALID_VALUE);
	assert_fake_not_called();
}
END_TEST

START_TEST(handle_double_memfree_rejected)
{
	CUdeviceptr d = 0;

	ck_assert_int_eq(cuMemAlloc(&d, 4096), CUDA_SUCCESS);
	lake_fake_reset();
	ck_assert_int_eq(cuMemFree(d), CUDA_SUCCESS);
	ck_assert_uint_eq(lake_fake_find("cuMemFree")->scalar[0], d);
	lake_fake_reset();
	ck_assert_int_eq(cuMemFree(d), CUDA_ERROR_INVALID_VALUE);
	assert_fake_not_called();
}
END_TEST

START_TEST(handle_failed_memfree_keeps_allocation)
{
	CUdeviceptr d = 0;

	ck_assert_int_eq(cuMemAlloc(&d, 4096), CUDA_SUCCESS);
	lake_fake_result = CUDA_ERROR_ILLEGAL_ADDRESS;
	ck_assert_int_eq(cuMemFree(d), CUDA_ERROR_ILLEGAL_ADDRESS);
	lake_fake_result = 0;
	ck_assert_int_eq(cuMemFree(d), CUDA_SUCCESS);
}
END_TEST

START_TEST(handle_token_dies_with_connection)
{
	CUstream s = NULL;

	ck_assert_int_eq(cuStreamCreate(&s, 0), CUDA_SUCCESS);
	lake_test_reconnect();
	lake_fake_reset();
	ck_assert_int_eq(cuStreamSynchronize(s), CUDA_ERROR_INVALID_HANDLE);
	assert_fake_not_called();
}
END_TEST

/* ---- 3. hostile command slots ------------------------------------------- */

START_TEST(raw_wellformed_command_executes)
{
	struct lake_outs_cuMemAlloc *o = (void *)(raw_slot + LAKE_OUTS_OFFSET);

	raw_mem_alloc();
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	ck_assert_uint_eq(raw_hdr()->reply_len, LAKE_OUTS_SIZE_cuMemAlloc);
	ck_assert_uint_eq(raw_hdr()->seq, 0x5eed);
	ck_assert(lake_fake_dev_live(o->dptr, 4096));
	ck_assert_uint_eq(lake_fake_find("cuMemAlloc")->scalar[1], 4096);
	/* The whole tail may be used. */
	raw_mem_alloc();
	raw_hdr()->args_len = LAKE_ARGS_MAX;
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
}
END_TEST

START_TEST(raw_api_zero_is_protocol_error)
{
	raw_mem_alloc();
	raw_hdr()->api = 0;
	assert_raw_protocol_error();
}
END_TEST

START_TEST(raw_api_past_max_is_protocol_error)
{
	raw_mem_alloc();
	raw_hdr()->api = LAKE_API_MAX + 1;
	assert_raw_protocol_error();
	raw_mem_alloc();
	raw_hdr()->api = UINT32_MAX;
	assert_raw_protocol_error();
}
END_TEST

START_TEST(raw_args_len_too_small_is_protocol_error)
{
	raw_mem_alloc();
	raw_hdr()->args_len = sizeof(struct lake_args_cuMemAlloc) - 1;
	assert_raw_protocol_error();
	raw_mem_alloc();
	raw_hdr()->args_len = 0;
	assert_raw_protocol_error();
}
END_TEST

START_TEST(raw_args_len_past_slot_is_protocol_error)
{
	raw_mem_alloc();
	raw_hdr()->args_len = LAKE_ARGS_MAX + 1;
	assert_raw_protocol_error();
	raw_mem_alloc();
	raw_hdr()->args_len = UINT32_MAX;
	assert_raw_protocol_error();
}
END_TEST

START_TEST(raw_unknown_flag_is_protocol_error)
{
	raw_mem_alloc();
	raw_hdr()->flags = 1u << 2;
	assert_raw_protocol_error();
	raw_mem_alloc();
	raw_hdr()->flags = LAKE_MSG_ASYNC | (1u << 31);
	assert_raw_protocol_error();
}
END_TEST

START_TEST(raw_buffer_refs_in_bounds_accepted)
{
	__u8 *arena = lake_test_arena();
	const struct lake_fake_record *rec;
	unsigned int i;

	for (i = 0; i < 16; i++) {
		arena[LAKE_TEST_ARENA_SIZE - 16 + i] = (__u8)(0x40 + i);
	}
	raw_htod(LAKE_BUF_ARENA, LAKE_TEST_ARENA_SIZE - 16, 16, 16);
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	rec = lake_fake_find("cuMemcpyHtoD");
	ck_assert_ptr_eq(rec->ptr[1], arena + LAKE_TEST_ARENA_SIZE - 16);
	ck_assert_uint_eq(rec->data[1][15], 0x4f);

	raw_htod(LAKE_BUF_SLOT, LAKE_SLOT_SIZE - 16, 16, 16);
	for (i = 0; i < 16; i++)
		raw_slot[LAKE_SLOT_SIZE - 16 + i] = (__u8)(0x60 + i);
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	/* The vendor reads lakeD's private copy of the slot, never the slot. */
	rec = lake_fake_find("cuMemcpyHtoD");
	ck_assert_ptr_ne(rec->ptr[1], raw_slot + LAKE_SLOT_SIZE - 16);
	ck_assert_int_eq(memcmp(rec->data[1], raw_slot + LAKE_SLOT_SIZE - 16, 16), 0);
}
END_TEST

START_TEST(raw_arena_ref_past_end_rejected)
{
	raw_htod(LAKE_BUF_ARENA, LAKE_TEST_ARENA_SIZE - 8, 16, 16);
	assert_raw_invalid();
	raw_htod(LAKE_BUF_ARENA, LAKE_TEST_ARENA_SIZE + 8, 0, 0);
	assert_raw_invalid();
	raw_htod(LAKE_BUF_ARENA, 0, LAKE_TEST_ARENA_SIZE + 1ull, 16);
	assert_raw_invalid();
}
END_TEST

START_TEST(raw_arena_ref_offset_overflow_rejected)
{
	raw_htod(LAKE_BUF_ARENA, ~0ull, 2, 2);
	assert_raw_invalid();
	raw_htod(LAKE_BUF_ARENA, 16, ~0ull - 8, 2);
	assert_raw_invalid();
}
END_TEST

START_TEST(raw_arena_ref_without_arena_rejected)
{
	struct lake_srv_conn *bare = lake_srv_conn_new(&lake_fake_vendors, NULL, 0);

	ck_assert_ptr_nonnull(bare);
	raw_htod(LAKE_BUF_ARENA, 0, 16, 16);
	lake_fake_reset();
	lake_srv_process(bare, raw_slot);
	ck_assert_int_eq(raw_hdr()->result, CUDA_ERROR_INVALID_VALUE);
	assert_fake_not_called();
	lake_srv_conn_free(bare);
}
END_TEST

START_TEST(raw_slot_ref_into_header_or_outputs_rejected)
{
	raw_htod(LAKE_BUF_SLOT, 0, 16, 16);
	assert_raw_invalid();
	raw_htod(LAKE_BUF_SLOT, LAKE_OUTS_OFFSET, 16, 16);
	assert_raw_invalid();
	raw_htod(LAKE_BUF_SLOT, LAKE_ARGS_OFFSET - 8, 16, 16);
	assert_raw_invalid();
}
END_TEST

START_TEST(raw_slot_ref_past_slot_end_rejected)
{
	raw_htod(LAKE_BUF_SLOT, LAKE_SLOT_SIZE - 8, 16, 16);
	assert_raw_invalid();
	raw_htod(LAKE_BUF_SLOT, LAKE_SLOT_SIZE + 16, 0, 0);
	assert_raw_invalid();
	raw_htod(LAKE_BUF_SLOT, ~0ull - 7, 16, 16);
	assert_raw_invalid();
	raw_htod(LAKE_BUF_SLOT, RAW_TAIL, ~0ull, 16);
	assert_raw_invalid();
}
END_TEST

START_TEST(raw_unknown_where_rejected)
{
	raw_htod(3, RAW_TAIL, 16, 16);
	assert_raw_invalid();
	raw_htod(UINT32_MAX, RAW_TAIL, 16, 16);
	assert_raw_invalid();
}
END_TEST

START_TEST(raw_reserved_nonzero_rejected)
{
	struct lake_args_cuMemcpyHtoD *a;

	a = raw_htod(LAKE_BUF_SLOT, RAW_TAIL, 16, 16);
	a->srcHost.reserved = 1;
	assert_raw_invalid();
	a = raw_htod(LAKE_BUF_NULL, 0, 0, 16);
	a->srcHost.reserved = 0x80000000u;
	assert_raw_invalid();
}
END_TEST

START_TEST(raw_string_accepted_up_to_max)
{
	static char name[RAW_NAME_MAX];
	const struct lake_fake_record *rec;

	raw_string_call("table", 6);
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	rec = lake_fake_find("cuModuleGetGlobal");
	ck_assert_str_eq((const char *)rec->data[3], "table");
	memset(name, 'p', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	raw_string_call(name, sizeof(name));
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	ck_assert_uint_eq(lake_fake_find("cuModuleGetGlobal")->len[3], sizeof(name));
}
END_TEST

START_TEST(raw_string_without_nul_rejected)
{
	/* The byte after the ref is a NUL: lakeD must not look past len. */
	raw_string_call("aaaaaaaaaaaaaaaa", 16);
	assert_raw_invalid();
	raw_string_call("", 0);
	assert_raw_invalid();
}
END_TEST

START_TEST(raw_string_longer_than_max_rejected)
{
	static char path[2 * RAW_NAME_MAX];
	struct lake_args_cuModuleGetGlobal *a;
	char *in_arena = lake_test_buffer(1, sizeof(path), false, 0);

	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = 0;
	raw_string_call(path, sizeof(path));
	assert_raw_invalid();
	/* NUL within max, but the ref claims more than max bytes. */
	path[10] = 0;
	raw_string_call(path, sizeof(path));
	assert_raw_invalid();
	path[10] = 'p';
	memcpy(in_arena, path, sizeof(path));
	raw_string_call("", 0);
	a = raw_args();
	raw_ref(&a->name, LAKE_BUF_ARENA, (__u64)(in_arena - (char *)lake_test_arena()),
		sizeof(path));
	assert_raw_invalid();
}
END_TEST

/* lakeD must size buffers itself: a ref shorter than ByteCount is refused. */
START_TEST(raw_memcpy_ref_shorter_than_bytecount_rejected)
{
	struct lake_args_cuMemcpyDtoH *a;

	raw_htod(LAKE_BUF_SLOT, RAW_TAIL, 16, 16);
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	raw_htod(LAKE_BUF_SLOT, RAW_TAIL, 16, 17);
	assert_raw_invalid();
	raw_htod(LAKE_BUF_SLOT, RAW_TAIL, 16, ~0ull);
	assert_raw_invalid();
	raw_htod(LAKE_BUF_ARENA, 0, 16, 4096);
	assert_raw_invalid();
	/* An output buffer the vendor would write past. */
	raw_begin(LAKE_API_cuMemcpyDtoH, LAKE_ARGS_MAX);
	a = raw_args();
	raw_ref(&a->dstHost, LAKE_BUF_SLOT, RAW_TAIL, 16);
	a->srcDevice = LAKE_TEST_DPTR;
	a->ByteCount = 4096;
	assert_raw_invalid();
}
END_TEST

START_TEST(raw_image_truncated_by_ref_len_rejected)
{
	struct lake_args_cuModuleLoadData *a = raw_args();

	raw_begin(LAKE_API_cuModuleLoadData, LAKE_ARGS_MAX);
	raw_hdr()->present = 1;
	memcpy(raw_slot + RAW_TAIL, test_ptx, sizeof(test_ptx));
	raw_ref(&a->image, LAKE_BUF_SLOT, RAW_TAIL, sizeof(test_ptx));
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	/* The same PTX, with its NUL outside the ref. */
	raw_ref(&a->image, LAKE_BUF_SLOT, RAW_TAIL, sizeof(test_ptx) - 1);
	assert_raw_invalid();
	/* A fatbin whose header says it is longer than the ref. */
	make_fatbin(raw_slot + RAW_TAIL, 100);
	raw_ref(&a->image, LAKE_BUF_SLOT, RAW_TAIL, 16 + 99);
	assert_raw_invalid();
}
END_TEST

/* Shorter than a fatbin header: not PTX either (it has a NUL at byte 5), or
 * the vendor would parse the header past the ref. */
START_TEST(raw_image_short_fatbin_header_rejected)
{
	struct lake_args_cuModuleLoadData *a = raw_args();

	raw_begin(LAKE_API_cuModuleLoadData, LAKE_ARGS_MAX);
	raw_hdr()->present = 1;
	make_fatbin(raw_slot + RAW_TAIL, 100);
	raw_ref(&a->image, LAKE_BUF_SLOT, RAW_TAIL, 8);
	assert_raw_invalid();
}
END_TEST

/* Outputs the client did not ask for come back zeroed, not as whatever the
 * outputs area held before. */
START_TEST(raw_reply_outputs_zeroed)
{
	struct lake_outs_cuMemGetInfo *o = (void *)(raw_slot + LAKE_OUTS_OFFSET);

	raw_begin(LAKE_API_cuMemGetInfo, sizeof(struct lake_args_cuMemGetInfo));
	raw_hdr()->present = 1u << 0;
	memset(o, 0xAA, sizeof(*o));
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	ck_assert_uint_eq(o->free, lake_fake_out(LAKE_API_cuMemGetInfo, 0));
	ck_assert_uint_eq(o->total, 0);
	ck_assert_ptr_null(lake_fake_find("cuMemGetInfo")->ptr[1]);
}
END_TEST

START_TEST(raw_kparams_len_must_match_layout)
{
	CUfunction f = test_function(0xF100);
	const struct lake_fake_record *rec;

	raw_launch(f, FAKE_KPARAMS_SIZE);
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	rec = lake_fake_find("cuLaunchKernel");
	ck_assert(memcmp(rec->data[9] + 0, &kv0, 8) == 0);
	ck_assert(memcmp(rec->data[9] + 8, &kv1, 4) == 0);
	ck_assert(memcmp(rec->data[9] + 16, &kv2, 8) == 0);
	raw_launch(f, FAKE_KPARAMS_SIZE - 8);
	assert_raw_invalid();
	raw_launch(f, FAKE_KPARAMS_SIZE + 8);
	assert_raw_invalid();
	raw_launch(f, 0);
	assert_raw_invalid();
}
END_TEST

START_TEST(raw_kparams_for_unlearned_function_rejected)
{
	CUfunction g = (CUfunction)(uintptr_t)lake_test_handle(LAKE_RT_CUfunction, 0xF200);
	struct lake_args_cuLaunchKernel *a;

	raw_launch(g, FAKE_KPARAMS_SIZE);
	assert_raw_invalid();
	/* NULL params are the vendor's to judge. */
	a = raw_launch(g, 0);
	raw_ref(&a->kernelParams, LAKE_BUF_NULL, 0, 0);
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	ck_assert_ptr_null(lake_fake_find("cuLaunchKernel")->ptr[9]);
}
END_TEST

/* ---- 4. client-side checks ---------------------------------------------- */

#ifndef CU_LAUNCH_PARAM_BUFFER_POINTER
#error "lake_cuda.h defines the CU_LAUNCH_PARAM_* keys"
#endif

/* Both kernelParams and extra, a key given twice, a size without a buffer:
 * invalid, as in CUDA; a key LAKE does not remote: not supported. */
START_TEST(client_launch_extra_misuse_refused)
{
	CUfunction f = test_function(0xF100);
	__u8 buf[24] = { 0 };
	size_t size = sizeof(buf), big = LAKE_KPARAMS_MAX_SIZE + 1;
	void *both[] = { CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
			 CU_LAUNCH_PARAM_END };
	void *twice[] = { CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
			  CU_LAUNCH_PARAM_END };
	void *no_buf[] = { CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END };
	void *no_size[] = { CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, NULL,
			    CU_LAUNCH_PARAM_END };
	void *too_big[] = { CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &big,
			    CU_LAUNCH_PARAM_END };
	void *unknown[] = { (void *)0x77, buf, CU_LAUNCH_PARAM_END };

	start_counting();
	ck_assert_int_eq(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, kparams, both),
			 CUDA_ERROR_INVALID_VALUE);
	ck_assert_int_eq(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, twice),
			 CUDA_ERROR_INVALID_VALUE);
	ck_assert_int_eq(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, no_buf),
			 CUDA_ERROR_INVALID_VALUE);
	ck_assert_int_eq(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, no_size),
			 CUDA_ERROR_INVALID_VALUE);
	ck_assert_int_eq(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, too_big),
			 CUDA_ERROR_INVALID_VALUE);
	ck_assert_int_eq(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, unknown),
			 CUDA_ERROR_NOT_SUPPORTED);
	assert_nothing_sent();
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_SUCCESS);
}
END_TEST

START_TEST(client_ctx_create_with_params_not_supported)
{
	/* A zeroed CUctxCreateParams is NULL's twin (test_compat.c); shared
	 * (CIG) contexts carry pointers LAKE cannot follow. */
	CUctxCreateParams params = { .cigParams = (CUctxCigParam *)(uintptr_t)0x1000 };
	CUcontext ctx = (CUcontext)(uintptr_t)0x5e47;

	start_counting();
	slot_snapshot();
	ck_assert_int_eq(cuCtxCreate(&ctx, &params, 0, 0), CUDA_ERROR_NOT_SUPPORTED);
	assert_nothing_sent();
	assert_slot_untouched();
	ck_assert_ptr_eq(ctx, (CUcontext)(uintptr_t)0x5e47);
}
END_TEST

START_TEST(client_string_longer_than_max_refused)
{
	char *name = lake_test_buffer(0, 2001, false, 0);
	CUmodule m = (CUmodule)(uintptr_t)lake_test_handle(LAKE_RT_CUmodule, 0x60D);
	CUdeviceptr d = 0x5e47;

	memset(name, 'p', 2000);
	start_counting();
	ck_assert_int_eq(cuModuleGetGlobal(&d, NULL, m, name), CUDA_ERROR_INVALID_VALUE);
	assert_nothing_sent();
	ck_assert_uint_eq(d, 0x5e47);
	/* max is 1024 bytes with the NUL: 1024 characters are one too many. */
	name[1024] = 0;
	ck_assert_int_eq(cuModuleGetGlobal(&d, NULL, m, name), CUDA_ERROR_INVALID_VALUE);
	assert_nothing_sent();
	name[1023] = 0;
	ck_assert_int_eq(cuModuleGetGlobal(&d, NULL, m, name), CUDA_SUCCESS);
	ck_assert_uint_eq(commands_seen, 1);
	ck_assert_uint_eq(lake_fake_find("cuModuleGetGlobal")->len[3], 1024);
}
END_TEST

/* cuModuleLoad reads the file on the caller's side: a path it cannot open
 * (or one longer than 4096 bytes) sends nothing; lakeD gets the contents. */
START_TEST(client_module_file_read_by_the_caller)
{
	char *path = lake_test_buffer(0, 5001, false, 0);
	const struct lake_fake_record *rec;
	CUmodule m = (CUmodule)(uintptr_t)0x5e47;

	memset(path, 'p', 5000);
	start_counting();
	ck_assert_int_eq(cuModuleLoad(&m, path), CUDA_ERROR_INVALID_VALUE);
	path[4095] = 0;
	ck_assert_int_eq(cuModuleLoad(&m, path), CUDA_ERROR_FILE_NOT_FOUND);
	ck_assert_int_eq(cuModuleLoad(&m, "/nonexistent/lake/module.cubin"), CUDA_ERROR_FILE_NOT_FOUND);
	ck_assert_int_eq(cuModuleLoad(&m, "/dev/null"), CUDA_ERROR_INVALID_VALUE);	/* not a file */
	ck_assert_int_eq(cuModuleLoad(&m, "/tmp"), CUDA_ERROR_INVALID_VALUE);
	assert_nothing_sent();
	ck_assert_ptr_eq(m, (CUmodule)(uintptr_t)0x5e47);
	ck_assert_int_eq(cuModuleLoad(&m, lake_test_image_file()), CUDA_SUCCESS);
	ck_assert_uint_eq(commands_seen, 1);
	rec = lake_fake_find("cuModuleLoad");
	ck_assert_uint_eq(rec->len[1], sizeof(LAKE_TEST_PTX));
	ck_assert(memcmp(rec->data[1], LAKE_TEST_PTX, sizeof(LAKE_TEST_PTX) < LAKE_FAKE_DATA ?
			 sizeof(LAKE_TEST_PTX) : LAKE_FAKE_DATA) == 0);
}
END_TEST

/* kernelParams need a layout read from the image: for a function LAKE has
 * none for, the launch is refused (extra still works). */
START_TEST(client_launch_unlearned_function_not_supported)
{
	CUfunction g = (CUfunction)(uintptr_t)lake_test_handle(LAKE_RT_CUfunction, 0xF200);

	start_counting();
	ck_assert_int_eq(launch(g, NULL, kparams), CUDA_ERROR_NOT_SUPPORTED);
	assert_nothing_sent();
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_SUCCESS);
}
END_TEST

START_TEST(client_large_buffer_staged_through_arena)
{
	const __u64 n = 64 * 1024;
	__u8 *src = lake_test_buffer(0, n, true, 3);
	const struct lake_fake_record *rec;

	lake_fake_reset();
	ck_assert_int_eq(cuMemcpyHtoD(LAKE_TEST_DPTR, src, n), CUDA_SUCCESS);
	rec = lake_fake_find("cuMemcpyHtoD");
	ck_assert_ptr_nonnull(rec);
	ck_assert_uint_eq(rec->len[1], n);
	ck_assert_uint_eq(rec->scalar[2], n);
	ck_assert_ptr_ne(rec->ptr[1], src);
	ck_assert(in_arena(rec->ptr[1], n));
	/* The loopback's arena never reuses memory: the staged copy is still there. */
	ck_assert(lake_test_pattern_ok(rec->ptr[1], n, 3));
	ck_assert_uint_eq(lake_test_arena_allocs(), 1);
	ck_assert_uint_eq(lake_test_arena_frees(), 1);
}
END_TEST

START_TEST(client_large_output_staged_and_copied_back)
{
	const __u64 n = 64 * 1024;
	__u8 *dst = lake_test_buffer(0, n, false, 0);
	__u64 i;

	ck_assert_int_eq(cuMemcpyDtoH(dst, LAKE_TEST_DPTR, n), CUDA_SUCCESS);
	for (i = 0; i < n; i++)
		if (dst[i] != lake_fake_byte(LAKE_API_cuMemcpyDtoH, 0, i))
			ck_abort_msg("byte %llu not copied back", (unsigned long long)i);
	ck_assert_uint_eq(lake_test_arena_frees(), lake_test_arena_allocs());
}
END_TEST

START_TEST(client_arena_buffer_not_copied)
{
	__u8 *src = lake_test_buffer(1, 64 * 1024, true, 4);

	lake_fake_reset();
	ck_assert_int_eq(cuMemcpyHtoD(LAKE_TEST_DPTR, src, 64 * 1024), CUDA_SUCCESS);
	ck_assert_ptr_eq(lake_fake_find("cuMemcpyHtoD")->ptr[1], src);
	ck_assert_uint_eq(lake_test_arena_allocs(), 0);
}
END_TEST

START_TEST(client_buffer_larger_than_arena_out_of_memory)
{
	const __u64 n = LAKE_TEST_ARENA_SIZE + 1ull;
	void *src = lake_test_buffer(0, n, true, 5);

	start_counting();
	ck_assert_int_eq(cuMemcpyHtoD(LAKE_TEST_DPTR, src, n), CUDA_ERROR_OUT_OF_MEMORY);
	assert_nothing_sent();
}
END_TEST

START_TEST(client_staged_arena_memory_released)
{
	const __u64 n = 64 * 1024;
	void *src = lake_test_buffer(0, n, true, 3);

	ck_assert_int_eq(cuMemcpyHtoD(LAKE_TEST_DPTR, src, n), CUDA_SUCCESS);
	lake_fake_result = CUDA_ERROR_ILLEGAL_ADDRESS;
	ck_assert_int_eq(cuMemcpyHtoD(LAKE_TEST_DPTR, src, n), CUDA_ERROR_ILLEGAL_ADDRESS);
	lake_fake_result = 0;
	lake_test_fail_submit(LAKE_E_UNAVAILABLE);
	ck_assert_int_eq(cuMemcpyHtoD(LAKE_TEST_DPTR, src, n), CUDA_ERROR_DEVICE_UNAVAILABLE);
	ck_assert_uint_eq(lake_test_arena_allocs(), 3);
	ck_assert_uint_eq(lake_test_arena_frees(), 3);
}
END_TEST

START_TEST(client_negative_size_invalid)
{
	char name[16];

	memset(name, 'n', sizeof(name));
	start_counting();
	ck_assert_int_eq(cuDeviceGetName(name, -1, 0), CUDA_ERROR_INVALID_VALUE);
	ck_assert_int_eq(cuDeviceGetName(name, INT_MIN, 0), CUDA_ERROR_INVALID_VALUE);
	assert_nothing_sent();
	ck_assert_int_eq(name[0], 'n');
	ck_assert_int_eq(cuDeviceGetName(name, (int)sizeof(name), 0), CUDA_SUCCESS);
	ck_assert_uint_eq((__u8)name[1], lake_fake_byte(LAKE_API_cuDeviceGetName, 0, 1));
}
END_TEST

START_TEST(client_transport_errors_map_to_spec_codes)
{
	size_t total = 0x5e47;
	unsigned int count = 0x5e47;

	lake_fake_reset();
	lake_test_fail_submit(LAKE_E_UNAVAILABLE);
	ck_assert_int_eq(cuMemGetInfo(NULL, &total), CUDA_ERROR_DEVICE_UNAVAILABLE);
	ck_assert_int_eq(nvmlDeviceGetCount(&count), NVML_ERROR_DRIVER_NOT_LOADED);
	lake_test_fail_submit(LAKE_E_TIMEOUT);
	ck_assert_int_eq(cuMemGetInfo(NULL, &total), CUDA_ERROR_TIMEOUT);
	ck_assert_int_eq(nvmlDeviceGetCount(&count), NVML_ERROR_TIMEOUT);
	lake_test_fail_submit(LAKE_E_INTERRUPTED);
	ck_assert_int_eq(cuMemGetInfo(NULL, &total), CUDA_ERROR_OPERATING_SYSTEM);
	ck_assert_int_eq(nvmlDeviceGetCount(&count), NVML_ERROR_UNKNOWN);
	assert_fake_not_called();
	ck_assert_uint_eq(total, 0x5e47);
	ck_assert_uint_eq(count, 0x5e47);
}
END_TEST

static void corrupt_seq(__u8 *slot)
{
	((struct lake_msg_hdr *)slot)->seq ^= 1;
}

static void corrupt_reply_len(__u8 *slot)
{
	((struct lake_msg_hdr *)slot)->reply_len += 8;
}

static void corrupt_result(__u8 *slot)
{
	((struct lake_msg_hdr *)slot)->result = LAKE_RESULT_PROTOCOL;
}

START_TEST(client_malformed_reply_is_protocol_error)
{
	void (*const hooks[])(__u8 *) = { corrupt_seq, corrupt_reply_len, corrupt_result };
	unsigned int i;

	for (i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
		size_t free_mem = 0x5e47, total = 0x5e47;
		unsigned int count = 0x5e47;
		char dst[64];

		lake_test_set_reply_hook(hooks[i]);
		ck_assert_int_eq(cuMemGetInfo(&free_mem, &total), CUDA_ERROR_UNKNOWN);
		ck_assert_uint_eq(free_mem, 0x5e47);
		ck_assert_uint_eq(total, 0x5e47);
		ck_assert_int_eq(nvmlDeviceGetCount(&count), NVML_ERROR_UNKNOWN);
		ck_assert_uint_eq(count, 0x5e47);
		/* A staged output buffer is not copied back either. */
		memset(dst, 0xEE, sizeof(dst));
		ck_assert_int_eq(cuMemcpyDtoH(dst, LAKE_TEST_DPTR, sizeof(dst)), CUDA_ERROR_UNKNOWN);
		ck_assert_uint_eq((__u8)dst[1], 0xEE);
	}
}
END_TEST

/* ---- 5. outputs --------------------------------------------------------- */

START_TEST(out_null_pointer_passed_as_null)
{
	size_t total = 0;
	const struct lake_fake_record *rec;

	lake_fake_reset();
	ck_assert_int_eq(cuMemGetInfo(NULL, &total), CUDA_SUCCESS);
	rec = lake_fake_find("cuMemGetInfo");
	ck_assert_ptr_null(rec->ptr[0]);
	ck_assert_ptr_nonnull(rec->ptr[1]);
	ck_assert_uint_eq(total, lake_fake_out(LAKE_API_cuMemGetInfo, 1));
	/* A handle nobody asked for is not recorded either. */
	ck_assert_int_eq(cuStreamCreate(NULL, 0), CUDA_SUCCESS);
	ck_assert_ptr_null(lake_fake_find("cuStreamCreate")->ptr[0]);
	ck_assert_uint_eq(lake_srv_res_count(lake_test_conn(), LAKE_RT_NONE), 0);
}
END_TEST

START_TEST(out_not_written_when_vendor_fails)
{
	size_t free_mem = 0x5e47, total = 0x5e47;
	CUstream s = (CUstream)(uintptr_t)0x5e47;
	CUdeviceptr d = 0x5e47;
	char dst[64];

	memset(dst, 0xEE, sizeof(dst));
	lake_fake_result = CUDA_ERROR_INVALID_CONTEXT;
	ck_assert_int_eq(cuMemGetInfo(&free_mem, &total), CUDA_ERROR_INVALID_CONTEXT);
	ck_assert_int_eq(cuStreamCreate(&s, 0), CUDA_ERROR_INVALID_CONTEXT);
	ck_assert_int_eq(cuMemAlloc(&d, 4096), CUDA_ERROR_INVALID_CONTEXT);
	ck_assert_int_eq(cuMemcpyDtoH(dst, LAKE_TEST_DPTR, sizeof(dst)), CUDA_ERROR_INVALID_CONTEXT);
	ck_assert_uint_eq(free_mem, 0x5e47);
	ck_assert_uint_eq(total, 0x5e47);
	ck_assert_ptr_eq(s, (CUstream)(uintptr_t)0x5e47);
	ck_assert_uint_eq(d, 0x5e47);
	ck_assert_uint_eq((__u8)dst[0], 0xEE);
	ck_assert_uint_eq((__u8)dst[63], 0xEE);
	ck_assert_uint_eq(lake_srv_res_count(lake_test_conn(), LAKE_RT_NONE), 0);
}
END_TEST

START_TEST(out_learned_layout_returned_and_used_for_packing)
{
	const struct lake_outs_cuModuleGetFunction *o =
		(const void *)(lake_test_slot() + LAKE_OUTS_OFFSET);
	const struct lake_args_cuLaunchKernel *a =
		(const void *)(lake_test_slot() + LAKE_ARGS_OFFSET);
	const struct lake_fake_record *rec;
	CUmodule m = NULL;
	CUfunction f = NULL;
	unsigned int i;

	ck_assert_int_eq(cuModuleLoadData(&m, test_ptx), CUDA_SUCCESS);
	ck_assert_int_eq(cuModuleGetFunction(&f, m, LAKE_TEST_KERNEL), CUDA_SUCCESS);
	ck_assert_uint_eq(o->hfunc, (__u64)(uintptr_t)f);
	ck_assert_uint_eq(o->hfunc_layout.count, LAKE_FAKE_KPARAMS);
	ck_assert_uint_eq(o->hfunc_layout.size, FAKE_KPARAMS_SIZE);
	for (i = 0; i < LAKE_FAKE_KPARAMS; i++) {
		ck_assert_uint_eq(o->hfunc_layout.offset[i], lake_fake_kparam_off(i));
		ck_assert_uint_eq(o->hfunc_layout.psize[i], lake_fake_kparam_size(i));
	}

	lake_fake_reset();
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_SUCCESS);
	ck_assert_uint_eq(a->kernelParams.where, LAKE_BUF_SLOT);
	ck_assert_uint_eq(a->kernelParams.len, FAKE_KPARAMS_SIZE);
	ck_assert(memcmp(lake_test_slot() + a->kernelParams.off + 0, &kv0, 8) == 0);
	ck_assert(memcmp(lake_test_slot() + a->kernelParams.off + 8, &kv1, 4) == 0);
	ck_assert(memcmp(lake_test_slot() + a->kernelParams.off + 16, &kv2, 8) == 0);
	rec = lake_fake_find("cuLaunchKernel");
	ck_assert_uint_eq(rec->scalar[0], lake_fake_out(LAKE_API_cuModuleGetFunction, 0));
	ck_assert(memcmp(rec->data[9] + 0, &kv0, 8) == 0);
	ck_assert(memcmp(rec->data[9] + 8, &kv1, 4) == 0);
	ck_assert(memcmp(rec->data[9] + 16, &kv2, 8) == 0);
}
END_TEST

static void corrupt_layout(__u8 *slot)
{
	struct lake_outs_cuModuleGetFunction *o = (void *)(slot + LAKE_OUTS_OFFSET);

	o->hfunc_layout.offset[2] = (__u16)(o->hfunc_layout.size - 4);	/* 8 bytes past size */
}

/* lakeD's layout is only compared with the image's: a different one
 * (here inconsistent, too) refuses the lookup. */
START_TEST(out_bad_layout_from_daemon_not_learned)
{
	CUmodule m = NULL;
	CUfunction f = NULL;

	ck_assert_int_eq(cuModuleLoadData(&m, test_ptx), CUDA_SUCCESS);
	lake_test_set_reply_hook(corrupt_layout);
	ck_assert_int_eq(cuModuleGetFunction(&f, m, LAKE_TEST_KERNEL), CUDA_ERROR_UNKNOWN);
	ck_assert_ptr_null(f);
}
END_TEST

/* ---- 6. resource cleanup ------------------------------------------------ */


/* Five owned resources (the two allocations: created_d1, created_d2). */
static CUdeviceptr created_d1, created_d2;

static void create_resources(void)
{
	CUdeviceptr d1 = 0, d2 = 0;
	size_t pitch = 0;
	CUstream s = NULL;
	CUevent e = NULL;
	CUmodule m = NULL;

	ck_assert_int_eq(cuMemAlloc(&d1, 4096), CUDA_SUCCESS);
	ck_assert_int_eq(cuMemAllocPitch(&d2, &pitch, 64, 4, 4), CUDA_SUCCESS);
	ck_assert_uint_ne(d1, d2);
	created_d1 = d1;
	created_d2 = d2;
	ck_assert_int_eq(cuStreamCreate(&s, 0), CUDA_SUCCESS);
	ck_assert_int_eq(cuEventCreate(&e, 0), CUDA_SUCCESS);
	ck_assert_int_eq(cuModuleLoadData(&m, test_ptx), CUDA_SUCCESS);
}

START_TEST(cleanup_counts_live_resources)
{
	struct lake_srv_conn *c = lake_test_conn();

	create_resources();
	ck_assert_uint_eq(lake_srv_res_count(c, LAKE_RT_CUdeviceptr), 2);
	ck_assert_uint_eq(lake_srv_res_count(c, LAKE_RT_CUstream), 1);
	ck_assert_uint_eq(lake_srv_res_count(c, LAKE_RT_CUevent), 1);
	ck_assert_uint_eq(lake_srv_res_count(c, LAKE_RT_CUmodule), 1);
	ck_assert_uint_eq(lake_srv_res_count(c, LAKE_RT_NONE), 5);
}
END_TEST

START_TEST(cleanup_destroys_leftovers_newest_first)
{
	static const struct {
		const char *name;
		unsigned int api;
	} expect[] = {
		{ "cuModuleUnload", LAKE_API_cuModuleLoadData },
		{ "cuEventDestroy", LAKE_API_cuEventCreate },
		{ "cuStreamDestroy", LAKE_API_cuStreamCreate },
		{ "cuMemFree", LAKE_API_cuMemAllocPitch },
		{ "cuMemFree", LAKE_API_cuMemAlloc },
	};
	unsigned int i;

	create_resources();
	lake_fake_reset();
	lake_test_reconnect();
	ck_assert_uint_eq(lake_fake_nlog, 5);
	for (i = 0; i < 5; i++) {
		ck_assert_str_eq(lake_fake_log[i].name, expect[i].name);
		if (expect[i].api == LAKE_API_cuMemAlloc)	/* the double's allocator chose these */
			ck_assert_uint_eq(lake_fake_log[i].scalar[0], created_d1);
		else if (expect[i].api == LAKE_API_cuMemAllocPitch)
			ck_assert_uint_eq(lake_fake_log[i].scalar[0], created_d2);
		else
			ck_assert_uint_eq(lake_fake_log[i].scalar[0], lake_fake_out(expect[i].api, 0));
	}
	ck_assert_uint_eq(lake_srv_res_count(lake_test_conn(), LAKE_RT_NONE), 0);
}
END_TEST

START_TEST(cleanup_skips_resources_already_destroyed)
{
	CUdeviceptr d = 0;
	CUstream s = NULL;
	CUevent e = NULL;
	CUmodule m = NULL;

	ck_assert_int_eq(cuMemAlloc(&d, 4096), CUDA_SUCCESS);
	ck_assert_int_eq(cuStreamCreate(&s, 0), CUDA_SUCCESS);
	ck_assert_int_eq(cuEventCreate(&e, 0), CUDA_SUCCESS);
	ck_assert_int_eq(cuModuleLoadData(&m, test_ptx), CUDA_SUCCESS);
	ck_assert_int_eq(cuMemFree(d), CUDA_SUCCESS);
	ck_assert_int_eq(cuStreamDestroy(s), CUDA_SUCCESS);
	ck_assert_int_eq(cuEventDestroy(e), CUDA_SUCCESS);
	ck_assert_int_eq(cuModuleUnload(m), CUDA_SUCCESS);
	ck_assert_uint_eq(lake_srv_res_count(lake_test_conn(), LAKE_RT_NONE), 0);
	lake_fake_reset();
	lake_test_reconnect();
	assert_fake_not_called();
}
END_TEST

START_TEST(cleanup_function_not_destroyed_on_its_own)
{
	CUmodule m = NULL;
	CUfunction f = NULL;

	ck_assert_int_eq(cuModuleLoadData(&m, test_ptx), CUDA_SUCCESS);
	ck_assert_int_eq(cuModuleGetFunction(&f, m, LAKE_TEST_KERNEL), CUDA_SUCCESS);
	ck_assert_uint_eq(lake_srv_res_count(lake_test_conn(), LAKE_RT_CUfunction), 1);
	lake_fake_reset();
	lake_test_reconnect();
	ck_assert_uint_eq(lake_fake_nlog, 1);
	ck_assert_str_eq(lake_fake_log[0].name, "cuModuleUnload");
}
END_TEST

/* ---- 7. local answers --------------------------------------------------- */

START_TEST(local_error_name_without_round_trip)
{
	const char *s = NULL;

	/* Without lakeD, the names come from the spec's enum (with lakeD,
	 * libcuda's texts, asked once: test_compat.c). */
	lake_test_fail_submit(LAKE_E_UNAVAILABLE);
	lake_fake_reset();
	ck_assert_int_eq(cuGetErrorName(CUDA_ERROR_INVALID_VALUE, &s), CUDA_SUCCESS);
	ck_assert_str_eq(s, "CUDA_ERROR_INVALID_VALUE");
	ck_assert_int_eq(cuGetErrorName(CUDA_SUCCESS, &s), CUDA_SUCCESS);
	ck_assert_str_eq(s, "CUDA_SUCCESS");
	ck_assert_int_eq(cuGetErrorName(CUDA_ERROR_LAUNCH_FAILED, &s), CUDA_SUCCESS);
	ck_assert_str_eq(s, "CUDA_ERROR_LAUNCH_FAILED");
	assert_fake_not_called();
	lake_test_fail_submit(LAKE_OK);
}
END_TEST

START_TEST(local_error_string_nonempty)
{
	const char *s = NULL;

	lake_test_fail_submit(LAKE_E_UNAVAILABLE);
	lake_fake_reset();
	ck_assert_int_eq(cuGetErrorString(CUDA_ERROR_INVALID_VALUE, &s), CUDA_SUCCESS);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_gt(strlen(s), 0);
	ck_assert_str_ne(s, "CUDA_ERROR_INVALID_VALUE");
	assert_fake_not_called();
	lake_test_fail_submit(LAKE_OK);
}
END_TEST

START_TEST(local_unknown_error_code)
{
	const char *s = "sentinel";

	ck_assert_int_eq(cuGetErrorName((CUresult)123456, &s), CUDA_ERROR_INVALID_VALUE);
	ck_assert_ptr_null(s);
	s = "sentinel";
	ck_assert_int_eq(cuGetErrorString((CUresult)123456, &s), CUDA_ERROR_INVALID_VALUE);
	ck_assert_ptr_null(s);
	s = "sentinel";
	ck_assert_int_eq(cuGetErrorName((CUresult)-1, &s), CUDA_ERROR_INVALID_VALUE);
	ck_assert_ptr_null(s);
}
END_TEST

START_TEST(local_null_pstr_invalid)
{
	ck_assert_int_eq(cuGetErrorName(CUDA_ERROR_INVALID_VALUE, NULL), CUDA_ERROR_INVALID_VALUE);
	ck_assert_int_eq(cuGetErrorString(CUDA_ERROR_INVALID_VALUE, NULL), CUDA_ERROR_INVALID_VALUE);
	ck_assert_int_eq(cuGetErrorName((CUresult)123456, NULL), CUDA_ERROR_INVALID_VALUE);
}
END_TEST

/* ---- 8. lake_module_image_size ------------------------------------------ */

START_TEST(image_size_fatbin)
{
	__u8 img[256] = { 0 };

	make_fatbin(img, 100);
	ck_assert_uint_eq(lake_module_image_size(img, sizeof(img)), 116);
	ck_assert_uint_eq(lake_module_image_size(img, 116), 116);
}
END_TEST

START_TEST(image_size_fatbin_truncated)
{
	__u8 img[256] = { 0 };

	make_fatbin(img, 100);
	ck_assert_uint_eq(lake_module_image_size(img, 115), 0);
	ck_assert_uint_eq(lake_module_image_size(img, 16), 0);
}
END_TEST

START_TEST(image_size_fatbin_size_overflow)
{
	__u8 img[16] = { 0 };

	make_fatbin(img, ~0ull - 8);
	ck_assert_uint_eq(lake_module_image_size(img, ~0ull), 0);
}
END_TEST

START_TEST(image_size_elf64_sections)
{
	__u8 elf[512];

	make_elf(elf);
	ck_assert_uint_eq(lake_module_image_size(elf, sizeof(elf)), 420);
	ck_assert_uint_eq(lake_module_image_size(elf, 420), 420);
}
END_TEST

START_TEST(image_size_elf64_truncated)
{
	__u8 elf[512];

	make_elf(elf);
	ck_assert_uint_eq(lake_module_image_size(elf, 419), 0);
	/* The section header table itself is cut. */
	ck_assert_uint_eq(lake_module_image_size(elf, 300), 0);
	/* A section reaching past 2^64. */
	put_le(elf + 128 + 64 + 0x20, ~0ull, 8);
	ck_assert_uint_eq(lake_module_image_size(elf, sizeof(elf)), 0);
}
END_TEST

/* An image that starts like a fatbin or an ELF but is shorter than that
 * header is not PTX: the vendor would parse the header past the end. */
START_TEST(image_size_short_binary_header_not_ptx)
{
	__u8 img[512] = { 0 };

	make_fatbin(img, 100);
	ck_assert_uint_eq(lake_module_image_size(img, 8), 0);
	ck_assert_uint_eq(lake_module_image_size(img, 15), 0);
	make_elf(img);
	ck_assert_uint_eq(lake_module_image_size(img, 8), 0);
	ck_assert_uint_eq(lake_module_image_size(img, 63), 0);
}
END_TEST

START_TEST(image_size_ptx)
{
	ck_assert_uint_eq(lake_module_image_size(test_ptx, sizeof(test_ptx)), sizeof(test_ptx));
	ck_assert_uint_eq(lake_module_image_size(test_ptx, ~0ull), sizeof(test_ptx));
	ck_assert_uint_eq(lake_module_image_size(NULL, 100), 0);
}
END_TEST

START_TEST(image_size_ptx_without_nul)
{
	ck_assert_uint_eq(lake_module_image_size(test_ptx, sizeof(test_ptx) - 1), 0);
	ck_assert_uint_eq(lake_module_image_size(test_ptx, 0), 0);
}
END_TEST

/* Copies the first @n bytes of @img so that they end where an unreadable
 * page begins: reading byte n faults. */
static const __u8 *guarded_copy(const void *img, size_t n, void **map, size_t *map_len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	__u8 *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert(m != MAP_FAILED && n <= pg);
	ck_assert_int_eq(mprotect(m + pg, pg, PROT_NONE), 0);
	memcpy(m + pg - n, img, n);
	*map = m;
	*map_len = 2 * pg;
	return m + pg - n;
}

/* lakeD sizes images sent by clients: it must read no byte past max. */
START_TEST(image_size_reads_at_most_max)
{
	__u8 img[512];
	void *map;
	size_t map_len;
	const __u8 *p;

	make_fatbin(img, 100);
	p = guarded_copy(img, 16, &map, &map_len);
	ck_assert_uint_eq(lake_module_image_size(p, 16), 0);
	munmap(map, map_len);
	p = guarded_copy(img, 8, &map, &map_len);
	ck_assert_uint_eq(lake_module_image_size(p, 8), 0);
	munmap(map, map_len);

	make_elf(img);	/* its section header table starts at 128 */
	p = guarded_copy(img, 100, &map, &map_len);
	ck_assert_uint_eq(lake_module_image_size(p, 100), 0);
	munmap(map, map_len);
	p = guarded_copy(img, 8, &map, &map_len);
	ck_assert_uint_eq(lake_module_image_size(p, 8), 0);
	munmap(map, map_len);

	p = guarded_copy(test_ptx, sizeof(test_ptx) - 1, &map, &map_len);
	ck_assert_uint_eq(lake_module_image_size(p, sizeof(test_ptx) - 1), 0);
	munmap(map, map_len);
}
END_TEST

/* ---- 8. a hostile daemon: nothing it says reaches past what the caller gave */

#ifndef CU_LAUNCH_PARAM_BUFFER_POINTER
#define CU_LAUNCH_PARAM_END		((void *)0x00)
#define CU_LAUNCH_PARAM_BUFFER_POINTER	((void *)0x01)
#define CU_LAUNCH_PARAM_BUFFER_SIZE	((void *)0x02)
#endif

/* A PTX image whose kernel k3 takes what the fake's cuFuncGetParamInfo
 * reports (8, 4 and 8 bytes at 0, 8, 16), and k1 one int. */
static const char trust_ptx[] =
	".version 8.0\n.target sm_90\n.address_size 64\n"
	".visible .entry k3(\n\t.param .u64 k3_param_0,\n\t.param .u32 k3_param_1,\n"
	"\t.param .u64 k3_param_2\n)\n{\n\tret;\n}\n"
	".visible .entry k1(\n\t.param .u32 k1_param_0\n)\n{\n\tret;\n}\n";

/* A consistent lie: 8 parameters of 256 bytes each for a 3-parameter kernel. */
static void lie_layout_8x256(__u8 *slot)
{
	struct lake_outs_cuModuleGetFunction *o = (void *)(slot + LAKE_OUTS_OFFSET);
	unsigned int i;

	o->hfunc_layout.count = 8;
	o->hfunc_layout.size = 8 * 256;
	for (i = 0; i < 8; i++) {
		o->hfunc_layout.offset[i] = (__u16)(i * 256);
		o->hfunc_layout.psize[i] = 256;
	}
}

START_TEST(hostile_oversized_layout_refused)
{
	const struct lake_args_cuLaunchKernel *a =
		(const void *)(lake_test_slot() + LAKE_ARGS_OFFSET);
	CUmodule m = NULL;
	CUfunction f = NULL;
	CUresult r;

	ck_assert_int_eq(cuModuleLoadData(&m, trust_ptx), CUDA_SUCCESS);
	lake_test_set_reply_hook(lie_layout_8x256);
	r = cuModuleGetFunction(&f, m, "k3");
	lake_test_set_reply_hook(NULL);
	if (r == CUDA_SUCCESS) {
		/* Had it been taken, no launch may pack more than k3's 24 bytes
		 * from the caller's three parameters. */
		lake_fake_reset();
		launch(f, NULL, kparams);
		ck_assert_uint_le(a->kernelParams.len, FAKE_KPARAMS_SIZE);
	}
	ck_assert_int_eq(r, CUDA_ERROR_UNKNOWN);
	ck_assert_ptr_null(f);
}
END_TEST

START_TEST(hostile_honest_layout_packs_the_image_layout)
{
	const struct lake_args_cuLaunchKernel *a =
		(const void *)(lake_test_slot() + LAKE_ARGS_OFFSET);
	CUmodule m = NULL;
	CUfunction f = NULL;

	ck_assert_int_eq(cuModuleLoadData(&m, trust_ptx), CUDA_SUCCESS);
	ck_assert_int_eq(cuModuleGetFunction(&f, m, "k3"), CUDA_SUCCESS);
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_SUCCESS);
	ck_assert_uint_eq(a->kernelParams.len, FAKE_KPARAMS_SIZE);
	ck_assert(memcmp(lake_test_slot() + a->kernelParams.off + 8, &kv1, 4) == 0);
}
END_TEST

/* The name lakeD writes fills the caller's whole buffer, without a NUL. */
static void name_without_nul(__u8 *slot)
{
	const struct lake_args_cuDeviceGetName *a = (const void *)(slot + LAKE_ARGS_OFFSET);
	__u8 *base = a->name.where == LAKE_BUF_SLOT ? slot : lake_test_arena();

	memset(base + a->name.off, 'A', a->name.len);
}

START_TEST(hostile_device_name_terminated_in_callers_buffer)
{
	int variant;

	for (variant = 0; variant < 2; variant++) {
		char *name = lake_test_buffer(variant, 17, false, 0);

		name[16] = 'G';	/* a guard byte past the caller's len */
		lake_test_set_reply_hook(name_without_nul);
		ck_assert_int_eq(cuDeviceGetName(name, 16, 0), CUDA_SUCCESS);
		ck_assert_msg(memchr(name, 0, 16) != NULL, "variant %d: no NUL within len", variant);
		ck_assert_uint_eq(strlen(name), 15);
		ck_assert_int_eq(name[16], 'G');
	}
}
END_TEST

static unsigned int lie_count;

static void inflate_process_count(__u8 *slot)
{
	struct lake_outs_nvmlDeviceGetComputeRunningProcesses *o = (void *)(slot + LAKE_OUTS_OFFSET);

	o->infoCount = lie_count;
}

START_TEST(hostile_process_count_clamped_to_capacity)
{
	nvmlDevice_t dev = (nvmlDevice_t)(uintptr_t)lake_test_handle(LAKE_RT_nvmlDevice_t, 0xDE1);
	nvmlProcessInfo_t *infos = lake_test_buffer(0, 5 * sizeof(*infos), false, 0);
	unsigned int count = 4;

	memset(&infos[4], 0x77, sizeof(infos[4]));
	lie_count = 1000;
	lake_test_set_reply_hook(inflate_process_count);
	ck_assert_int_eq(nvmlDeviceGetComputeRunningProcesses(dev, &count, infos),
			 NVML_ERROR_INSUFFICIENT_SIZE);
	ck_assert_uint_eq(count, 1000);	/* the real count, as NVML reports it */
	ck_assert_uint_eq(((__u8 *)&infos[4])[0], 0x77);
	/* An honest count within capacity comes back as it is. */
	lie_count = 2;
	count = 4;
	ck_assert_int_eq(nvmlDeviceGetComputeRunningProcesses(dev, &count, infos), NVML_SUCCESS);
	ck_assert_uint_eq(count, 2);
}
END_TEST

/* A daemon that answers "success" without writing any output bytes. */
static void lazy_server(__u8 *slot)
{
	struct lake_msg_hdr *h = (void *)slot;

	h->result = 0;
	h->reply_len = 0;
}

START_TEST(hostile_staged_output_never_returns_stale_bytes)
{
	__u8 *secret = lake_test_buffer(0, 256, false, 0);
	__u8 *dst = lake_test_buffer(0, 256, false, 0);
	unsigned int i;

	memset(secret, 0x5e, 256);
	memset(dst, 0xEE, 256);
	ck_assert_int_eq(cuMemcpyHtoD(LAKE_TEST_DPTR, secret, 256), CUDA_SUCCESS);	/* staged in the slot */
	lake_test_set_server(lazy_server);
	ck_assert_int_eq(cuMemcpyDtoH(dst, LAKE_TEST_DPTR, 256), CUDA_SUCCESS);
	for (i = 0; i < 256; i++)
		ck_assert_msg(dst[i] == 0, "byte %u came back as %#x", i, dst[i]);
}
END_TEST

START_TEST(client_launch_with_explicit_buffer)
{
	CUmodule m = NULL;
	CUfunction f = NULL;
	__u8 buf[24];
	size_t size = sizeof(buf);
	void *extra[] = { CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
			  CU_LAUNCH_PARAM_END };
	const struct lake_fake_record *rec;

	memcpy(buf, &kv0, 8);
	memcpy(buf + 8, &kv1, 4);
	memset(buf + 12, 0, 4);
	memcpy(buf + 16, &kv2, 8);
	ck_assert_int_eq(cuModuleLoadData(&m, trust_ptx), CUDA_SUCCESS);
	ck_assert_int_eq(cuModuleGetFunction(&f, m, "k3"), CUDA_SUCCESS);
	lake_fake_reset();
	ck_assert_int_eq(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, extra), CUDA_SUCCESS);
	rec = lake_fake_find("cuLaunchKernel");
	ck_assert_ptr_nonnull(rec);
	ck_assert_ptr_null(rec->ptr[9]);		/* no kernelParams */
	ck_assert_ptr_nonnull(rec->ptr[10]);		/* an extra list */
	ck_assert_uint_eq(rec->len[10], sizeof(buf));
	ck_assert(memcmp(rec->data[10], buf, sizeof(buf)) == 0);
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_SUCCESS);
}
END_TEST

/* ---- 9. module images: the kernel parameter layouts read from them ------- */

#include <stddef.h>
#include <stdio.h>
#include "lake_image.h"
#include "kp_types.h"

/* What the host compiler says: the CUDA ABI lays kernel parameters out
 * like the members of a struct. */
struct kp_expect {
	const char *name;
	bool known;
	unsigned int count;
	__u16 off[24], size[24];
};

#define KP_M(st, m)	{ offsetof(st, m), sizeof(((st *)0)->m) }

static unsigned int kp_expected(struct kp_expect *e)
{
	struct vecadd { const float *a; const float *b; float *c; int n; };
	struct mixed { char c; short s; int i; long long l; float f; double d; void *p; };
	struct structs { struct kp_s3 s; struct kp_a16 a; int tail; };
	struct mangled { int *x; float y; };
	struct many { int a[20]; char z; double q; };
	struct big { struct kp_big big; char after; };
	struct char_double { char c; double d; };
	const struct { unsigned int count; size_t m[8][2]; } simple[] = {
		{ 4, { KP_M(struct vecadd, a), KP_M(struct vecadd, b), KP_M(struct vecadd, c),
		       KP_M(struct vecadd, n) } },
		{ 7, { KP_M(struct mixed, c), KP_M(struct mixed, s), KP_M(struct mixed, i),
		       KP_M(struct mixed, l), KP_M(struct mixed, f), KP_M(struct mixed, d),
		       KP_M(struct mixed, p) } },
		{ 3, { KP_M(struct structs, s), KP_M(struct structs, a), KP_M(struct structs, tail) } },
		{ 0, { { 0, 0 } } },
		{ 2, { KP_M(struct mangled, x), KP_M(struct mangled, y) } },
		{ 2, { KP_M(struct big, big), KP_M(struct big, after) } },
		{ 2, { KP_M(struct char_double, c), KP_M(struct char_double, d) } },
	};
	static const char *const names[] = { "kp_vecadd", "kp_mixed", "kp_structs", "kp_noparams",
					     "_Z10kp_mangledPif", "kp_big", "kp_char_double" };
	unsigned int i, k, n = 0;

	memset(e, 0, 9 * sizeof(*e));
	for (i = 0; i < sizeof(simple) / sizeof(simple[0]); i++, n++) {
		e[n].name = names[i];
		e[n].known = true;
		e[n].count = simple[i].count;
		for (k = 0; k < simple[i].count; k++) {
			e[n].off[k] = (__u16)simple[i].m[k][0];
			e[n].size[k] = (__u16)simple[i].m[k][1];
		}
	}
	e[n].name = "kp_many";
	e[n].known = true;
	e[n].count = 22;
	for (k = 0; k < 20; k++) {
		e[n].off[k] = (__u16)(offsetof(struct many, a) + 4 * k);
		e[n].size[k] = 4;
	}
	e[n].off[20] = offsetof(struct many, z);
	e[n].size[20] = 1;
	e[n].off[21] = offsetof(struct many, q);
	e[n].size[21] = 8;
	n++;
	e[n].name = "kp_huge";	/* 20,004 bytes: more than LAKE packs */
	e[n].known = false;
	return n + 1;
}

static void *kp_read(const char *name, __u64 *len)
{
#ifdef LAKE_KP_DIR
	char path[512];
	FILE *f;
	long n;
	char *buf;

	snprintf(path, sizeof(path), "%s/%s", LAKE_KP_DIR, name);
	f = fopen(path, "rb");
	ck_assert_msg(f, "%s: cannot open (built by nvcc)", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_gt(n, 0);
	rewind(f);
	buf = lake_test_buffer(0, (__u64)n + 1, false, 0);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	buf[n] = 0;
	*len = (__u64)n + 1;	/* PTX: its NUL, as cuModuleLoadData gets it */
	return buf;
#else
	(void)name;
	(void)len;
	return NULL;
#endif
}

#define KP_SKIP_WITHOUT_NVCC()							\
	do {									\
		if (!kp_have_images()) {					\
			fprintf(stderr, "%s: skipped: no nvcc-built images\n", __func__); \
			return;							\
		}								\
	} while (0)

static bool kp_have_images(void)
{
#ifdef LAKE_KP_DIR
	return true;
#else
	return false;
#endif
}

static struct lake_module *kp_parse(const void *img, __u64 len)
{
	struct lake_module *m = NULL;

	ck_assert_int_eq(lake_image_parse(img, len, &m), LAKE_OK);
	ck_assert_ptr_nonnull(m);
	return m;
}

/* Every kernel of kparams.cu is there with the layout the host compiler
 * computes (the one too large to pack with an unknown layout), and nothing
 * else. */
static void kp_check_all(const char *file)
{
	struct kp_expect e[9];
	unsigned int n = kp_expected(e), i, k;
	struct lake_module *m;
	__u64 len;
	void *img = kp_read(file, &len);

	m = kp_parse(img, len);
	ck_assert_msg(!m->partial, "%s: read only partly", file);
	ck_assert_uint_eq(m->nkernels, n);
	for (i = 0; i < n; i++) {
		struct lake_kernel *kn = lake_module_kernel(m, e[i].name);

		ck_assert_msg(kn, "%s: no kernel %s", file, e[i].name);
		ck_assert_msg(kn->layout == (e[i].known ? LAKE_LAYOUT_KNOWN : LAKE_LAYOUT_UNKNOWN),
			      "%s: %s: layout %s", file, e[i].name, kn->layout ? "unknown" : "known");
		if (!e[i].known)
			continue;
		ck_assert_msg(kn->count == e[i].count, "%s: %s: %u parameters, want %u", file,
			      e[i].name, kn->count, e[i].count);
		for (k = 0; k < e[i].count; k++)
			ck_assert_msg(kn->offset[k] == e[i].off[k] && kn->psize[k] == e[i].size[k],
				      "%s: %s: parameter %u at %u (%u bytes), want %u (%u)", file,
				      e[i].name, k, kn->offset[k], kn->psize[k], e[i].off[k], e[i].size[k]);
		ck_assert_uint_eq(kn->size, e[i].count ? (__u32)e[i].off[e[i].count - 1] +
						       e[i].size[e[i].count - 1] : 0);
	}
	lake_module_free(m);
}

START_TEST(image_cubin_layouts)
{
	KP_SKIP_WITHOUT_NVCC();
	kp_check_all("kparams.cubin");
}
END_TEST

START_TEST(image_ptx_layouts)
{
	KP_SKIP_WITHOUT_NVCC();
	kp_check_all("kparams.ptx");
}
END_TEST

START_TEST(image_fatbin_layouts)
{
	KP_SKIP_WITHOUT_NVCC();
	kp_check_all("kparams.fatbin");		/* cubins + Zstandard PTX (nvcc's default) */
	kp_check_all("kparams-none.fatbin");	/* nothing compressed */
	kp_check_all("kparams-size.fatbin");	/* Zstandard cubins */
	kp_check_all("kparams-speed.fatbin");	/* LZ4 PTX */
}
END_TEST

/* The image at the very end of a readable page: reading one byte past it
 * faults. */
static const __u8 *kp_guarded(const void *img, size_t n, void **map, size_t *map_len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data = (n + page - 1) / page * page;
	__u8 *p;

	*map_len = data + page;
	p = mmap(NULL, *map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(p != MAP_FAILED);
	ck_assert_int_eq(mprotect(p + data, page, PROT_NONE), 0);
	memcpy(p + data - n, img, n);
	*map = p;
	return p + data - n;
}

/* A kernel said to be known has a layout LAKE can pack. */
static void kp_check_sane(const struct lake_module *m)
{
	__u32 i, k, end;

	for (i = 0; i < m->nkernels; i++) {
		const struct lake_kernel *kn = &m->kernels[i];

		ck_assert_ptr_nonnull(kn->name);
		ck_assert_uint_lt(strlen(kn->name), LAKE_IMAGE_NAME_MAX);
		if (kn->layout != LAKE_LAYOUT_KNOWN)
			continue;
		ck_assert_uint_le(kn->count, LAKE_MAX_KPARAMS);
		ck_assert_uint_le(kn->size, LAKE_KPARAMS_MAX_SIZE);
		for (k = 0, end = 0; k < kn->count; k++) {
			ck_assert_uint_ge(kn->offset[k], end);
			end = (__u32)kn->offset[k] + kn->psize[k];
		}
		ck_assert_uint_eq(end, kn->size);
	}
}

/* Every prefix of each image: never a read past it, never a wrong layout
 * (a kernel either comes out whole, unknown, or not at all). */
START_TEST(image_truncated_never_read_past)
{
	static const char *const files[] = { "kparams.cubin", "kparams.ptx", "kparams.fatbin",
					     "kparams-size.fatbin" };
	struct kp_expect e[9];
	unsigned int n = kp_expected(e), f, i, k;

	KP_SKIP_WITHOUT_NVCC();
	for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		__u64 len, cut;
		void *img = kp_read(files[f], &len);

		for (cut = 0; cut < len; cut += cut < 8192 ? 1 : 61) {
			void *map;
			size_t map_len;
			const __u8 *p = kp_guarded(img, cut, &map, &map_len);
			struct lake_module *m = kp_parse(p, cut);

			kp_check_sane(m);
			for (i = 0; i < m->nkernels; i++) {
				struct lake_kernel *kn = &m->kernels[i];

				if (kn->layout != LAKE_LAYOUT_KNOWN)
					continue;
				for (k = 0; k < n && strcmp(e[k].name, kn->name); k++)
					;
				ck_assert_msg(k < n, "%s cut at %llu: a kernel %s", files[f],
					      (unsigned long long)cut, kn->name);
				ck_assert_msg(e[k].known && kn->count == e[k].count &&
					      !memcmp(kn->offset, e[k].off, 2 * e[k].count) &&
					      !memcmp(kn->psize, e[k].size, 2 * e[k].count),
					      "%s cut at %llu: %s with a wrong layout", files[f],
					      (unsigned long long)cut, kn->name);
			}
			lake_module_free(m);
			munmap(map, map_len);
		}
	}
}
END_TEST

static __u64 kp_rand_state = 0x9E3779B97F4A7C15ull;

static __u64 kp_rand(void)
{
	kp_rand_state ^= kp_rand_state << 13;
	kp_rand_state ^= kp_rand_state >> 7;
	kp_rand_state ^= kp_rand_state << 17;
	return kp_rand_state;
}

/* Random bytes changed (in the headers, the records or anywhere): the parser
 * stays within the image and only keeps layouts it can pack. */
START_TEST(image_mutations_never_read_past)
{
	static const char *const files[] = { "kparams.cubin", "kparams.ptx", "kparams-none.fatbin",
					     "kparams.fatbin", "kparams-speed.fatbin" };
	unsigned int f, round, j;

	KP_SKIP_WITHOUT_NVCC();
	for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		__u64 len;
		__u8 *img = kp_read(files[f], &len);
		__u8 *work = lake_test_buffer(0, len, false, 0);

		for (round = 0; round < 1500; round++) {
			void *map;
			size_t map_len;
			struct lake_module *m;
			const __u8 *p;
			unsigned int flips = 1 + (unsigned int)(kp_rand() % 6);

			memcpy(work, img, len);
			for (j = 0; j < flips; j++) {
				/* Half the time in the first 1 KiB: the headers. */
				__u64 at = kp_rand() % (round & 1 ? len : (len < 1024 ? len : 1024));

				work[at] = (__u8)(kp_rand() & 1 ? kp_rand() : work[at] ^ (1u << (kp_rand() % 8)));
			}
			p = kp_guarded(work, len, &map, &map_len);
			m = kp_parse(p, len);
			kp_check_sane(m);
			lake_module_free(m);
			munmap(map, map_len);
		}
	}
}
END_TEST

/* PTX this reader does not understand gives an unknown layout, never a
 * guessed one. */
START_TEST(image_ptx_malformed)
{
	static const char *const bad[] = {
		".entry k(.param .u32 a",				/* cut off */
		".entry k(.param .u32 a)",				/* no body */
		".entry k(.param .u32)",				/* no name */
		".entry k(.param a) {}",				/* no type */
		".entry k(.param .align 3 .b8 a[4]) {}",		/* not a power of two */
		".entry k(.param .b8 a[999999999]) {}",			/* too large */
		".entry k(.param .u32 a .u32 b) {}",			/* two types */
		".entry k(.param .texref t) {}",			/* an opaque type */
		".entry k(.param .u32 a,) {}",
		".entry k(.reg .u32 a) {}",
		".entry k(.param .b8 a[4096], .param .u32 b) {}",	/* past LAKE_KPARAMS_MAX_SIZE */
	};
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct lake_module *m = kp_parse(bad[i], strlen(bad[i]) + 1);
		struct lake_kernel *k = lake_module_kernel(m, "k");

		ck_assert_msg(k && k->layout == LAKE_LAYOUT_UNKNOWN, "'%s': %s", bad[i],
			      k ? "a known layout" : "no kernel");
		lake_module_free(m);
	}
}
END_TEST

START_TEST(image_ptx_syntax)
{
	static const char ptx[] =
		"// .entry commented(.param .u32 x) {}\n"
		"/* .entry block(.param .u32 x) {} */\n"
		".file 1 \"a .entry in a string\"\n"
		".visible .entry k(\n"
		"\t.param .u64 .ptr .global .align 16 p,\t// the pointee's alignment: not ours\n"
		"\t.param .align 16 .b8 s[20],\n"
		"\t.param .u8 c,\n"
		"\t.param .v2 .u32 v\n"
		")\n.maxntid 128, 1, 1\n{\n\tret;\n}\n"
		".entry bare { ret; }\n";
	struct lake_module *m = kp_parse(ptx, sizeof(ptx));
	struct lake_kernel *k = lake_module_kernel(m, "k"), *b = lake_module_kernel(m, "bare");

	ck_assert_uint_eq(m->nkernels, 2);
	ck_assert_ptr_nonnull(k);
	ck_assert_int_eq(k->layout, LAKE_LAYOUT_KNOWN);
	ck_assert_uint_eq(k->count, 4);
	ck_assert_uint_eq(k->offset[0], 0);
	ck_assert_uint_eq(k->psize[0], 8);
	ck_assert_uint_eq(k->offset[1], 16);
	ck_assert_uint_eq(k->psize[1], 20);
	ck_assert_uint_eq(k->offset[2], 36);
	ck_assert_uint_eq(k->psize[2], 1);
	ck_assert_uint_eq(k->offset[3], 40);
	ck_assert_uint_eq(k->psize[3], 8);
	ck_assert_uint_eq(k->size, 48);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->count, 0);
	ck_assert_int_eq(b->layout, LAKE_LAYOUT_KNOWN);
	lake_module_free(m);
}
END_TEST

/* The section .nv.info.<name> of a cubin, found the way the parser does. */
static __u8 *kp_nvinfo(__u8 *elf, __u64 len, const char *kernel, __u64 *size)
{
	__u64 shoff = 0, stroff;
	unsigned int i, shnum, shstr;
	char want[128];

	memcpy(&shoff, elf + 0x28, 8);
	shnum = elf[0x3C] | elf[0x3D] << 8;
	shstr = elf[0x3E] | elf[0x3F] << 8;
	memcpy(&stroff, elf + shoff + (__u64)shstr * 64 + 0x18, 8);
	snprintf(want, sizeof(want), ".nv.info.%s", kernel);
	for (i = 0; i < shnum; i++) {
		__u8 *sh = elf + shoff + (__u64)i * 64;
		__u32 name;
		__u64 off;

		memcpy(&name, sh, 4);
		if (strcmp((char *)elf + stroff + name, want))
			continue;
		memcpy(&off, sh + 0x18, 8);
		memcpy(size, sh + 0x20, 8);
		ck_assert_uint_le(off + *size, len);
		return elf + off;
	}
	ck_abort_msg("no %s", want);
	return NULL;
}

/* The first EIATTR_KPARAM_INFO record of a .nv.info section. */
static __u8 *kp_first_kparam(__u8 *q, __u64 size)
{
	__u64 o = 0;

	while (o + 4 <= size) {
		if (q[o] == 4 && q[o + 1] == 0x17)
			return q + o;
		o += q[o] == 4 ? 4u + (q[o + 2] | q[o + 3] << 8) : 4u;
	}
	ck_abort_msg("no KPARAM_INFO record");
	return NULL;
}

/* Records that contradict themselves or the total give an unknown layout;
 * the other kernels are unaffected. */
START_TEST(image_cubin_records_checked)
{
	unsigned int what;

	KP_SKIP_WITHOUT_NVCC();
	for (what = 0; what < 6; what++) {
		__u64 len, size;
		__u8 *elf = kp_read("kparams.cubin", &len);
		__u8 *q = kp_nvinfo(elf, len, "kp_vecadd", &size);
		__u8 *r = kp_first_kparam(q, size);	/* the last parameter's (nvcc lists them backwards) */
		struct lake_module *m;

		switch (what) {
		case 0: r[8] = 200; break;			/* ordinal past LAKE_MAX_KPARAMS */
		case 1: r[8] = 0; break;			/* ordinal 0 twice */
		case 2: r[10] = 0; r[11] = 0; break;		/* offset 0: overlaps */
		case 3: r[15] ^= 0x04; break;			/* another size: not the total */
		case 4: r[2] = 0xff; r[3] = 0x7f; break;	/* a record longer than its section */
		default: r[0] = 9; break;			/* a format of unknown length */
		}
		m = kp_parse(elf, len);
		ck_assert_msg(lake_module_kernel(m, "kp_vecadd")->layout == LAKE_LAYOUT_UNKNOWN,
			      "change %u: still a known layout", what);
		ck_assert_int_eq(lake_module_kernel(m, "kp_mixed")->layout, LAKE_LAYOUT_KNOWN);
		lake_module_free(m);
	}
}
END_TEST

/* Headers that point outside the image: nothing is read from there. */
START_TEST(image_headers_out_of_bounds)
{
	__u64 len, v;
	__u8 *img;
	struct lake_module *m;

	KP_SKIP_WITHOUT_NVCC();
	img = kp_read("kparams.cubin", &len);
	v = len;					/* section headers past the end */
	memcpy(img + 0x28, &v, 8);
	m = kp_parse(img, len);
	ck_assert(m->partial);
	ck_assert_uint_eq(m->nkernels, 0);
	lake_module_free(m);

	img = kp_read("kparams-none.fatbin", &len);
	v = ~0ull;					/* the first entry's payload: huge */
	memcpy(img + 16 + 8, &v, 8);
	m = kp_parse(img, len);
	ck_assert(m->partial);
	ck_assert_uint_eq(m->nkernels, 0);
	lake_module_free(m);

	img = kp_read("kparams.fatbin", &len);
	img[16 + 4] = 8;				/* an entry header of 8 bytes */
	m = kp_parse(img, len);
	ck_assert(m->partial);
	lake_module_free(m);
}
END_TEST

/* A compressed entry claiming more than LAKE_IMAGE_MAX_BYTES, or whose data
 * does not decompress, is skipped; the others still count. */
START_TEST(image_compressed_entry_checked)
{
	__u64 len, o, v;
	__u8 *img;
	struct lake_module *m;
	unsigned int round;

	KP_SKIP_WITHOUT_NVCC();
	for (round = 0; round < 2; round++) {
		img = kp_read("kparams.fatbin", &len);	/* sm_90 cubin, compute_90 zstd PTX, sm_80 cubin */
		for (o = 16; o + 64 <= len; ) {
			__u64 ehs = img[o + 4] | img[o + 5] << 8, psize;

			memcpy(&psize, img + o + 8, 8);
			if (img[o] == 1) {		/* the PTX entry */
				if (round == 0) {
					v = LAKE_IMAGE_MAX_BYTES + 1;
					memcpy(img + o + 56, &v, 8);
				} else {
					memset(img + o + ehs + 4, 0xA5, 16);	/* corrupt the frame */
				}
			}
			o += ehs + psize;
		}
		m = kp_parse(img, len);
		ck_assert(m->partial);
		/* The cubins still give every layout. */
		ck_assert_int_eq(lake_module_kernel(m, "kp_vecadd")->layout, LAKE_LAYOUT_KNOWN);
		ck_assert_uint_eq(lake_module_kernel(m, "kp_vecadd")->count, 4);
		lake_module_free(m);
	}
}
END_TEST

/* Two entries of a fatbin describing a kernel differently: unknown. */
START_TEST(image_fatbin_conflict_is_unknown)
{
	static const char a[] = ".entry k(.param .u32 x) {}";
	static const char b[] = ".entry k(.param .u64 x) {}";
	__u8 fat[16 + 2 * (64 + 32)] = { 0 };
	__u32 magic = 0xBA55ED50u, ehs = 64;
	__u64 fs = 2 * (64 + 32), ps = 32;
	struct lake_module *m;
	unsigned int e;

	memcpy(fat, &magic, 4);
	fat[4] = 1;
	fat[6] = 16;
	memcpy(fat + 8, &fs, 8);
	for (e = 0; e < 2; e++) {
		__u8 *h = fat + 16 + e * (64 + 32);

		h[0] = 1;	/* PTX */
		memcpy(h + 4, &ehs, 4);
		memcpy(h + 8, &ps, 8);
		memcpy(h + 64, e ? b : a, sizeof(a));
	}
	m = kp_parse(fat, sizeof(fat));
	ck_assert_uint_eq(m->nkernels, 1);
	ck_assert_int_eq(lake_module_kernel(m, "k")->layout, LAKE_LAYOUT_UNKNOWN);
	lake_module_free(m);
	/* The same twice: known. */
	memcpy(fat + 16 + 64 + 32 + 64, a, sizeof(a));
	m = kp_parse(fat, sizeof(fat));
	ck_assert_int_eq(lake_module_kernel(m, "k")->layout, LAKE_LAYOUT_KNOWN);
	lake_module_free(m);
}
END_TEST

/* ---- 10. the layout cache: bounded by the caller's images, not by lakeD --- */

static __u64 fresh_token = 0x7000000000000001ull;

static void new_function_token(__u8 *slot)
{
	struct lake_outs_cuModuleGetFunction *o = (void *)(slot + LAKE_OUTS_OFFSET);

	o->hfunc = fresh_token++;
}

START_TEST(layouts_bounded_by_the_images)
{
	CUmodule m = NULL;
	CUfunction f = NULL;
	__u32 modules, bound;
	unsigned int i;

	ck_assert_int_eq(cuModuleLoadData(&m, trust_ptx), CUDA_SUCCESS);
	lake_test_set_reply_hook(new_function_token);
	for (i = 0; i < 2000; i++)
		ck_assert_int_eq(cuModuleGetFunction(&f, m, "k3"), CUDA_SUCCESS);
	lake_test_set_reply_hook(NULL);
	lake_transport_layouts(lake_test_transport(), &modules, &bound);
	ck_assert_uint_eq(modules, 1);
	ck_assert_uint_eq(bound, 1);	/* the last handle: the others no longer pack */
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_SUCCESS);
	ck_assert_uint_eq(((const struct lake_args_cuLaunchKernel *)(lake_test_slot() +
		LAKE_ARGS_OFFSET))->kernelParams.len, FAKE_KPARAMS_SIZE);
	/* (lakeD never issued these tokens: its sticky error says so.) */
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_ERROR_INVALID_HANDLE);
	ck_assert_int_eq(launch((CUfunction)(uintptr_t)(fresh_token - 2), NULL, kparams),
			 CUDA_ERROR_NOT_SUPPORTED);
	ck_assert_int_eq(cuModuleUnload(m), CUDA_SUCCESS);
	lake_transport_layouts(lake_test_transport(), &modules, &bound);
	ck_assert_uint_eq(modules + bound, 0);
}
END_TEST

START_TEST(layouts_forgotten_when_the_daemon_goes)
{
	CUmodule m = NULL;
	CUfunction f = NULL;
	__u32 modules, bound;

	ck_assert_int_eq(cuModuleLoadData(&m, trust_ptx), CUDA_SUCCESS);
	ck_assert_int_eq(cuModuleGetFunction(&f, m, "k3"), CUDA_SUCCESS);
	lake_transport_reset(lake_test_transport());	/* what a detach does */
	lake_transport_layouts(lake_test_transport(), &modules, &bound);
	ck_assert_uint_eq(modules + bound, 0);
	start_counting();
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_ERROR_NOT_SUPPORTED);
	assert_nothing_sent();
}
END_TEST

static __u64 other_token;

static void reuse_token(__u8 *slot)
{
	/* outs of cuModuleLoadData and cuModuleGetFunction start with the handle */
	memcpy(slot + LAKE_OUTS_OFFSET, &other_token, sizeof(other_token));
}

static const char trust_ptx2[] =
	".version 8.0\n.target sm_90\n.address_size 64\n"
	".visible .entry k3(\n\t.param .u64 a,\n\t.param .u32 b,\n\t.param .u64 c\n)\n{\n\tret;\n}\n"
	".visible .entry k3b(\n\t.param .u64 a,\n\t.param .u32 b,\n\t.param .u64 c\n)\n{\n\tret;\n}\n";

/* lakeD answering with a live module's token for another image, or with one
 * kernel's function token for another kernel: refused. */
START_TEST(hostile_tokens_of_other_objects_refused)
{
	CUmodule a = NULL, b = NULL;
	CUfunction f = NULL, g = NULL;

	ck_assert_int_eq(cuModuleLoadData(&a, trust_ptx), CUDA_SUCCESS);
	other_token = (__u64)(uintptr_t)a;
	lake_test_set_reply_hook(reuse_token);
	ck_assert_int_eq(cuModuleLoadData(&b, trust_ptx2), CUDA_ERROR_UNKNOWN);
	ck_assert_ptr_null(b);
	lake_test_set_reply_hook(NULL);
	lake_test_reconnect();
	lake_transport_reset(lake_test_transport());
	ck_assert_int_eq(cuModuleLoadData(&b, trust_ptx2), CUDA_SUCCESS);
	ck_assert_int_eq(cuModuleGetFunction(&f, b, "k3"), CUDA_SUCCESS);
	other_token = (__u64)(uintptr_t)f;
	lake_test_set_reply_hook(reuse_token);
	ck_assert_int_eq(cuModuleGetFunction(&g, b, "k3b"), CUDA_ERROR_UNKNOWN);
	ck_assert_ptr_null(g);
}
END_TEST

/* ---- the suite ---------------------------------------------------------- */

static TCase *tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, lake_test_setup, lake_test_teardown);
	suite_add_tcase(s, tc);
	return tc;
}

Suite *lake_protocol_suite(void)
{
	Suite *s = suite_create("protocol");
	TCase *tc;

	tc = tcase(s, "sticky errors");
	tcase_add_test(tc, sticky_async_error_returned_once_by_next_sync);
	tcase_add_test(tc, sticky_event_record_error_returned_by_next_sync);
	tcase_add_test(tc, sticky_failing_sync_reports_own_error_first);
	tcase_add_test(tc, sticky_error_is_per_client);
	tcase_add_test(tc, sticky_error_per_client_in_raw_slot);
	tcase_add_test(tc, sticky_first_async_error_wins);
	tcase_add_test(tc, sticky_cuda_error_not_reported_by_nvml);
	tcase_add_test(tc, sticky_staged_async_call_returns_own_error);
	tcase_add_test(tc, sticky_staged_async_copy_syncs_its_stream);
	tcase_add_test(tc, sticky_arena_async_call_error_is_sticky);

	tc = tcase(s, "handle misuse");
	tcase_add_test(tc, handle_forged_token_rejected);
	tcase_add_test(tc, handle_null_stream_passes_as_null);
	tcase_add_test(tc, handle_wrong_type_rejected);
	tcase_add_test(tc, handle_stale_after_destroy_rejected);
	tcase_add_test(tc, handle_failed_destroy_keeps_handle);
	tcase_add_test(tc, handle_function_dies_with_module);
	tcase_add_test(tc, handle_memfree_of_unallocated_pointer_rejected);
	tcase_add_test(tc, handle_double_memfree_rejected);
	tcase_add_test(tc, handle_failed_memfree_keeps_allocation);
	tcase_add_test(tc, handle_token_dies_with_connection);

	tc = tcase(s, "hostile slots");
	tcase_add_test(tc, raw_wellformed_command_executes);
	tcase_add_test(tc, raw_api_zero_is_protocol_error);
	tcase_add_test(tc, raw_api_past_max_is_protocol_error);
	tcase_add_test(tc, raw_args_len_too_small_is_protocol_error);
	tcase_add_test(tc, raw_args_len_past_slot_is_protocol_error);
	tcase_add_test(tc, raw_unknown_flag_is_protocol_error);
	tcase_add_test(tc, raw_buffer_refs_in_bounds_accepted);
	tcase_add_test(tc, raw_arena_ref_past_end_rejected);
	tcase_add_test(tc, raw_arena_ref_offset_overflow_rejected);
	tcase_add_test(tc, raw_arena_ref_without_arena_rejected);
	tcase_add_test(tc, raw_slot_ref_into_header_or_outputs_rejected);
	tcase_add_test(tc, raw_slot_ref_past_slot_end_rejected);
	tcase_add_test(tc, raw_unknown_where_rejected);
	tcase_add_test(tc, raw_reserved_nonzero_rejected);
	tcase_add_test(tc, raw_string_accepted_up_to_max);
	tcase_add_test(tc, raw_string_without_nul_rejected);
	tcase_add_test(tc, raw_string_longer_than_max_rejected);
	tcase_add_test(tc, raw_memcpy_ref_shorter_than_bytecount_rejected);
	tcase_add_test(tc, raw_image_truncated_by_ref_len_rejected);
	tcase_add_test(tc, raw_image_short_fatbin_header_rejected);
	tcase_add_test(tc, raw_reply_outputs_zeroed);
	tcase_add_test(tc, raw_kparams_len_must_match_layout);
	tcase_add_test(tc, raw_kparams_for_unlearned_function_rejected);

	tc = tcase(s, "client checks");
	tcase_add_test(tc, client_launch_extra_misuse_refused);
	tcase_add_test(tc, client_ctx_create_with_params_not_supported);
	tcase_add_test(tc, client_string_longer_than_max_refused);
	tcase_add_test(tc, client_module_file_read_by_the_caller);
	tcase_add_test(tc, client_launch_unlearned_function_not_supported);
	tcase_add_test(tc, client_large_buffer_staged_through_arena);
	tcase_add_test(tc, client_large_output_staged_and_copied_back);
	tcase_add_test(tc, client_arena_buffer_not_copied);
	tcase_add_test(tc, client_buffer_larger_than_arena_out_of_memory);
	tcase_add_test(tc, client_staged_arena_memory_released);
	tcase_add_test(tc, client_negative_size_invalid);
	tcase_add_test(tc, client_transport_errors_map_to_spec_codes);
	tcase_add_test(tc, client_malformed_reply_is_protocol_error);

	tc = tcase(s, "outputs");
	tcase_add_test(tc, out_null_pointer_passed_as_null);
	tcase_add_test(tc, out_not_written_when_vendor_fails);
	tcase_add_test(tc, out_learned_layout_returned_and_used_for_packing);
	tcase_add_test(tc, out_bad_layout_from_daemon_not_learned);

	tc = tcase(s, "hostile daemon");
	tcase_add_test(tc, hostile_oversized_layout_refused);
	tcase_add_test(tc, hostile_honest_layout_packs_the_image_layout);
	tcase_add_test(tc, hostile_device_name_terminated_in_callers_buffer);
	tcase_add_test(tc, hostile_process_count_clamped_to_capacity);
	tcase_add_test(tc, hostile_staged_output_never_returns_stale_bytes);
	tcase_add_test(tc, client_launch_with_explicit_buffer);

	tc = tcase(s, "module images");
	tcase_add_test(tc, image_cubin_layouts);
	tcase_add_test(tc, image_ptx_layouts);
	tcase_add_test(tc, image_fatbin_layouts);
	tcase_add_test(tc, image_truncated_never_read_past);
	tcase_add_test(tc, image_mutations_never_read_past);
	tcase_add_test(tc, image_ptx_malformed);
	tcase_add_test(tc, image_ptx_syntax);
	tcase_add_test(tc, image_cubin_records_checked);
	tcase_add_test(tc, image_headers_out_of_bounds);
	tcase_add_test(tc, image_compressed_entry_checked);
	tcase_add_test(tc, image_fatbin_conflict_is_unknown);
	tcase_set_timeout(tc, 120);

	tc = tcase(s, "layout cache");
	tcase_add_test(tc, layouts_bounded_by_the_images);
	tcase_add_test(tc, layouts_forgotten_when_the_daemon_goes);
	tcase_add_test(tc, hostile_tokens_of_other_objects_refused);

	tc = tcase(s, "resource cleanup");
	tcase_add_test(tc, cleanup_counts_live_resources);
	tcase_add_test(tc, cleanup_destroys_leftovers_newest_first);
	tcase_add_test(tc, cleanup_skips_resources_already_destroyed);
	tcase_add_test(tc, cleanup_function_not_destroyed_on_its_own);

	tc = tcase(s, "local answers");
	tcase_add_test(tc, local_error_name_without_round_trip);
	tcase_add_test(tc, local_error_string_nonempty);
	tcase_add_test(tc, local_unknown_error_code);
	tcase_add_test(tc, local_null_pstr_invalid);

	tc = tcase(s, "module image size");
	tcase_add_test(tc, image_size_fatbin);
	tcase_add_test(tc, image_size_fatbin_truncated);
	tcase_add_test(tc, image_size_fatbin_size_overflow);
	tcase_add_test(tc, image_size_elf64_sections);
	tcase_add_test(tc, image_size_elf64_truncated);
	tcase_add_test(tc, image_size_short_binary_header_not_ptx);
	tcase_add_test(tc, image_size_ptx);
	tcase_add_test(tc, image_size_ptx_without_nul);
	tcase_add_test(tc, image_size_reads_at_most_max);

	return s;
}
