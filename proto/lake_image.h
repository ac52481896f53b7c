/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Kernel parameter layouts read from a module image the caller owns.
 *
 * When a caller loads a module (cuModuleLoadData, cuModuleLoad), the client
 * side of the protocol core reads the parameter layout of every kernel in
 * the image itself, so that packing kernelParams never depends on what lakeD
 * says.  Understood: cubins (ELF, the .nv.info.<kernel> sections'
 * EIATTR_KPARAM_INFO records), PTX text (.entry parameter lists) and fatbins
 * holding either, their entries plain or compressed (LZ4, Zstandard) where
 * the host provides the decompressor (lake_os_decompress()).  Nothing here
 * trusts the image either: every offset and length is checked against the
 * bytes there are, and a part that cannot be read only leaves its kernels
 * without a layout.
 */
#ifndef LAKE_IMAGE_H
#define LAKE_IMAGE_H

#include "lake_os.h"
#include <linux/lake.h>

#define LAKE_IMAGE_MAX_KERNELS	4096u		/* kernels kept per image */
#define LAKE_IMAGE_NAME_MAX	1024u		/* bytes of a kernel name, NUL included */
#define LAKE_IMAGE_MAX_BYTES	(256ull << 20)	/* a decompressed entry, a module file */

/* What is known about one kernel's parameters. */
enum lake_kernel_layout {
	LAKE_LAYOUT_KNOWN,	/* read from the image; kernelParams can be packed */
	LAKE_LAYOUT_UNKNOWN,	/* unreadable, too large or contradictory: extra only */
};

struct lake_module;

struct lake_kernel {
	const char *name;
	struct lake_module *mod;
	struct lake_kernel *hnext;	/* in the transport's function table while bound */
	__u64 func;			/* the function token bound to it; 0: none */
	__u32 count;			/* parameters */
	__u32 size;			/* bytes of the packed parameter buffer */
	const __u16 *offset;		/* count entries each */
	const __u16 *psize;
	__u8 layout;			/* enum lake_kernel_layout */
};

/*
 * A loaded image's kernels, in one allocation.  Kept by the transport under
 * its module token; a launch holds a reference while it packs, so that an
 * unload or a daemon's detach never frees a layout in use.
 */
struct lake_module {
	struct lake_module *next;	/* in the transport's module table */
	__u64 token;			/* lakeD's handle of the loaded module */
	unsigned int refs;		/* under the transport's lock */
	unsigned int loads;		/* loads lakeD answered with this token */
	__u32 nkernels;
	bool partial;			/* some part of the image could not be read */
	struct lake_kernel kernels[];
};

/* Codecs of compressed fatbin entries (lake_os_decompress()). */
enum lake_codec {
	LAKE_CODEC_LZ4,		/* an LZ4 block */
	LAKE_CODEC_ZSTD,	/* a Zstandard frame */
};

/*
 * Reads the kernels of @image (@len bytes at most: a PTX image ends at its
 * NUL or there).  Returns LAKE_OK with *@out set (a module with no kernels
 * for an image it cannot read), or LAKE_E_NOMEM.
 */
int lake_image_parse(const void *image, __u64 len, struct lake_module **out);
void lake_module_free(struct lake_module *m);
/* Do two images have the same kernels with the same layouts? */
bool lake_module_same(const struct lake_module *a, const struct lake_module *b);
/* The kernel called @name, or NULL. */
struct lake_kernel *lake_module_kernel(struct lake_module *m, const char *name);

#endif /* LAKE_IMAGE_H */
