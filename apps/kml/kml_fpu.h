/* SPDX-License-Identifier: GPL-2.0 */
/* kml_fpu.h - KML's FPU-file callbacks (kml_fpu.c): no floats in their signatures. */
#ifndef KML_FPU_H
#define KML_FPU_H

#include "lake_app.h"

void kml_cpu_prepare(struct lake_app *a, const void *in, unsigned int batch);
void kml_cpu_rows(struct lake_app *a, const void *in, void *out, unsigned int r0,
		  unsigned int r1, unsigned int batch);
void kml_fixed_input(struct lake_app *a, void *in, unsigned int batch);
void kml_random_input(struct lake_app *a, void *in, unsigned int batch, u64 *seed);
void kml_compare(struct lake_app *a, const void *cpu, const void *gpu, unsigned int batch,
		 struct lake_app_cmp *cmp);
int kml_format_row(struct lake_app *a, const void *out, unsigned int r, char *buf, size_t len);

#endif /* KML_FPU_H */
