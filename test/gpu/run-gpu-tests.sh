#!/usr/bin/env bash
# The gpu-labelled tests, in one command:
#   gpu_calls     every spec'd function through LAKE against the real libcuda,
#                 compared line by line with the same calls made directly
#   gpu_compat_calls  the functions the spec grew beyond gpu_calls' (devices,
#                 contexts, modules, libraries, launches, occupancy, copies,
#                 arrays, pools, virtual memory, graphs, NVML, ...), the same way
#   compat_SAMPLE programs written for NVIDIA's cuda.h (test/compat) run
#                 directly, through LAKE's libcuda.so.1 by library path alone
#                 (binary compatibility) and built against LAKE's cuda.h with
#                 liblake (source compatibility): all three print the same
#   gpu_misuse    handle misuse and a client killed mid-call
#   gpu_layouts   the kernel-parameter layouts LAKE reads from images
#                 (lake_kernels.fatbin, the parser's kparams images) against
#                 the driver's cuFuncGetParamInfo
#   gpu_tenants   another process of this user and (as root) of uid 65534 go
#                 after this one's memory, contexts and primary-context
#                 reference through the real lakeD; then (gpu_tenants_threads)
#                 several serving threads per client
#   nvml_conform  api-spec/nvml.yaml against nvml.h, where it is installed
#
# Usage: run-gpu-tests.sh [--build] BUILD_DIR [OUT_DIR]
#   --build  first configure and build in BUILD_DIR what these tests need,
#            with the tools present and installing nothing: no libcheck,
#            kernel headers or qemu needed.  On the GPU machine:
#              LAKE_NO_INSTALL=1 bash test/gpu/run-gpu-tests.sh --build build-gpu OUT
# Every result lands in OUT_DIR (default: a new temporary directory), in two
# files: summary.txt, one line per test ("PASS name (N s)", "FAIL name (N s):
# why, see LOG", "SKIP name: why"), and logs.tar.gz: one log per test, the
# diffs, lakeD's logs, the build's logs (LOG above names a file in it).
# Exit 0 when nothing failed, 1 otherwise, 77 (skipped) without a GPU.
# LAKE_GPU_TEST_TIMEOUT: seconds one test program may run (default 90).
set -uo pipefail
build_first=0
if [ "${1:-}" = --build ]; then
	build_first=1
	shift
fi
[ $# -ge 1 ] || { echo "usage: run-gpu-tests.sh [--build] BUILD_DIR [OUT_DIR]" >&2; exit 2; }
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1" || exit 1
build=$(cd "$1" && pwd)
out=${2:-$(mktemp -d /tmp/lake-gpu-tests.XXXXXX)}
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
summary=$out/summary.txt
# The logs, packed into OUT_DIR/logs.tar.gz when the script ends.
logs=$out/logs
rm -rf "$logs" "$out/logs.tar.gz"
mkdir -p "$logs" || exit 1
pack_logs() {
	tar -czf "$out/logs.tar.gz" -C "$out" logs && rm -rf "$logs"
}
tmo=${LAKE_GPU_TEST_TIMEOUT:-90}
compat_samples="vector_add_drv matrix_mul_drv device_query_drv"
: >"$summary"
trap pack_logs EXIT
t0=$SECONDS
fail=0

# One line per test, in summary.txt and on stdout.
report() {
	echo "$*" | tee -a "$summary"
}

if [ "$build_first" = 1 ]; then
	if ! cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$logs/cmake.log" 2>&1; then
		tail -n 30 "$logs/cmake.log"
		report "FAIL build: cmake configure, see cmake.log"
		exit 1
	fi
	grep -E 'SKIPPED|LAKE' "$logs/cmake.log" | sed 's/^/  /'
	targets=(lakeD gpu_calls_lake gpu_calls_direct gpu_compat_calls_lake gpu_compat_calls_direct
		gpu_misuse gpu_layouts gpu_tenants lake_kernels)
	# The compat samples (where cmake found cuda.h and nvcc for them).
	if [[ $(cmake --build "$build" --target help 2>/dev/null) == *lake_compat_kernels* ]]; then
		targets+=(lake_libcuda lake_compat_kernels)
		for s in $compat_samples; do targets+=("${s}_vendor" "${s}_lake"); done
	fi
	# (Only where nvcc built its rule.)
	[[ $(cmake --build "$build" --target help 2>/dev/null) == *lake_kparams_images* ]] &&
		targets+=(lake_kparams_images)
	if ! cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >"$logs/build.log" 2>&1; then
		tail -n 40 "$logs/build.log"
		report "FAIL build: see build.log"
		exit 1
	fi
	echo "built ${targets[*]} in $((SECONDS - t0)) s"
fi

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >"$logs/nvidia-smi.txt" 2>&1; then
	report "SKIP all: no GPU on this machine (nvidia-smi lists none); the gpu tests run on a GPU machine"
	exit 77
fi
for prog in daemon/lakeD test/gpu/gpu_calls_lake test/gpu/gpu_calls_direct \
	test/gpu/gpu_compat_calls_lake test/gpu/gpu_compat_calls_direct test/gpu/gpu_misuse \
	test/gpu/gpu_layouts test/gpu/gpu_tenants lake_kernels.fatbin; do
	[ -e "$build/$prog" ] || { report "FAIL build: $build/$prog is missing (build first, or --build)"; exit 1; }
done
fatbin=$build/lake_kernels.fatbin

# Sockets in a short path of their own (OUT_DIR may be too long for one),
# reachable by uid 65534 (gpu_tenants' other user).
tdir=$(mktemp -d /tmp/lake-gpu.XXXXXX)
chmod 0755 "$tdir"
daemons=()
cleanup() {
	local p
	for p in "${daemons[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${daemons[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tdir"
	pack_logs
}
trap cleanup EXIT

# start_lakeD SOCKET LOG ARGS...: a real lakeD serving user clients only.
start_lakeD() {
	local sock=$1 log=$2
	shift 2
	"$build/daemon/lakeD" -f --socket "$sock" --device /dev/lake-absent --log-level info "$@" \
		>"$log" 2>&1 &
	daemons+=($!)
	for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.1; done
	return 1
}

# run NAME LOG CMD...: CMD's output into LOG, within the time limit; sets rc
# (124: timed out) and secs.
run() {
	local name=$1 log=$2 t=$SECONDS
	shift 2
	timeout -k 5 "$tmo" "$@" >"$log" 2>&1
	rc=$?
	secs=$((SECONDS - t))
	[ "$rc" != 124 ] && [ "$rc" != 137 ] || echo "$name: timed out after $tmo s" >>"$log"
}

# verdict NAME OK WHY LOG: one summary line.
verdict() {
	if [ "$2" = 1 ]; then
		report "PASS $1 ($secs s)"
	else
		report "FAIL $1 ($secs s): $3, see $(basename "$4")"
		tail -n 20 "$4" | sed 's/^/  | /'
		fail=1
	fi
}

why_rc() {
	case $1 in
	124|137) echo "timed out after $tmo s" ;;
	*) echo "exit $1" ;;
	esac
}

sock=$tdir/calls.sock
if ! start_lakeD "$sock" "$logs/lakeD.log"; then
	report "FAIL lakeD: it did not open $sock, see lakeD.log"
	exit 1
fi

# compare NAME PROG TAG: PROG (gpu_calls, gpu_compat_calls) directly and
# through LAKE, line for line (after each one's first line, which names it;
# without the "lake-only" lines, what only the LAKE build checks).
compare() {
	local name=$1 prog=$2 tag=$3 t_direct rc_direct rc_lake ok=1 why=""
	run "$name" "$logs/$tag-direct.txt" "$build/test/gpu/${prog}_direct" "$fatbin"
	rc_direct=$rc
	t_direct=$secs
	LAKE_SOCKET=$sock run "$name" "$logs/$tag-lake.txt" "$build/test/gpu/${prog}_lake" "$fatbin"
	rc_lake=$rc
	secs=$((secs + t_direct))
	if [ "$rc_direct" != 0 ] || [ "$rc_lake" != 0 ]; then
		ok=0 why="direct: $(why_rc "$rc_direct"), through LAKE: $(why_rc "$rc_lake")"
	elif ! diff <(tail -n +2 "$logs/$tag-direct.txt" | grep -v -e '^lake-only' -e '^liblake: ') \
		<(tail -n +2 "$logs/$tag-lake.txt" | grep -v -e '^lake-only' -e '^liblake: ') >"$logs/$tag.diff"; then
		ok=0 why="LAKE and direct CUDA differ ($tag.diff)"
	elif grep -q -E '^check .*: FAILED$|^lake-only FAILED' "$logs/$tag-lake.txt" "$logs/$tag-direct.txt"; then
		ok=0 why="a check FAILED"
	fi
	if [ "$ok" = 1 ]; then
		echo "$name: $(grep -c ': ' "$logs/$tag-lake.txt") calls and checks through LAKE match direct CUDA line for line"
	fi
	verdict "$name" "$ok" "$why" "$logs/$tag-lake.txt"
	[ -s "$logs/$tag.diff" ] && head -n 40 "$logs/$tag.diff"
}

# gpu_calls, gpu_compat_calls: the same calls directly and through LAKE.
compare gpu_calls gpu_calls calls
compare gpu_compat_calls gpu_compat_calls compat-calls

# compat_SAMPLE: programs written for NVIDIA's cuda.h (test/compat, in the
# style of the cuda-samples Driver API programs), built against NVIDIA's
# cuda.h and libcuda and run directly, then through LAKE's libcuda.so.1 by
# library path alone; built against LAKE's vendor-named headers and liblake.
# All three runs must print the same (their results verified on the GPU).
cbin=$build/test/compat
cfat=$cbin/compat_kernels.fatbin
for s in $compat_samples; do
	name=compat_$s
	if [ ! -x "$cbin/${s}_vendor" ] || [ ! -x "$cbin/${s}_lake" ] || [ ! -f "$cfat" ]; then
		report "SKIP $name: not built (cmake found no cuda.h or nvcc for test/compat)"
		continue
	fi
	run "$name" "$logs/$s.direct.txt" "$cbin/${s}_vendor" "$cfat"
	rc_direct=$rc t_all=$secs
	LAKE_SOCKET=$sock LD_LIBRARY_PATH=$build/client/compat \
		run "$name" "$logs/$s.binary.txt" "$cbin/${s}_vendor" "$cfat"
	rc_binary=$rc t_all=$((t_all + secs))
	LAKE_SOCKET=$sock run "$name" "$logs/$s.source.txt" "$cbin/${s}_lake" "$cfat"
	rc_source=$rc secs=$((t_all + secs))
	ok=1 why=""
	if [ "$rc_direct" != 0 ] || [ "$rc_binary" != 0 ] || [ "$rc_source" != 0 ]; then
		ok=0 why="direct: $(why_rc "$rc_direct"), libcuda.so.1: $(why_rc "$rc_binary"), liblake: $(why_rc "$rc_source")"
	elif ! grep -q '^Result = PASS' "$logs/$s.direct.txt"; then
		ok=0 why="directly, its result is not PASS"
	elif ! diff "$logs/$s.direct.txt" "$logs/$s.binary.txt" >"$logs/$s.binary.diff"; then
		ok=0 why="through libcuda.so.1 it prints something else ($s.binary.diff)"
	elif ! diff "$logs/$s.direct.txt" "$logs/$s.source.txt" >"$logs/$s.source.diff"; then
		ok=0 why="built against LAKE's cuda.h it prints something else ($s.source.diff)"
	fi
	[ "$ok" = 1 ] && echo "$name: $(grep -c ': CUDA_SUCCESS' "$logs/$s.direct.txt") calls, $(grep '^Result' "$logs/$s.direct.txt"): the same directly, through libcuda.so.1 and through liblake"
	verdict "$name" "$ok" "$why" "$logs/$s.binary.txt"
done

# gpu_misuse: handles misused, a client killed mid-call.
LAKE_SOCKET=$sock run gpu_misuse "$logs/misuse.txt" "$build/test/gpu/gpu_misuse" "$fatbin"
verdict gpu_misuse "$([ "$rc" = 0 ] && echo 1 || echo 0)" "$(why_rc "$rc")" "$logs/misuse.txt"

# gpu_layouts: the layouts LAKE reads from images, against the driver's.
images=("$fatbin")
for f in kparams.cubin kparams.ptx kparams.fatbin kparams-size.fatbin kparams-speed.fatbin \
	kparams-none.fatbin; do
	[ -f "$build/test/unit/kparams/$f" ] && images+=("$build/test/unit/kparams/$f")
done
[ ${#images[@]} -gt 1 ] ||
	echo "gpu_layouts: no kparams images in $build/test/unit/kparams (no nvcc?): lake_kernels.fatbin only"
run gpu_layouts "$logs/layouts.txt" "$build/test/gpu/gpu_layouts" "${images[@]}"
tail -n 1 "$logs/layouts.txt"
verdict gpu_layouts "$([ "$rc" = 0 ] && echo 1 || echo 0)" \
	"$(why_rc "$rc"); $(grep -c MISMATCH "$logs/layouts.txt") MISMATCH lines" "$logs/layouts.txt"

# gpu_tenants: a lakeD any user may reach, serving each client with 4 threads.
tsock=$tdir/tenants.sock
if start_lakeD "$tsock" "$logs/lakeD-tenants.log" --socket-mode 0666 --client-threads 4; then
	LAKE_SOCKET=$tsock run gpu_tenants "$logs/tenants.txt" "$build/test/gpu/gpu_tenants" "$fatbin"
	verdict gpu_tenants "$([ "$rc" = 0 ] && echo 1 || echo 0)" \
		"$(why_rc "$rc"); $(grep -c FAILED "$logs/tenants.txt") lines marked FAILED" "$logs/tenants.txt"
	LAKE_SOCKET=$tsock run gpu_tenants_threads "$logs/tenants-threads.txt" \
		"$build/test/gpu/gpu_tenants" --threads "$fatbin"
	verdict gpu_tenants_threads "$([ "$rc" = 0 ] && echo 1 || echo 0)" \
		"$(why_rc "$rc"); $(grep -c FAILED "$logs/tenants-threads.txt") lines marked FAILED" \
		"$logs/tenants-threads.txt"
	"$build/daemon/lakeD" --status --socket "$tsock" >"$logs/lakeD-status.txt" 2>&1 || true
else
	secs=0
	verdict gpu_tenants 0 "lakeD did not open $tsock" "$logs/lakeD-tenants.log"
fi

# nvml_conform: the NVML spec against nvml.h.
nvml_h=""
for d in /usr/local/cuda/include /usr/include /usr/local/cuda/targets/x86_64-linux/include; do
	[ -f "$d/nvml.h" ] && { nvml_h=$d; break; }
done
if [ -n "$nvml_h" ]; then
	run nvml_conform "$logs/nvml-conform.txt" gcc -fsyntax-only -I"$nvml_h" -I"$build/gen" \
		-I"$src/include/uapi" "$build/gen/lake_conform_nvml.c"
	verdict nvml_conform "$([ "$rc" = 0 ] && echo 1 || echo 0)" \
		"api-spec/nvml.yaml differs from $nvml_h/nvml.h" "$logs/nvml-conform.txt"
else
	report "SKIP nvml_conform: no nvml.h on this machine"
fi

echo "run-gpu-tests: $((SECONDS - t0)) s in all; results in $out (summary.txt, logs.tar.gz)"
exit $fail
