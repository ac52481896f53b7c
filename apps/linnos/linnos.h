/* SPDX-License-Identifier: GPL-2.0 */
/*
 * linnos.h - LinnOS, I/O latency prediction: 31 digit features of a read
 * -> dense 256 + ReLU [-> 0, 1 or 2 x (dense 256 + ReLU)] -> dense 2.
 * int64 arithmetic with wrap-around (unsigned 64-bit, identically on CPU
 * and GPU); the read is predicted fast when score[0] >= score[1].
 * Shared by the C code and the GPU kernels (linnos.cu).
 */
#ifndef LINNOS_H
#define LINNOS_H

#define LINNOS_FEATURES		31	/* input bytes per row, each a digit 0-9 */
#define LINNOS_HIDDEN		256
#define LINNOS_OUTPUTS		2
#define LINNOS_MAX_EXTRA	2	/* +1, +2: extra 256x256 layers */
#define LINNOS_MAX_BATCH	1024
#define LINNOS_THREADS		LINNOS_HIDDEN	/* GPU: one thread per hidden neuron */
/*
 * The "wide" GPU variant of +1/+2 (linnos.cu): an extra layer's 256 neurons
 * over LINNOS_WIDE_BLOCKS blocks of LINNOS_WIDE_NEURONS each, for batches of
 * at most LINNOS_WIDE_MAX_BATCH rows.
 */
#define LINNOS_WIDE_NEURONS	4
#define LINNOS_WIDE_BLOCKS	(LINNOS_HIDDEN / LINNOS_WIDE_NEURONS)
#define LINNOS_WIDE_MAX_BATCH	4

/* One output row: the two scores (int64, wrapped), fast when score[0] >= score[1]. */
struct linnos_out {
	long long score[LINNOS_OUTPUTS];
};

#endif /* LINNOS_H */
