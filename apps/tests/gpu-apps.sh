#!/usr/bin/env bash
# gpu-apps.sh - the apps' gpu-labelled test (CTest gpu_apps): on a real GPU,
# through liblake (lake-APP, the remoted path, with the real lakeD on a
# private socket) and directly (lake-APP-direct, on libcuda), each app's GPU
# outputs against its CPU outputs, in every way the app can run a batch on the
# GPU (each kernel variant with each transfer: copies, mapped host memory,
# and the polled ones where the kernels signal their completion):
#   verify app=all batch=1..1024 rows=ROWS seed=1
# over the fixed input and ROWS (default 10,000) random rows per batch size.
# LinnOS must be bit-exact; MLLB and KML within their stated tolerance (1e-5
# of max(1, |score|)) with identical classes; every way must equal the
# first (copies) bit for bit; and the direct-CUDA build must give the same GPU and
# CPU outputs (the same hashes) as the liblake build.
# Kleio and KNN are bit-exact too; Kleio runs at the paper's n = 20, 80, ...,
# 1160 (unless LAKE_APPS_BATCHES is set) with ROWS / 5 random rows per size
# (its CPU path is ~1 ms a sample).
# Usage: gpu-apps.sh BUILD_DIR [OUT_DIR] [ROWS]    (LAKE_APPS: the apps, default "linnos mllb kml kleio knn")
#
# LAKE_APPS_EMU=DIR runs it instead against libcuda-emu in DIR, the TEST
# DOUBLE of libcuda that runs the kernels' source on the CPU (CTest
# unit_apps_emulated): no GPU claim, a check of the kernels' code and of
# this script; LAKE_APPS_BATCHES (default 1..1024) and LAKE_APPS_SETTINGS
# (the programs' settings, e.g. crossover=16 xfer=copy) then keep it short.
# Exit 0: all passed; 1: a failure (said why); 77: no GPU here (skipped).
set -uo pipefail
build=$(cd "$1" && pwd)
out=${2:-$(mktemp -d)}
rows=${3:-10000}
mkdir -p "$out"
out=$(cd "$out" && pwd)

batches=${LAKE_APPS_BATCHES:-1..1024}
read -r -a settings <<<"${LAKE_APPS_SETTINGS:-}"
if [ -n "${LAKE_APPS_EMU:-}" ]; then
	export LD_LIBRARY_PATH=$LAKE_APPS_EMU${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	echo "libcuda-emu (TEST DOUBLE, the kernels emulated on the CPU) in $LAKE_APPS_EMU: not a GPU"
elif ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
	echo "SKIPPED: no GPU on this machine (nvidia-smi lists none); the apps' gpu tests run on a GPU machine"
	exit 77
else
	nvidia-smi -L | head -n 1
fi

sock=$(mktemp -u /tmp/lakeD-apps.XXXXXX.sock)
"$build/daemon/lakeD" -f --socket "$sock" --device /dev/lake-absent --log-level info \
	>"$out/lakeD.log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -f "$sock"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "FAILED: lakeD did not open $sock"; cat "$out/lakeD.log"; exit 1; }

fail=0
apps=(${LAKE_APPS:-linnos mllb kml kleio knn})
# Each program verifies in its own process, LAKE_APPS_JOBS (default: the
# CPUs here) at a time: the results are the same, the wall time shorter.
njobs=${LAKE_APPS_JOBS:-$(nproc)}
app_batches() { if [ "$1" = kleio ] && [ -z "${LAKE_APPS_BATCHES:-}" ]; then seq -s, 20 60 1160; else echo "$batches"; fi; }
app_rows() { if [ "$1" = kleio ]; then echo $((rows / 5)); else echo "$rows"; fi; }
pids=()
# The verifications running now (lakeD is a background job too: not counted).
running() { local n=0 pid; for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && n=$((n + 1)); done; echo $n; }
for app in "${apps[@]}"; do
	for variant in lake direct; do
		p=$build/apps/$app/lake-$app
		[ "$variant" = direct ] && p=$p-direct
		[ -x "$p" ] || continue
		while [ "$(running)" -ge "$njobs" ]; do sleep 0.2; done
		(
			LAKE_SOCKET=$sock LAKE_ARENA_MB=256 "$p" "${settings[@]}" verify app=all \
				batch="$(app_batches "$app")" rows="$(app_rows "$app")" seed=1 \
				>"$out/verify-$app-$variant.csv" 2>"$out/verify-$app-$variant.log"
			echo $? >"$out/verify-$app-$variant.rc"
		) &
		pids+=($!)
	done
done
for pid in "${pids[@]}"; do wait "$pid"; done
for app in "${apps[@]}"; do
	for variant in lake direct; do
		p=$build/apps/$app/lake-$app
		[ "$variant" = direct ] && p=$p-direct
		if [ ! -x "$p" ]; then
			echo "FAILED: $p is not built"
			fail=1
			continue
		fi
		csv=$out/verify-$app-$variant.csv
		rc=$(cat "$out/verify-$app-$variant.rc" 2>/dev/null || echo "?")
		# app,build,batch,status,rows,bit_exact,beyond_tolerance,class_differs,max_abs_diff,cpu_hash,gpu_hash,ways_same,ways
		summary=$(awk -F, -v app="$app" 'NR > 1 {
			n++; rows += $5; exact += $6; tol += $7; cls += $8
			if ($9 + 0 > maxd + 0) maxd = $9
			if ($4 != "ok") bad = bad " " $1 "@" $3 ":" $4
			if (app ~ /^(linnos|kleio|knn)$/ && $6 != $5) bad = bad " " $1 "@" $3 ":not-bit-exact"
			split($12, m, "/"); if (m[1] != m[2] || m[2] == 0) bad = bad " " $1 "@" $3 ":ways " $12 " (" $13 ")"
			ways += m[2]
		} END {
			printf "%d batch sizes, %d rows: %d bit-exact, %d beyond tolerance, %d classes differ, max |diff| %s, other ways %d rows identical%s",
				n, rows, exact, tol, cls, maxd == "" ? 0 : maxd, ways, bad == "" ? "" : "; BAD:" bad
		}' "$csv")
		if [ "$rc" != 0 ] || [ "$(wc -l <"$csv")" -lt 2 ] || [[ $summary == *BAD:* ]]; then
			echo "FAILED: $app ($variant, exit $rc): $summary"
			tail -n 5 "$out/verify-$app-$variant.log"
			fail=1
		else
			echo "$app ($variant): $summary"
		fi
	done
	# The direct-CUDA build computes what the liblake build computes.
	if cmp -s <(cut -d, -f1,3,10,11 "$out/verify-$app-lake.csv") \
		<(cut -d, -f1,3,10,11 "$out/verify-$app-direct.csv"); then
		echo "$app: liblake and direct CUDA gave the same CPU and GPU outputs (hashes) at every batch size"
	else
		echo "FAILED: $app: liblake and direct CUDA outputs differ:"
		diff <(cut -d, -f1,3,10,11 "$out/verify-$app-lake.csv") \
			<(cut -d, -f1,3,10,11 "$out/verify-$app-direct.csv") | head -n 10
		fail=1
	fi
done
for f in "$out"/verify-*.log; do
	grep -h 'GPU path off' "$f" && fail=1
done
[ $fail -eq 0 ] && echo "gpu_apps: PASS" || echo "gpu_apps: FAILED"
exit $fail
