#!/usr/bin/env bash
# The compatibility tests against lakeD-fake (no GPU: the TEST DOUBLE computes
# nothing, so these check that programs written for NVIDIA's cuda.h reach
# lakeD and get its answers, not any numbers):
#  - source compatibility: the Driver API samples built with LAKE's
#    vendor-named headers and liblake run to the end, every call succeeding;
#  - binary compatibility: the same samples built against NVIDIA's cuda.h
#    and libcuda run through LAKE's libcuda.so.1 by library path alone, and
#    print exactly what the source-compatible builds print;
#  - compat_api (C and C++): cuGetProcAddress, host memory, refusals, texts;
#  - what a program sees: a refused function (an error and one line on
#    stderr), a function the spec lacks (the loader names it, status 127),
#    no lakeD at all (CUDA_ERROR_DEVICE_UNAVAILABLE, named).
# Usage: run-compat-tests.sh BUILD_DIR [OUT_DIR]
set -euo pipefail
build=$(cd "$1" && pwd)
out=${2:-$(mktemp -d)}
mkdir -p "$out"
bin=$build/test/compat
fatbin=$bin/compat_kernels.fatbin
compat_lib=$build/client/compat
fail=0
say_fail() { echo "FAILED: $*"; fail=1; }

sock=$out/lakeD.sock
. "$(dirname "$0")/../lake-daemon.sh"
lake_start_daemon lakeD-fake "$out/lakeD.log" "$sock" \
	"$build/daemon/lakeD-fake" -f --socket "$sock" --device "$out/no-device" --log-level info
export LAKE_SOCKET=$sock
runs=0

# The samples exit at the first call that fails (checkCudaErrors); their
# "name: RESULT" lines are counted.  (Under lakeD-fake the result names are
# the TEST DOUBLE's texts, not libcuda's.)
calls() {
	grep -cE '^cu[A-Za-z0-9_]+: ' "$1" || true
}

for s in vector_add_drv matrix_mul_drv device_query_drv; do
	if ! "$bin/${s}_lake" "$fatbin" --no-verify >"$out/$s.lake.txt" 2>"$out/$s.lake.err"; then
		say_fail "$s (LAKE's cuda.h + liblake) exited with an error:"; cat "$out/$s.lake.err"
	fi
	runs=$((runs + 1))
	grep -q '^Result = NOT VERIFIED' "$out/$s.lake.txt" || grep -q '^Result = PASS' "$out/$s.lake.txt" ||
		say_fail "$s (LAKE's cuda.h) did not run to the end"
	# The vendor build: linked against NVIDIA's libcuda.so.1 ...
	# (Outputs captured first: grep -q would cut the pipe under pipefail.)
	dyn=$(readelf -d "$bin/${s}_vendor")
	grep -q 'NEEDED.*\[libcuda\.so\.1\]' <<<"$dyn" || say_fail "${s}_vendor does not need libcuda.so.1"
	syms=$(nm -D "$bin/${s}_vendor")
	grep -q ' U cuMemAlloc_v2$\| U cuDeviceTotalMem_v2$' <<<"$syms" ||
		say_fail "${s}_vendor does not use the vendor's versioned symbols"
	# ... and run with LAKE's first on the library path.
	libs=$(LD_LIBRARY_PATH=$compat_lib ldd "$bin/${s}_vendor")
	grep -q "libcuda.so.1 => $compat_lib/libcuda.so.1" <<<"$libs" ||
		say_fail "${s}_vendor does not resolve libcuda.so.1 to $compat_lib"
	if ! LD_LIBRARY_PATH=$compat_lib "$bin/${s}_vendor" "$fatbin" --no-verify \
		>"$out/$s.vendor.txt" 2>"$out/$s.vendor.err"; then
		say_fail "$s (NVIDIA's cuda.h, LAKE's libcuda.so.1) exited with an error:"; cat "$out/$s.vendor.err"
	fi
	runs=$((runs + 1))
	if diff "$out/$s.lake.txt" "$out/$s.vendor.txt" >"$out/$s.diff"; then
		echo "$s: $(calls "$out/$s.vendor.txt") calls, the same through liblake and through libcuda.so.1"
	else
		say_fail "$s: the binary-compatible run differs:"; cat "$out/$s.diff"
	fi
done

for t in compat_api_c compat_api_cxx; do
	[ -x "$bin/$t" ] || continue
	if "$bin/$t" >"$out/$t.txt" 2>"$out/$t.err"; then
		echo "$t: $(grep -c '^ok ' "$out/$t.txt") checks ok"
	else
		say_fail "$t:"; grep FAILED "$out/$t.txt" || cat "$out/$t.txt"
	fi
	runs=$((runs + 1))
	n=$(grep -c 'cuStreamAddCallback is not supported by LAKE' "$out/$t.err" || true)
	[ "$n" = 1 ] || say_fail "$t: a refused function called twice said so $n times (want once)"
done

# A refused function, and one the spec does not cover, in a vendor build.
LD_LIBRARY_PATH=$compat_lib "$bin/unsupported_vendor" >"$out/unsupported.txt" 2>"$out/unsupported.err" ||
	say_fail "unsupported_vendor without unspec'd calls failed"
runs=$((runs + 1))
grep -q '^cuLaunchHostFunc: 801$' "$out/unsupported.txt" ||
	say_fail "cuLaunchHostFunc did not return CUDA_ERROR_NOT_SUPPORTED (801)"
grep -q 'cuLaunchHostFunc is not supported by LAKE (a host function would run in lakeD' "$out/unsupported.err" ||
	say_fail "cuLaunchHostFunc's refusal was not explained on stderr"
set +e
LD_LIBRARY_PATH=$compat_lib "$bin/unsupported_vendor" --unspecd >"$out/unspecd.txt" 2>"$out/unspecd.err"
rc=$?
set -e
runs=$((runs + 1))
if [ "$rc" = 127 ] && grep -q 'undefined symbol: cuTexObjectCreate' "$out/unspecd.err"; then
	echo "unsupported: a refused function returns 801 and says why; one the spec lacks: \"$(grep -o 'symbol lookup error.*' "$out/unspecd.err")\" (status 127)"
else
	say_fail "a function the spec lacks: status $rc, stderr: $(cat "$out/unspecd.err")"
fi

# No lakeD: the first call says so, by name.
set +e
LAKE_SOCKET=$out/no-lakeD.sock LD_LIBRARY_PATH=$compat_lib "$bin/vector_add_drv_vendor" "$fatbin" \
	>"$out/nolaked.txt" 2>"$out/nolaked.err"
rc=$?
set -e
if [ "$rc" != 0 ] && grep -q '^cuInit: CUDA_ERROR_DEVICE_UNAVAILABLE$' "$out/nolaked.txt"; then
	echo "no lakeD: cuInit: CUDA_ERROR_DEVICE_UNAVAILABLE"
else
	say_fail "without lakeD: status $rc, output: $(head -3 "$out/nolaked.txt")"
fi

# Every run reached lakeD-fake as a client of its own.
sleep 0.5
n=$(grep -c 'connected: ' "$out/lakeD.log" || true)
[ "$n" -ge "$runs" ] || say_fail "lakeD-fake saw $n clients, want $runs (see $out/lakeD.log)"
[ "$fail" = 0 ] && echo "compat: all checks passed ($runs programs through lakeD-fake)"
exit $fail
