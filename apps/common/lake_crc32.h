/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * CRC-32 as zlib computes it (zlib.crc32 in Python), for the checksums of
 * the apps' data files: the kernel's crc32_le() in the kernel, a bitwise
 * loop in user space (a file is read once, at load).
 */
#ifndef LAKE_CRC32_H
#define LAKE_CRC32_H

#ifdef __KERNEL__
#include <linux/crc32.h>

static inline u32 lake_crc32(const void *data, size_t len)
{
	return ~crc32_le(~0u, data, len);
}
#else
#include <stddef.h>
#include <stdint.h>

static inline uint32_t lake_crc32(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t c = ~0u;
	size_t i;
	int b;

	for (i = 0; i < len; i++) {
		c ^= p[i];
		for (b = 0; b < 8; b++)
			c = c >> 1 ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}
#endif

/* A little-endian u32 from a file's bytes. */
static inline uint32_t lake_le32(const unsigned char *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif /* LAKE_CRC32_H */
