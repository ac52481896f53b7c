// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Hand-written protocol tests: placeholder filled below. */
#include <check.h>
#include "lake_test_support.h"

Suite *lake_protocol_suite(void)
{
	return suite_create("protocol");
}
