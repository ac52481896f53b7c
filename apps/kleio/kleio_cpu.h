/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Kleio's CPU path.  kleio_fpu_*() are the floating-point code (kleio_cpu.c,
 * compiled with FPU flags): call them only inside an FPU region, which they
 * never leave, and in which they neither sleep nor allocate.  Each does a
 * bounded piece of work (one layer's timestep for a block of at most
 * KLEIO_CPU_BLOCK samples, or a slice of the weights), so that the caller
 * can keep regions short and reschedule between them.  No float crosses
 * this interface by value: kernel code outside those files cannot touch
 * floating-point registers.
 */
#ifndef KLEIO_CPU_H
#define KLEIO_CPU_H

#include "lake_app_env.h"
#include "kleio_model.h"

/* Samples per FPU region: one LSTM timestep of 4 samples is ~4 MFLOP. */
#define KLEIO_CPU_BLOCK	4

/* Weights initialised per FPU region by kleio_fpu_glorot(). */
#define KLEIO_INIT_CHUNK	(64 * 1024)

/* The CPU state of one block of samples (zeroed before its first step). */
struct kleio_block {
	float h1[KLEIO_CPU_BLOCK][KLEIO_H];	/* layer 1's output at the last step */
	float c1[KLEIO_CPU_BLOCK][KLEIO_H];
	float h2[KLEIO_CPU_BLOCK][KLEIO_H];
	float c2[KLEIO_CPU_BLOCK][KLEIO_H];
	float z[KLEIO_CPU_BLOCK][KLEIO_G];	/* gate pre-activations; then logits */
};

/**
 * kleio_fpu_glorot() - Glorot-uniform values, a slice of an array at a time
 * @dst: where the values go
 * @count: how many (at most KLEIO_INIT_CHUNK per FPU region)
 * @state: the array's lake_app_rand() state, advanced by @count
 * @fans: rows + columns of the array (fan in + fan out)
 *
 * Value = (top 24 bits of lake_app_rand() - 2^23) * (l / 2^23) with
 * l = sqrt(6 / @fans) in float (a rounded quotient, its IEEE root):
 * uniform in [-l, l), one rounding.
 */
void kleio_fpu_glorot(float *dst, size_t count, u64 *state, unsigned int fans);

/**
 * kleio_fpu_lstm1() - layer 1 at timestep @t for a block of samples
 * @params: the parameters
 * @b: the block's state
 * @cls: the block's inputs, [@nb][KLEIO_T] classes; one outside 0..620 is a
 *       one-hot vector of zeros (as tf.one_hot encodes it)
 * @nb: samples in the block, 1..KLEIO_CPU_BLOCK
 * @t: the timestep; steps run in order 0..KLEIO_T-1, layer 1 before layer 2
 *
 * The one-hot input times lstm/kernel is a row gather.
 */
void kleio_fpu_lstm1(const float *params, struct kleio_block *b, const s32 *cls, int nb, int t);

/**
 * kleio_fpu_lstm2() - layer 2 at timestep @t for a block of samples
 * @params: the parameters
 * @b: the block's state (h1 holds layer 1's output at @t)
 * @nb: samples in the block
 * @t: the timestep
 */
void kleio_fpu_lstm2(const float *params, struct kleio_block *b, int nb, int t);

/**
 * kleio_fpu_output() - the dense layer, softmax and argmax for a block
 * @params: the parameters
 * @b: the block's state after the last timestep
 * @nb: samples in the block
 * @out: per sample, the predicted class (the first of equal maxima) and
 *       its probability
 * @probs: NULL, or [@nb][KLEIO_V] for every probability
 */
void kleio_fpu_output(const float *params, struct kleio_block *b, int nb, struct kleio_out *out,
		      float *probs);

/**
 * kleio_fpu_format() - an output as text (kleio_fpu.c): "class C p=0.001637231"
 * @o: the output
 * @buf: where the text goes
 * @len: its size
 *
 * Return: the length of the text.
 */
int kleio_fpu_format(const struct kleio_out *o, char *buf, size_t len);

#endif /* KLEIO_CPU_H */
