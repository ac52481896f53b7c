// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// cuda_emu.h - just enough of CUDA to run Kleio's and KNN's kernel sources
// on the CPU, for a unit test of their logic on a machine without a GPU:
// each block's threads are fibers (cuda_emu.cc) scheduled on one host
// thread; __syncthreads() and warp operations are barriers between them;
// __shared__ variables are statics, shared by the threads of the one block
// that runs at a time.  Not a GPU: it proves indexing, tiling,
// synchronisation and arithmetic order, never timing or the GPU's own
// behaviour (the gpu tests do that on a GPU).  A deadlock (a barrier that
// some threads never reach) aborts with the block's coordinates.
//
// Build a .cu with: g++ -std=c++20 -x c++ -include cuda_emu.h -ffp-contract=off
#ifndef CUDA_EMU_H
#define CUDA_EMU_H

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(x)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct __attribute__((aligned(16))) float4 {
	float x, y, z, w;
};

static inline float4 make_float4(float a, float b, float c, float d)
{
	return { a, b, c, d };
}

struct emu_dim3 {
	unsigned int x, y, z;
};

extern emu_dim3 threadIdx, blockIdx, blockDim, gridDim;
extern unsigned long long emu_xchg[1024];
void emu_wait_block();
void emu_wait_warp();

static inline void __syncthreads()
{
	emu_wait_block();
}

static inline void __syncwarp(unsigned int = 0xffffffffu)
{
	emu_wait_warp();
}

template <typename T> static inline T __shfl_xor_sync(unsigned int, T v, int off)
{
	unsigned int t = threadIdx.x, lane = t % 32;
	unsigned long long u = 0;
	T r;

	std::memcpy(&u, &v, sizeof(T));
	emu_xchg[t] = u;
	emu_wait_warp();
	u = emu_xchg[t - lane + (lane ^ off)];
	emu_wait_warp();
	std::memcpy(&r, &u, sizeof(T));
	return r;
}

// Rounded single operations (the host compiles with -ffp-contract=off).
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fmul_rn(float a, float b) { return a * b; }

static inline float __uint_as_float(unsigned int u)
{
	float f;

	std::memcpy(&f, &u, sizeof(f));
	return f;
}

using std::max;
using std::min;
static inline unsigned int min(unsigned int a, unsigned int b)
{
	return a < b ? a : b;
}

// Runs body() as every thread of every block of @grid, @threads per block.
void emu_launch(emu_dim3 grid, unsigned int threads, const std::function<void()> &body);

#endif
