// SPDX-License-Identifier: GPL-2.0
// kml.cu - KML's GPU path: one launch, KML_THREADS rows per block.  Every
// block loads the whole batch into shared memory (coalesced loads) and
// computes the batch's statistics itself: warp i sums feature i in
// kml_row.h's order (32 strided lane sums, then the shuffle-down tree), so
// each block's statistics are the CPU's bit for bit; then a thread per row
// runs kml_row.h's network, the CPU path's own code.
// in: batch x 5 floats; out: batch x struct kml_out; w: struct kml_weights.
// in and out may be device memory or mapped host memory; done, blocks, seq:
// the completion the host may poll (lake_app_signal()).
#include "lake_app_kernels.cuh"
#include "kml_row.h"

extern "C" __global__ void __launch_bounds__(KML_THREADS)
kml_infer(const float *in, struct kml_out *out, unsigned int batch, const struct kml_weights *w,
	  unsigned int *done, unsigned int *blocks, unsigned int seq)
{
	__shared__ struct kml_weights sw;
	__shared__ float sx[KML_MAX_BATCH * KML_FEATURES];
	__shared__ float mean[KML_FEATURES], stdv[KML_FEATURES];
	const unsigned int t = threadIdx.x, nt = blockDim.x, lane = t & 31, warp = t >> 5;
	const float *src = (const float *)w;
	float *dst = (float *)&sw;

	if (batch > KML_MAX_BATCH || nt != KML_THREADS)
		return;		// the host never launches these
	for (unsigned int i = t; i < sizeof(sw) / sizeof(float); i += nt)
		dst[i] = src[i];
	for (unsigned int i = t; i < batch * KML_FEATURES; i += nt)
		sx[i] = in[i];
	__syncthreads();

	if (warp < KML_FEATURES) {
		float s = 0.0f, q = 0.0f;

		for (unsigned int j = lane; j < batch; j += KML_LANES) {
			float v = sx[j * KML_FEATURES + warp], d = 0.0f - v;

			s = s + v;
			q = q + d * d;
		}
		for (int off = KML_LANES / 2; off; off >>= 1) {
			s = s + __shfl_down_sync(0xffffffffu, s, off);
			q = q + __shfl_down_sync(0xffffffffu, q, off);
		}
		if (!lane)
			kml_norm(&sw, warp, s, q, batch, &mean[warp], &stdv[warp]);
	}
	__syncthreads();

	const unsigned int r = blockIdx.x * KML_THREADS + t;

	if (r < batch) {
		struct kml_out o;

		kml_row(&sw, sx + r * KML_FEATURES, mean, stdv, &o);
		out[r] = o;
	}
	lake_app_signal(done, blocks, seq);	// every thread: it synchronises the block
}
