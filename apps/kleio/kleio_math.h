/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * tanh for Kleio's LSTM cells, on the CPU (FPU files) and the GPU alike, on
 * the kit's lake_expf() (apps/common/lake_math.h): one definition, the same
 * bits on both sides.  Cephes' tanhf (Moshier, Cephes Math Library): an odd
 * polynomial below 0.625, 1 - 2 / (e^2x + 1) above; relative error ~1e-7,
 * checked against numpy by the unit tests.
 */
#ifndef KLEIO_MATH_H
#define KLEIO_MATH_H

#include "lake_math.h"

LAKE_MATH_FN float kleio_tanhf(float x)
{
	float a = x < 0.0f ? -x : x;
	float z, y;

	if (x != x)
		return x;
	if (a < 0.625f) {
		z = x * x;
		return ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) *
			 z + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
	}
	if (a > 44.0f)
		y = 1.0f;
	else
		y = 1.0f - 2.0f / (lake_expf(a + a) + 1.0f);
	return x < 0.0f ? -y : y;
}

#endif /* KLEIO_MATH_H */
