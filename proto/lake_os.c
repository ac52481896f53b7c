// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The host primitives of lake_os.h that are not one-liners: reading a module
 * file as the caller (cuModuleLoad: lakeD never opens caller paths) and
 * decompressing a fatbin entry.  The kernel uses its own file reader and its
 * LZ4 and Zstandard libraries; user space uses open/read and Debian's liblz4
 * and libzstd when the build found them (LAKE_HAVE_LZ4, LAKE_HAVE_ZSTD).
 */
#include "lake_os.h"
#include "lake_image.h"

#ifdef __KERNEL__
#include <linux/fs.h>
#include <linux/kernel_read_file.h>
#include <linux/lz4.h>
#include <linux/zstd.h>

int lake_os_read_file(const char *path, __u64 max, void **buf, __u64 *len)
{
	struct file *file;
	void *data = NULL;
	loff_t size;
	ssize_t got;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	file = filp_open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	if (IS_ERR(file))
		return PTR_ERR(file);
	size = i_size_read(file_inode(file));
	got = -EINVAL;
	if (!S_ISREG(file_inode(file)->i_mode) || size <= 0)
		goto out;
	got = -EFBIG;
	if ((__u64)size > max)
		goto out;
	got = -ENOMEM;
	data = kvmalloc(size + 1, GFP_KERNEL);
	if (!data)
		goto out;
	/* Checks the file type, keeps writers out while reading, and fails
	 * with -EFBIG if the file grew past what we allocated. */
	got = kernel_read_file(file, 0, &data, size, NULL, READING_UNKNOWN);
	if (got >= 0) {
		((char *)data)[got] = 0;
		*buf = data;
		*len = got;
		data = NULL;
		got = 0;
	}
out:
	kvfree(data);
	fput(file);
	return got;
}

static int lake_zstd_decompress(const void *src, __u64 srclen, void *dst, __u64 dstlen,
				__u64 *outlen)
{
	size_t wsize = zstd_dctx_workspace_bound();
	void *wksp = kvmalloc(wsize, GFP_KERNEL);
	zstd_dctx *dctx;
	size_t n;
	int ret = -EINVAL;

	if (!wksp)
		return -ENOMEM;
	dctx = zstd_init_dctx(wksp, wsize);
	if (dctx) {
		n = zstd_decompress_dctx(dctx, dst, dstlen, src, srclen);
		if (!zstd_is_error(n)) {
			*outlen = n;
			ret = 0;
		}
	}
	kvfree(wksp);
	return ret;
}

#else /* user space */
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>
#include <sys/stat.h>
#ifdef LAKE_HAVE_LZ4
#include <lz4.h>
#endif
#ifdef LAKE_HAVE_ZSTD
#include <zstd.h>
#endif

int lake_os_read_file(const char *path, __u64 max, void **buf, __u64 *len)
{
	struct stat st;
	char *data = NULL;
	__u64 got = 0;
	ssize_t n;
	int fd, err;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	err = -errno;
	if (fstat(fd, &st) < 0)
		goto out;
	err = -EINVAL;
	if (!S_ISREG(st.st_mode) || st.st_size <= 0)
		goto out;
	err = -EFBIG;
	if ((__u64)st.st_size > max)
		goto out;
	err = -ENOMEM;
	data = malloc((size_t)st.st_size + 1);
	if (!data)
		goto out;
	/* A file that shrinks is read as it is now; one that grows is read up
	 * to the size it had. */
	while (got < (__u64)st.st_size) {
		n = read(fd, data + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -EIO;
			goto out;
		}
		if (n == 0)
			break;
		got += (__u64)n;
	}
	data[got] = 0;
	*buf = data;
	*len = got;
	data = NULL;
	err = 0;
out:
	free(data);
	close(fd);
	return err;
}

#ifdef LAKE_HAVE_ZSTD
static int lake_zstd_decompress(const void *src, __u64 srclen, void *dst, __u64 dstlen,
				__u64 *outlen)
{
	size_t n = ZSTD_decompress(dst, dstlen, src, srclen);

	if (ZSTD_isError(n))
		return -EINVAL;
	*outlen = n;
	return 0;
}
#endif
#endif

/* Both sides have LZ4_decompress_safe(): the kernel's lib/lz4, or liblz4. */
#if defined(__KERNEL__) || defined(LAKE_HAVE_LZ4)
#define LAKE_CAN_LZ4
static int lake_lz4_decompress(const void *src, __u64 srclen, void *dst, __u64 dstlen,
			       __u64 *outlen)
{
	int n;

	if (srclen > INT_MAX || dstlen > INT_MAX)
		return -EINVAL;
	n = LZ4_decompress_safe(src, dst, (int)srclen, (int)dstlen);
	if (n < 0)
		return -EINVAL;
	*outlen = (__u64)n;
	return 0;
}
#endif
#if defined(__KERNEL__) || defined(LAKE_HAVE_ZSTD)
#define LAKE_CAN_ZSTD
#endif

int lake_os_decompress(int codec, const void *src, __u64 srclen, void *dst, __u64 dstlen,
		       __u64 *outlen)
{
	switch (codec) {
#ifdef LAKE_CAN_LZ4
	case LAKE_CODEC_LZ4:
		return lake_lz4_decompress(src, srclen, dst, dstlen, outlen);
#endif
#ifdef LAKE_CAN_ZSTD
	case LAKE_CODEC_ZSTD:
		return lake_zstd_decompress(src, srclen, dst, dstlen, outlen);
#endif
	default:
		(void)src;
		(void)srclen;
		(void)dst;
		(void)dstlen;
		(void)outlen;
		return -EOPNOTSUPP;
	}
}
