// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The functions the spec grew beyond gpu_calls.c's (devices, contexts,
 * modules and libraries, launches, occupancy, memory of every kind, streams,
 * events, graphs, error texts, NVML monitoring), against a real GPU, one line
 * per call: its result and the outputs that do not vary from run to run.
 * Built twice from this one source, like gpu_calls: against liblake and
 * directly against libcuda (-DLAKE_DIRECT); test/gpu/run-gpu-tests.sh
 * compares the two outputs line by line.  Lines starting with "lake-only"
 * are what LAKE answers differently by design (none are printed by the
 * direct build); they are not compared: the functions LAKE refuses because
 * they change what every client of lakeD shares (the direct build does not
 * call them).
 *
 * Usage: gpu_compat_calls KERNELS.fatbin
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lake_nvml.h"
#include "lake_gpu_say.h"

#ifdef LAKE_DIRECT
#define REFUSED(name, call) ((void)sizeof(call))	/* not called */
#else
/* Through LAKE: refused, with CUDA_ERROR_NOT_SUPPORTED. */
#define REFUSED(name, call)							\
	do {									\
		CUresult r_ = (call);						\
		printf("lake-only %s: %s\n", name, cu_name(r_));		\
		if (r_ != CUDA_ERROR_NOT_SUPPORTED) {				\
			printf("lake-only FAILED: %s is not refused\n", name);	\
			failures++;						\
		}								\
	} while (0)
#endif

#ifdef LAKE_DIRECT
NVML_FN(nvmlReturn_t, nvmlInit, "nvmlInit_v2", (void), ())
NVML_FN(nvmlReturn_t, nvmlShutdown, "nvmlShutdown", (void), ())
NVML_FN(nvmlReturn_t, nvmlDeviceGetHandleByIndex, "nvmlDeviceGetHandleByIndex_v2",
	(unsigned int i, nvmlDevice_t *d), (i, d))
NVML_FN(nvmlReturn_t, nvmlDeviceGetName, "nvmlDeviceGetName",
	(nvmlDevice_t d, char *n, unsigned int l), (d, n, l))
NVML_FN(nvmlReturn_t, nvmlDeviceGetUUID, "nvmlDeviceGetUUID",
	(nvmlDevice_t d, char *n, unsigned int l), (d, n, l))
NVML_FN(nvmlReturn_t, nvmlDeviceGetIndex, "nvmlDeviceGetIndex", (nvmlDevice_t d, unsigned int *i), (d, i))
NVML_FN(nvmlReturn_t, nvmlDeviceGetPciInfo, "nvmlDeviceGetPciInfo_v3",
	(nvmlDevice_t d, nvmlPciInfo_t *p), (d, p))
NVML_FN(nvmlReturn_t, nvmlDeviceGetHandleByUUID, "nvmlDeviceGetHandleByUUID",
	(const char *u, nvmlDevice_t *d), (u, d))
NVML_FN(nvmlReturn_t, nvmlDeviceGetHandleByPciBusId, "nvmlDeviceGetHandleByPciBusId_v2",
	(const char *b, nvmlDevice_t *d), (b, d))
NVML_FN(nvmlReturn_t, nvmlSystemGetDriverVersion, "nvmlSystemGetDriverVersion",
	(char *v, unsigned int l), (v, l))
NVML_FN(nvmlReturn_t, nvmlSystemGetNVMLVersion, "nvmlSystemGetNVMLVersion", (char *v, unsigned int l), (v, l))
NVML_FN(nvmlReturn_t, nvmlSystemGetCudaDriverVersion, "nvmlSystemGetCudaDriverVersion", (int *v), (v))
NVML_FN(nvmlReturn_t, nvmlDeviceGetBAR1MemoryInfo, "nvmlDeviceGetBAR1MemoryInfo",
	(nvmlDevice_t d, nvmlBAR1Memory_t *m), (d, m))
NVML_FN(nvmlReturn_t, nvmlDeviceGetEncoderUtilization, "nvmlDeviceGetEncoderUtilization",
	(nvmlDevice_t d, unsigned int *u, unsigned int *s), (d, u, s))
NVML_FN(nvmlReturn_t, nvmlDeviceGetDecoderUtilization, "nvmlDeviceGetDecoderUtilization",
	(nvmlDevice_t d, unsigned int *u, unsigned int *s), (d, u, s))
NVML_FN(nvmlReturn_t, nvmlDeviceGetComputeMode, "nvmlDeviceGetComputeMode",
	(nvmlDevice_t d, nvmlComputeMode_t *m), (d, m))
NVML_FN(nvmlReturn_t, nvmlDeviceGetTemperature, "nvmlDeviceGetTemperature",
	(nvmlDevice_t d, nvmlTemperatureSensors_t s, unsigned int *t), (d, s, t))
NVML_FN(nvmlReturn_t, nvmlDeviceGetTemperatureThreshold, "nvmlDeviceGetTemperatureThreshold",
	(nvmlDevice_t d, nvmlTemperatureThresholds_t s, unsigned int *t), (d, s, t))
NVML_FN(nvmlReturn_t, nvmlDeviceGetFanSpeed, "nvmlDeviceGetFanSpeed", (nvmlDevice_t d, unsigned int *s), (d, s))
NVML_FN(nvmlReturn_t, nvmlDeviceGetPowerUsage, "nvmlDeviceGetPowerUsage", (nvmlDevice_t d, unsigned int *p), (d, p))
NVML_FN(nvmlReturn_t, nvmlDeviceGetPowerManagementLimit, "nvmlDeviceGetPowerManagementLimit",
	(nvmlDevice_t d, unsigned int *p), (d, p))
NVML_FN(nvmlReturn_t, nvmlDeviceGetEnforcedPowerLimit, "nvmlDeviceGetEnforcedPowerLimit",
	(nvmlDevice_t d, unsigned int *p), (d, p))
NVML_FN(nvmlReturn_t, nvmlDeviceGetTotalEnergyConsumption, "nvmlDeviceGetTotalEnergyConsumption",
	(nvmlDevice_t d, unsigned long long *e), (d, e))
NVML_FN(nvmlReturn_t, nvmlDeviceGetPerformanceState, "nvmlDeviceGetPerformanceState",
	(nvmlDevice_t d, nvmlPstates_t *p), (d, p))
NVML_FN(nvmlReturn_t, nvmlDeviceGetClockInfo, "nvmlDeviceGetClockInfo",
	(nvmlDevice_t d, nvmlClockType_t t, unsigned int *c), (d, t, c))
NVML_FN(nvmlReturn_t, nvmlDeviceGetMaxClockInfo, "nvmlDeviceGetMaxClockInfo",
	(nvmlDevice_t d, nvmlClockType_t t, unsigned int *c), (d, t, c))
NVML_FN(nvmlReturn_t, nvmlDeviceGetClock, "nvmlDeviceGetClock",
	(nvmlDevice_t d, nvmlClockType_t t, nvmlClockId_t i, unsigned int *c), (d, t, i, c))
NVML_FN(nvmlReturn_t, nvmlDeviceGetPcieThroughput, "nvmlDeviceGetPcieThroughput",
	(nvmlDevice_t d, nvmlPcieUtilCounter_t c, unsigned int *v), (d, c, v))
NVML_FN(nvmlReturn_t, nvmlDeviceGetPcieReplayCounter, "nvmlDeviceGetPcieReplayCounter",
	(nvmlDevice_t d, unsigned int *v), (d, v))
NVML_FN(nvmlReturn_t, nvmlDeviceGetCurrPcieLinkGeneration, "nvmlDeviceGetCurrPcieLinkGeneration",
	(nvmlDevice_t d, unsigned int *v), (d, v))
NVML_FN(nvmlReturn_t, nvmlDeviceGetCurrPcieLinkWidth, "nvmlDeviceGetCurrPcieLinkWidth",
	(nvmlDevice_t d, unsigned int *v), (d, v))
NVML_FN(nvmlReturn_t, nvmlDeviceGetEccMode, "nvmlDeviceGetEccMode",
	(nvmlDevice_t d, nvmlEnableState_t *c, nvmlEnableState_t *p), (d, c, p))
NVML_FN(nvmlReturn_t, nvmlDeviceGetTotalEccErrors, "nvmlDeviceGetTotalEccErrors",
	(nvmlDevice_t d, nvmlMemoryErrorType_t e, nvmlEccCounterType_t c, unsigned long long *n), (d, e, c, n))
NVML_FN(nvmlReturn_t, nvmlDeviceGetSupportedEventTypes, "nvmlDeviceGetSupportedEventTypes",
	(nvmlDevice_t d, unsigned long long *t), (d, t))
NVML_FN(nvmlReturn_t, nvmlEventSetCreate, "nvmlEventSetCreate", (nvmlEventSet_t *s), (s))
NVML_FN(nvmlReturn_t, nvmlDeviceRegisterEvents, "nvmlDeviceRegisterEvents",
	(nvmlDevice_t d, unsigned long long t, nvmlEventSet_t s), (d, t, s))
NVML_FN(nvmlReturn_t, nvmlEventSetWait, "nvmlEventSetWait_v2",
	(nvmlEventSet_t s, nvmlEventData_t *e, unsigned int t), (s, e, t))
NVML_FN(nvmlReturn_t, nvmlEventSetFree, "nvmlEventSetFree", (nvmlEventSet_t s), (s))
NVML_FN(nvmlReturn_t, nvmlDeviceGetGraphicsRunningProcesses, "nvmlDeviceGetGraphicsRunningProcesses_v3",
	(nvmlDevice_t d, unsigned int *c, nvmlProcessInfo_t *p), (d, c, p))
#endif

#define N 1024
#define BYTES (N * sizeof(float))

static void fill(float *h, int n, float k)
{
	int i;

	for (i = 0; i < n; i++)
		h[i] = k * (float)i;
}

static int same_u32(const void *p, unsigned int v, size_t n)
{
	const unsigned int *w = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (w[i] != v)
			return 0;
	return 1;
}

static void devices(CUdevice dev)
{
	CUuuid uuid;
	CUdevprop prop;
	char bus[32] = "";
	CUdevice d2 = -1;
	int v = -1, major = 0, minor = 0;
	cuuint64_t u64 = 0, zero = 0;
	CUmemoryPool pool = NULL, pool2 = NULL;

	SAY("cuDeviceGetUuid", cuDeviceGetUuid(&uuid, dev), "%02x%02x%02x%02x", (unsigned char)uuid.bytes[0],
	    (unsigned char)uuid.bytes[1], (unsigned char)uuid.bytes[2], (unsigned char)uuid.bytes[3]);
	SAY("cuDeviceGetPCIBusId", cuDeviceGetPCIBusId(bus, sizeof(bus), dev), "%s", bus);
	SAY("cuDeviceGetByPCIBusId", cuDeviceGetByPCIBusId(&d2, bus), "%d", d2);
	SAY("cuDeviceCanAccessPeer (itself)", cuDeviceCanAccessPeer(&v, dev, dev), "%d", v);
	SAY("cuDeviceGetP2PAttribute (itself)",
	    cuDeviceGetP2PAttribute(&v, CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED, dev, dev), "");
	SAY("cuDeviceComputeCapability", cuDeviceComputeCapability(&major, &minor, dev), "%d.%d", major, minor);
	memset(&prop, 0, sizeof(prop));
	SAY("cuDeviceGetProperties", cuDeviceGetProperties(&prop, dev), "threads=%d dims=%d,%d,%d warp=%d",
	    prop.maxThreadsPerBlock, prop.maxThreadsDim[0], prop.maxThreadsDim[1], prop.maxThreadsDim[2],
	    prop.SIMDWidth);
	SAY("cuDeviceGetExecAffinitySupport",
	    cuDeviceGetExecAffinitySupport(&v, CU_EXEC_AFFINITY_TYPE_SM_COUNT, dev), "%d", v);
	SAY("cuDeviceGetGraphMemAttribute",
	    cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH, &u64), "");
	SAY("cuDeviceSetGraphMemAttribute",
	    cuDeviceSetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_USED_MEM_HIGH, &zero), "");
	SAY("cuDeviceGraphMemTrim", cuDeviceGraphMemTrim(dev), "");
	SAY("cuDeviceGetDefaultMemPool", cuDeviceGetDefaultMemPool(&pool, dev), "%s", pool ? "pool" : "NULL");
	SAY("cuDeviceGetMemPool", cuDeviceGetMemPool(&pool2, dev), "%s", pool2 == pool ? "default" : "other");
	REFUSED("cuDeviceSetMemPool", cuDeviceSetMemPool(dev, pool));
}

static void contexts(CUdevice dev, CUcontext pctx)
{
	CUcontext ctx = NULL, cur = NULL;
	CUctxCreateParams params;
	CUexecAffinityParam aff;
	CUevent ev;
	CUdevice d = -1;
	unsigned int flags = 0, ver = 0;
	int active = -1, lo = 0, hi = 0;
	unsigned long long id = 0;
	size_t lim = 0;
	CUfunc_cache cache = CU_FUNC_CACHE_PREFER_NONE;
	CUsharedconfig shared = CU_SHARED_MEM_CONFIG_DEFAULT_BANK_SIZE;

	memset(&aff, 0, sizeof(aff));

	SAY("cuDevicePrimaryCtxGetState", cuDevicePrimaryCtxGetState(dev, &flags, &active), "flags=%u active=%d",
	    flags, active);
	REFUSED("cuDevicePrimaryCtxSetFlags", cuDevicePrimaryCtxSetFlags(dev, flags));
	memset(&params, 0, sizeof(params));
	SAY("cuCtxCreate (zeroed params)", cuCtxCreate(&ctx, &params, 0, dev), "");
	SAY("cuCtxGetCurrent", cuCtxGetCurrent(&cur), "%s", cur == ctx ? "created" : "other");
	SAY("cuCtxPopCurrent", cuCtxPopCurrent(&cur), "%s", cur == ctx ? "created" : "other");
	SAY("cuCtxPushCurrent", cuCtxPushCurrent(ctx), "");
	SAY("cuCtxGetDevice", cuCtxGetDevice(&d), "%d", d);
	SAY("cuCtxGetDevice_v2", cuCtxGetDevice_v2(&d, pctx), "%d", d);
	SAY("cuCtxGetFlags", cuCtxGetFlags(&flags), "%u", flags);
	SAY("cuCtxSetFlags", cuCtxSetFlags(flags), "");
	SAY("cuCtxGetId", cuCtxGetId(ctx, &id), "%s", id ? "nonzero" : "zero");
	SAY("cuCtxGetApiVersion", cuCtxGetApiVersion(ctx, &ver), "%u", ver);
	SAY("cuCtxGetStreamPriorityRange", cuCtxGetStreamPriorityRange(&lo, &hi), "%d..%d", lo, hi);
	SAY("cuCtxSetLimit", cuCtxSetLimit(CU_LIMIT_PRINTF_FIFO_SIZE, 1 << 20), "");
	SAY("cuCtxGetLimit", cuCtxGetLimit(&lim, CU_LIMIT_PRINTF_FIFO_SIZE), "%zu", lim);
	SAY("cuCtxSetCacheConfig", cuCtxSetCacheConfig(CU_FUNC_CACHE_PREFER_SHARED), "");
	SAY("cuCtxGetCacheConfig", cuCtxGetCacheConfig(&cache), "%d", (int)cache);
	SAY("cuCtxSetSharedMemConfig", cuCtxSetSharedMemConfig(CU_SHARED_MEM_CONFIG_DEFAULT_BANK_SIZE), "");
	SAY("cuCtxGetSharedMemConfig", cuCtxGetSharedMemConfig(&shared), "%d", (int)shared);
	SAY("cuCtxResetPersistingL2Cache", cuCtxResetPersistingL2Cache(), "");
	SAY("cuCtxEnablePeerAccess (itself)", cuCtxEnablePeerAccess(ctx, 0), "");
	SAY("cuCtxDisablePeerAccess (itself)", cuCtxDisablePeerAccess(ctx), "");
	SAY("cuCtxGetExecAffinity", cuCtxGetExecAffinity(&aff, CU_EXEC_AFFINITY_TYPE_SM_COUNT), "%s",
	    aff.param.smCount.val > 0 ? "sms>0" : "sms=0");
	SAY("cuEventCreate", cuEventCreate(&ev, CU_EVENT_DEFAULT), "");
	SAY("cuCtxRecordEvent", cuCtxRecordEvent(ctx, ev), "");
	SAY("cuCtxWaitEvent", cuCtxWaitEvent(ctx, ev), "");
	SAY("cuCtxSynchronize_v2", cuCtxSynchronize_v2(ctx), "");
	SAY("cuEventDestroy", cuEventDestroy(ev), "");
	SAY("cuCtxDestroy", cuCtxDestroy(ctx), "");
	SAY("cuCtxSetCurrent", cuCtxSetCurrent(pctx), "");
}

static void modules(CUdevice dev, void *image, CUdeviceptr da, CUdeviceptr db, CUdeviceptr dc, float *hc)
{
	CUmodule mod = NULL, mod2 = NULL;
	CUfunction f = NULL, fk = NULL;
	CUlibrary lib = NULL, lib2 = NULL;
	CUkernel k = NULL, ks[8];
	CUjit_option opts[1] = { CU_JIT_MAX_REGISTERS };
	void *vals[1] = { (void *)(uintptr_t)64 };
	CUmoduleLoadingMode mode = (CUmoduleLoadingMode)0;
	CUfunctionLoadingState state = (CUfunctionLoadingState)0;
	unsigned int count = 0, nk = 0;
	CUdeviceptr dg = 0;
	size_t gbytes = 0, off = 0, sz = 0;
	int pi = 0, n = N, ok, i;

	SAY("cuModuleLoadDataEx", cuModuleLoadDataEx(&mod, image, 1, opts, vals), "");
	SAY("cuModuleGetLoadingMode", cuModuleGetLoadingMode(&mode), "%d", (int)mode);
	SAY("cuModuleGetFunctionCount", cuModuleGetFunctionCount(&count, mod), "%u", count);
	SAY("cuModuleGetFunction", cuModuleGetFunction(&f, mod, "lake_vecadd"), "");
	SAY("cuFuncSetAttribute", cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 1024), "");
	SAY("cuFuncGetAttribute", cuFuncGetAttribute(&pi, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, f),
	    "%d", pi);
	SAY("cuFuncSetCacheConfig", cuFuncSetCacheConfig(f, CU_FUNC_CACHE_PREFER_L1), "");
	SAY("cuFuncGetModule", cuFuncGetModule(&mod2, f), "%s", mod2 == mod ? "its module" : "other");
	SAY("cuFuncLoad", cuFuncLoad(f), "");
	SAY("cuFuncIsLoaded", cuFuncIsLoaded(&state, f), "%d", (int)state);

	/* Occupancy of the vecadd kernel. */
	SAY("cuOccupancyMaxActiveBlocksPerMultiprocessor",
	    cuOccupancyMaxActiveBlocksPerMultiprocessor(&pi, f, 256, 0), "%d", pi);
	SAY("cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags",
	    cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&pi, f, 256, 0, CU_OCCUPANCY_DEFAULT), "%d", pi);
	{
		int minGrid = 0, block = 0;

		SAY("cuOccupancyMaxPotentialBlockSize",
		    cuOccupancyMaxPotentialBlockSize(&minGrid, &block, f, NULL, 0, 0), "grid=%d block=%d", minGrid,
		    block);
		SAY("cuOccupancyMaxPotentialBlockSizeWithFlags",
		    cuOccupancyMaxPotentialBlockSizeWithFlags(&minGrid, &block, f, NULL, 0, 512,
							      CU_OCCUPANCY_DEFAULT), "grid=%d block=%d", minGrid, block);
	}
	SAY("cuOccupancyAvailableDynamicSMemPerBlock", cuOccupancyAvailableDynamicSMemPerBlock(&sz, f, 1, 256),
	    "%zu", sz);

	/* Launches: cooperative, and with launch-time configuration. */
	{
		void *args[] = { &da, &db, &dc, &n };
		CUlaunchAttribute attrs[2];
		CUlaunchConfig config;
		int clusters = 0;

		SAY("cuLaunchCooperativeKernel", cuLaunchCooperativeKernel(f, N / 256, 1, 1, 256, 1, 1, 0, NULL, args), "");
		SAY("cuCtxSynchronize", cuCtxSynchronize(), "");
		SAY("cuMemcpyDtoH", cuMemcpyDtoH(hc, dc, BYTES), "");
		for (ok = 1, i = 0; i < N; i++)
			ok &= hc[i] == 3.0f * (float)i;
		check(ok, "cooperative vecadd");
		memset(attrs, 0, sizeof(attrs));
		attrs[0].id = CU_LAUNCH_ATTRIBUTE_PRIORITY;
		attrs[0].value.priority = 0;
		attrs[1].id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
		attrs[1].value.cooperative = 1;
		memset(&config, 0, sizeof(config));
		config.gridDimX = N / 256;
		config.gridDimY = config.gridDimZ = 1;
		config.blockDimX = 256;
		config.blockDimY = config.blockDimZ = 1;
		config.attrs = attrs;
		config.numAttrs = 2;
		SAY("cuMemsetD32", cuMemsetD32(dc, 0, N), "");
		SAY("cuLaunchKernelEx", cuLaunchKernelEx(&config, f, args, NULL), "");
		SAY("cuCtxSynchronize", cuCtxSynchronize(), "");
		SAY("cuMemcpyDtoH", cuMemcpyDtoH(hc, dc, BYTES), "");
		for (ok = 1, i = 0; i < N; i++)
			ok &= hc[i] == 3.0f * (float)i;
		check(ok, "cuLaunchKernelEx vecadd");
		config.numAttrs = 0;
		SAY("cuOccupancyMaxPotentialClusterSize", cuOccupancyMaxPotentialClusterSize(&clusters, f, &config),
		    "%d", clusters);
		SAY("cuOccupancyMaxActiveClusters", cuOccupancyMaxActiveClusters(&clusters, f, &config), "%d", clusters);
	}
	SAY("cuModuleUnload", cuModuleUnload(mod), "");

	/* Libraries and kernels. */
	SAY("cuLibraryLoadData", cuLibraryLoadData(&lib, image, NULL, NULL, 0, NULL, NULL, 0), "");
	SAY("cuLibraryGetKernelCount", cuLibraryGetKernelCount(&nk, lib), "%u", nk);
	if (nk > 8)
		nk = 8;
	SAY("cuLibraryEnumerateKernels", cuLibraryEnumerateKernels(ks, nk, lib), "%s", nk && ks[0] ? "kernels" : "none");
	SAY("cuLibraryGetKernel", cuLibraryGetKernel(&k, lib, "lake_vecadd"), "");
	SAY("cuKernelGetLibrary", cuKernelGetLibrary(&lib2, k), "%s", lib2 == lib ? "its library" : "other");
	SAY("cuKernelGetFunction", cuKernelGetFunction(&fk, k), "%s", fk ? "function" : "NULL");
	SAY("cuKernelGetAttribute", cuKernelGetAttribute(&pi, CU_FUNC_ATTRIBUTE_NUM_REGS, k, dev), "%s",
	    pi > 0 ? "regs>0" : "regs=0");
	SAY("cuKernelSetAttribute", cuKernelSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 2048, k, dev), "");
	SAY("cuKernelSetCacheConfig", cuKernelSetCacheConfig(k, CU_FUNC_CACHE_PREFER_NONE, dev), "");
	SAY("cuKernelGetParamInfo", cuKernelGetParamInfo(k, 3, &off, &sz), "offset=%zu size=%zu", off, sz);
	SAY("cuLibraryGetModule", cuLibraryGetModule(&mod2, lib), "%s", mod2 ? "module" : "NULL");
	SAY("cuLibraryGetGlobal", cuLibraryGetGlobal(&dg, &gbytes, lib, "lake_answer"), "bytes=%zu", gbytes);
	SAY("cuLibraryUnload", cuLibraryUnload(lib), "");
}

static void memory(CUcontext pctx, CUstream s)
{
	CUdeviceptr d = 0, d2 = 0, dp = 0, base = 0, va = 0, dpool = 0;
	size_t pitch = 0, size = 0, gran = 0;
	unsigned int *hw = lake_host_alloc(4 * N * sizeof(unsigned int));
	unsigned short *hs = (unsigned short *)hw;
	unsigned char *hb = (unsigned char *)hw;
	int ok, i, j;

	SAY("cuMemAlloc", cuMemAlloc(&d, 4 * N * sizeof(unsigned int)), "");
	SAY("cuMemAlloc", cuMemAlloc(&d2, 4 * N * sizeof(unsigned int)), "");
	SAY("cuMemsetD16", cuMemsetD16(d, 0xbeef, 4 * N), "");
	SAY("cuMemcpyDtoH", cuMemcpyDtoH(hw, d, 8 * N), "");
	for (ok = 1, i = 0; i < 4 * N; i++)
		ok &= hs[i] == 0xbeef;
	check(ok, "cuMemsetD16");
	SAY("cuMemsetD16Async", cuMemsetD16Async(d, 0x1234, 4 * N, s), "");
	SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
	SAY("cuMemcpyDtoH", cuMemcpyDtoH(hw, d, 8 * N), "");
	check(hs[0] == 0x1234 && hs[4 * N - 1] == 0x1234, "cuMemsetD16Async");

	/* 2D memsets on pitched memory: 64 rows of 32 elements. */
	SAY("cuMemAllocPitch", cuMemAllocPitch(&dp, &pitch, 128, 64, 4), "pitch=%zu", pitch);
	SAY("cuMemsetD2D8", cuMemsetD2D8(dp, pitch, 0x7f, 128, 64), "");
	SAY("cuMemsetD2D16", cuMemsetD2D16(dp, pitch, 0x5151, 64, 48), "");
	SAY("cuMemsetD2D32", cuMemsetD2D32(dp, pitch, 0xcafe1234, 32, 32), "");
	SAY("cuMemsetD2D8Async", cuMemsetD2D8Async(dp, pitch, 0x11, 128, 1, s), "");
	SAY("cuMemsetD2D16Async", cuMemsetD2D16Async(dp, pitch, 0x2222, 64, 1, s), "");
	SAY("cuMemsetD2D32Async", cuMemsetD2D32Async(dp + pitch, pitch, 0x33333333, 32, 1, s), "");
	SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
	{
		CUDA_MEMCPY2D c2;

		memset(&c2, 0, sizeof(c2));
		c2.srcMemoryType = CU_MEMORYTYPE_DEVICE;
		c2.srcDevice = dp;
		c2.srcPitch = pitch;
		c2.dstMemoryType = CU_MEMORYTYPE_HOST;
		c2.dstHost = hw;
		c2.dstPitch = 128;
		c2.WidthInBytes = 128;
		c2.Height = 64;
		memset(hw, 0, 128 * 64);
		SAY("cuMemcpy2D (device to host)", cuMemcpy2D(&c2), "");
		/* Rows (128 bytes): 0 the async 16-bit memset, 1 the async 32-bit one,
		 * 2..31 the 32-bit one, 32..47 the 16-bit one, 48..63 the 8-bit one. */
		ok = same_u32(hw, 0x22222222, 32) && same_u32(hw + 32, 0x33333333, 32) && same_u32(hw + 64, 0xcafe1234, 32) &&
		     same_u32(hw + 40 * 32, 0x51515151, 32) && same_u32(hw + 63 * 32, 0x7f7f7f7f, 32);
		check(ok, "2D memsets of every width, and cuMemcpy2D");
		/* Host to device at an offset, back with cuMemcpy2DUnaligned and cuMemcpy2DAsync. */
		for (i = 0; i < 128 * 64; i++)
			hb[i] = (unsigned char)(i * 7);
		memset(&c2, 0, sizeof(c2));
		c2.srcMemoryType = CU_MEMORYTYPE_HOST;
		c2.srcHost = hb;
		c2.srcPitch = 128;
		c2.srcXInBytes = 4;
		c2.srcY = 2;
		c2.dstMemoryType = CU_MEMORYTYPE_DEVICE;
		c2.dstDevice = dp;
		c2.dstPitch = pitch;
		c2.WidthInBytes = 64;
		c2.Height = 16;
		SAY("cuMemcpy2DUnaligned (host to device)", cuMemcpy2DUnaligned(&c2), "");
		memset(&c2, 0, sizeof(c2));
		c2.srcMemoryType = CU_MEMORYTYPE_DEVICE;
		c2.srcDevice = dp;
		c2.srcPitch = pitch;
		c2.dstMemoryType = CU_MEMORYTYPE_HOST;
		c2.dstHost = hb + 128 * 64;
		c2.dstPitch = 64;
		c2.WidthInBytes = 64;
		c2.Height = 16;
		SAY("cuMemcpy2DAsync (device to host)", cuMemcpy2DAsync(&c2, s), "");
		SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
		for (ok = 1, i = 0; i < 16; i++)
			for (j = 0; j < 64; j++)
				ok &= hb[128 * 64 + 64 * i + j] == hb[128 * (i + 2) + 4 + j];
		check(ok, "cuMemcpy2D with offsets, round trip");
	}
	{
		CUDA_MEMCPY3D c3;

		for (i = 0; i < 2 * 8 * 64; i++)
			hb[i] = (unsigned char)(255 - i);
		memset(&c3, 0, sizeof(c3));
		c3.srcMemoryType = CU_MEMORYTYPE_HOST;
		c3.srcHost = hb;
		c3.srcPitch = 64;
		c3.srcHeight = 8;
		c3.dstMemoryType = CU_MEMORYTYPE_DEVICE;
		c3.dstDevice = d2;
		c3.dstPitch = 64;
		c3.dstHeight = 8;
		c3.WidthInBytes = 64;
		c3.Height = 8;
		c3.Depth = 2;
		SAY("cuMemcpy3D (host to device)", cuMemcpy3D(&c3), "");
		memset(&c3, 0, sizeof(c3));
		c3.srcMemoryType = CU_MEMORYTYPE_DEVICE;
		c3.srcDevice = d2;
		c3.srcPitch = 64;
		c3.srcHeight = 8;
		c3.dstMemoryType = CU_MEMORYTYPE_HOST;
		c3.dstHost = hb + 4096;
		c3.dstPitch = 64;
		c3.dstHeight = 8;
		c3.WidthInBytes = 64;
		c3.Height = 8;
		c3.Depth = 2;
		SAY("cuMemcpy3DAsync (device to host)", cuMemcpy3DAsync(&c3, s), "");
		SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
		check(!memcmp(hb, hb + 4096, 2 * 8 * 64), "cuMemcpy3D round trip");
	}
	SAY("cuMemcpyPeer (same context)", cuMemcpyPeer(d2, pctx, d, pctx, 4096), "");
	SAY("cuMemcpyPeerAsync (same context)", cuMemcpyPeerAsync(d2, pctx, d, pctx, 4096, s), "");
	SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
	SAY("cuMemGetAddressRange", cuMemGetAddressRange(&base, &size, d + 100), "%s size=%zu",
	    base == d ? "base" : "other", size);

	/* Pointer attributes. */
	{
		unsigned int mt = 0;
		int ord = -1;
		unsigned int managed = 9, sync = 1;	/* the driver reads and writes 4 bytes */
		size_t range = 0;
		CUcontext c = NULL;
		CUdeviceptr dptr = 0;
		unsigned long long id = 0;

		SAY("cuPointerGetAttribute (MEMORY_TYPE)", cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d),
		    "%u", mt);
		SAY("cuPointerGetAttribute (DEVICE_ORDINAL)",
		    cuPointerGetAttribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, d), "%d", ord);
		SAY("cuPointerGetAttribute (IS_MANAGED)", cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, d),
		    "%u", managed);
		SAY("cuPointerGetAttribute (RANGE_SIZE)", cuPointerGetAttribute(&range, CU_POINTER_ATTRIBUTE_RANGE_SIZE, d),
		    "%zu", range);
		SAY("cuPointerGetAttribute (CONTEXT)", cuPointerGetAttribute(&c, CU_POINTER_ATTRIBUTE_CONTEXT, d), "%s",
		    c == pctx ? "primary" : "other");
		SAY("cuPointerGetAttribute (DEVICE_POINTER)",
		    cuPointerGetAttribute(&dptr, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, d), "%s", dptr == d ? "itself" : "other");
		SAY("cuPointerGetAttribute (BUFFER_ID)", cuPointerGetAttribute(&id, CU_POINTER_ATTRIBUTE_BUFFER_ID, d),
		    "%s", id ? "nonzero" : "zero");
		SAY("cuPointerSetAttribute (SYNC_MEMOPS)", cuPointerSetAttribute(&sync, CU_POINTER_ATTRIBUTE_SYNC_MEMOPS, d),
		    "");
	}

	/* Arrays. */
	{
		CUarray a = NULL, b = NULL, a3 = NULL;
		CUDA_ARRAY_DESCRIPTOR ad, got;
		CUDA_ARRAY3D_DESCRIPTOR a3d, got3;

		memset(&ad, 0, sizeof(ad));
		ad.Width = 256;
		ad.Height = 0;
		ad.Format = CU_AD_FORMAT_FLOAT;
		ad.NumChannels = 1;
		SAY("cuArrayCreate", cuArrayCreate(&a, &ad), "");
		SAY("cuArrayCreate", cuArrayCreate(&b, &ad), "");
		SAY("cuArrayGetDescriptor", cuArrayGetDescriptor(&got, a), "%zux%zu fmt=%d ch=%u", got.Width, got.Height,
		    (int)got.Format, got.NumChannels);
		for (i = 0; i < 256; i++)
			((float *)hw)[i] = (float)i * 0.5f;
		SAY("cuMemcpyHtoA", cuMemcpyHtoA(a, 0, hw, 1024), "");
		SAY("cuMemcpyAtoA", cuMemcpyAtoA(b, 0, a, 0, 1024), "");
		SAY("cuMemcpyAtoD", cuMemcpyAtoD(d, b, 0, 1024), "");
		SAY("cuMemcpyDtoA", cuMemcpyDtoA(a, 0, d, 512), "");
		memset(hw + 1024, 0, 1024);
		SAY("cuMemcpyAtoH", cuMemcpyAtoH(hw + 1024, a, 0, 1024), "");
		check(!memcmp(hw, hw + 1024, 1024), "arrays: HtoA, AtoA, AtoD, DtoA, AtoH");
		memset(&a3d, 0, sizeof(a3d));
		a3d.Width = 16;
		a3d.Height = 16;
		a3d.Depth = 4;
		a3d.Format = CU_AD_FORMAT_UNSIGNED_INT8;
		a3d.NumChannels = 4;
		SAY("cuArray3DCreate", cuArray3DCreate(&a3, &a3d), "");
		SAY("cuArray3DGetDescriptor", cuArray3DGetDescriptor(&got3, a3), "%zux%zux%zu fmt=%d ch=%u flags=%u",
		    got3.Width, got3.Height, got3.Depth, (int)got3.Format, got3.NumChannels, got3.Flags);
		SAY("cuArrayDestroy", cuArrayDestroy(a3), "");
		SAY("cuArrayDestroy", cuArrayDestroy(b), "");
		SAY("cuArrayDestroy", cuArrayDestroy(a), "");
	}

	/* Stream-ordered allocation and pools. */
	{
		CUmemoryPool pool = NULL;
		CUmemPoolProps props;
		CUmemAccessDesc acc;
		CUmemLocation loc;
		CUmemAccess_flags fl;
		cuuint64_t thr = 1 << 20, got = 0;
		CUdeviceptr da = 0;

		SAY("cuMemAllocAsync", cuMemAllocAsync(&da, 4096, s), "");
		SAY("cuMemsetD8Async", cuMemsetD8Async(da, 1, 4096, s), "");
		SAY("cuMemFreeAsync", cuMemFreeAsync(da, s), "");
		memset(&props, 0, sizeof(props));
		props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
		props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
		props.location.id = 0;
		SAY("cuMemPoolCreate", cuMemPoolCreate(&pool, &props), "");
		SAY("cuMemPoolSetAttribute", cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &thr), "");
		SAY("cuMemPoolGetAttribute", cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &got), "%llu",
		    (unsigned long long)got);
		memset(&acc, 0, sizeof(acc));
		acc.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
		acc.location.id = 0;
		acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
		SAY("cuMemPoolSetAccess", cuMemPoolSetAccess(pool, &acc, 1), "");
		loc = acc.location;
		SAY("cuMemPoolGetAccess", cuMemPoolGetAccess(&fl, pool, &loc), "%d", (int)fl);
		SAY("cuMemAllocFromPoolAsync", cuMemAllocFromPoolAsync(&dpool, 1 << 16, pool, s), "");
		SAY("cuMemFreeAsync", cuMemFreeAsync(dpool, s), "");
		SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
		SAY("cuMemPoolTrimTo", cuMemPoolTrimTo(pool, 0), "");
		SAY("cuMemPoolDestroy", cuMemPoolDestroy(pool), "");
	}

	/* Virtual memory management: reserve, create, map, access. */
	{
		CUmemAllocationProp prop, got;
		CUmemGenericAllocationHandle h = 0;
		CUmemAccessDesc acc;
		CUmemLocation loc;
		unsigned long long fl = 0;

		memset(&prop, 0, sizeof(prop));
		prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
		prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
		prop.location.id = 0;
		SAY("cuMemGetAllocationGranularity",
		    cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM), "%zu", gran);
		SAY("cuMemAddressReserve", cuMemAddressReserve(&va, gran, 0, 0, 0), "");
		SAY("cuMemCreate", cuMemCreate(&h, gran, &prop, 0), "");
		SAY("cuMemMap", cuMemMap(va, gran, 0, h, 0), "");
		memset(&acc, 0, sizeof(acc));
		acc.location = prop.location;
		acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
		SAY("cuMemSetAccess", cuMemSetAccess(va, gran, &acc, 1), "");
		loc = prop.location;
		SAY("cuMemGetAccess", cuMemGetAccess(&fl, &loc, va), "%llu", fl);
		memset(hw, 0x3c, 4096);
		SAY("cuMemcpyHtoD (mapped)", cuMemcpyHtoD(va, hw, 4096), "");
		memset(hw + 2048, 0, 4096);
		SAY("cuMemcpyDtoH (mapped)", cuMemcpyDtoH(hw + 2048, va, 4096), "");
		check(!memcmp(hw, hw + 2048, 4096), "virtual memory: mapped range round trip");
		memset(&got, 0, sizeof(got));
		SAY("cuMemGetAllocationPropertiesFromHandle", cuMemGetAllocationPropertiesFromHandle(&got, h),
		    "type=%d loc=%d/%d", (int)got.type, (int)got.location.type, got.location.id);
		SAY("cuMemUnmap", cuMemUnmap(va, gran), "");
		SAY("cuMemRelease", cuMemRelease(h), "");
		SAY("cuMemAddressFree", cuMemAddressFree(va, gran), "");
	}

	/* Page-locked host memory (LAKE: the arena). */
	{
		void *p = NULL, *q = NULL;
		unsigned int fl = 0;

		SAY("cuMemHostAlloc", cuMemHostAlloc(&p, 8192, CU_MEMHOSTALLOC_PORTABLE), "");
		/* (The flags themselves differ: docs/compat.md, page-locked memory.) */
		SAY("cuMemHostGetFlags", cuMemHostGetFlags(&fl, p), "");
		memset(p, 0x42, 8192);
		SAY("cuMemcpyHtoD (page-locked)", cuMemcpyHtoD(d, p, 8192), "");
		SAY("cuMemAllocHost", cuMemAllocHost(&q, 8192), "");
		SAY("cuMemcpyDtoH (page-locked)", cuMemcpyDtoH(q, d, 8192), "");
		check(p && q && !memcmp(p, q, 8192), "page-locked host memory round trip");
		SAY("cuMemFreeHost", cuMemFreeHost(q), "");
		SAY("cuMemFreeHost", cuMemFreeHost(p), "");
	}
	SAY("cuMemFree", cuMemFree(dp), "");
	SAY("cuMemFree", cuMemFree(d2), "");
	SAY("cuMemFree", cuMemFree(d), "");
	lake_host_free(hw, 4 * N * sizeof(unsigned int));
}

static void streams(CUcontext pctx, CUfunction vecadd, CUdeviceptr da, CUdeviceptr dc)
{
	CUstream s = NULL, s2 = NULL;
	CUevent ev = NULL;
	CUcontext c = NULL;
	CUdevice d = -1;
	CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_NONE;
	CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
	CUstreamAttrValue v;
	CUgraph g = NULL;
	cuuint64_t cid = 0;
	unsigned long long id = 0;
	unsigned int flags = 0;
	size_t ndeps = 99;
	int lo = 0, hi = 0, prio = 42;
	CUdeviceptr flag = 0;
	unsigned int word = 0;

	cuCtxGetStreamPriorityRange(&lo, &hi);
	SAY("cuStreamCreateWithPriority", cuStreamCreateWithPriority(&s, CU_STREAM_NON_BLOCKING, hi), "");
	SAY("cuStreamCreate", cuStreamCreate(&s2, CU_STREAM_DEFAULT), "");
	SAY("cuStreamGetPriority", cuStreamGetPriority(s, &prio), "%s", prio == hi ? "greatest" : "other");
	SAY("cuStreamGetFlags", cuStreamGetFlags(s, &flags), "%u", flags);
	SAY("cuStreamGetId", cuStreamGetId(s, &id), "%s", id ? "nonzero" : "zero");
	SAY("cuStreamGetCtx", cuStreamGetCtx(s, &c), "%s", c == pctx ? "primary" : "other");
	SAY("cuStreamGetDevice", cuStreamGetDevice(s, &d), "%d", d);
	SAY("cuEventCreate", cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING), "");
	SAY("cuEventRecordWithFlags", cuEventRecordWithFlags(ev, s2, CU_EVENT_RECORD_DEFAULT), "");
	SAY("cuStreamWaitEvent", cuStreamWaitEvent(s, ev, CU_EVENT_WAIT_DEFAULT), "");
	SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
	SAY("cuStreamCopyAttributes", cuStreamCopyAttributes(s2, s), "");
	memset(&v, 0, sizeof(v));
	SAY("cuStreamGetAttribute (PRIORITY)", cuStreamGetAttribute(s, CU_LAUNCH_ATTRIBUTE_PRIORITY, &v), "%s",
	    v.priority == hi ? "greatest" : "other");
	v.syncPolicy = CU_SYNC_POLICY_SPIN;
	SAY("cuStreamSetAttribute (SYNCHRONIZATION_POLICY)",
	    cuStreamSetAttribute(s, CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY, &v), "");
	memset(&v, 0, sizeof(v));
	SAY("cuStreamGetAttribute (SYNCHRONIZATION_POLICY)",
	    cuStreamGetAttribute(s, CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY, &v), "%d", (int)v.syncPolicy);

	/* Stream memory operations. */
	SAY("cuMemAlloc", cuMemAlloc(&flag, 16), "");
	SAY("cuMemsetD32", cuMemsetD32(flag, 0, 4), "");
	SAY("cuStreamWriteValue32", cuStreamWriteValue32(s, flag, 7, CU_STREAM_WRITE_VALUE_DEFAULT), "");
	SAY("cuStreamWaitValue32", cuStreamWaitValue32(s, flag, 7, CU_STREAM_WAIT_VALUE_EQ), "");
	SAY("cuStreamWriteValue64", cuStreamWriteValue64(s, flag + 8, 0x1122334455667788ull, CU_STREAM_WRITE_VALUE_DEFAULT), "");
	SAY("cuStreamWaitValue64", cuStreamWaitValue64(s, flag + 8, 0x1122334455667788ull, CU_STREAM_WAIT_VALUE_GEQ), "");
	SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
	SAY("cuMemcpyDtoH", cuMemcpyDtoH(&word, flag, 4), "%u", word);
	SAY("cuMemFree", cuMemFree(flag), "");

	/* Capture state. */
	REFUSED("cuThreadExchangeStreamCaptureMode", cuThreadExchangeStreamCaptureMode(&mode));
	SAY("cuStreamIsCapturing", cuStreamIsCapturing(s, &cs), "%d", (int)cs);
	SAY("cuStreamBeginCapture", cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "");
	{
		int n = N;
		void *args[] = { &da, &da, &dc, &n };

		SAY("cuLaunchKernel", cuLaunchKernel(vecadd, N / 256, 1, 1, 256, 1, 1, 0, s, args, NULL), "");
	}
	SAY("cuStreamIsCapturing", cuStreamIsCapturing(s, &cs), "%d", (int)cs);
	SAY("cuStreamGetCaptureInfo", cuStreamGetCaptureInfo(s, &cs, &cid, &g, NULL, NULL, &ndeps),
	    "status=%d id=%s graph=%s deps=%zu", (int)cs, cid ? "nonzero" : "zero", g ? "graph" : "NULL", ndeps);
	SAY("cuStreamEndCapture", cuStreamEndCapture(s, &g), "");
	SAY("cuGraphDestroy", cuGraphDestroy(g), "");
	SAY("cuEventDestroy", cuEventDestroy(ev), "");
	SAY("cuStreamDestroy", cuStreamDestroy(s2), "");
	SAY("cuStreamDestroy", cuStreamDestroy(s), "");
}

static void graphs(CUcontext pctx, CUstream s)
{
	CUgraph g = NULL, g2 = NULL, clone = NULL;
	CUgraphExec ge = NULL;
	CUgraphNode n1 = NULL, n2 = NULL, n3 = NULL, n4 = NULL, nodes[8], from[8], to[8];
	CUgraphNodeType type = (CUgraphNodeType)0;
	CUDA_MEMSET_NODE_PARAMS mp, got;
	CUgraphExecUpdateResultInfo info;
	CUevent ev = NULL;
	CUdeviceptr d = 0;
	cuuint64_t flags = 1;
	unsigned int on = 9, word = 0;
	size_t n = 0;

	SAY("cuMemAlloc", cuMemAlloc(&d, 4096), "");
	SAY("cuEventCreate", cuEventCreate(&ev, CU_EVENT_DEFAULT), "");
	SAY("cuGraphCreate", cuGraphCreate(&g, 0), "");
	SAY("cuGraphAddEmptyNode", cuGraphAddEmptyNode(&n1, g, NULL, 0), "");
	memset(&mp, 0, sizeof(mp));
	mp.dst = d;
	mp.value = 0xabcdef01;
	mp.elementSize = 4;
	mp.width = 1024;
	mp.height = 1;
	SAY("cuGraphAddMemsetNode", cuGraphAddMemsetNode(&n2, g, &n1, 1, &mp, pctx), "");
	SAY("cuGraphAddEventRecordNode", cuGraphAddEventRecordNode(&n3, g, &n2, 1, ev), "");
	SAY("cuGraphAddEventWaitNode", cuGraphAddEventWaitNode(&n4, g, NULL, 0, ev), "");
	SAY("cuGraphGetNodes (count)", cuGraphGetNodes(g, NULL, &n), "%zu", n);
	n = 8;
	SAY("cuGraphGetNodes", cuGraphGetNodes(g, nodes, &n), "%zu first=%s", n, nodes[0] == n1 ? "empty" : "other");
	n = 8;
	SAY("cuGraphGetRootNodes", cuGraphGetRootNodes(g, nodes, &n), "%zu", n);
	SAY("cuGraphNodeGetType", cuGraphNodeGetType(n2, &type), "%d", (int)type);
	SAY("cuGraphAddDependencies", cuGraphAddDependencies(g, &n3, &n4, NULL, 1), "");
	n = 8;
	SAY("cuGraphGetEdges", cuGraphGetEdges(g, from, to, NULL, &n), "%zu", n);
	SAY("cuGraphRemoveDependencies", cuGraphRemoveDependencies(g, &n3, &n4, NULL, 1), "");
	n = 8;
	SAY("cuGraphGetEdges", cuGraphGetEdges(g, from, to, NULL, &n), "%zu", n);
	n = 8;
	SAY("cuGraphNodeGetDependencies", cuGraphNodeGetDependencies(n3, nodes, NULL, &n), "%zu %s", n,
	    n && nodes[0] == n2 ? "memset" : "other");
	n = 8;
	SAY("cuGraphNodeGetDependentNodes", cuGraphNodeGetDependentNodes(n1, nodes, NULL, &n), "%zu %s", n,
	    n && nodes[0] == n2 ? "memset" : "other");
	memset(&got, 0, sizeof(got));
	SAY("cuGraphMemsetNodeGetParams", cuGraphMemsetNodeGetParams(n2, &got), "value=%x width=%zu", got.value,
	    got.width);
	mp.value = 0x12345678;
	SAY("cuGraphMemsetNodeSetParams", cuGraphMemsetNodeSetParams(n2, &mp), "");
	SAY("cuGraphDestroyNode", cuGraphDestroyNode(n4), "");
	SAY("cuGraphClone", cuGraphClone(&clone, g), "");
	SAY("cuGraphInstantiate", cuGraphInstantiate(&ge, g, 0), "");
	SAY("cuGraphExecGetFlags", cuGraphExecGetFlags(ge, &flags), "%llu", (unsigned long long)flags);
	mp.value = 0x0badf00d;
	SAY("cuGraphExecMemsetNodeSetParams", cuGraphExecMemsetNodeSetParams(ge, n2, &mp, pctx), "");
	SAY("cuGraphNodeGetEnabled", cuGraphNodeGetEnabled(ge, n2, &on), "%u", on);
	SAY("cuGraphNodeSetEnabled", cuGraphNodeSetEnabled(ge, n2, 1), "");
	SAY("cuGraphUpload", cuGraphUpload(ge, s), "");
	SAY("cuGraphLaunch", cuGraphLaunch(ge, s), "");
	SAY("cuStreamSynchronize", cuStreamSynchronize(s), "");
	SAY("cuMemcpyDtoH", cuMemcpyDtoH(&word, d, 4), "%08x", word);
	/* An update from an equal graph succeeds; from an unrelated one it does not. */
	SAY("cuGraphExecUpdate (its clone)", cuGraphExecUpdate(ge, clone, &info), "result=%d", (int)info.result);
	SAY("cuGraphCreate", cuGraphCreate(&g2, 0), "");
	memset(&info, 0, sizeof(info));
	/* (Its resultInfo comes back only on success through LAKE: docs/compat.md.) */
	SAY("cuGraphExecUpdate (another graph)", cuGraphExecUpdate(ge, g2, &info), "");
	SAY("cuGraphExecDestroy", cuGraphExecDestroy(ge), "");
	SAY("cuGraphDestroy", cuGraphDestroy(g2), "");
	SAY("cuGraphDestroy", cuGraphDestroy(clone), "");
	SAY("cuGraphDestroy", cuGraphDestroy(g), "");
	SAY("cuEventDestroy", cuEventDestroy(ev), "");
	SAY("cuMemFree", cuMemFree(d), "");
}

/* libcuda's texts, which LAKE answers from lakeD (asked once per code). */
static void error_texts(void)
{
	static const CUresult codes[] = {
		CUDA_SUCCESS, CUDA_ERROR_INVALID_VALUE, CUDA_ERROR_OUT_OF_MEMORY, CUDA_ERROR_NOT_INITIALIZED,
		CUDA_ERROR_NO_DEVICE, CUDA_ERROR_INVALID_CONTEXT, CUDA_ERROR_INVALID_HANDLE, CUDA_ERROR_NOT_FOUND,
		CUDA_ERROR_NOT_READY, CUDA_ERROR_ILLEGAL_ADDRESS, CUDA_ERROR_LAUNCH_FAILED, CUDA_ERROR_NOT_SUPPORTED,
		CUDA_ERROR_DEVICE_UNAVAILABLE, CUDA_ERROR_UNKNOWN,
	};
	unsigned int i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *name = NULL, *text = NULL;
		CUresult r1 = cuGetErrorName(codes[i], &name), r2 = cuGetErrorString(codes[i], &text);

		printf("error %d: %d %s | %d %s\n", (int)codes[i], (int)r1, name ? name : "NULL", (int)r2,
		       text ? text : "NULL");
	}
	{
		const char *name = "x";

		printf("error 123456: %d %s\n", (int)cuGetErrorName((CUresult)123456, &name), name ? name : "NULL");
	}
}

static void proc_addresses(void)
{
	static const struct {
		const char *name;
		int version;
	} q[] = {
		{ "cuInit", 12000 }, { "cuMemAlloc", 12000 }, { "cuCtxCreate", 13000 }, { "cuCtxSynchronize", 12080 },
		{ "cuCtxSynchronize", 13000 }, { "cuLaunchKernelEx", 12000 }, { "cuGraphInstantiateWithFlags", 12000 },
		{ "cuNoSuchFunction", 13000 }, { "cuMemAlloc", 1000 },
	};
	unsigned int i;

	for (i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SUCCESS;
		void *p = NULL;
		CUresult r = cuGetProcAddress(q[i].name, &p, q[i].version, CU_GET_PROC_ADDRESS_DEFAULT, &st);

		printf("cuGetProcAddress %s@%d: %s status=%d %s\n", q[i].name, q[i].version, cu_name(r), (int)st,
		       p ? "entry" : "NULL");
	}
}

static void nvml(void)
{
	nvmlDevice_t dev, d2;
	nvmlPciInfo_t pci;
	nvmlBAR1Memory_t bar1;

	memset(&pci, 0, sizeof(pci));
	memset(&bar1, 0, sizeof(bar1));
	nvmlComputeMode_t mode = NVML_COMPUTEMODE_DEFAULT;
	nvmlEnableState_t cur = NVML_FEATURE_DISABLED, pend = NVML_FEATURE_DISABLED;
	nvmlPstates_t ps;
	nvmlEventSet_t set = NULL;
	nvmlEventData_t ed;
	nvmlProcessInfo_t procs[16];
	char name[NVML_DEVICE_NAME_BUFFER_SIZE] = "", uuid[NVML_DEVICE_UUID_BUFFER_SIZE] = "", ver[80] = "";
	unsigned int idx = 99, v = 0, w = 0, np = 16;
	unsigned long long e = 0;
	int cv = 0;

	printf("nvmlInit: %d\n", nvmlInit());
	printf("nvmlDeviceGetHandleByIndex: %d\n", nvmlDeviceGetHandleByIndex(0, &dev));
	printf("nvmlDeviceGetName: %d %s\n", nvmlDeviceGetName(dev, name, sizeof(name)), name);
	printf("nvmlDeviceGetUUID: %d %.12s\n", nvmlDeviceGetUUID(dev, uuid, sizeof(uuid)), uuid);
	printf("nvmlDeviceGetIndex: %d %u\n", nvmlDeviceGetIndex(dev, &idx), idx);
	printf("nvmlDeviceGetPciInfo: %d %s\n", nvmlDeviceGetPciInfo(dev, &pci), pci.busId);
	printf("nvmlDeviceGetHandleByUUID: %d\n", nvmlDeviceGetHandleByUUID(uuid, &d2));
	printf("nvmlDeviceGetIndex (by UUID): %d %u\n", nvmlDeviceGetIndex(d2, &idx), idx);
	printf("nvmlDeviceGetHandleByPciBusId: %d\n", nvmlDeviceGetHandleByPciBusId(pci.busId, &d2));
	printf("nvmlSystemGetDriverVersion: %d %s\n", nvmlSystemGetDriverVersion(ver, sizeof(ver)), ver);
	printf("nvmlSystemGetNVMLVersion: %d %s\n", nvmlSystemGetNVMLVersion(ver, sizeof(ver)), ver);
	printf("nvmlSystemGetCudaDriverVersion: %d %d\n", nvmlSystemGetCudaDriverVersion(&cv), cv);
	printf("nvmlDeviceGetBAR1MemoryInfo: %d %llu\n", nvmlDeviceGetBAR1MemoryInfo(dev, &bar1), bar1.bar1Total);
	printf("nvmlDeviceGetEncoderUtilization: %d\n", nvmlDeviceGetEncoderUtilization(dev, &v, &w));
	printf("nvmlDeviceGetDecoderUtilization: %d\n", nvmlDeviceGetDecoderUtilization(dev, &v, &w));
	printf("nvmlDeviceGetComputeMode: %d %d\n", nvmlDeviceGetComputeMode(dev, &mode), (int)mode);
	printf("nvmlDeviceGetTemperature: %d\n", nvmlDeviceGetTemperature(dev, NVML_TEMPERATURE_GPU, &v));
	check(v > 0 && v < 150, "temperature in degrees C");
	printf("nvmlDeviceGetTemperatureThreshold: %d %u\n",
	       nvmlDeviceGetTemperatureThreshold(dev, NVML_TEMPERATURE_THRESHOLD_SHUTDOWN, &v), v);
	printf("nvmlDeviceGetFanSpeed: %d\n", nvmlDeviceGetFanSpeed(dev, &v));
	printf("nvmlDeviceGetPowerUsage: %d\n", nvmlDeviceGetPowerUsage(dev, &v));
	check(v > 1000, "power usage in milliwatts");
	/* (The limit moves with the board's power management: not compared.) */
	printf("nvmlDeviceGetPowerManagementLimit: %d %s\n", nvmlDeviceGetPowerManagementLimit(dev, &v),
	       v ? "nonzero" : "zero");
	printf("nvmlDeviceGetEnforcedPowerLimit: %d %u\n", nvmlDeviceGetEnforcedPowerLimit(dev, &v), v);
	printf("nvmlDeviceGetTotalEnergyConsumption: %d\n", nvmlDeviceGetTotalEnergyConsumption(dev, &e));
	check(e > 0, "energy consumed");
	printf("nvmlDeviceGetPerformanceState: %d\n", nvmlDeviceGetPerformanceState(dev, &ps));
	printf("nvmlDeviceGetClockInfo: %d\n", nvmlDeviceGetClockInfo(dev, NVML_CLOCK_SM, &v));
	printf("nvmlDeviceGetMaxClockInfo: %d %u\n", nvmlDeviceGetMaxClockInfo(dev, NVML_CLOCK_SM, &v), v);
	printf("nvmlDeviceGetClock: %d\n", nvmlDeviceGetClock(dev, NVML_CLOCK_MEM, NVML_CLOCK_ID_CURRENT, &v));
	printf("nvmlDeviceGetPcieThroughput: %d\n", nvmlDeviceGetPcieThroughput(dev, NVML_PCIE_UTIL_TX_BYTES, &v));
	printf("nvmlDeviceGetPcieReplayCounter: %d\n", nvmlDeviceGetPcieReplayCounter(dev, &v));
	printf("nvmlDeviceGetCurrPcieLinkGeneration: %d %u\n", nvmlDeviceGetCurrPcieLinkGeneration(dev, &v), v);
	printf("nvmlDeviceGetCurrPcieLinkWidth: %d %u\n", nvmlDeviceGetCurrPcieLinkWidth(dev, &v), v);
	printf("nvmlDeviceGetEccMode: %d %d %d\n", nvmlDeviceGetEccMode(dev, &cur, &pend), (int)cur, (int)pend);
	printf("nvmlDeviceGetTotalEccErrors: %d\n",
	       nvmlDeviceGetTotalEccErrors(dev, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC, &e));
	printf("nvmlDeviceGetSupportedEventTypes: %d %llx\n", nvmlDeviceGetSupportedEventTypes(dev, &e), e);
	printf("nvmlEventSetCreate: %d\n", nvmlEventSetCreate(&set));
	printf("nvmlDeviceRegisterEvents: %d\n", nvmlDeviceRegisterEvents(dev, nvmlEventTypeXidCriticalError, set));
	printf("nvmlEventSetWait (1 ms): %d\n", nvmlEventSetWait(set, &ed, 1));
	printf("nvmlEventSetFree: %d\n", nvmlEventSetFree(set));
	printf("nvmlDeviceGetGraphicsRunningProcesses: %d\n", nvmlDeviceGetGraphicsRunningProcesses(dev, &np, procs));
	printf("nvmlShutdown: %d\n", nvmlShutdown());
}

int main(int argc, char **argv)
{
	size_t image_len = 0;
	CUdevice dev;
	CUcontext pctx;
	CUmodule mod;
	CUfunction vecadd;
	CUdeviceptr da, db, dc;
	CUstream s;
	float *ha, *hb, *hc;
	void *image;

	image = gpu_test_start(argc, argv, "gpu_compat_calls", &image_len);
	SAY("cuInit", cuInit(0), "");
	SAY("cuDeviceGet", cuDeviceGet(&dev, 0), "%d", dev);
	SAY("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain(&pctx, dev), "");
	SAY("cuCtxSetCurrent", cuCtxSetCurrent(pctx), "");
	devices(dev);
	contexts(dev, pctx);

	SAY("cuModuleLoadData", cuModuleLoadData(&mod, image), "");
	SAY("cuModuleGetFunction", cuModuleGetFunction(&vecadd, mod, "lake_vecadd"), "");
	SAY("cuMemAlloc", cuMemAlloc(&da, BYTES), "");
	SAY("cuMemAlloc", cuMemAlloc(&db, BYTES), "");
	SAY("cuMemAlloc", cuMemAlloc(&dc, BYTES), "");
	ha = lake_host_alloc(BYTES);
	hb = lake_host_alloc(BYTES);
	hc = lake_host_alloc(BYTES);
	fill(ha, N, 1.0f);
	fill(hb, N, 2.0f);
	SAY("cuMemcpyHtoD", cuMemcpyHtoD(da, ha, BYTES), "");
	SAY("cuMemcpyHtoD", cuMemcpyHtoD(db, hb, BYTES), "");
	modules(dev, image, da, db, dc, hc);
	SAY("cuStreamCreate", cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "");
	memory(pctx, s);
	streams(pctx, vecadd, da, dc);
	graphs(pctx, s);
	error_texts();
	proc_addresses();
	SAY("cuStreamDestroy", cuStreamDestroy(s), "");
	SAY("cuMemFree", cuMemFree(da), "");
	SAY("cuMemFree", cuMemFree(db), "");
	SAY("cuMemFree", cuMemFree(dc), "");
	SAY("cuModuleUnload", cuModuleUnload(mod), "");
	SAY("cuDevicePrimaryCtxRelease", cuDevicePrimaryCtxRelease(dev), "");
	lake_host_free(ha, BYTES);
	lake_host_free(hb, BYTES);
	lake_host_free(hc, BYTES);
	free(image);
	nvml();
	printf("# %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
