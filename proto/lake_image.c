// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Reading kernel parameter layouts out of module images (see lake_image.h).
 *
 * The formats, as NVIDIA's tools write them (checked against nvcc 13):
 *
 * - cubin: a little-endian ELF64.  Each kernel has a section
 *   ".nv.info.<name>" of attribute records {u8 format, u8 attribute, u16
 *   value or size}: formats 1-3 carry no payload beyond the u16, format 4
 *   (EIFMT_SVAL) is followed by u16-size bytes.  EIATTR_KPARAM_INFO (0x17,
 *   12 bytes: u32 index, u16 ordinal, u16 offset, u32 flags whose top 14
 *   bits are the size) describes one parameter; EIATTR_KPARAM_INFO_V2 (0x45,
 *   the same but a plain u32 size) is what nvcc writes for parameters past
 *   the 14-bit size; EIATTR_PARAM_CBANK (0x0a, u16 size at byte 6) and
 *   EIATTR_CBANK_PARAM_SIZE (0x19, a u16 value) give the total.
 * - PTX: ".entry name ( .param [.align N] .type [.ptr ...] name[[count]], ... )";
 *   each parameter at the next multiple of its alignment (the .align before
 *   the type, else the type's size), as the CUDA ABI lays them out.
 * - fatbin: a header {u32 magic 0xBA55ED50, u16 version, u16 header size,
 *   u64 size of the entries}, then entries {u16 kind (1 PTX, 2 cubin), u16,
 *   u32 header size, u64 payload size, u32 compressed size at 16, u64 flags
 *   at 40, u64 decompressed size at 56}; flag 0x2000 marks an LZ4 block,
 *   0x8000 a Zstandard frame (nvcc 13 compresses PTX with Zstandard by
 *   default, cubins too with --compress-mode=size).
 *
 * A kernel whose records are missing, malformed, past LAKE_MAX_KPARAMS or
 * LAKE_KPARAMS_MAX_SIZE, or that two entries of a fatbin describe
 * differently, is kept with an unknown layout.
 */
#include "lake_call.h"
#include "lake_image.h"

#define LAKE_FATBIN_MAGIC	0xBA55ED50u
#define LAKE_FATBIN_PTX		1u
#define LAKE_FATBIN_ELF		2u
#define LAKE_FATBIN_LZ4		0x2000ull
#define LAKE_FATBIN_ZSTD	0x8000ull
#define LAKE_FATBIN_MAX_ENTRIES	4096u

#define LAKE_ELF_NOBITS		8u
#define LAKE_NVINFO_PREFIX	".nv.info."

#define LAKE_EIFMT_SVAL		4u
#define LAKE_EIATTR_PARAM_CBANK		0x0au
#define LAKE_EIATTR_KPARAM_INFO		0x17u
#define LAKE_EIATTR_CBANK_PARAM_SIZE	0x19u
#define LAKE_EIATTR_KPARAM_INFO_V2	0x45u

/* The log of kernels found so far: records {struct lake_krec, name bytes,
 * count x (u16 offset, u16 size)}, 4-byte aligned. */
struct lake_krec {
	__u32 namelen;
	__u32 count;
	__u32 size;
	__u32 layout;
};

#define LAKE_BUILD_MAX		(16u << 20)	/* bytes of log: then the image is partial */

struct lake_build {
	__u8 *log;
	__u32 len, cap;
	__u32 nkernels;
	bool partial;
	bool nomem;
	/* One kernel's parameters while its records are read. */
	__u16 off[LAKE_MAX_KPARAMS];
	__u16 size[LAKE_MAX_KPARAMS];
	bool seen[LAKE_MAX_KPARAMS];
};

/* Little-endian loads that tolerate any alignment. */
static __u64 lake_le(const __u8 *p, unsigned int n)
{
	__u64 v = 0;

	while (n--)
		v = (v << 8) | p[n];
	return v;
}

static bool lake_build_grow(struct lake_build *b, __u32 need)
{
	__u32 cap = b->cap ? b->cap : 4096;
	__u8 *log;

	while (cap - b->len < need) {
		if (cap >= LAKE_BUILD_MAX / 2)
			return false;
		cap *= 2;
	}
	if (cap == b->cap)
		return true;
	log = lake_os_zalloc(cap);
	if (!log) {
		b->nomem = true;
		return false;
	}
	if (b->log)
		memcpy(log, b->log, b->len);
	lake_os_free(b->log);
	b->log = log;
	b->cap = cap;
	return true;
}

/* Adds a kernel with the parameters in b->off/size[0..count). */
static void lake_build_add(struct lake_build *b, const char *name, __u32 namelen,
			   __u32 count, __u32 size, enum lake_kernel_layout layout)
{
	struct lake_krec rec = { namelen, 0, 0, layout };
	__u32 need, i;
	__u8 *p;

	if (layout == LAKE_LAYOUT_KNOWN) {
		rec.count = count;
		rec.size = size;
	}
	need = sizeof(rec) + ((namelen + 3u) & ~3u) + 4u * rec.count;
	if (!namelen || namelen >= LAKE_IMAGE_NAME_MAX)
		return;	/* no cuModuleGetFunction can name it */
	if (b->nkernels >= LAKE_IMAGE_MAX_KERNELS || !lake_build_grow(b, need)) {
		b->partial = true;
		return;
	}
	p = b->log + b->len;
	memcpy(p, &rec, sizeof(rec));
	memcpy(p + sizeof(rec), name, namelen);
	p += sizeof(rec) + ((namelen + 3u) & ~3u);
	for (i = 0; i < rec.count; i++) {
		memcpy(p + 4 * i, &b->off[i], 2);
		memcpy(p + 4 * i + 2, &b->size[i], 2);
	}
	b->len += need;
	b->nkernels++;
}

/*
 * Checks the parameters gathered in b->off/size/seen (ordinals 0..count-1,
 * each once, in increasing non-overlapping order, ending at @total when the
 * image gave one) and adds the kernel.
 */
static void lake_build_finish_kernel(struct lake_build *b, const char *name, __u32 namelen,
				     __u32 count, bool bad, bool have_total, __u32 total)
{
	__u32 i, end = 0;

	for (i = 0; i < count && !bad; i++) {
		if (!b->seen[i] || b->off[i] < end || !b->size[i])
			bad = true;
		else
			end = (__u32)b->off[i] + b->size[i];
	}
	if (!bad && have_total && total != end)
		bad = true;
	if (end > LAKE_KPARAMS_MAX_SIZE)
		bad = true;
	lake_build_add(b, name, namelen, count, end,
		       bad ? LAKE_LAYOUT_UNKNOWN : LAKE_LAYOUT_KNOWN);
}

/* ---- cubin ---------------------------------------------------------------- */

static void lake_nvinfo_parse(struct lake_build *b, const char *name, __u32 namelen,
			      const __u8 *q, __u64 size)
{
	__u32 count = 0, total = 0, ord;
	bool bad = false, have_total = false;
	__u64 o = 0, sz;

	memset(b->seen, 0, sizeof(b->seen));
	while (o + 4 <= size) {
		unsigned int fmt = q[o], attr = q[o + 1];
		__u64 l = lake_le(q + o + 2, 2);
		const __u8 *pl = q + o + 4;

		if (fmt != LAKE_EIFMT_SVAL) {
			if (fmt < 1 || fmt > 3) {
				bad = true;	/* a format we do not know the length of */
				break;
			}
			if (attr == LAKE_EIATTR_CBANK_PARAM_SIZE) {
				total = (__u32)l;
				have_total = true;
			}
			o += 4;
			continue;
		}
		if (l > size - o - 4) {
			bad = true;
			break;
		}
		if (attr == LAKE_EIATTR_KPARAM_INFO || attr == LAKE_EIATTR_KPARAM_INFO_V2) {
			if (l != 12) {
				bad = true;
				break;
			}
			ord = (__u32)lake_le(pl + 4, 2);
			sz = lake_le(pl + 8, 4);
			if (attr == LAKE_EIATTR_KPARAM_INFO)
				sz >>= 18;
			if (ord >= LAKE_MAX_KPARAMS || b->seen[ord] || sz > 0xffff) {
				bad = true;
				break;
			}
			b->seen[ord] = true;
			b->off[ord] = (__u16)lake_le(pl + 6, 2);
			b->size[ord] = (__u16)sz;
			count++;
		} else if (attr == LAKE_EIATTR_PARAM_CBANK && l == 8) {
			total = (__u32)lake_le(pl + 6, 2);
			have_total = true;
		}
		o += 4 + l;
	}
	if (o != size)
		bad = true;
	lake_build_finish_kernel(b, name, namelen, count, bad, have_total, total);
}

static void lake_elf_parse(struct lake_build *b, const __u8 *p, __u64 len)
{
	__u64 shoff, stroff, strsize, off, size;
	__u32 shentsize, shnum, shstrndx, i, prefix = sizeof(LAKE_NVINFO_PREFIX) - 1;
	const __u8 *sh;

	if (len < 64 || p[0] != 0x7f || p[1] != 'E' || p[2] != 'L' || p[3] != 'F' ||
	    p[4] != 2 || p[5] != 1)
		goto partial;	/* only little-endian ELF64 cubins */
	shoff = lake_le(p + 0x28, 8);
	shentsize = (__u32)lake_le(p + 0x3A, 2);
	shnum = (__u32)lake_le(p + 0x3C, 2);
	shstrndx = (__u32)lake_le(p + 0x3E, 2);
	if (shentsize < 64 || !shnum || shstrndx >= shnum || shoff > len ||
	    (__u64)shnum * shentsize > len - shoff)
		goto partial;
	sh = p + shoff + (__u64)shstrndx * shentsize;
	stroff = lake_le(sh + 0x18, 8);
	strsize = lake_le(sh + 0x20, 8);
	if (lake_le(sh + 4, 4) == LAKE_ELF_NOBITS || stroff > len || strsize > len - stroff)
		goto partial;
	for (i = 0; i < shnum; i++) {
		const char *name;
		__u64 noff, n;

		sh = p + shoff + (__u64)i * shentsize;
		noff = lake_le(sh, 4);
		if (noff >= strsize)
			continue;
		name = (const char *)p + stroff + noff;
		n = strnlen(name, strsize - noff);
		if (n == strsize - noff || n <= prefix || memcmp(name, LAKE_NVINFO_PREFIX, prefix))
			continue;
		off = lake_le(sh + 0x18, 8);
		size = lake_le(sh + 0x20, 8);
		if (lake_le(sh + 4, 4) == LAKE_ELF_NOBITS || off > len || size > len - off) {
			lake_build_add(b, name + prefix, (__u32)(n - prefix), 0, 0,
				       LAKE_LAYOUT_UNKNOWN);
			continue;
		}
		lake_nvinfo_parse(b, name + prefix, (__u32)(n - prefix), p + off, size);
	}
	return;
partial:
	b->partial = true;
}

/* ---- PTX ------------------------------------------------------------------ */

struct lake_ptx {
	const char *s, *end;	/* what is left */
	const char *tok;	/* the current token */
	__u32 toklen;
};

static bool lake_ptx_ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' || c == '%';
}

static bool lake_ptx_ident_char(char c)
{
	return lake_ptx_ident_start(c) || (c >= '0' && c <= '9');
}

/* The next token: a directive (".name"), an identifier, a number or one
 * punctuation character; comments and strings are skipped.  False at the end. */
static bool lake_ptx_next(struct lake_ptx *x)
{
	const char *s = x->s, *e = x->end;

	for (;;) {
		while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' ||
				 *s == '\v'))
			s++;
		if (e - s >= 2 && s[0] == '/' && s[1] == '/') {
			while (s < e && *s != '\n')
				s++;
			continue;
		}
		if (e - s >= 2 && s[0] == '/' && s[1] == '*') {
			for (s += 2; s < e && !(e - s >= 2 && s[0] == '*' && s[1] == '/'); s++)
				;
			s = e - s >= 2 ? s + 2 : e;
			continue;
		}
		if (s < e && *s == '"') {
			for (s++; s < e && *s != '"'; s++)
				if (*s == '\\' && s + 1 < e)
					s++;
			if (s < e)
				s++;
			continue;
		}
		break;
	}
	if (s >= e) {
		x->s = e;
		return false;
	}
	x->tok = s;
	if (*s == '.' || lake_ptx_ident_start(*s) || (*s >= '0' && *s <= '9')) {
		for (s++; s < e && lake_ptx_ident_char(*s); s++)
			;
	} else {
		s++;
	}
	x->toklen = (__u32)(s - x->tok);
	x->s = s;
	return true;
}

static bool lake_ptx_is(const struct lake_ptx *x, const char *word)
{
	__u32 n = (__u32)strlen(word);

	return x->toklen == n && !memcmp(x->tok, word, n);
}

/* A decimal number token of at most 6 digits. */
static bool lake_ptx_number(const struct lake_ptx *x, __u32 *v)
{
	__u32 i;

	if (!x->toklen || x->toklen > 6)
		return false;
	*v = 0;
	for (i = 0; i < x->toklen; i++) {
		if (x->tok[i] < '0' || x->tok[i] > '9')
			return false;
		*v = *v * 10 + (__u32)(x->tok[i] - '0');
	}
	return true;
}

/* The size of a fundamental PTX type token (".u32"...), 0 if none. */
static __u32 lake_ptx_type_size(const struct lake_ptx *x)
{
	static const struct {
		const char *name;
		__u32 size;
	} types[] = {
		{ ".b8", 1 }, { ".s8", 1 }, { ".u8", 1 },
		{ ".b16", 2 }, { ".s16", 2 }, { ".u16", 2 }, { ".f16", 2 }, { ".bf16", 2 },
		{ ".b32", 4 }, { ".s32", 4 }, { ".u32", 4 }, { ".f32", 4 }, { ".f16x2", 4 },
		{ ".bf16x2", 4 },
		{ ".b64", 8 }, { ".s64", 8 }, { ".u64", 8 }, { ".f64", 8 },
		{ ".b128", 16 },
	};
	unsigned int i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (lake_ptx_is(x, types[i].name))
			return types[i].size;
	return 0;
}

/*
 * One ".param ..." up to (not including) its ',' or ')': its alignment and
 * size.  False if it is not a parameter this reader understands.
 */
static bool lake_ptx_param(struct lake_ptx *x, __u32 *align, __u32 *size)
{
	__u32 elem = 0, vec = 1, count = 1, v;
	bool named = false;

	*align = 0;
	if (!lake_ptx_is(x, ".param"))
		return false;
	while (lake_ptx_next(x)) {
		if (lake_ptx_is(x, ",") || lake_ptx_is(x, ")"))
			break;
		if (lake_ptx_is(x, ".align")) {
			if (!lake_ptx_next(x) || !lake_ptx_number(x, &v) || !v || (v & (v - 1)) ||
			    v > 4096)
				return false;
			if (!elem)
				*align = v;	/* after .ptr it is the pointee's: not ours */
		} else if (lake_ptx_is(x, ".ptr") || lake_ptx_is(x, ".global") ||
			   lake_ptx_is(x, ".const") || lake_ptx_is(x, ".local") ||
			   lake_ptx_is(x, ".shared")) {
			if (!elem)
				return false;
		} else if (lake_ptx_is(x, ".v2") || lake_ptx_is(x, ".v4") || lake_ptx_is(x, ".v8")) {
			vec = (__u32)(x->tok[2] - '0');
		} else if (lake_ptx_type_size(x)) {
			if (elem)
				return false;
			elem = lake_ptx_type_size(x);
		} else if (lake_ptx_ident_start(x->tok[0]) && elem && !named) {
			named = true;
		} else if (lake_ptx_is(x, "[") && named && count == 1) {
			if (!lake_ptx_next(x) || !lake_ptx_number(x, &count) || !count ||
			    !lake_ptx_next(x) || !lake_ptx_is(x, "]"))
				return false;
		} else {
			return false;
		}
	}
	if (!elem || !named)
		return false;
	if (!*align)
		*align = elem * vec;
	*size = elem * vec * count;
	return *size <= 0xffff;
}

static void lake_ptx_parse(struct lake_build *b, const char *p, __u64 len)
{
	struct lake_ptx x = { p, p + strnlen(p, len), NULL, 0 };

	while (lake_ptx_next(&x)) {
		const char *name;
		__u32 namelen, count = 0, end = 0, align, size;
		bool bad = false;

		if (!lake_ptx_is(&x, ".entry"))
			continue;
		if (!lake_ptx_next(&x) || !lake_ptx_ident_start(x.tok[0]))
			continue;
		name = x.tok;
		namelen = x.toklen;
		memset(b->seen, 0, sizeof(b->seen));
		if (!lake_ptx_next(&x)) {
			bad = true;	/* cut off after its name */
		} else if (lake_ptx_is(&x, "(")) {
			if (!lake_ptx_next(&x)) {
				bad = true;
			} else if (!lake_ptx_is(&x, ")")) {
				for (;;) {
					if (count == LAKE_MAX_KPARAMS || !lake_ptx_param(&x, &align, &size)) {
						bad = true;
						break;
					}
					end = (end + align - 1) & ~(align - 1);
					if (end > 0xffff) {
						bad = true;
						break;
					}
					b->off[count] = (__u16)end;
					b->size[count] = (__u16)size;
					b->seen[count] = true;
					count++;
					end += size;
					if (lake_ptx_is(&x, ")"))
						break;
					if (!lake_ptx_is(&x, ",") || !lake_ptx_next(&x)) {
						bad = true;
						break;
					}
				}
			}
			/* A whole entry goes on (its body or a directive). */
			if (!bad && !lake_ptx_next(&x))
				bad = true;
		}
		lake_build_finish_kernel(b, name, namelen, count, bad, false, 0);
	}
}

/* ---- fatbin --------------------------------------------------------------- */

static void lake_fatbin_parse(struct lake_build *b, const __u8 *p, __u64 len)
{
	__u64 hs, fs, end, o;
	unsigned int n = 0;

	if (len < 16)
		goto partial;
	hs = lake_le(p + 6, 2);
	fs = lake_le(p + 8, 8);
	if (hs < 16 || hs > len)
		goto partial;
	end = len;
	if (fs <= len - hs)
		end = hs + fs;
	else
		b->partial = true;	/* truncated: read what is there */
	for (o = hs; o + 16 <= end; n++) {
		__u64 kind = lake_le(p + o, 2), ehs = lake_le(p + o + 4, 4);
		__u64 psize = lake_le(p + o + 8, 8), flags = 0, data_len;
		const __u8 *data = p + o + ehs;
		__u8 *plain = NULL;

		if (n == LAKE_FATBIN_MAX_ENTRIES || ehs < 16 || ehs > end - o || psize > end - o - ehs)
			goto partial;
		if (ehs >= 64)
			flags = lake_le(p + o + 40, 8);
		data_len = psize;
		if (flags & (LAKE_FATBIN_LZ4 | LAKE_FATBIN_ZSTD)) {
			__u64 csize = lake_le(p + o + 16, 4), dsize = lake_le(p + o + 56, 8), got = 0;
			int codec = (flags & LAKE_FATBIN_LZ4) ? LAKE_CODEC_LZ4 : LAKE_CODEC_ZSTD;

			if (ehs < 64 || (flags & LAKE_FATBIN_LZ4 && flags & LAKE_FATBIN_ZSTD) ||
			    csize > psize || !dsize || dsize > LAKE_IMAGE_MAX_BYTES) {
				b->partial = true;
				goto next;
			}
			plain = lake_os_zalloc(dsize + 1);	/* + a NUL after PTX */
			if (!plain) {
				b->nomem = true;
				return;
			}
			if (lake_os_decompress(codec, data, csize, plain, dsize, &got) || got > dsize) {
				b->partial = true;
				goto next;
			}
			data = plain;
			data_len = got;
		}
		if (kind == LAKE_FATBIN_PTX)
			lake_ptx_parse(b, (const char *)data, data_len);
		else if (kind == LAKE_FATBIN_ELF)
			lake_elf_parse(b, data, data_len);
next:
		lake_os_free(plain);
		if (b->nomem)
			return;
		o += ehs + psize;
	}
	return;
partial:
	b->partial = true;
}

/* ---- the parsed module ---------------------------------------------------- */

static const struct lake_krec *lake_rec(const struct lake_build *b, __u32 off)
{
	return (const struct lake_krec *)(b->log + off);
}

static const __u8 *lake_rec_params(const struct lake_krec *r)
{
	return (const __u8 *)(r + 1) + ((r->namelen + 3u) & ~3u);
}

static __u32 lake_rec_next(const struct lake_krec *r, __u32 off)
{
	return off + (__u32)sizeof(*r) + ((r->namelen + 3u) & ~3u) + 4u * r->count;
}

static bool lake_rec_same_name(const struct lake_krec *a, const struct lake_krec *b)
{
	return a->namelen == b->namelen && !memcmp(a + 1, b + 1, a->namelen);
}

static bool lake_rec_same_layout(const struct lake_krec *a, const struct lake_krec *b)
{
	return a->layout == b->layout && a->count == b->count && a->size == b->size &&
	       !memcmp(lake_rec_params(a), lake_rec_params(b), 4u * a->count);
}

/* Packs the log into one struct lake_module: each name once; a name two
 * entries describe differently gets an unknown layout. */
static struct lake_module *lake_build_module(struct lake_build *b)
{
	__u32 *at, *keep, i, j, off, nk = 0, nparams = 0, names = 0;
	struct lake_module *m = NULL;
	__u16 *pp;
	char *np;

	at = lake_os_zalloc(sizeof(*at) * (b->nkernels + 1) * 2);
	if (!at)
		return NULL;
	keep = at + b->nkernels + 1;	/* 0: dropped, 1: kept, 2: kept, layout unknown */
	for (i = 0, off = 0; i < b->nkernels; i++) {
		const struct lake_krec *r = lake_rec(b, off);

		at[i] = off;
		keep[i] = r->layout == LAKE_LAYOUT_KNOWN ? 1 : 2;
		for (j = 0; j < i; j++) {
			const struct lake_krec *q = lake_rec(b, at[j]);

			if (!keep[j] || !lake_rec_same_name(q, r))
				continue;
			if (!lake_rec_same_layout(q, r))
				keep[j] = 2;
			keep[i] = 0;
			break;
		}
		off = lake_rec_next(r, off);
	}
	for (i = 0; i < b->nkernels; i++) {
		const struct lake_krec *r = lake_rec(b, at[i]);

		if (!keep[i])
			continue;
		nk++;
		nparams += keep[i] == 1 ? r->count : 0;
		names += r->namelen + 1;
	}
	m = lake_os_zalloc(sizeof(*m) + nk * sizeof(m->kernels[0]) + 4u * nparams + names);
	if (!m)
		goto out;
	m->nkernels = nk;
	m->partial = b->partial;
	pp = (__u16 *)&m->kernels[nk];
	np = (char *)(pp + 2 * nparams);
	for (i = 0, j = 0; i < b->nkernels; i++) {
		const struct lake_krec *r = lake_rec(b, at[i]);
		struct lake_kernel *k = &m->kernels[j];
		const __u8 *params = lake_rec_params(r);
		__u32 t;

		if (!keep[i])
			continue;
		j++;
		k->mod = m;
		k->name = np;
		memcpy(np, r + 1, r->namelen);
		np += r->namelen + 1;
		k->layout = keep[i] == 1 ? LAKE_LAYOUT_KNOWN : LAKE_LAYOUT_UNKNOWN;
		if (k->layout != LAKE_LAYOUT_KNOWN)
			continue;
		k->count = r->count;
		k->size = r->size;
		k->offset = pp;
		k->psize = pp + r->count;
		for (t = 0; t < r->count; t++) {
			memcpy(&pp[t], params + 4 * t, 2);
			memcpy(&pp[r->count + t], params + 4 * t + 2, 2);
		}
		pp += 2 * r->count;
	}
out:
	lake_os_free(at);
	return m;
}

int lake_image_parse(const void *image, __u64 len, struct lake_module **out)
{
	const __u8 *p = image;
	struct lake_build *b;
	struct lake_module *m = NULL;

	b = lake_os_zalloc(sizeof(*b));
	if (!b)
		return LAKE_E_NOMEM;
	if (!p || !len)
		b->partial = true;
	else if (len >= 4 && lake_le(p, 4) == LAKE_FATBIN_MAGIC)
		lake_fatbin_parse(b, p, len);
	else if (len >= 4 && p[0] == 0x7f && p[1] == 'E' && p[2] == 'L' && p[3] == 'F')
		lake_elf_parse(b, p, len);
	else
		lake_ptx_parse(b, image, len);
	if (!b->nomem)
		m = lake_build_module(b);
	lake_os_free(b->log);
	lake_os_free(b);
	if (!m)
		return LAKE_E_NOMEM;
	*out = m;
	return LAKE_OK;
}

void lake_module_free(struct lake_module *m)
{
	lake_os_free(m);
}

bool lake_module_same(const struct lake_module *a, const struct lake_module *b)
{
	__u32 i;

	if (a->nkernels != b->nkernels)
		return false;
	for (i = 0; i < a->nkernels; i++) {
		const struct lake_kernel *x = &a->kernels[i], *y = &b->kernels[i];

		if (strcmp(x->name, y->name) || x->layout != y->layout || x->count != y->count ||
		    x->size != y->size ||
		    (x->count && (memcmp(x->offset, y->offset, 2u * x->count) ||
				  memcmp(x->psize, y->psize, 2u * x->count))))
			return false;
	}
	return true;
}

struct lake_kernel *lake_module_kernel(struct lake_module *m, const char *name)
{
	__u32 i;

	for (i = 0; i < m->nkernels; i++)
		if (!strcmp(m->kernels[i].name, name))
			return &m->kernels[i];
	return NULL;
}

/* ---- image sizes (cuModuleLoadData takes no length) ------------------------ */

static __u64 lake_elf64_size(const __u8 *p, __u64 max)
{
	__u64 end, shoff, phoff, off, size;
	__u32 shentsize, shnum, phentsize, phnum, i;
	bool ovf = false;

	if (max < 64)
		return 0;
	phoff = lake_le(p + 0x20, 8);
	shoff = lake_le(p + 0x28, 8);
	phentsize = (__u32)lake_le(p + 0x36, 2);
	phnum = (__u32)lake_le(p + 0x38, 2);
	shentsize = (__u32)lake_le(p + 0x3A, 2);
	shnum = (__u32)lake_le(p + 0x3C, 2);
	end = 64;
	size = lake_sz_add(&ovf, phoff, lake_sz_mul(&ovf, phnum, phentsize));
	if (size > end)
		end = size;
	size = lake_sz_add(&ovf, shoff, lake_sz_mul(&ovf, shnum, shentsize));
	if (ovf || size > max)
		return 0;
	if (size > end)
		end = size;
	if (shentsize < 64)
		return shnum ? 0 : end;
	for (i = 0; i < shnum; i++) {
		const __u8 *sh = p + shoff + (__u64)i * shentsize;

		if (lake_le(sh + 4, 4) == LAKE_ELF_NOBITS)
			continue;
		off = lake_le(sh + 0x18, 8);
		size = lake_sz_add(&ovf, off, lake_le(sh + 0x20, 8));
		if (ovf)
			return 0;
		if (size > end)
			end = size;
	}
	return end <= max ? end : 0;
}

__u64 lake_module_image_size(const void *image, __u64 max)
{
	const __u8 *p = image;
	__u64 n;

	if (!p)
		return 0;
	if (max >= 4 && lake_le(p, 4) == LAKE_FATBIN_MAGIC) {
		bool ovf = false;

		if (max < 16)
			return 0;	/* a truncated fatbin header */
		n = lake_sz_add(&ovf, lake_le(p + 6, 2), lake_le(p + 8, 8));
		return (!ovf && n <= max) ? n : 0;
	}
	if (max >= 4 && p[0] == 0x7f && p[1] == 'E' && p[2] == 'L' && p[3] == 'F')
		return (max >= 64 && p[4] == 2) ? lake_elf64_size(p, max) : 0;
	/* PTX text: up to and including its NUL. */
	for (n = 0; n < max; n++)
		if (!p[n])
			return n + 1;
	return 0;
}
