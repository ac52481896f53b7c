// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// knn-kernels-emu: KNN's CUDA kernels (knn_kernels.cu) run on the CPU by
// cuda_emu (CTest unit_kernels_emu), in every tile and threads-per-query
// configuration: their outputs must equal the CPU path's (knn_cpu.c) bit
// for bit, on the default data and on data full of ties.  Exit 0 when all
// equal.
#include "cuda_emu.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "knn_kernels.cu"
extern "C" {
#include "knn_io.h"
}
#undef min
#undef max

// The kit's logging globals (lake_app_env.h), as the programs define them.
extern "C" {
const char *lake_app_log_name = "knn-kernels-emu";
bool lake_app_quiet;
}

static bool run(knn_data *d, int nq, int bm, int tpq, bool ties)
{
	std::vector<float> q(nq * KNN_DIM), d2((size_t)KNN_QMAX * KNN_NREF, NAN);
	std::vector<knn_out> go(nq), co(nq);
	knn_cpu_refs *refs = new knn_cpu_refs();
	knn_cpu_scratch *s = new knn_cpu_scratch();
	unsigned int qpb = 256 / tpq;

	memset(go.data(), 0xff, nq * sizeof(knn_out));
	knn_default_queries(q.data(), nq, KNN_DEFAULT_SEED);
	if (ties)	// small integers: many equal distances, broken by index
		for (auto &x : q)
			x = (float)(int)(x * 3);
	knn_cpu_layout(d, refs);
	emu_launch({ KNN_NREF / 64, (unsigned int)((nq + bm - 1) / bm), 1 }, 256, [&] {
		(bm == 64 ? knn_dist_64 : bm == 32 ? knn_dist_32 : knn_dist_16)(
			q.data(), &d->refs[0][0], d2.data(), nq);
	});
	emu_launch({ (nq + qpb - 1) / qpb, 1, 1 }, 256, [&] {
		(tpq == 256 ? knn_topk_256 : tpq == 128 ? knn_topk_128 :
		 tpq == 64 ? knn_topk_64 : knn_topk_32)(d2.data(), d->labels, nq, go.data());
	});
	knn_cpu_predict(refs, d->labels, q.data(), nq, s, co.data());
	delete refs;
	delete s;
	bool same = !memcmp(go.data(), co.data(), nq * sizeof(knn_out));
	printf("knn queries=%d tile=%d threads/query=%d%s: %s (query 0: %d at %.7g, label %d)\n",
	       nq, bm, tpq, ties ? " ties" : "", same ? "bit-exact" : "DIFFER", go[0].idx[0],
	       go[0].dist[0], go[0].label);
	return same;
}

int main()
{
	knn_data *d = new knn_data(), *t = new knn_data();
	bool ok = true;

	knn_default_data(d, KNN_DEFAULT_SEED);
	*t = *d;
	for (int i = 0; i < KNN_NREF; i++)	// duplicates and small integers
		for (int k = 0; k < KNN_DIM; k++)
			t->refs[i][k] = (float)((i / 7 * 31 + k) % 3);
	ok &= run(d, 37, 32, 128, false);
	ok &= run(d, 100, 64, 32, false);
	ok &= run(d, 70, 64, 64, false);
	ok &= run(t, 9, 16, 256, true);
	ok &= run(t, 50, 64, 32, true);
	delete d;
	delete t;
	return ok ? 0 : 1;
}
