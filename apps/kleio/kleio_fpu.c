// SPDX-License-Identifier: GPL-2.0
/*
 * kleio_fpu.c - Kleio's app code that touches floats outside the model
 * (kleio.c opens the FPU region around it: Kleio's .fpu is not set, see
 * kleio.c).  An FPU file, like kleio_cpu.c.
 */
#include "lake_app_fpu.h"
#include "kleio_cpu.h"

int kleio_fpu_format(const struct kleio_out *o, char *buf, size_t len)
{
	int n = snprintf(buf, len, "class %d p=", o->cls);

	return n + lake_app_fmt_float(buf + n, len - n, o->prob, 9);
}
