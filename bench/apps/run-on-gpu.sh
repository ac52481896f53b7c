#!/usr/bin/env bash
# Everything the apps need from a GPU machine, in one command:
#   bash bench/apps/run-on-gpu.sh OUT_DIR
# 1. builds what is needed (lakeD, liblake, every app's two programs) in
#    BUILD (default build-gpu/ beside the sources) with the tools present,
#    installing nothing (LAKE_NO_INSTALL: kernel modules and libcheck tests
#    are skipped where their tools are missing);
# 2. runs the apps' gpu tests (apps/tests/gpu-apps.sh): every app's GPU
#    outputs against its CPU outputs over the fixed and 10,000 random inputs
#    per batch size 1..1024, in every way each app runs a batch on the GPU,
#    through liblake and direct CUDA (the programs in parallel);
# 3. runs the apps' benchmark (bench/apps/run.sh, alone on the machine) and
#    its report.
# Results, three files in OUT_DIR: summary.txt (what ran, how long, the
# verdicts), report.txt (the benchmark's tables and targets) and
# apps-gpu-results.tar.gz (everything: gpu-tests/ with verify-*.csv and
# logs, bench/ with bench.csv, report.csv, info-*.csv, the build's logs,
# nvidia-smi.txt).  The work directory is LAKE_GPU_WORK (default a fresh
# one under /tmp), so that only those three files land in OUT_DIR.
# Environment: LAKE_GPU_BUILD (the build directory), LAKE_APPS_ROWS (10000),
# LAKE_APPS_BENCH="ITERS ROUNDS BUDGET_MS" (default "200 3 100").
# Exit 0 when the tests passed and the benchmark ran (its targets are
# reported, not enforced: see report.txt).
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: bash bench/apps/run-on-gpu.sh OUT_DIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
work=${LAKE_GPU_WORK:-$(mktemp -d /tmp/lake-apps-gpu.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
build=${LAKE_GPU_BUILD:-$src/build-gpu}
export LAKE_NO_INSTALL=1
t0=$SECONDS
say() { echo "run-on-gpu: $*" | tee -a "$work/summary.txt"; }
: >"$work/summary.txt"
# Whatever happens, the results go back in one tarball (and the two texts beside it).
pack() {
	cp "$work/summary.txt" "$out/summary.txt"
	[ -f "$work/bench/report.txt" ] && cp "$work/bench/report.txt" "$out/report.txt"
	tar czf "$out/apps-gpu-results.tar.gz" -C "$work" --exclude=./build . 2>/dev/null ||
		echo "run-on-gpu: could not write $out/apps-gpu-results.tar.gz" >&2
}
trap pack EXIT

nvidia-smi >"$work/nvidia-smi.txt" 2>&1 || say "nvidia-smi failed: no GPU? (the tests will skip)"
if ! cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/cmake.log" 2>&1; then
	tail -n 30 "$work/cmake.log"
	say "FAILED: cmake configure (log: cmake.log)"
	exit 1
fi
grep -E 'SKIPPED|apps:' "$work/cmake.log" | sed 's/^/  /' | tee -a "$work/summary.txt"
if ! cmake --build "$build" -j"$(nproc)" --target lakeD lake_apps_programs >"$work/build.log" 2>&1; then
	tail -n 40 "$work/build.log"
	say "FAILED: build (log: build.log)"
	exit 1
fi
say "built in $((SECONDS - t0)) s"

t1=$SECONDS
bash "$src/apps/tests/gpu-apps.sh" "$build" "$work/gpu-tests" "${LAKE_APPS_ROWS:-10000}" 2>&1 |
	tee "$work/gpu-tests.txt"
trc=${PIPESTATUS[0]}
say "gpu tests: exit $trc ($((SECONDS - t1)) s): $(tail -n 1 "$work/gpu-tests.txt")"

t2=$SECONDS
read -r iters rounds budget <<<"${LAKE_APPS_BENCH:-200 3 100}"
bash "$src/bench/apps/run.sh" "$build" "$work/bench" "$iters" "$rounds" "$budget" 2>"$work/bench.log"
brc=$?
say "benchmark: exit $brc ($((SECONDS - t2)) s); table and targets in report.txt"
grep -E '^(MET |MISS)' "$work/bench/report.txt" 2>/dev/null | tee -a "$work/summary.txt"
say "total $((SECONDS - t0)) s"
[ "$trc" = 0 ] && [ "$brc" = 0 ]
