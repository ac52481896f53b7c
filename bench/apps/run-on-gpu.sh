#!/usr/bin/env bash
# Everything the apps need from a GPU machine, in one command:
#   bash bench/apps/run-on-gpu.sh OUT_DIR
# 1. builds what is needed (lakeD, liblake, every app's two programs) in
#    BUILD (default build-gpu/ beside the sources) with the tools present,
#    installing nothing (LAKE_NO_INSTALL: kernel modules and libcheck tests
#    are skipped where their tools are missing);
# 2. runs the apps' gpu tests (apps/tests/gpu-apps.sh): every app's GPU
#    outputs against its CPU outputs over the fixed and 10,000 random inputs
#    per batch size 1..1024, through liblake and direct CUDA;
# 3. runs the apps' benchmark (bench/apps/run.sh) and its report.
# Results: OUT_DIR/gpu-tests/ (verify-*.csv, logs), OUT_DIR/bench/
# (bench.csv, report.csv, report.txt), OUT_DIR/summary.txt.
# Environment: LAKE_GPU_BUILD (the build directory), LAKE_APPS_ROWS (10000),
# LAKE_APPS_BENCH="ITERS ROUNDS BUDGET_MS" (default "300 3 200").
# Exit 0 when the tests passed and the benchmark ran (its targets are
# reported, not enforced: see report.txt).
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: bash bench/apps/run-on-gpu.sh OUT_DIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
build=${LAKE_GPU_BUILD:-$src/build-gpu}
export LAKE_NO_INSTALL=1
t0=$SECONDS
say() { echo "run-on-gpu: $*" | tee -a "$out/summary.txt"; }
: >"$out/summary.txt"

nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || say "nvidia-smi failed: no GPU? (the tests will skip)"
if ! cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$out/cmake.log" 2>&1; then
	tail -n 30 "$out/cmake.log"
	say "FAILED: cmake configure (log: cmake.log)"
	exit 1
fi
grep -E 'SKIPPED|apps:' "$out/cmake.log" | sed 's/^/  /' | tee -a "$out/summary.txt"
if ! cmake --build "$build" -j"$(nproc)" --target lakeD lake_apps_programs >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log"
	say "FAILED: build (log: build.log)"
	exit 1
fi
say "built in $((SECONDS - t0)) s"

t1=$SECONDS
bash "$src/apps/tests/gpu-apps.sh" "$build" "$out/gpu-tests" "${LAKE_APPS_ROWS:-10000}" 2>&1 |
	tee "$out/gpu-tests.txt"
trc=${PIPESTATUS[0]}
say "gpu tests: exit $trc ($((SECONDS - t1)) s): $(tail -n 1 "$out/gpu-tests.txt")"

t2=$SECONDS
read -r iters rounds budget <<<"${LAKE_APPS_BENCH:-300 3 200}"
bash "$src/bench/apps/run.sh" "$build" "$out/bench" "$iters" "$rounds" "$budget" 2>"$out/bench.log"
brc=$?
say "benchmark: exit $brc ($((SECONDS - t2)) s); table and targets in bench/report.txt"
grep -E '^(MET |MISS)' "$out/bench/report.txt" 2>/dev/null | tee -a "$out/summary.txt"
say "total $((SECONDS - t0)) s"
[ "$trc" = 0 ] && [ "$brc" = 0 ]
