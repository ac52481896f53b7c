/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * exp, tanh and the logistic sigmoid in float, for code that has no libm
 * (the kernel), and the very same functions on the GPU, so that Kleio's
 * GPU path computes the CPU path's floats bit for bit.  On the CPU include
 * only from files compiled with FPU flags and call only inside an FPU
 * region; on the GPU this relies on the kit's nvcc flags (--fmad=false,
 * IEEE division).  The polynomials are Cephes' (Moshier, Cephes Math
 * Library, expf.c and tanhf.c): relative error about 1e-7 over the whole
 * range, checked against numpy by the unit tests.
 */
#ifndef KLEIO_MATH_H
#define KLEIO_MATH_H

#ifdef __CUDACC__
#define KL_FN static __device__ __forceinline__
#else
#define KL_FN static inline
#ifdef __KERNEL__
#include <linux/string.h>
#else
#include <string.h>
#endif
#endif

KL_FN float kl_bits_float(unsigned int u)
{
#ifdef __CUDACC__
	return __uint_as_float(u);
#else
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
#endif
}

/* 2^e for e in [-126, 127], exactly. */
KL_FN float kl_pow2i(int e)
{
	return kl_bits_float((unsigned int)(e + 127) << 23);
}

/* e^x: e^x = 2^k e^r with k = round(x / ln 2), |r| <= ln 2 / 2. */
KL_FN float kl_expf(float x)
{
	float n, r, p;
	int k;

	if (x != x)
		return x;
	if (x > 88.72283905206835f)
		return kl_bits_float(0x7f800000u);	/* +inf */
	if (x < -103.972084f)
		return 0.0f;
	n = x * 1.44269504088896341f;
	k = (int)(n + (n >= 0.0f ? 0.5f : -0.5f));
	n = (float)k;
	/* ln 2 in two parts (Cody-Waite): n * 0.693359375 is exact. */
	r = x - n * 0.693359375f;
	r = r - n * -2.12194440e-4f;
	p = ((((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
		4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * (r * r)) +
	    r + 1.0f;
	/* k is in [-150, 128]: two exact factors, one rounding at the end. */
	return p * kl_pow2i(k / 2) * kl_pow2i(k - k / 2);
}

KL_FN float kl_tanhf(float x)
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
		y = 1.0f - 2.0f / (kl_expf(a + a) + 1.0f);
	return x < 0.0f ? -y : y;
}

KL_FN float kl_sigmoidf(float x)
{
	return 1.0f / (1.0f + kl_expf(-x));
}

#endif /* KLEIO_MATH_H */
