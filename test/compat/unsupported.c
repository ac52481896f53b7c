// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * A program calling a Driver API function the spec does not cover
 * (cuTexObjectCreate), built against NVIDIA's cuda.h and libcuda: run with
 * LAKE's libcuda.so.1 first on the library path, it shows what such a
 * program sees (the dynamic loader names the missing function when it is
 * first called, exit status 127).  And a refused function
 * (cuLaunchHostFunc): CUDA_ERROR_NOT_SUPPORTED and one line on stderr.
 */
#include <cuda.h>
#include <stdio.h>
#include <string.h>

static void host_fn(void *data)
{
	(void)data;
}

int main(int argc, char **argv)
{
	CUtexObject tex = 0;
	CUDA_RESOURCE_DESC res;
	CUDA_TEXTURE_DESC desc;
	CUresult r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	r = cuInit(0);
	printf("cuInit: %d\n", (int)r);
	r = cuLaunchHostFunc(NULL, host_fn, NULL);
	printf("cuLaunchHostFunc: %d\n", (int)r);
	if (argc > 1 && !strcmp(argv[1], "--unspecd")) {
		memset(&res, 0, sizeof(res));
		memset(&desc, 0, sizeof(desc));
		r = cuTexObjectCreate(&tex, &res, &desc, NULL);
		printf("cuTexObjectCreate: %d\n", (int)r);
	}
	return 0;
}
