/* SPDX-License-Identifier: GPL-2.0 */
#ifndef LAKE_KTEST_H
#define LAKE_KTEST_H

/* Generated (lake_ktest_roundtrip.c): every remoted function, from kernel
 * context; returns the number of failures, counts the calls made. */
int lake_ktest_roundtrip(unsigned int *ncalls);
/* Set: failures are only counted, not logged (the fuzz load, where a
 * hostile daemon makes every call fail somehow). */
extern bool lake_ktest_quiet;

#endif /* LAKE_KTEST_H */
