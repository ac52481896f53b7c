#!/usr/bin/env bash
# The remoting benchmark on a GPU machine: LAKE (liblake -> lakeD -> libcuda)
# and direct CUDA, one after the other in the same session, side by side.
# Usage: bench/gpu/run.sh BUILD_DIR [OUT_DIR] [ITERATIONS]
# Writes OUT_DIR/bench.csv and prints the table (bench/gpu/report.py).
set -euo pipefail
build=$(cd "$1" && pwd)
out=${2:-.}
iters=${3:-10000}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
fatbin=$build/lake_kernels.fatbin
sock=$(mktemp -u /tmp/lakeD-bench.XXXXXX.sock)
spin_us=${LAKE_BENCH_DAEMON_SPIN_US:-200}

"$build/daemon/lakeD" -f --socket "$sock" --device /dev/lake-absent --spin-us "$spin_us" \
	--log-level warn >"$out/lakeD.log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done

echo "variant,test,unit,median,p99,n" >"$out/bench.csv"
"$build/bench/gpu/lake_bench_direct" "$fatbin" "$iters" >>"$out/bench.csv"
LAKE_SOCKET=$sock LAKE_ARENA_MB=256 "$build/bench/gpu/lake_bench_lake" "$fatbin" "$iters" >>"$out/bench.csv"

# An idle daemon after its spin window: CPU time over 5 s.
sleep 1
t0=$(awk '{print $14 + $15}' "/proc/$daemon/stat")
sleep 5
t1=$(awk '{print $14 + $15}' "/proc/$daemon/stat")
hz=$(getconf CLK_TCK)
echo "lake,idle lakeD CPU (5 s after its spin window),% of a core,$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN{printf "%.3f", (b-a)/hz/5*100}'),,1" >>"$out/bench.csv"

python3 "$here/report.py" "$out/bench.csv" | tee "$out/bench.txt"
