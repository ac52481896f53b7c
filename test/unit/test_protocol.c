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

/* A NUL-terminated PTX image (what cuModuleLoadData gets as text). */
static const char test_ptx[] = "// LAKE protocol test\n.version 8.0\n.target sm_80\n";

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

/* cuMemcpyHtoD(0xD000, <ref>, count) */
static struct lake_args_cuMemcpyHtoD *raw_htod(__u32 where, __u64 off, __u64 len, __u64 count)
{
	struct lake_args_cuMemcpyHtoD *a = raw_args();

	raw_begin(LAKE_API_cuMemcpyHtoD, LAKE_ARGS_MAX);
	a->dstDevice = 0xD000;
	raw_ref(&a->srcHost, where, off, len);
	a->ByteCount = count;
	return a;
}

static void assert_raw_invalid(void)
{
	ck_assert_int_eq(raw_process(), CUDA_ERROR_INVALID_VALUE);
	assert_fake_not_called();
}

/* cuModuleLoad(&module, <string in the slot tail>) with @len bytes of @s. */
static void raw_module_load(const char *s, __u64 len)
{
	struct lake_args_cuModuleLoad *a = raw_args();

	raw_begin(LAKE_API_cuModuleLoad, LAKE_ARGS_MAX);
	raw_hdr()->present = 1;
	memcpy(raw_slot + RAW_TAIL, s, len);
	raw_ref(&a->fname, LAKE_BUF_SLOT, RAW_TAIL, len);
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
	ck_assert_int_eq(cuMemcpyHtoDAsync(0xD000, src, 64, NULL), CUDA_ERROR_LAUNCH_FAILED);
	lake_fake_result = 0;
	ck_assert_int_eq(cuCtxSynchronize(), CUDA_SUCCESS);
}
END_TEST

START_TEST(sticky_staged_async_copy_syncs_its_stream)
{
	void *src = lake_test_buffer(0, 64, true, 1);
	CUstream s = test_stream(0x5100);

	lake_fake_reset();
	ck_assert_int_eq(cuMemcpyHtoDAsync(0xD000, src, 64, s), CUDA_SUCCESS);
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
	ck_assert_int_eq(cuMemcpyHtoDAsync(0xD000, src, 64, NULL), CUDA_SUCCESS);
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
	ck_assert_int_eq(cuModuleGetFunction(&f, m, "kern"), CUDA_SUCCESS);
	lake_fake_reset();
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_SUCCESS);
	ck_assert_ptr_nonnull(lake_fake_find("cuLaunchKernel"));
	ck_assert_int_eq(cuModuleUnload(m), CUDA_SUCCESS);

	/* The client forgot the function's layout: refused before sending. */
	start_counting();
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_ERROR_INVALID_HANDLE);
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
	ck_assert_uint_eq(o->dptr, lake_fake_out(LAKE_API_cuMemAlloc, 0));
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
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	ck_assert_ptr_eq(lake_fake_find("cuMemcpyHtoD")->ptr[1], raw_slot + LAKE_SLOT_SIZE - 16);
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
	static char path[4096];
	const struct lake_fake_record *rec;

	raw_module_load("kernel.cubin", 13);
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	rec = lake_fake_find("cuModuleLoad");
	ck_assert_str_eq((const char *)rec->data[1], "kernel.cubin");
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = 0;
	raw_module_load(path, sizeof(path));
	ck_assert_int_eq(raw_process(), CUDA_SUCCESS);
	ck_assert_uint_eq(lake_fake_find("cuModuleLoad")->len[1], sizeof(path));
}
END_TEST

START_TEST(raw_string_without_nul_rejected)
{
	/* The byte after the ref is a NUL: lakeD must not look past len. */
	raw_module_load("aaaaaaaaaaaaaaaa", 16);
	assert_raw_invalid();
	raw_module_load("", 0);
	assert_raw_invalid();
}
END_TEST

START_TEST(raw_string_longer_than_max_rejected)
{
	static char path[5000];
	struct lake_args_cuModuleLoad *a;
	char *in_arena = lake_test_buffer(1, sizeof(path), false, 0);

	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = 0;
	raw_module_load(path, sizeof(path));
	assert_raw_invalid();
	/* NUL within max, but the ref claims more than max bytes. */
	path[10] = 0;
	raw_module_load(path, sizeof(path));
	assert_raw_invalid();
	path[10] = 'p';
	memcpy(in_arena, path, sizeof(path));
	raw_module_load("", 0);
	a = raw_args();
	raw_ref(&a->fname, LAKE_BUF_ARENA, (__u64)(in_arena - (char *)lake_test_arena()),
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
	a->srcDevice = 0xD000;
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

START_TEST(client_launch_with_extra_not_supported)
{
	CUfunction f = test_function(0xF100);
	void *extra[] = { NULL };

	start_counting();
	slot_snapshot();
	ck_assert_int_eq(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, kparams, extra),
			 CUDA_ERROR_NOT_SUPPORTED);
	assert_nothing_sent();
	assert_slot_untouched();
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
	char *path = lake_test_buffer(0, 5001, false, 0);
	CUmodule m = (CUmodule)(uintptr_t)0x5e47;

	memset(path, 'p', 5000);
	start_counting();
	ck_assert_int_eq(cuModuleLoad(&m, path), CUDA_ERROR_INVALID_VALUE);
	assert_nothing_sent();
	ck_assert_ptr_eq(m, (CUmodule)(uintptr_t)0x5e47);
	/* max is 4096 bytes with the NUL: 4096 characters are one too many. */
	path[4096] = 0;
	ck_assert_int_eq(cuModuleLoad(&m, path), CUDA_ERROR_INVALID_VALUE);
	assert_nothing_sent();
	path[4095] = 0;
	ck_assert_int_eq(cuModuleLoad(&m, path), CUDA_SUCCESS);
	ck_assert_uint_eq(commands_seen, 1);
	ck_assert_uint_eq(lake_fake_find("cuModuleLoad")->len[1], 4096);
}
END_TEST

START_TEST(client_launch_unlearned_function_bad_handle)
{
	CUfunction g = (CUfunction)(uintptr_t)lake_test_handle(LAKE_RT_CUfunction, 0xF200);

	start_counting();
	ck_assert_int_eq(launch(g, NULL, kparams), CUDA_ERROR_INVALID_HANDLE);
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
	ck_assert_int_eq(cuMemcpyHtoD(0xD000, src, n), CUDA_SUCCESS);
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

	ck_assert_int_eq(cuMemcpyDtoH(dst, 0xD000, n), CUDA_SUCCESS);
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
	ck_assert_int_eq(cuMemcpyHtoD(0xD000, src, 64 * 1024), CUDA_SUCCESS);
	ck_assert_ptr_eq(lake_fake_find("cuMemcpyHtoD")->ptr[1], src);
	ck_assert_uint_eq(lake_test_arena_allocs(), 0);
}
END_TEST

START_TEST(client_buffer_larger_than_arena_out_of_memory)
{
	const __u64 n = LAKE_TEST_ARENA_SIZE + 1ull;
	void *src = lake_test_buffer(0, n, true, 5);

	start_counting();
	ck_assert_int_eq(cuMemcpyHtoD(0xD000, src, n), CUDA_ERROR_OUT_OF_MEMORY);
	assert_nothing_sent();
}
END_TEST

START_TEST(client_staged_arena_memory_released)
{
	const __u64 n = 64 * 1024;
	void *src = lake_test_buffer(0, n, true, 3);

	ck_assert_int_eq(cuMemcpyHtoD(0xD000, src, n), CUDA_SUCCESS);
	lake_fake_result = CUDA_ERROR_ILLEGAL_ADDRESS;
	ck_assert_int_eq(cuMemcpyHtoD(0xD000, src, n), CUDA_ERROR_ILLEGAL_ADDRESS);
	lake_fake_result = 0;
	lake_test_fail_submit(LAKE_E_UNAVAILABLE);
	ck_assert_int_eq(cuMemcpyHtoD(0xD000, src, n), CUDA_ERROR_DEVICE_UNAVAILABLE);
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
		ck_assert_int_eq(cuMemcpyDtoH(dst, 0xD000, sizeof(dst)), CUDA_ERROR_UNKNOWN);
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
	ck_assert_int_eq(cuMemcpyDtoH(dst, 0xD000, sizeof(dst)), CUDA_ERROR_INVALID_CONTEXT);
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
	ck_assert_int_eq(cuModuleGetFunction(&f, m, "kern"), CUDA_SUCCESS);
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

/* The client checks a layout before trusting it to pack parameters. */
START_TEST(out_bad_layout_from_daemon_not_learned)
{
	CUmodule m = NULL;
	CUfunction f = NULL;

	ck_assert_int_eq(cuModuleLoadData(&m, test_ptx), CUDA_SUCCESS);
	lake_test_set_reply_hook(corrupt_layout);
	ck_assert_int_eq(cuModuleGetFunction(&f, m, "kern"), CUDA_SUCCESS);
	ck_assert_ptr_nonnull(f);
	start_counting();
	ck_assert_int_eq(launch(f, NULL, kparams), CUDA_ERROR_INVALID_HANDLE);
	assert_nothing_sent();
}
END_TEST

/* ---- 6. resource cleanup ------------------------------------------------ */


/* Five owned resources.  The fake's cuMemAlloc returns the same pointer on
 * every call, so the second allocation comes from cuMemAllocPitch. */
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
	ck_assert_int_eq(cuModuleGetFunction(&f, m, "kern"), CUDA_SUCCESS);
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
	tcase_add_test(tc, client_launch_with_extra_not_supported);
	tcase_add_test(tc, client_ctx_create_with_params_not_supported);
	tcase_add_test(tc, client_string_longer_than_max_refused);
	tcase_add_test(tc, client_launch_unlearned_function_bad_handle);
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
