#!/usr/bin/env bash
# bench/bridge/run.sh - the VM bridge's benchmark on this machine: lake.ko in
# the test VM, lakeD on the host (scripts/gpu-vm-run.sh --build, job bench).
#   null round trips from guest kernel context through the bridge, both sides
#   spinning, against getppid() in the same guest (target <= 3x), ROUNDS
#   rounds; with a GPU here, the MLP (batch 1, 1024) from guest kernel
#   context next to a host liblake client and direct CUDA.
# Usage: bench/bridge/run.sh [--rounds N] [--quick] [--out DIR]
#   (default DIR: $BUILD/bench/bridge-results; table.txt, ratios.csv there,
#   the guest's CSV in DIR/vm/bench/).  Environment: LAKE_BUILD_DIR (build).
# On a machine without QEMU (the GPU machine), run scripts/gpu-vm-run.sh
# OUT_DIR bench from the VM bundle instead.  See docs/vm-bridge.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${LAKE_BUILD_DIR:-build}
out=$BUILD/bench/bridge-results
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) args+=(--rounds "$2"); shift ;;
	--quick) args+=(--quick) ;;
	--out) out=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=(lake_kmod lake_selftest_kmod lake_kbench lake_hello lakeD lakeD-fake vmbench lake-vmtool)
cmake --build "$BUILD" --target "${targets[@]}" -j"$(nproc)" >"$BUILD/bench-bridge-build.log" 2>&1 || {
	tail -n 30 "$BUILD/bench-bridge-build.log"
	echo "run.sh: the build failed (is there a kernel build tree? scripts/install-deps.sh)" >&2
	exit 1
}
others=$(pgrep -c -x qemu-system-x86 || true)
[ "${others:-0}" = 0 ] ||
	echo "bench/bridge: warning: $others other QEMU process(es) running on this host: expect noisy results" >&2
echo "bench/bridge: $(nproc)-core host, load average $(cut -d' ' -f1-3 /proc/loadavg)"
exec scripts/gpu-vm-run.sh --build "$BUILD" ${args[@]+"${args[@]}"} "$out" bench
