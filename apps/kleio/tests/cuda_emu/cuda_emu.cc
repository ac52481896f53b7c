// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// cuda_emu.cc - the fibers behind cuda_emu.h: a block's threads run one at a
// time, each until it waits at a barrier or ends; a barrier opens when
// every thread of the block (or warp) that has not ended waits at it.
#include "cuda_emu.h"

#include <cstdio>
#include <cstdlib>
#include <ucontext.h>
#include <vector>

emu_dim3 threadIdx, blockIdx, blockDim, gridDim;
unsigned long long emu_xchg[1024];

namespace {
enum { READY, WAIT_BLOCK, WAIT_WARP, DONE };
constexpr size_t STACK = 256 * 1024;
ucontext_t sched;
std::vector<ucontext_t> ctx;
std::vector<int> state;
std::vector<char> stacks;
const std::function<void()> *body_fn;

void fiber(int t)
{
	(*body_fn)();
	state[t] = DONE;
	swapcontext(&ctx[t], &sched);
}

void wait_at(int s)
{
	int t = threadIdx.x;

	state[t] = s;
	swapcontext(&ctx[t], &sched);
}

// Opens the barriers whose every live participant waits; true if one opened.
bool release(unsigned int n)
{
	bool block = true, any = false;

	for (unsigned int t = 0; t < n; t++)
		if (state[t] != DONE && state[t] != WAIT_BLOCK)
			block = false;
	for (unsigned int t = 0; block && t < n; t++)
		if (state[t] == WAIT_BLOCK)
			state[t] = READY, any = true;
	for (unsigned int w = 0; w < (n + 31) / 32; w++) {
		unsigned int end = std::min(n, w * 32 + 32);
		bool all = true, waiting = false;

		for (unsigned int t = w * 32; t < end; t++) {
			waiting |= state[t] == WAIT_WARP;
			all &= state[t] == WAIT_WARP || state[t] == DONE;
		}
		for (unsigned int t = w * 32; all && waiting && t < end; t++)
			if (state[t] == WAIT_WARP)
				state[t] = READY, any = true;
	}
	return any;
}
} // namespace

void emu_wait_block()
{
	wait_at(WAIT_BLOCK);
}

void emu_wait_warp()
{
	wait_at(WAIT_WARP);
}

void emu_launch(emu_dim3 grid, unsigned int n, const std::function<void()> &body)
{
	body_fn = &body;
	blockDim = { n, 1, 1 };
	gridDim = grid;
	ctx.resize(n);
	state.assign(n, READY);
	stacks.resize(n * STACK);
	for (unsigned int z = 0; z < grid.z; z++)
		for (unsigned int y = 0; y < grid.y; y++)
			for (unsigned int x = 0; x < grid.x; x++) {
				blockIdx = { x, y, z };
				for (unsigned int t = 0; t < n; t++) {
					getcontext(&ctx[t]);
					ctx[t].uc_stack.ss_sp = &stacks[t * STACK];
					ctx[t].uc_stack.ss_size = STACK;
					ctx[t].uc_link = nullptr;
					makecontext(&ctx[t], (void (*)())fiber, 1, (int)t);
					state[t] = READY;
				}
				for (;;) {
					bool ran = false, alive = false;

					for (unsigned int t = 0; t < n; t++) {
						if (state[t] != READY)
							continue;
						ran = true;
						threadIdx = { t, 0, 0 };
						swapcontext(&sched, &ctx[t]);
					}
					for (unsigned int t = 0; t < n; t++)
						alive |= state[t] != DONE;
					if (!alive)
						break;
					if (!release(n) && !ran) {
						fprintf(stderr, "cuda_emu: deadlock in block (%u, %u, %u)\n", x,
							y, z);
						abort();
					}
				}
			}
}
