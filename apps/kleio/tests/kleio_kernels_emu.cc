// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// kleio-kernels-emu: Kleio's CUDA kernels (kleio_kernels.cu) run on the CPU
// by cuda_emu (CTest unit_kernels_emu), launched as kleio.c launches them,
// in every tile configuration: their outputs and every probability must
// equal the CPU path's (kleio_cpu.c) bit for bit, on the fixed inputs with
// the default weights and on random weights with classes out of range.
// Exit 0 when all equal.
#include "cuda_emu.h"

#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "kleio_kernels.cu"
extern "C" {
#include "kleio_io.h"
}
#undef min
#undef max

// The kit's logging globals (lake_app_env.h), as the programs define them.
extern "C" {
const char *lake_app_log_name = "kleio-kernels-emu";
bool lake_app_quiet;
}

static bool run(const std::vector<float> &p, int n, int bm, int ds, bool odd_classes)
{
	std::vector<float> wg1((KLEIO_V + 1) * KLEIO_G), u1(KLEIO_H * KLEIO_G);
	std::vector<float> w2(2 * KLEIO_H * KLEIO_G), b2(KLEIO_G);
	std::vector<float> h1(2 * n * KLEIO_H, NAN), c1(n * KLEIO_H, NAN);
	std::vector<float> h2(2 * n * KLEIO_H, NAN), c2(n * KLEIO_H, NAN);
	std::vector<float> gp((size_t)n * KLEIO_V), cp((size_t)n * KLEIO_V);
	std::vector<kleio_out> go(n, { -1, 0 }), co(n);
	std::vector<int> cls(n * KLEIO_T);
	auto wave = bm == 128 ? kleio_wave_128 : bm == 64 ? kleio_wave_64 :
		    bm == 32 ? kleio_wave_32 : kleio_wave_16;
	kleio_block *blk = new kleio_block();

	kleio_inputs(cls.data(), n);
	if (odd_classes) {	// all-zero one-hot vectors
		cls[1 * KLEIO_T + 2] = KLEIO_V;
		cls[3 * KLEIO_T] = -7;
	}
	emu_launch({ 4, 1, 1 }, 256, [&] {
		kleio_prep(p.data(), wg1.data(), u1.data(), w2.data(), b2.data());
	});
	for (int w = 0; w <= KLEIO_T; w++) {
		unsigned int jobs = (w < KLEIO_T) + (w > 0);

		emu_launch({ KLEIO_G / 64, (unsigned int)((n + bm - 1) / bm), jobs }, 256, [&] {
			wave(wg1.data(), u1.data(), w2.data(), b2.data(), cls.data(), h1.data(),
			     c1.data(), h2.data(), c2.data(), n, w);
		});
	}
	emu_launch({ (unsigned int)((n + ds - 1) / ds), 1, 1 }, 256, [&] {
		(ds == 16 ? kleio_out_16 : kleio_out_4)(p.data() + KLEIO_KD, p.data() + KLEIO_BD,
							h2.data() + (size_t)n * KLEIO_H, n,
							go.data(), gp.data());
	});
	kleio_cpu_predict(p.data(), blk, cls.data(), n, co.data(), cp.data());
	delete blk;
	bool same = !memcmp(go.data(), co.data(), n * sizeof(kleio_out)) &&
		    !memcmp(gp.data(), cp.data(), gp.size() * sizeof(float));
	printf("kleio n=%d tile=%d dense=%d%s: %s (sample 0: class %d p=%.9g)\n", n, bm, ds,
	       odd_classes ? " out-of-range classes" : "", same ? "bit-exact" : "DIFFER",
	       go[0].cls, go[0].prob);
	return same;
}

int main()
{
	std::vector<float> p(KLEIO_NPARAMS), big(KLEIO_NPARAMS);
	std::mt19937 rng(5);
	std::uniform_real_distribution<float> u(-0.25f, 0.25f);
	bool ok = true;

	kleio_default_weights(p.data(), KLEIO_DEFAULT_SEED);
	for (auto &x : big)	// saturating gates, a spread softmax
		x = u(rng);
	ok &= run(p, 150, 128, 16, false);
	ok &= run(p, 21, 16, 4, false);
	ok &= run(big, 45, 32, 16, true);
	ok &= run(big, 70, 64, 4, true);
	return ok ? 0 : 1;
}
