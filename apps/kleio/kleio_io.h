/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Kleio's integer-only code, shared by every build: the benchmark's inputs,
 * the weights file, the CPU path's driver (which opens and closes the FPU
 * regions around kleio_fpu_*()).
 */
#ifndef KLEIO_IO_H
#define KLEIO_IO_H

#include "kleio_cpu.h"

extern const s32 kleio_values[KLEIO_NVALUES];

/**
 * kleio_inputs() - the benchmark's inputs for @n samples
 * @cls: [@n][KLEIO_T] classes out
 * @n: samples; sample s is window s % KLEIO_NWINDOWS, window i being
 *     kleio_values[i..i+5]
 */
void kleio_inputs(s32 *cls, int n);

/**
 * kleio_parse_weights() - read a weights file (format in kleio_model.h)
 * @file: its bytes
 * @len: its length
 * @params: KLEIO_NPARAMS floats out (unchanged on error)
 * @why: set to a message naming the problem on error
 *
 * Return: 0, or -EINVAL (wrong size, magic, shape, a non-finite value).  Integer code only: needs no FPU region.
 */
int kleio_parse_weights(const void *file, size_t len, float *params, const char **why);

/**
 * kleio_cpu_predict() - the CPU path: @n samples
 * @params: the parameters
 * @blk: scratch state for one block
 * @cls: [@n][KLEIO_T] classes (one outside 0..620: an all-zero one-hot vector)
 * @n: samples
 * @out: [@n] predicted classes and their probabilities
 * @probs: NULL or [@n][KLEIO_V] all probabilities
 *
 * One FPU region per layer, timestep and block of KLEIO_CPU_BLOCK samples,
 * with a chance to reschedule between regions.
 */
void kleio_cpu_predict(const float *params, struct kleio_block *blk, const s32 *cls, int n,
		       struct kleio_out *out, float *probs);

/**
 * kleio_default_weights() - the default weights (kleio_model.h)
 * @params: out
 * @seed: the seed (KLEIO_DEFAULT_SEED)
 *
 * Array a's values come from lake_app_rand() started at lake_app_rand() of
 * @seed ^ a; kernels Glorot-uniform (kleio_fpu_glorot(), in FPU regions of
 * KLEIO_INIT_CHUNK values), biases as Keras sets them: zero, except the
 * LSTMs' forget-gate columns, 1 (unit_forget_bias).  (Keras initialises
 * recurrent kernels orthogonally; this uses Glorot-uniform for them too.)
 */
void kleio_default_weights(float *params, u64 seed);

#endif /* KLEIO_IO_H */
