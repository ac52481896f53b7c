#!/usr/bin/env bash
# The gpu-labelled tests: every spec'd function through LAKE against the real
# libcuda, compared line by line with the same calls made directly
# (gpu_calls, gpu_compat_calls); handle misuse and a client killed mid-call;
# programs written for NVIDIA's cuda.h run directly, through LAKE's
# libcuda.so.1 by library path and built against LAKE's cuda.h (test/compat);
# the NVML conformance check where nvml.h is installed.  Skips (exit 77) with
# a message where there is no GPU.
# Usage: run-gpu-tests.sh BUILD_DIR [OUT_DIR]
set -euo pipefail
build=$(cd "$1" && pwd)
out=${2:-$(mktemp -d)}
mkdir -p "$out"
src=$(cd "$(dirname "$0")/../.." && pwd)

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
	echo "SKIPPED: no GPU on this machine (nvidia-smi lists none); the gpu tests run on a GPU machine"
	exit 77
fi

fatbin=$build/lake_kernels.fatbin
sock=$out/lakeD.sock
. "$(dirname "$0")/../lake-daemon.sh"
lake_start_daemon lakeD "$out/lakeD.log" "$sock" \
	"$build/daemon/lakeD" -f --socket "$sock" --device /dev/lake-absent --log-level info
export LAKE_SOCKET=$sock

fail=0
"$build/test/gpu/gpu_calls_direct" "$fatbin" >"$out/direct.txt" 2>&1 || fail=1
"$build/test/gpu/gpu_calls_lake" "$fatbin" >"$out/lake.txt" 2>&1 || fail=1
if diff <(tail -n +2 "$out/direct.txt") <(tail -n +2 "$out/lake.txt") >"$out/calls.diff"; then
	echo "gpu_calls: $(grep -c ': ' "$out/lake.txt") calls and checks through LAKE match direct CUDA line for line"
else
	echo "FAILED: LAKE and direct CUDA differ:"
	cat "$out/calls.diff"
	fail=1
fi
grep -q FAILED "$out/lake.txt" "$out/direct.txt" && { grep FAILED "$out/lake.txt" "$out/direct.txt"; fail=1; }

"$build/test/gpu/gpu_misuse" "$fatbin" >"$out/misuse.txt" 2>&1 || { fail=1; echo "FAILED: gpu_misuse"; }
cat "$out/misuse.txt"

# The kernel-parameter layouts LAKE reads from images, against the driver's.
images=("$fatbin")
for f in kparams.cubin kparams.ptx kparams.fatbin kparams-size.fatbin kparams-speed.fatbin \
	 kparams-none.fatbin; do
	[ -f "$build/test/unit/kparams/$f" ] && images+=("$build/test/unit/kparams/$f")
done
"$build/test/gpu/gpu_layouts" "${images[@]}" >"$out/layouts.txt" 2>&1 ||
	{ fail=1; echo "FAILED: gpu_layouts"; }
tail -n 1 "$out/layouts.txt"
grep MISMATCH "$out/layouts.txt" || true

# The functions the spec grew beyond gpu_calls', compared the same way.
"$build/test/gpu/gpu_compat_calls_direct" "$fatbin" >"$out/compat-direct.txt" 2>&1 || fail=1
"$build/test/gpu/gpu_compat_calls_lake" "$fatbin" >"$out/compat-lake.txt" 2>&1 || fail=1
if diff <(tail -n +2 "$out/compat-direct.txt") <(tail -n +2 "$out/compat-lake.txt") >"$out/compat-calls.diff"; then
	echo "gpu_compat_calls: $(grep -c ': ' "$out/compat-lake.txt") calls and checks through LAKE match direct CUDA line for line"
else
	echo "FAILED: LAKE and direct CUDA differ (gpu_compat_calls):"
	cat "$out/compat-calls.diff"
	fail=1
fi
grep FAILED "$out/compat-lake.txt" "$out/compat-direct.txt" && fail=1

# Programs written for NVIDIA's cuda.h (test/compat, in the style of the
# cuda-samples Driver API programs): built against NVIDIA's cuda.h and
# libcuda, run directly, then through LAKE's libcuda.so.1 by library path
# alone (binary compatibility); built against LAKE's vendor-named headers
# and liblake (source compatibility).  All three runs must print the same.
cbin=$build/test/compat
cfat=$cbin/compat_kernels.fatbin
for s in vector_add_drv matrix_mul_drv device_query_drv; do
	[ -x "$cbin/${s}_vendor" ] || { echo "compat: SKIPPED: $s not built"; continue; }
	"$cbin/${s}_vendor" "$cfat" >"$out/$s.direct.txt" 2>&1 || { fail=1; echo "FAILED: $s (direct CUDA)"; }
	LD_LIBRARY_PATH=$build/client/compat "$cbin/${s}_vendor" "$cfat" >"$out/$s.binary.txt" 2>&1 ||
		{ fail=1; echo "FAILED: $s through LAKE's libcuda.so.1"; }
	"$cbin/${s}_lake" "$cfat" >"$out/$s.source.txt" 2>&1 || { fail=1; echo "FAILED: $s built against LAKE's cuda.h"; }
	if diff "$out/$s.direct.txt" "$out/$s.binary.txt" >"$out/$s.binary.diff" &&
	   diff "$out/$s.direct.txt" "$out/$s.source.txt" >"$out/$s.source.diff"; then
		echo "compat $s: $(grep -c ': CUDA_SUCCESS' "$out/$s.direct.txt") calls, $(grep '^Result' "$out/$s.direct.txt"): the same directly, through libcuda.so.1 and through liblake"
	else
		echo "FAILED: $s differs through LAKE:"
		cat "$out/$s.binary.diff" "$out/$s.source.diff"
		fail=1
	fi
done

nvml_h=""
for d in /usr/local/cuda/include /usr/include /usr/local/cuda/targets/x86_64-linux/include; do
	[ -f "$d/nvml.h" ] && { nvml_h=$d; break; }
done
if [ -n "$nvml_h" ]; then
	if gcc -fsyntax-only -I"$nvml_h" -I"$build/gen" -I"$src/include/uapi" \
		"$build/gen/lake_conform_nvml.c" 2>"$out/nvml-conform.txt"; then
		echo "conformance: api-spec/nvml.yaml matches $nvml_h/nvml.h"
	else
		echo "FAILED: api-spec/nvml.yaml differs from $nvml_h/nvml.h:"
		cat "$out/nvml-conform.txt"
		fail=1
	fi
else
	echo "conformance: SKIPPED for nvml.yaml: no nvml.h on this machine"
fi
exit $fail
