// SPDX-License-Identifier: GPL-2.0
// hello.cu - lake_hello.ko's GPU kernel.  nvcc builds it at build time
// into a fatbin (sm_80, sm_90 and compute_90 PTX) that apps/common/embed.py
// embeds in the module as hello_fatbin; the module loads it with
// cuModuleLoadData.  extern "C": found by its plain name.
extern "C" __global__ void lake_hello_vecadd(const unsigned int *a, const unsigned int *b,
					     unsigned int *c, unsigned int n)
{
	unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		c[i] = a[i] + b[i];
}
