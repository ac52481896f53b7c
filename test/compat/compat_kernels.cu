// Kernels of the Driver API sample programs in test/compat (the programs
// load the fatbin nvcc builds from this file, as NVIDIA's *Drv samples do).
// extern "C": found by name with cuModuleGetFunction.

// C = A + B, N elements.
extern "C" __global__ void VecAdd_kernel(const float *A, const float *B, float *C, int N)
{
	int i = blockDim.x * blockIdx.x + threadIdx.x;

	if (i < N)
		C[i] = A[i] + B[i];
}

// C = A * B for row-major matrices, A is hA x wA, B is wA x wB; one thread
// per element of C, tiles of blockDim.x in shared memory (dynamic).
extern "C" __global__ void matrixMul(float *C, const float *A, const float *B, int wA, int wB)
{
	extern __shared__ float tiles[];
	int bs = blockDim.x;
	float *As = tiles, *Bs = tiles + bs * bs;
	int tx = threadIdx.x, ty = threadIdx.y;
	int row = blockIdx.y * bs + ty, col = blockIdx.x * bs + tx;
	float sum = 0.0f;

	for (int t = 0; t < wA / bs; t++) {
		As[ty * bs + tx] = A[row * wA + t * bs + tx];
		Bs[ty * bs + tx] = B[(t * bs + ty) * wB + col];
		__syncthreads();
		for (int k = 0; k < bs; k++)
			sum += As[ty * bs + k] * Bs[k * bs + tx];
		__syncthreads();
	}
	C[row * wB + col] = sum;
}
