// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Device properties through the Driver API, in the style of NVIDIA's
 * deviceQueryDrv sample: driver version, devices, names, compute capability,
 * memory, attributes, UUID, PCI bus id and, with two devices or more, peer
 * access.  Prints only what does not change from run to run.
 *
 * Usage: device_query_drv KERNELS.fatbin [--no-verify]  (the fatbin is unused)
 */
#include "compat_sample.h"

static void attribute(const char *what, CUdevice_attribute a, CUdevice dev)
{
	int v = 0;

	checkCudaErrors(cuDeviceGetAttribute(&v, a, dev));
	printf("  %-40s %d\n", what, v);
}

int main(int argc, char **argv)
{
	void *image = sample_args(argc, argv, "device_query_drv");
	int version = 0, count = 0, dev, peer;

	printf("Device Query (Driver API)\n");
	checkCudaErrors(cuInit(0));
	checkCudaErrors(cuDriverGetVersion(&version));
	printf("CUDA driver version %d.%d\n", version / 1000, (version % 100) / 10);
	checkCudaErrors(cuDeviceGetCount(&count));
	printf("%d CUDA capable device(s)\n", count);
	for (dev = 0; dev < count && dev < 8; dev++) {
		char name[256], bus[32];
		size_t total = 0;
		int major = 0, minor = 0;
		CUuuid uuid;

		checkCudaErrors(cuDeviceGetName(name, sizeof(name), dev));
		name[sizeof(name) - 1] = 0;
		printf("Device %d: \"%s\"\n", dev, sample_verify ? name : "(not shown)");
		checkCudaErrors(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
		checkCudaErrors(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
		printf("  CUDA capability %d.%d\n", major, minor);
		checkCudaErrors(cuDeviceComputeCapability(&major, &minor, dev));
		printf("  cuDeviceComputeCapability %d.%d\n", major, minor);
		checkCudaErrors(cuDeviceTotalMem(&total, dev));
		printf("  Total global memory %llu bytes\n", (unsigned long long)total);
		attribute("Multiprocessors", CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
		attribute("Warp size", CU_DEVICE_ATTRIBUTE_WARP_SIZE, dev);
		attribute("Max threads per block", CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, dev);
		attribute("Max shared memory per block", CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, dev);
		attribute("Registers per block", CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, dev);
		attribute("L2 cache size", CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, dev);
		attribute("Memory bus width", CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, dev);
		attribute("Concurrent kernels", CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS, dev);
		attribute("Unified addressing", CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, dev);
		attribute("Compute mode", CU_DEVICE_ATTRIBUTE_COMPUTE_MODE, dev);
		attribute("Cooperative launch", CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH, dev);
		checkCudaErrors(cuDeviceGetUuid(&uuid, dev));
		printf("  UUID %02x%02x%02x%02x-...\n", (unsigned char)uuid.bytes[0],
		       (unsigned char)uuid.bytes[1], (unsigned char)uuid.bytes[2],
		       (unsigned char)uuid.bytes[3]);
		checkCudaErrors(cuDeviceGetPCIBusId(bus, sizeof(bus), dev));
		bus[sizeof(bus) - 1] = 0;
		printf("  PCI bus id %s\n", sample_verify ? bus : "(not shown)");
	}
	for (dev = 0; dev < count && dev < 8; dev++) {
		for (peer = 0; peer < count && peer < 8; peer++) {
			int can = 0;

			if (peer == dev)
				continue;
			checkCudaErrors(cuDeviceCanAccessPeer(&can, dev, peer));
			printf("Peer access from device %d to device %d: %s\n", dev, peer, can ? "Yes" : "No");
		}
	}
	free(image);
	printf("Result = PASS\n");
	return EXIT_SUCCESS;
}
