// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Kernels with varied parameter lists, built by nvcc into a cubin, PTX and
 * fatbins (plain and compressed) for the image parser tests: 64-bit
 * pointers, every scalar width, structs with padding and over-alignment, a
 * large struct, many parameters, none, a C++ (mangled) name, and one too
 * large for LAKE to pack.
 */
#include "kp_types.h"

extern "C" __global__ void kp_vecadd(const float *a, const float *b, float *c, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		c[i] = a[i] + b[i];
}

extern "C" __global__ void kp_mixed(char c, short s, int i, long long l, float f, double d, void *p)
{
	if (p)
		*(double *)p = c + s + i + l + f + d;
}

extern "C" __global__ void kp_structs(struct kp_s3 s, struct kp_a16 a, int tail)
{
	if (tail == 7)
		*(volatile float *)0 = s.d + a.w;
}

extern "C" __global__ void kp_noparams(void)
{
}

__global__ void kp_mangled(int *x, float y)
{
	if (x)
		*x = (int)y;
}

extern "C" __global__ void kp_many(int a0, int a1, int a2, int a3, int a4, int a5, int a6, int a7,
				   int a8, int a9, int a10, int a11, int a12, int a13, int a14,
				   int a15, int a16, int a17, int a18, int a19, char z, double q)
{
}

extern "C" __global__ void kp_big(struct kp_big big, char after)
{
}

extern "C" __global__ void kp_char_double(char c, double d)
{
}

extern "C" __global__ void kp_huge(struct kp_huge h, int after)
{
}
