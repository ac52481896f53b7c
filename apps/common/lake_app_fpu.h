/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lake_app_fpu.h - the kit's helpers for FPU files (only they may include
 * this: its functions take floats).  Call them inside FPU regions, i.e.
 * from the models' (FPU) callbacks.
 */
#ifndef LAKE_APP_FPU_H
#define LAKE_APP_FPU_H

#include "lake_app.h"

/* @v as text with @decimals (0-9) decimals: the kernel's printf has no %f. */
int lake_app_fmt_float(char *buf, size_t len, float v, unsigned int decimals);

/*
 * Compares one GPU value @gpu with the CPU's @cpu: true when within
 * tolerance, |cpu - gpu| <= @tol * max(1, |cpu|) (NaN only matches NaN).
 * Records the largest difference in @cmp; the caller counts the rows
 * beyond tolerance.
 */
bool lake_app_cmp_float(struct lake_app_cmp *cmp, float cpu, float gpu, float tol);

#endif /* LAKE_APP_FPU_H */
