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

// True in every thread of the one block of the launch that is the last to
// call it: each block counts itself in *@count (device memory, 0 before the
// launch; the last block sets it back to 0) after a fence, so the last block
// sees every other block's writes made before its call (read them with
// volatile or __ldcg loads: not through L1).  No block waits for another:
// there is no grid-wide barrier, so any number of blocks is safe.  Every
// thread of every block must call it (it has a __syncthreads).
__device__ __forceinline__ bool lake_app_last_block(unsigned int *count, unsigned int nblocks)
{
	__shared__ bool lake_app_is_last;

	__threadfence();
	__syncthreads();
	if (threadIdx.x == 0) {
		lake_app_is_last = nblocks == 1 || atomicAdd(count, 1u) == nblocks - 1;
		if (lake_app_is_last && nblocks > 1)
			*(volatile unsigned int *)count = 0;
	}
	__syncthreads();
	return lake_app_is_last;
}

// The completion of an inference, for a host that polls host memory instead
// of synchronising (the kit's "poll" transfers): the last block of the
// launch to finish stores @seq in *@done (mapped host memory), after every
// block's writes are visible to the host.  @blocks: the kit's counter in
// device memory.  @done == NULL: the host synchronises; nothing to do.
// The inference's last kernel calls it in every thread, after its last write.
__device__ __forceinline__ void lake_app_signal(unsigned int *done, unsigned int *blocks,
						unsigned int seq)
{
	if (!done)
		return;
	__threadfence_system();		// this thread's outputs, to the host first
	if (lake_app_last_block(blocks, gridDim.x * gridDim.y * gridDim.z) && threadIdx.x == 0) {
		__threadfence_system();
		*(volatile unsigned int *)done = seq;
	}
}

// The completion of an inference whose outputs one block writes alone (the
// block that lake_app_last_block() chose, say): every thread of that block
// calls it after its last write; the other blocks need not.  @done == NULL:
// the host synchronises; nothing to do.
__device__ __forceinline__ void lake_app_signal_block(unsigned int *done, unsigned int seq)
{
	if (!done)
		return;
	__threadfence_system();		// this thread's outputs, to the host first
	__syncthreads();
	if (threadIdx.x == 0) {
		__threadfence_system();
		*(volatile unsigned int *)done = seq;
	}
}

// The floor: an empty launch + cuCtxSynchronize.
extern "C" __global__ void lake_app_empty(void)
{
}

#endif
