/* SPDX-License-Identifier: GPL-2.0 OR MIT */
#ifndef LAKE_KTEST_H
#define LAKE_KTEST_H
/* Generated (lake_ktest_roundtrip.c): every remoted function; returns the
 * number of failures, counts the calls made. */
int lake_ktest_roundtrip(unsigned int *ncalls);
#endif
