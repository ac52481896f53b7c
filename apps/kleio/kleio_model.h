/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Kleio, the LAKE paper's page-warmth classifier: the model's shape, its
 * parameters' layout and the benchmark's inputs.  Plain C: included by the
 * CPU code (kernel and user space), the app and the CUDA kernels.
 *
 *   input: 6 timesteps, each a class in 0..620, one-hot
 *   LSTM(256, return sequences) -> LSTM(256) -> Dense(621) + softmax
 *
 * Keras semantics: z = x K + h R + b with the 4 * 256 gate columns in the
 * order i, f, c, o; i, f, o = sigmoid(z), g = tanh(z_c); c = f c + i g;
 * h = o tanh(c).  The parameters are the Keras variables in Keras order and
 * layout (row-major, kernels input x 4*units), concatenated.
 */
#ifndef KLEIO_MODEL_H
#define KLEIO_MODEL_H

#define KLEIO_T		6	/* timesteps per sample */
#define KLEIO_V		621	/* classes: one-hot input width and softmax width */
#define KLEIO_H		256	/* LSTM units */
#define KLEIO_G		(4 * KLEIO_H)	/* gate columns: i, f, c, o */

/* Offsets (in floats) of the Keras variables in the parameter array. */
#define KLEIO_K1	0					/* lstm/kernel [V][G] */
#define KLEIO_R1	(KLEIO_K1 + KLEIO_V * KLEIO_G)		/* lstm/recurrent_kernel [H][G] */
#define KLEIO_B1	(KLEIO_R1 + KLEIO_H * KLEIO_G)		/* lstm/bias [G] */
#define KLEIO_K2	(KLEIO_B1 + KLEIO_G)			/* lstm_1/kernel [H][G] */
#define KLEIO_R2	(KLEIO_K2 + KLEIO_H * KLEIO_G)		/* lstm_1/recurrent_kernel [H][G] */
#define KLEIO_B2	(KLEIO_R2 + KLEIO_H * KLEIO_G)		/* lstm_1/bias [G] */
#define KLEIO_KD	(KLEIO_B2 + KLEIO_G)			/* dense/kernel [H][V] */
#define KLEIO_BD	(KLEIO_KD + KLEIO_H * KLEIO_V)		/* dense/bias [V] */
#define KLEIO_NPARAMS	(KLEIO_BD + KLEIO_V)			/* 1,583,981 */
#define KLEIO_NARRAYS	8

/* The benchmark's inputs: 26 fixed values, 20 sliding windows of 6. */
#define KLEIO_NVALUES	26
#define KLEIO_NWINDOWS	(KLEIO_NVALUES - KLEIO_T)	/* window i ends before target values[i + 6] */
#define KLEIO_NMAX	1160	/* the largest n of the benchmark: 20, 80, ..., 1160 */
#define KLEIO_NSTEP	60

/*
 * A sample in: its 6 classes (int32, each < KLEIO_V).  A sample out: the
 * predicted class (the first of equal maxima) and its probability.
 */
struct kleio_out {
	int cls;
	float prob;
};

/* The default weights: seeded Glorot-uniform (kleio_cpu.h says how). */
#define KLEIO_DEFAULT_SEED	42

/*
 * The weights file (written by apps/kleio/kleio_weights.py), little endian:
 *   0   char[8]  "KLEIOW01"
 *   8   u32      header bytes (64)
 *   12  u32      KLEIO_T, 16 u32 KLEIO_V, 20 u32 KLEIO_H
 *   24  u32      number of floats (KLEIO_NPARAMS)
 *   28  u32      0
 *   32  u32[8]   the floats of each array, in the order above (a check)
 *   64  float32  the KLEIO_NPARAMS parameters
 * Every value must be finite.
 */
#define KLEIO_FILE_MAGIC	"KLEIOW01"
#define KLEIO_FILE_HEADER	64
#define KLEIO_FILE_SIZE		(KLEIO_FILE_HEADER + 4 * KLEIO_NPARAMS)

#endif /* KLEIO_MODEL_H */
