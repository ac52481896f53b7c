/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Unit-test support: an in-process loopback transport that hands each command
 * slot straight to lakeD's server core, backed by the recording TEST DOUBLE
 * of the vendor libraries (lake_fake.c).  Transport tests only.
 */
#ifndef LAKE_TEST_SUPPORT_H
#define LAKE_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include "lake_call.h"
#include "lake_server.h"
#include "lake_fake.h"

#define LAKE_TEST_ARENA_SIZE	(1u << 20)
/* A device range every test client may use (not freed at cleanup, like a
 * module global): tests copy to and from it without allocating. */
#define LAKE_TEST_DPTR		0x40000000ull
#define LAKE_TEST_DPTR_SIZE	(64ull << 20)

void lake_test_setup(void);
void lake_test_teardown(void);

struct lake_srv_conn *lake_test_conn(void);
/* Frees the connection (lakeD's cleanup of a departed client: the fake
 * destroy calls) and opens a fresh one on the same arena. */
void lake_test_reconnect(void);
/* The sticky-error domain the loopback reports (1 after setup). */
void lake_test_set_client(__u32 client);
/* Make submit fail with a LAKE_E_* status before reaching lakeD (0: don't). */
void lake_test_fail_submit(int status);
/* Called on the slot after lakeD replied, to corrupt the reply (NULL: none). */
void lake_test_set_reply_hook(void (*hook)(__u8 *slot));
/* Serves commands with @server instead of lakeD's server core (NULL: the
 * real one): a hostile daemon that writes whatever it likes. */
void lake_test_set_server(void (*server)(__u8 *slot));
/* Staging allocations and frees made through the transport's arena ops
 * (lake_test_buffer() arena memory is not counted). */
unsigned int lake_test_arena_allocs(void);
unsigned int lake_test_arena_frees(void);
struct lake_transport *lake_test_transport(void);
__u8 *lake_test_slot(void);
void *lake_test_arena(void);

/* Plain memory (variant 0) or arena memory (variant 1), filled with the
 * pattern for @param when @fill; freed at teardown. */
void *lake_test_buffer(int variant, __u64 n, bool fill, unsigned int param);
bool lake_test_pattern_ok(const __u8 *p, __u64 n, unsigned int param);
/* The test PTX image (LAKE_TEST_PTX), in plain or arena memory. */
void *lake_test_image(int variant);
/* The path of a file holding the test image (without a NUL, as on disk). */
const char *lake_test_image_file(void);

/* Registers @real as a resource of the test client and returns its token. */
__u64 lake_test_handle(unsigned int type, __u64 real);
/* Same, as one the client made (so that it may destroy it). */
__u64 lake_test_owned_handle(unsigned int type, __u64 real);
/* Same, for a function: bound to the kernel of a loaded test image, whose
 * layout the client read from it (and lakeD's agrees). */
__u64 lake_test_function(unsigned int type, __u64 real);
void lake_test_res(unsigned int type, __u64 value);
/* The vendor pointer behind @token, 0 if the token is not valid. */
__u64 lake_test_real(unsigned int type, __u64 token);
__u64 lake_test_bits(double v, bool is_float);

Suite *lake_roundtrip_suite(void);

#endif /* LAKE_TEST_SUPPORT_H */
