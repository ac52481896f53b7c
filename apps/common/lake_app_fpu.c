// SPDX-License-Identifier: GPL-2.0
/*
 * lake_app_fpu.c - the kit's floating-point helpers (lake_app_fpu.h).  An
 * FPU file: built with the FPU flags (lake_app.kbuild, LakeApp.cmake) and
 * run only inside FPU regions.
 */
#include "lake_app_fpu.h"

int lake_app_fmt_float(char *buf, size_t len, float v, unsigned int decimals)
{
	double scale = 1.0, d;
	unsigned int i;

	if (decimals > 9)
		decimals = 9;
	for (i = 0; i < decimals; i++)
		scale *= 10.0;
	d = (double)v * scale;
	if (d != d)
		return snprintf(buf, len, "nan");
	if (d > 9e18 || d < -9e18)
		return snprintf(buf, len, "%s", d > 0 ? "inf" : "-inf");
	return lake_app_fmt_fixed(buf, len, (s64)(d + (d >= 0 ? 0.5 : -0.5)), decimals);
}

bool lake_app_cmp_float(struct lake_app_cmp *cmp, float cpu, float gpu, float tol)
{
	double c = cpu, g = gpu, d = c > g ? c - g : g - c, mag = c < 0 ? -c : c;
	bool nan_c = c != c, nan_g = g != g;
	bool ok = nan_c || nan_g ? nan_c == nan_g : d <= (double)tol * (mag > 1.0 ? mag : 1.0);
	u64 e9;

	if (nan_c || nan_g)
		return ok;
	e9 = d < 1e9 ? (u64)(d * 1e9 + 0.5) : U64_MAX;
	if (e9 > cmp->max_diff_e9)
		cmp->max_diff_e9 = e9;
	return ok;
}
