// SPDX-License-Identifier: GPL-2.0
/*
 * lake_kbench.ko: the MLP of bench/gpu (lake_bench.c's bench_mlp: 31 -> 256
 * -> 2, the lake_dense kernel of test/gpu/lake_kernels.cu) from kernel
 * context, for the VM bridge's benchmark (bench/bridge): the same calls, the
 * same sizes and the same inputs as the user-space rows it is compared with.
 *
 *   /sys/kernel/debug/lake_kbench/image   write the kernels' fatbin (cat FILE >image;
 *                                         every open for writing starts a new image)
 *   /sys/kernel/debug/lake_kbench/run     write "mlp BATCH ITERATIONS": per iteration,
 *                                         cuMemcpyHtoDAsync (input from lakeShm),
 *                                         two cuLaunchKernel, cuMemcpyDtoHAsync
 *                                         (into lakeShm), cuStreamSynchronize;
 *                                         the write fails (-EIO) if a call failed
 *   /sys/kernel/debug/lake_kbench/result  "mlp batch=B n=N median_ns=M p99_ns=P
 *                                         y0=0x... y1=0x..." (the first sample's
 *                                         outputs as float bits, for checking)
 *
 * Floating point is not used in the kernel: the inputs and weights are the
 * bit patterns of the float values lake_bench.c computes.
 */
#include <linux/debugfs.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include "lake_cuda.h"
#include "lake_kernel.h"

#define LAKE_KB_MAX_IMAGE	(8u << 20)
#define LAKE_KB_MAX_ITERS	1000000u

enum { LAKE_KB_IN = 31, LAKE_KB_HID = 256, LAKE_KB_OUT = 2 };

/* (float)(k % 13) / 13.0f: lake_bench.c's inputs. */
static const u32 lake_kb_x[13] = {
	0x00000000, 0x3d9d89d9, 0x3e1d89d9, 0x3e6c4ec5, 0x3e9d89d9, 0x3ec4ec4f, 0x3eec4ec5,
	0x3f09d89e, 0x3f1d89d9, 0x3f313b14, 0x3f44ec4f, 0x3f589d8a, 0x3f6c4ec5,
};

/* (float)k / 19.0f - 0.5f for k = (i * 37) % 19: its weights. */
static const u32 lake_kb_w[19] = {
	0xbf000000, 0xbee50d79, 0xbeca1af2, 0xbeaf286c, 0xbe9435e5, 0xbe7286bc, 0xbe3ca1b0,
	0xbe06bca2, 0xbda1af28, 0xbcd79430, 0x3cd79440, 0x3da1af28, 0x3e06bca0, 0x3e3ca1b0,
	0x3e7286bc, 0x3e9435e6, 0x3eaf286c, 0x3eca1af2, 0x3ee50d7a,
};

static DEFINE_MUTEX(lake_kb_lock);	/* the image, runs and the result */
static u8 *lake_kb_image;
static size_t lake_kb_image_len;
static char lake_kb_result[256];
static struct dentry *lake_kb_dir;

struct lake_kb_mlp {
	CUdeviceptr dx, dh, dy, dw1, db1, dw2, db2;
	u32 *x, *y;
	size_t xbytes, ybytes;
};

static int lake_kb_cmp(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

#define LAKE_KB_CALL(call)						\
	do {								\
		r = (call);						\
		if (r != CUDA_SUCCESS) {				\
			pr_err("lake_kbench: %s failed: %d\n", #call, r);	\
			goto out;					\
		}							\
	} while (0)

static int lake_kb_run_mlp(unsigned int batch, unsigned int iters)
{
	int in = LAKE_KB_IN, hid = LAKE_KB_HID, out = LAKE_KB_OUT, relu = 1, linear = 0;
	int nbatch = (int)batch;
	struct lake_kb_mlp m = { 0 };
	CUcontext ctx = NULL;
	CUmodule mod = NULL;
	CUfunction dense;
	CUstream s = NULL;
	CUdevice dev = 0;
	void *image = NULL;
	u32 *w = NULL;
	u64 *t = NULL;
	void *a1[] = { &m.dx, &m.dw1, &m.db1, &m.dh, &in, &hid, &nbatch, &relu };
	void *a2[] = { &m.dh, &m.dw2, &m.db2, &m.dy, &hid, &out, &nbatch, &linear };
	int i, warm = (int)iters / 10;
	CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
	int ret = -EIO;

	if (!lake_kb_image_len) {
		pr_err("lake_kbench: no image: write the kernels' fatbin to image first\n");
		return -ENOEXEC;
	}
	m.xbytes = (size_t)batch * LAKE_KB_IN * sizeof(u32);
	m.ybytes = (size_t)batch * LAKE_KB_OUT * sizeof(u32);
	/* Inputs, outputs and the image in lakeShm: no copy on the way. */
	m.x = lake_shm_alloc(m.xbytes);
	m.y = lake_shm_alloc(m.ybytes);
	image = lake_shm_alloc(lake_kb_image_len);
	w = kvmalloc_array(LAKE_KB_HID * LAKE_KB_IN, sizeof(u32), GFP_KERNEL);
	t = kvmalloc_array(iters, sizeof(u64), GFP_KERNEL);
	if (!m.x || !m.y || !image || !w || !t) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(image, lake_kb_image, lake_kb_image_len);
	for (i = 0; i < LAKE_KB_HID * LAKE_KB_IN; i++)
		w[i] = lake_kb_w[(i * 37) % 19];
	for (i = 0; i < (int)batch * LAKE_KB_IN; i++)
		m.x[i] = lake_kb_x[i % 13];

	LAKE_KB_CALL(cuInit(0));
	LAKE_KB_CALL(cuDeviceGet(&dev, 0));
	LAKE_KB_CALL(cuDevicePrimaryCtxRetain(&ctx, dev));
	LAKE_KB_CALL(cuCtxSetCurrent(ctx));
	LAKE_KB_CALL(cuModuleLoadData(&mod, image));
	LAKE_KB_CALL(cuModuleGetFunction(&dense, mod, "lake_dense"));
	LAKE_KB_CALL(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
	LAKE_KB_CALL(cuMemAlloc(&m.dx, m.xbytes));
	LAKE_KB_CALL(cuMemAlloc(&m.dh, (size_t)batch * LAKE_KB_HID * sizeof(u32)));
	LAKE_KB_CALL(cuMemAlloc(&m.dy, m.ybytes));
	LAKE_KB_CALL(cuMemAlloc(&m.dw1, LAKE_KB_HID * LAKE_KB_IN * sizeof(u32)));
	LAKE_KB_CALL(cuMemAlloc(&m.db1, LAKE_KB_HID * sizeof(u32)));
	LAKE_KB_CALL(cuMemAlloc(&m.dw2, LAKE_KB_OUT * LAKE_KB_HID * sizeof(u32)));
	LAKE_KB_CALL(cuMemAlloc(&m.db2, LAKE_KB_OUT * sizeof(u32)));
	LAKE_KB_CALL(cuMemsetD32(m.db1, 0, LAKE_KB_HID));
	LAKE_KB_CALL(cuMemsetD32(m.db2, 0, LAKE_KB_OUT));
	LAKE_KB_CALL(cuMemcpyHtoD(m.dw1, w, LAKE_KB_HID * LAKE_KB_IN * sizeof(u32)));
	LAKE_KB_CALL(cuMemcpyHtoD(m.dw2, w, LAKE_KB_OUT * LAKE_KB_HID * sizeof(u32)));
	for (i = -warm; i < (int)iters; i++) {
		u64 t0 = ktime_get_ns();

		LAKE_KB_CALL(cuMemcpyHtoDAsync(m.dx, m.x, m.xbytes, s));
		LAKE_KB_CALL(cuLaunchKernel(dense, (LAKE_KB_HID + 127) / 128, batch, 1, 128, 1, 1,
					    0, s, a1, NULL));
		LAKE_KB_CALL(cuLaunchKernel(dense, 1, batch, 1, 32, 1, 1, 0, s, a2, NULL));
		LAKE_KB_CALL(cuMemcpyDtoHAsync(m.y, m.dy, m.ybytes, s));
		LAKE_KB_CALL(cuStreamSynchronize(s));
		if (i >= 0)
			t[i] = ktime_get_ns() - t0;
		if (!(i & 63))
			cond_resched();
	}
	sort(t, iters, sizeof(*t), lake_kb_cmp, NULL);
	scnprintf(lake_kb_result, sizeof(lake_kb_result),
		  "mlp batch=%u n=%u median_ns=%llu p99_ns=%llu y0=0x%08x y1=0x%08x\n", batch,
		  iters, t[iters / 2], t[(u64)iters * 99 / 100], m.y[0], m.y[1]);
	pr_info("lake_kbench: %s", lake_kb_result);
	ret = 0;
out:
	if (ret)
		scnprintf(lake_kb_result, sizeof(lake_kb_result), "mlp batch=%u failed: %d\n",
			  batch, ret == -EIO ? (int)r : ret);
	if (m.dx)
		cuMemFree(m.dx);
	if (m.dh)
		cuMemFree(m.dh);
	if (m.dy)
		cuMemFree(m.dy);
	if (m.dw1)
		cuMemFree(m.dw1);
	if (m.db1)
		cuMemFree(m.db1);
	if (m.dw2)
		cuMemFree(m.dw2);
	if (m.db2)
		cuMemFree(m.db2);
	if (s)
		cuStreamDestroy(s);
	if (mod)
		cuModuleUnload(mod);
	if (ctx)
		cuDevicePrimaryCtxRelease(dev);
	kvfree(t);
	kvfree(w);
	lake_shm_free(image, lake_kb_image_len);
	lake_shm_free(m.y, m.ybytes);
	lake_shm_free(m.x, m.xbytes);
	return ret;
}

static int lake_kb_image_open(struct inode *inode, struct file *file)
{
	if (!(file->f_mode & FMODE_WRITE))
		return -EINVAL;
	mutex_lock(&lake_kb_lock);
	lake_kb_image_len = 0;
	mutex_unlock(&lake_kb_lock);
	return 0;
}

static ssize_t lake_kb_image_write(struct file *file, const char __user *buf, size_t len,
				   loff_t *ppos)
{
	ssize_t ret = len;

	mutex_lock(&lake_kb_lock);
	if (!lake_kb_image)
		lake_kb_image = kvmalloc(LAKE_KB_MAX_IMAGE, GFP_KERNEL);
	if (!lake_kb_image)
		ret = -ENOMEM;
	else if (len > LAKE_KB_MAX_IMAGE - lake_kb_image_len)
		ret = -EFBIG;
	else if (copy_from_user(lake_kb_image + lake_kb_image_len, buf, len))
		ret = -EFAULT;
	else
		lake_kb_image_len += len;
	mutex_unlock(&lake_kb_lock);
	return ret;
}

static const struct file_operations lake_kb_image_fops = {
	.owner = THIS_MODULE,
	.open = lake_kb_image_open,
	.write = lake_kb_image_write,
	.llseek = noop_llseek,
};

static ssize_t lake_kb_run_write(struct file *file, const char __user *ubuf, size_t len,
				 loff_t *ppos)
{
	unsigned int batch, iters;
	char cmd[64];
	int ret;

	if (len >= sizeof(cmd))
		return -EINVAL;
	if (copy_from_user(cmd, ubuf, len))
		return -EFAULT;
	cmd[len] = 0;
	if (sscanf(cmd, "mlp %u %u", &batch, &iters) != 2 || !batch || batch > 65535 ||
	    iters < 10 || iters > LAKE_KB_MAX_ITERS)
		return -EINVAL;
	mutex_lock(&lake_kb_lock);
	ret = lake_kb_run_mlp(batch, iters);
	mutex_unlock(&lake_kb_lock);
	return ret ? ret : (ssize_t)len;
}

static const struct file_operations lake_kb_run_fops = {
	.owner = THIS_MODULE,
	.write = lake_kb_run_write,
	.llseek = noop_llseek,
};

static int lake_kb_result_show(struct seq_file *m, void *v)
{
	mutex_lock(&lake_kb_lock);
	seq_puts(m, lake_kb_result);
	mutex_unlock(&lake_kb_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(lake_kb_result);

static int __init lake_kb_init(void)
{
	lake_kb_dir = debugfs_create_dir("lake_kbench", NULL);
	debugfs_create_file("image", 0200, lake_kb_dir, NULL, &lake_kb_image_fops);
	debugfs_create_file("run", 0200, lake_kb_dir, NULL, &lake_kb_run_fops);
	debugfs_create_file("result", 0444, lake_kb_dir, NULL, &lake_kb_result_fops);
	return 0;
}

static void __exit lake_kb_exit(void)
{
	debugfs_remove(lake_kb_dir);
	kvfree(lake_kb_image);
}

module_init(lake_kb_init);
module_exit(lake_kb_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LAKE: the MLP benchmark from kernel context (bench/bridge)");
