// SPDX-License-Identifier: GPL-2.0
// mllb.cu - MLLB's GPU path: one launch, a thread per row running
// mllb_row.h, the CPU path's own code (nvcc --fmad=false: each product and
// sum rounded once, as on the CPU), so the outputs match bit for bit.
// in: batch x 15 floats; out: batch x struct mllb_out; w: struct
// mllb_weights.  in and out may be device memory or mapped host memory;
// done, blocks, seq: the completion the host may poll (lake_app_signal()).
#include "lake_app_kernels.cuh"
#include "mllb.h"
#include "mllb_row.h"

extern "C" __global__ void __launch_bounds__(MLLB_THREADS)
mllb_infer(const float *in, struct mllb_out *out, unsigned int batch,
	   const struct mllb_weights *w, unsigned int *done, unsigned int *blocks,
	   unsigned int seq)
{
	__shared__ struct mllb_weights sw;
	__shared__ float sx[MLLB_THREADS * MLLB_FEATURES];
	const unsigned int t = threadIdx.x, row0 = blockIdx.x * MLLB_THREADS;
	const unsigned int nrows = min((unsigned int)MLLB_THREADS, batch - row0);
	const float *src = (const float *)w;
	float *dst = (float *)&sw;

	// Weights and the block's rows into shared memory, in coalesced loads.
	for (unsigned int i = t; i < sizeof(sw) / sizeof(float); i += MLLB_THREADS)
		dst[i] = src[i];
	for (unsigned int i = t; i < nrows * MLLB_FEATURES; i += MLLB_THREADS)
		sx[i] = in[(size_t)row0 * MLLB_FEATURES + i];
	__syncthreads();
	if (t < nrows) {
		float y = mllb_row(&sw, sx + t * MLLB_FEATURES);

		out[row0 + t].score = y;
		out[row0 + t].cls = y > 0.5f;
	}
	lake_app_signal(done, blocks, seq);	// every thread: it synchronises the block
}
