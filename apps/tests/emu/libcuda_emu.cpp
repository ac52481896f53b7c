// SPDX-License-Identifier: GPL-2.0
// libcuda_emu.cpp - libcuda-emu, a TEST DOUBLE of libcuda.so.1 that runs
// the apps' own CUDA kernels (apps/*/*.cu, compiled here as C++) on the CPU,
// under an emulation of CUDA's thread model: a cooperative user-level
// thread per CUDA thread of a block, __syncthreads() a barrier,
// __shared__ memory one copy per block (blocks run one after another), warp
// shuffles through per-warp slots and barriers.  Device memory is host
// memory.  Everything is synchronous.  x86-64 only.
//
// It is NOT a GPU and proves nothing about one: it checks that the kernels'
// source (indexing, reductions, synchronisation) computes the CPU path's
// outputs, and lets the apps' GPU code paths (set-up, copies, mapped host
// memory, events, timing, auto mode) run where there is no GPU: the
// programs directly, lakeD (liblake's and the kernel modules' path), the
// test VM.  Only the functions the apps and lakeD use are here; the rest
// are absent (lakeD reports them as unsupported).  Its device name says
// TEST DOUBLE.
#include <cuda.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

// --- the CUDA thread model -------------------------------------------------
//
// Cooperative user-level threads, one per CUDA thread of a block, on one OS
// thread: a thread runs until it waits at a barrier (__syncthreads, or its
// warp's for a shuffle); a barrier opens when every live thread of the
// block (of the warp) has arrived.  Deterministic, and no system call per
// switch.

struct dim3 {
	unsigned int x = 1, y = 1, z = 1;
};

// Not static: the compiler must assume a context switch changes them.
dim3 threadIdx, blockIdx, blockDim, gridDim;

enum emu_state { EMU_RUN, EMU_WAIT_BLOCK, EMU_WAIT_WARP, EMU_DONE };

struct emu_thread {
	void *sp;
	emu_state state;
	unsigned int gen;
};

static const size_t EMU_STACK = 64 << 10;
static std::vector<emu_thread> emu_threads;
static std::vector<char> emu_stacks;
static void *emu_sched_sp;
static unsigned int emu_cur, emu_live, emu_block_arrived, emu_block_gen;
static unsigned int emu_warp_live[32], emu_warp_arrived[32], emu_warp_gen[32];
static uint64_t emu_warp_slot[32][32];
static const std::function<void()> *emu_body;

// Saves the callee-saved registers on the current stack, stores its stack
// pointer in *from and continues on the stack @to (x86-64 System V).
extern "C" void emu_switch(void **from, void *to);
asm(".text\n"
    ".globl emu_switch\n"
    ".type emu_switch, @function\n"
    "emu_switch:\n"
    "\tpushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\tpushq %r14\n\tpushq %r15\n"
    "\tmovq %rsp, (%rdi)\n"
    "\tmovq %rsi, %rsp\n"
    "\tpopq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\tpopq %rbx\n\tpopq %rbp\n"
    "\tret\n"
    ".size emu_switch, .-emu_switch\n");

static void emu_yield()
{
	emu_switch(&emu_threads[emu_cur].sp, emu_sched_sp);
}

static void emu_release_check()
{
	if (emu_live && emu_block_arrived == emu_live) {
		emu_block_gen++;
		emu_block_arrived = 0;
	}
	for (unsigned int w = 0; w < 32; w++)
		if (emu_warp_live[w] && emu_warp_arrived[w] == emu_warp_live[w]) {
			emu_warp_gen[w]++;
			emu_warp_arrived[w] = 0;
		}
}

static void __syncthreads()
{
	emu_thread &t = emu_threads[emu_cur];

	t.state = EMU_WAIT_BLOCK;
	t.gen = emu_block_gen;
	emu_block_arrived++;
	emu_release_check();
	emu_yield();
}

static void emu_warp_sync()
{
	emu_thread &t = emu_threads[emu_cur];
	unsigned int w = emu_cur / 32;

	t.state = EMU_WAIT_WARP;
	t.gen = emu_warp_gen[w];
	emu_warp_arrived[w]++;
	emu_release_check();
	emu_yield();
}

template <class T>
static T __shfl_down_sync(unsigned int, T v, int off)
{
	static_assert(sizeof(T) <= sizeof(uint64_t), "a shuffle moves at most 8 bytes");
	unsigned int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	uint64_t bits = 0;
	T r = v;

	memcpy(&bits, &v, sizeof(T));
	emu_warp_slot[warp][lane] = bits;
	emu_warp_sync();
	if (lane + off < 32)
		memcpy(&r, &emu_warp_slot[warp][lane + off], sizeof(T));
	emu_warp_sync();
	return r;
}

template <class T>
static T __shfl_xor_sync(unsigned int, T v, int mask)
{
	static_assert(sizeof(T) <= sizeof(uint64_t), "a shuffle moves at most 8 bytes");
	unsigned int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	uint64_t bits = 0;
	T r = v;

	memcpy(&bits, &v, sizeof(T));
	emu_warp_slot[warp][lane] = bits;
	emu_warp_sync();
	if ((lane ^ mask) < 32)
		memcpy(&r, &emu_warp_slot[warp][lane ^ mask], sizeof(T));
	emu_warp_sync();
	return r;
}

static void __syncwarp(unsigned int = 0xffffffffu)
{
	emu_warp_sync();
}

static void emu_trampoline()
{
	unsigned int me = emu_cur;

	(*emu_body)();
	emu_threads[me].state = EMU_DONE;
	emu_live--;
	emu_warp_live[me / 32]--;
	emu_release_check();
	emu_switch(&emu_threads[me].sp, emu_sched_sp);
	abort();	// never resumed
}

// Runs @body for every block of @grid, @block threads each, blocks one after
// another (their __shared__ memory is one copy: a static).
static void emu_run(dim3 grid, unsigned int block, const std::function<void()> &body)
{
	static std::mutex lock;		// one launch at a time
	std::lock_guard<std::mutex> g(lock);

	blockDim.x = block;
	gridDim = grid;
	emu_body = &body;
	emu_threads.assign(block, emu_thread{});
	emu_stacks.resize(block * EMU_STACK);
	for (unsigned int b = 0; b < grid.x * grid.y * grid.z; b++) {
		blockIdx.x = b % grid.x;
		blockIdx.y = b / grid.x % grid.y;
		blockIdx.z = b / grid.x / grid.y;
		emu_live = block;
		emu_block_arrived = emu_block_gen = 0;
		for (unsigned int w = 0; w < 32; w++) {
			emu_warp_live[w] = w * 32 < block ? std::min(32u, block - w * 32) : 0;
			emu_warp_arrived[w] = emu_warp_gen[w] = 0;
		}
		for (unsigned int t = 0; t < block; t++) {
			// A fresh stack whose switch-in "returns" into the trampoline,
			// with the alignment of a called function's entry.
			uintptr_t top = (uintptr_t)&emu_stacks[(t + 1) * EMU_STACK] & ~(uintptr_t)15;
			void **sp = (void **)top;

			*--sp = nullptr;			// the trampoline's return address
			*--sp = (void *)&emu_trampoline;
			for (int r = 0; r < 6; r++)
				*--sp = nullptr;		// rbp rbx r12 r13 r14 r15
			emu_threads[t] = { sp, EMU_RUN, 0 };
		}
		while (emu_live) {
			bool ran = false;

			for (unsigned int t = 0; t < block; t++) {
				emu_thread &th = emu_threads[t];

				if (th.state == EMU_WAIT_BLOCK && th.gen != emu_block_gen)
					th.state = EMU_RUN;
				if (th.state == EMU_WAIT_WARP && th.gen != emu_warp_gen[t / 32])
					th.state = EMU_RUN;
				if (th.state != EMU_RUN)
					continue;
				emu_cur = t;
				threadIdx.x = t;
				emu_switch(&emu_sched_sp, th.sp);
				ran = true;
			}
			if (!ran) {
				fprintf(stderr, "libcuda-emu: deadlock: block %u, %u threads wait at barriers that never open\n",
					b, emu_live);
				abort();
			}
		}
	}
}

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))

using std::min;

struct __attribute__((aligned(16))) float4 {
	float x, y, z, w;
};

static float4 make_float4(float x, float y, float z, float w)
{
	return { x, y, z, w };
}

// Each operation rounded once: this file is built with -ffp-contract=off.
static float __fadd_rn(float a, float b) { return a + b; }
static float __fsub_rn(float a, float b) { return a - b; }
static float __fmul_rn(float a, float b) { return a * b; }

// Blocks run one after another, on one OS thread: a fence orders nothing
// more than program order does, and an atomic is a plain read-modify-write.
static void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
static void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }

static unsigned int atomicAdd(unsigned int *p, unsigned int v)
{
	unsigned int old = *p;

	*p = old + v;
	return old;
}

static float __uint_as_float(unsigned int u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

// The apps' kernels: the very sources nvcc builds into their fatbins.
#define __CUDACC__ 1
#include "hello.cu"
#include "linnos.cu"
#include "mllb.cu"
#include "kml.cu"
#include "kleio_kernels.cu"
#include "knn_kernels.cu"
#undef __CUDACC__

// --- kernels by name, their parameters from their signatures ---------------

struct emu_fn {
	const char *name;
	std::vector<size_t> sizes;			// each parameter's size
	std::function<void(void **)> call;		// unpacks kernelParams
};

template <class... A, size_t... I>
static void emu_call(void (*k)(A...), void **p, std::index_sequence<I...>)
{
	k(*static_cast<A *>(p[I])...);
}

template <class... A>
static emu_fn emu_kernel(const char *name, void (*k)(A...))
{
	return { name, { sizeof(A)... },
		 [k](void **p) { emu_call(k, p, std::index_sequence_for<A...>{}); } };
}

#define EMU_KERNEL(k) emu_kernel(#k, k)

static std::vector<emu_fn> &emu_kernels()
{
	static std::vector<emu_fn> k = {
		EMU_KERNEL(lake_app_empty), EMU_KERNEL(lake_hello_vecadd),
		EMU_KERNEL(linnos_r1), EMU_KERNEL(linnos_r2), EMU_KERNEL(linnos_r4),
		EMU_KERNEL(linnos_r8), EMU_KERNEL(linnos_r1s4), EMU_KERNEL(linnos_r2s2),
		EMU_KERNEL(linnos_wide_first_r1), EMU_KERNEL(linnos_wide_first_r2),
		EMU_KERNEL(linnos_wide_first_r4), EMU_KERNEL(linnos_wide_next_r1),
		EMU_KERNEL(linnos_wide_next_r2), EMU_KERNEL(linnos_wide_next_r4),
		EMU_KERNEL(mllb_infer), EMU_KERNEL(kml_infer),
		EMU_KERNEL(kleio_prep), EMU_KERNEL(kleio_wave_64),
		EMU_KERNEL(kleio_wave_32), EMU_KERNEL(kleio_wave_16), EMU_KERNEL(kleio_out_16),
		EMU_KERNEL(kleio_out_4),
		EMU_KERNEL(knn_dist_64), EMU_KERNEL(knn_dist_32), EMU_KERNEL(knn_dist_16),
		EMU_KERNEL(knn_topk_32), EMU_KERNEL(knn_topk_64), EMU_KERNEL(knn_topk_128),
		EMU_KERNEL(knn_topk_256),
	};
	return k;
}

// --- the driver API subset ----------------------------------------------------

struct CUctx_st {
	int dummy;
};
struct CUmod_st {
	int dummy;
};
struct CUevent_st {
	double ms;
};

static CUctx_st emu_ctx;
static CUmod_st emu_mod;
static const char emu_name[] = "libcuda-emu TEST DOUBLE: the apps' kernels emulated on the CPU";

static double emu_now_ms()
{
	using namespace std::chrono;
	return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

extern "C" {

CUresult cuInit(unsigned int)
{
	return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *v)
{
	*v = 13000;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *n)
{
	*n = 1;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *d, int ordinal)
{
	if (ordinal)
		return CUDA_ERROR_INVALID_DEVICE;
	*d = 0;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice)
{
	if (len <= 0)
		return CUDA_ERROR_INVALID_VALUE;
	snprintf(name, len, "%s", emu_name);
	return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem(size_t *bytes, CUdevice)
{
	*bytes = (size_t)1 << 30;
	return CUDA_SUCCESS;
}

// Multiprocessors: 4, or LAKE_EMU_SMS (the apps size their grids by it, so
// a test picks which kernel variants its batch sizes reach).
CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice)
{
	const char *sms = getenv("LAKE_EMU_SMS");

	*v = 1;
	if (a == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
		*v = sms && atoi(sms) > 0 ? atoi(sms) : 4;
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice)
{
	*c = &emu_ctx;
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease(CUdevice)
{
	return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext)
{
	return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void)
{
	return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream)
{
	return CUDA_SUCCESS;
}

CUresult cuModuleLoadData(CUmodule *m, const void *image)
{
	if (!image)
		return CUDA_ERROR_INVALID_VALUE;
	*m = &emu_mod;
	return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule)
{
	return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction *f, CUmodule, const char *name)
{
	for (auto &k : emu_kernels())
		if (!strcmp(k.name, name)) {
			*f = reinterpret_cast<CUfunction>(&k);
			return CUDA_SUCCESS;
		}
	return CUDA_ERROR_NOT_FOUND;
}

CUresult cuFuncGetParamInfo(CUfunction f, size_t index, size_t *offset, size_t *size)
{
	auto *k = reinterpret_cast<emu_fn *>(f);
	size_t off = 0;

	if (!k || index >= k->sizes.size())
		return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i <= index; i++) {
		off = (off + k->sizes[i] - 1) / k->sizes[i] * k->sizes[i];	// natural alignment
		if (i < index)
			off += k->sizes[i];
	}
	*offset = off;
	*size = k->sizes[index];
	return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
			unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem,
			CUstream, void **params, void **extra)
{
	auto *k = reinterpret_cast<emu_fn *>(f);

	if (!k || extra || by != 1 || bz != 1 || !gx || !gy || !gz || !bx || bx > 1024 || shmem)
		return CUDA_ERROR_INVALID_VALUE;	// what the apps never do
	if (!k->sizes.empty() && !params)
		return CUDA_ERROR_INVALID_VALUE;
	dim3 grid;

	grid.x = gx;
	grid.y = gy;
	grid.z = gz;
	emu_run(grid, bx, [&] { k->call(params); });
	return CUDA_SUCCESS;
}

CUresult cuMemAlloc(CUdeviceptr *d, size_t n)
{
	void *p = aligned_alloc(256, (n + 255) / 256 * 256);

	if (!p)
		return CUDA_ERROR_OUT_OF_MEMORY;
	memset(p, 0xa5, n);	// device memory starts as garbage
	*d = (CUdeviceptr)(uintptr_t)p;
	return CUDA_SUCCESS;
}

CUresult cuMemFree(CUdeviceptr d)
{
	free((void *)(uintptr_t)d);
	return CUDA_SUCCESS;
}

CUresult cuMemsetD8(CUdeviceptr d, unsigned char v, size_t n)
{
	memset((void *)(uintptr_t)d, v, n);
	return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD(CUdeviceptr d, const void *h, size_t n)
{
	memcpy((void *)(uintptr_t)d, h, n);
	return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoH(void *h, CUdeviceptr d, size_t n)
{
	memcpy(h, (const void *)(uintptr_t)d, n);
	return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoDAsync(CUdeviceptr d, const void *h, size_t n, CUstream)
{
	return cuMemcpyHtoD(d, h, n);
}

CUresult cuMemcpyDtoHAsync(void *h, CUdeviceptr d, size_t n, CUstream)
{
	return cuMemcpyDtoH(h, d, n);
}

CUresult cuMemHostAlloc(void **p, size_t n, unsigned int)
{
	*p = aligned_alloc(4096, (n + 4095) / 4096 * 4096);
	return *p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult cuMemFreeHost(void *p)
{
	free(p);
	return CUDA_SUCCESS;
}

CUresult cuMemHostRegister(void *, size_t, unsigned int)
{
	return CUDA_SUCCESS;
}

CUresult cuMemHostUnregister(void *)
{
	return CUDA_SUCCESS;
}

// Mapped host memory: the host address is the device address here.
CUresult cuMemHostGetDevicePointer(CUdeviceptr *d, void *p, unsigned int flags)
{
	if (!p || flags)
		return CUDA_ERROR_INVALID_VALUE;
	*d = (CUdeviceptr)(uintptr_t)p;
	return CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent *e, unsigned int)
{
	*e = new CUevent_st{ 0 };
	return CUDA_SUCCESS;
}

CUresult cuEventDestroy(CUevent e)
{
	delete e;
	return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent e, CUstream)
{
	e->ms = emu_now_ms();
	return CUDA_SUCCESS;
}

CUresult cuEventSynchronize(CUevent)
{
	return CUDA_SUCCESS;
}

CUresult cuEventElapsedTime(float *ms, CUevent a, CUevent b)
{
	*ms = (float)(b->ms - a->ms);
	return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult r, const char **s)
{
	switch (r) {
	case CUDA_SUCCESS: *s = "CUDA_SUCCESS"; break;
	case CUDA_ERROR_INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; break;
	case CUDA_ERROR_OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; break;
	case CUDA_ERROR_NOT_FOUND: *s = "CUDA_ERROR_NOT_FOUND"; break;
	case CUDA_ERROR_INVALID_DEVICE: *s = "CUDA_ERROR_INVALID_DEVICE"; break;
	default: *s = "a CUresult libcuda-emu does not name"; return CUDA_ERROR_INVALID_VALUE;
	}
	return CUDA_SUCCESS;
}

CUresult cuGetErrorString(CUresult r, const char **s)
{
	return cuGetErrorName(r, s);
}

} // extern "C"
