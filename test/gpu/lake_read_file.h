/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Reading a kernels' fatbin (or any file) into malloc()ed memory: what the
 * GPU tests, the benchmark and the test/compat samples share.  Plain C, no
 * CUDA header: usable before cuInit and against any cuda.h.
 */
#ifndef LAKE_READ_FILE_H
#define LAKE_READ_FILE_H

#include <stdio.h>
#include <stdlib.h>

/* The whole file in malloc()ed memory; NULL on error. */
static inline void *lake_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	void *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) > 0 && !fseek(f, 0, SEEK_SET)) {
		buf = malloc((size_t)n);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

#endif /* LAKE_READ_FILE_H */
