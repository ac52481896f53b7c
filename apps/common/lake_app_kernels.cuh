// SPDX-License-Identifier: GPL-2.0
// lake_app_kernels.cuh - the kit's own GPU kernels, compiled into every
// app's fatbin: each app's .cu includes this file once.
//
// GPU code rules for apps: kernels are extern "C" (found by name, their
// parameter layouts learned from the image) with plain parameters
// (pointers as CUdeviceptr-sized values, integers); one launch per
// inference where possible; no allocation; the same arithmetic, in the
// same order, as the CPU path (nvcc runs with --fmad=false and IEEE
// division and square root, so float results can match bit for bit).
#ifndef LAKE_APP_KERNELS_CUH
#define LAKE_APP_KERNELS_CUH

// N consecutive floats of shared memory into registers: 16-byte loads where
// N is a multiple of 4 (then @src must be 16-byte aligned), else one by one.
template <int N>
__device__ __forceinline__ void lake_app_load_floats(float (&dst)[N], const float *src)
{
	if constexpr (N % 4 == 0) {
#pragma unroll
		for (int i = 0; i < N; i += 4) {
			float4 v = *(const float4 *)&src[i];

			dst[i] = v.x;
			dst[i + 1] = v.y;
			dst[i + 2] = v.z;
			dst[i + 3] = v.w;
		}
	} else {
#pragma unroll
		for (int i = 0; i < N; i++)
			dst[i] = src[i];
	}
}

// The floor: an empty launch + cuCtxSynchronize.
extern "C" __global__ void lake_app_empty(void)
{
}

#endif
