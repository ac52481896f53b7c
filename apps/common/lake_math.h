/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lake_math.h - single-precision functions for FPU files and GPU kernels,
 * one definition for both, so that CPU and GPU compute the same bits.
 * The kernel has no libm: exp is computed here; sqrt is the IEEE square
 * root on both sides (the sqrtss instruction, sqrtf with -prec-sqrt=true).  Only + - * /, comparisons and float<->int
 * conversions, each rounded once (no FMA: -ffp-contract=off, --fmad=false).
 */
#ifndef LAKE_MATH_H
#define LAKE_MATH_H

#ifdef __CUDACC__
#define LAKE_MATH_FN static __device__ __forceinline__
#define LAKE_UNROLL _Pragma("unroll")	/* small fixed loops: arrays stay in registers */
#define lake_sqrtf(x) sqrtf(x)
#else
#define LAKE_MATH_FN static inline
#define LAKE_UNROLL
#endif

#ifndef __CUDACC__
/* The IEEE square root: the sqrtss instruction (the kernel has no libm). */
LAKE_MATH_FN float lake_sqrtf(float x)
{
#if defined(__x86_64__) || defined(__i386__)
	float r;

	asm("sqrtss %1, %0" : "=x"(r) : "x"(x));
	return r;
#else
	return __builtin_sqrtf(x);
#endif
}
#endif

union lake_f32 {
	float f;
	unsigned int u;
};

/* 2^k as a float, for -126 <= k <= 127. */
LAKE_MATH_FN float lake_pow2i(int k)
{
	union lake_f32 v;

	v.u = (unsigned int)(k + 127) << 23;
	return v.f;
}

/*
 * e^x: x = k ln2 + r (Cody-Waite, |r| <= ln2/2), e^r by its Taylor series
 * to degree 7 (error < 1e-8 relative), times 2^k.  Within 2 ulp of the
 * true value; 0 below -104, +inf above 88.72, NaN for NaN.
 */
LAKE_MATH_FN float lake_expf(float x)
{
	union lake_f32 inf;
	float t, kf, r, p;
	int k;

	if (x != x)
		return x;
	if (x < -104.0f)
		return 0.0f;
	if (x > 88.72f) {
		inf.u = 0x7f800000u;
		return inf.f;
	}
	t = x * 1.44269504f;			/* log2(e) */
	k = (int)(t + (t >= 0.0f ? 0.5f : -0.5f));
	kf = (float)k;
	r = x - kf * 0.693145751953125f;	/* ln2, high bits: kf * it is exact */
	r = r - kf * 1.428606765330187e-06f;	/* ln2, low bits */
	p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666667f + r * (0.0416666667f +
		r * (0.00833333333f + r * (0.00138888889f + r * 0.000198412698f))))));
	if (k < -126)
		return p * lake_pow2i(k + 64) * 5.42101086e-20f;	/* 2^-64 */
	if (k > 127)
		return p * lake_pow2i(k - 1) * 2.0f;
	return p * lake_pow2i(k);
}

/* The logistic function 1 / (1 + e^-x). */
LAKE_MATH_FN float lake_sigmoidf(float x)
{
	return 1.0f / (1.0f + lake_expf(-x));
}

#endif /* LAKE_MATH_H */
