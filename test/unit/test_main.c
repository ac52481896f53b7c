// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * libcheck runner for the protocol unit tests: the generated round trip of
 * every function plus the hand-written suites below it.
 */
#include <check.h>
#include <stdlib.h>
#include "lake_test_support.h"

Suite *lake_protocol_suite(void);

int main(void)
{
	SRunner *sr = srunner_create(lake_roundtrip_suite());
	int failed;

	srunner_add_suite(sr, lake_protocol_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
