/* SPDX-License-Identifier: GPL-2.0 */
/* mllb_fpu.h - MLLB's FPU-file callbacks (mllb_fpu.c): no floats in their signatures. */
#ifndef MLLB_FPU_H
#define MLLB_FPU_H

#include "lake_app.h"

void mllb_cpu_rows(struct lake_app *a, const void *in, void *out, unsigned int r0,
		   unsigned int r1, unsigned int batch);
void mllb_fixed_input(struct lake_app *a, void *in, unsigned int batch);
void mllb_random_input(struct lake_app *a, void *in, unsigned int batch, u64 *seed);
void mllb_compare(struct lake_app *a, const void *cpu, const void *gpu, unsigned int batch,
		  struct lake_app_cmp *cmp);
int mllb_format_row(struct lake_app *a, const void *out, unsigned int r, char *buf, size_t len);

#endif /* MLLB_FPU_H */
