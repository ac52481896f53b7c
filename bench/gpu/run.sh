#!/usr/bin/env bash
# The remoting benchmark on a GPU machine: LAKE (liblake -> lakeD -> libcuda)
# against direct CUDA in the same session, side by side.
# Usage: bench/gpu/run.sh BUILD_DIR [OUT_DIR] [ITERATIONS] [ROUNDS]
#
# The variants alternate for ROUNDS rounds (default 3) and the table shows
# the median over rounds, because these machines are noisy.  The benchmark
# process (either variant) and lakeD are pinned to two different CPUs near the
# GPU (its PCI device's local_cpulist), the same ones for every run.
# Writes OUT_DIR/bench.csv and OUT_DIR/bench.txt (bench/gpu/report.py).
set -euo pipefail
build=$(cd "$1" && pwd)
out=${2:-.}
iters=${3:-10000}
rounds=${4:-3}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
fatbin=$build/lake_kernels.fatbin
sock=$(mktemp -u /tmp/lakeD-bench.XXXXXX.sock)
spin_us=${LAKE_BENCH_DAEMON_SPIN_US:-200}

# Two CPUs local to the GPU: one for the benchmark, one for lakeD.
read -r bench_cpu daemon_cpu list <<<"$("$here/../gpu-local-cpus.sh")" || true
pin() { local cpu=$1; shift; if [ -n "$cpu" ]; then taskset -c "$cpu" "$@"; else "$@"; fi; }
echo "# GPU-local CPUs: ${list:-unknown}; benchmark on ${bench_cpu:-any}, lakeD on ${daemon_cpu:-any}" >"$out/bench.txt"

pin "$daemon_cpu" "$build/daemon/lakeD" -f --socket "$sock" --device /dev/lake-absent \
	--spin-us "$spin_us" --log-level warn >"$out/lakeD.log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done

echo "round,variant,test,unit,median,p99,n" >"$out/bench.csv"
for round in $(seq "$rounds"); do
	{
		pin "$bench_cpu" "$build/bench/gpu/lake_bench_direct" "$fatbin" "$iters"
		LAKE_HOSTMEM=registered pin "$bench_cpu" "$build/bench/gpu/lake_bench_direct" "$fatbin" "$iters"
		LAKE_SOCKET=$sock LAKE_ARENA_MB=256 pin "$bench_cpu" "$build/bench/gpu/lake_bench_lake" "$fatbin" "$iters"
	} | sed "s/^/$round,/" >>"$out/bench.csv"
done

# An idle daemon after its spin window: CPU time over 5 s.
sleep 1
t0=$(awk '{print $14 + $15}' "/proc/$daemon/stat")
sleep 5
t1=$(awk '{print $14 + $15}' "/proc/$daemon/stat")
hz=$(getconf CLK_TCK)
echo "1,lake,idle lakeD CPU (5 s after its spin window),% of a core,$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN{printf "%.3f", (b-a)/hz/5*100}'),,1" >>"$out/bench.csv"

python3 "$here/report.py" "$out/bench.csv" | tee -a "$out/bench.txt"
