/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * KNN, the LAKE paper's nearest-neighbour detector: shapes, the data set
 * and the exact arithmetic.  Plain C: included by the CPU code (kernel and
 * user space), the app and the CUDA kernels.
 *
 * 4096 labelled reference points of 128 float features; for each query
 * the 16 nearest by Euclidean distance, sorted (ties: the lower index
 * first), and the majority label among them (ties: the label of the
 * nearer point).  The squared distance is computed in float32 exactly as
 *     acc = 0; for k in 0..127: d = q[k] - r[k]; acc = acc + d * d
 * (each operation rounded, no fused multiply-add), and the distance is
 * sqrt(acc), correctly rounded: the CPU, the GPU and numpy agree bit for
 * bit, so results can be compared exactly.
 */
#ifndef KNN_MODEL_H
#define KNN_MODEL_H

#define KNN_NREF	4096	/* reference points */
#define KNN_DIM		128	/* features */
#define KNN_K		16	/* neighbours per query */
#define KNN_QMAX	1024	/* the largest query batch */
#define KNN_NLABELS	2	/* 0 benign, 1 malicious (an addition: the original had none) */

/* A query in: KNN_DIM floats.  A query out: */
struct knn_out {
	int idx[KNN_K];		/* the nearest points, nearest first */
	float dist[KNN_K];	/* their distances */
	int label;		/* the majority label */
};

/*
 * The default data set, seeded: stream k of seed S is lake_app_rand()
 * (apps/common/lake_app.h) started at lake_app_rand() of S ^ k.  Reference
 * feature r*128+k is value r*128+k of stream 0 as uniform01, label r is
 * value r of stream 1 >> 63, query feature q*128+k is value q*128+k of
 * stream 2 as uniform01; uniform01(v) = (v >> 40) * 2^-24, exactly.
 */
#define KNN_DEFAULT_SEED	42
#define KNN_STREAM_REFS		0
#define KNN_STREAM_LABELS	1
#define KNN_STREAM_QUERIES	2

/*
 * The data file (reference points and labels; apps/knn/knn_data.py), little
 * endian:
 *   0   char[8]  "KNNREF01"
 *   8   u32      header bytes (32), 12 u32 KNN_NREF, 16 u32 KNN_DIM,
 *   20  u32      KNN_NLABELS, 24 u32 0, 28 u32 0
 *   32  float32  [KNN_NREF][KNN_DIM] features (finite)
 *   ... u8       [KNN_NREF] labels (< KNN_NLABELS)
 */
#define KNN_FILE_MAGIC	"KNNREF01"
#define KNN_FILE_HEADER	32
#define KNN_FILE_SIZE	(KNN_FILE_HEADER + 4 * KNN_NREF * KNN_DIM + KNN_NREF)

#endif /* KNN_MODEL_H */
