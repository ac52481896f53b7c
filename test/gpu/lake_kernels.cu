// GPU kernels for LAKE's GPU tests and remoting benchmark.  Built by nvcc at
// build time into a fatbin (sm_90 code + compute_90 PTX) that the programs
// load with cuModuleLoadData.  extern "C" so cuModuleGetFunction finds them
// by name and cuFuncGetParamInfo reports their parameter layouts.

// A global that cuModuleGetGlobal finds and cuMemcpyDtoH reads.
extern "C" __device__ int lake_answer = 42;

extern "C" __global__ void lake_vecadd(const float *a, const float *b, float *c, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		c[i] = a[i] + b[i];
}

extern "C" __global__ void lake_empty(void)
{
}

// One dense layer, y = act(W x + b), for a batch: x is [batch][in], W is
// [out][in], y is [batch][out].  relu != 0 applies ReLU.
extern "C" __global__ void lake_dense(const float *x, const float *w, const float *bias,
				      float *y, int in, int out, int batch, int relu)
{
	int o = blockIdx.x * blockDim.x + threadIdx.x;
	int s = blockIdx.y;

	if (o >= out || s >= batch)
		return;
	float acc = bias[o];
	for (int k = 0; k < in; k++)
		acc += w[o * in + k] * x[s * in + k];
	y[s * out + o] = relu && acc < 0.0f ? 0.0f : acc;
}

// Mixed parameter sizes, to check kernelParams packing (8, 1, 4, 8 bytes).
extern "C" __global__ void lake_params(unsigned long long *out, unsigned char c, int i,
				       unsigned long long u)
{
	out[0] = c;
	out[1] = (unsigned long long)(long long)i;
	out[2] = u;
}

// Spins on the GPU for about @cycles clock cycles: a kernel whose
// synchronize blocks long enough to be seen.
extern "C" __global__ void lake_spin(unsigned long long cycles)
{
	long long start = clock64();

	while ((unsigned long long)(clock64() - start) < cycles)
		;
}
