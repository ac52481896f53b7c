/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Kleio's integer-only code, shared by every build: the benchmark's inputs,
 * the weights file, the CPU path's driver (which opens and closes the FPU
 * regions around kleio_fpu_*()).
 */
#ifndef KLEIO_IO_H
#define KLEIO_IO_H

#include "kleio_cpu.h"

extern const int32_t kleio_values[KLEIO_NVALUES];

/**
 * kleio_inputs() - the benchmark's inputs for @n samples
 * @cls: [@n][KLEIO_T] classes out
 * @n: samples; sample s is window s % KLEIO_NWINDOWS, window i being
 *     kleio_values[i..i+5]
 */
void kleio_inputs(int32_t *cls, int n);

/**
 * kleio_check_inputs() - validate classes from a caller
 * Return: 0, or -EINVAL when @n is out of 1..@nmax or a class is >= KLEIO_V.
 */
int kleio_check_inputs(const int32_t *cls, int n, int nmax);

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
 * @cls: [@n][KLEIO_T] classes, checked by kleio_check_inputs()
 * @n: samples
 * @out: [@n] predicted classes and their probabilities
 * @probs: NULL or [@n][KLEIO_V] all probabilities
 *
 * One FPU region per layer, timestep and block of KLEIO_CPU_BLOCK samples,
 * with a chance to reschedule between regions.
 */
void kleio_cpu_predict(const float *params, struct kleio_block *blk, const int32_t *cls, int n,
		       struct kleio_out *out, float *probs);

/* The default weights (kleio_fpu_init_weights() in FPU regions of a chunk). */
void kleio_default_weights(float *params, uint64_t seed);

#endif /* KLEIO_IO_H */
