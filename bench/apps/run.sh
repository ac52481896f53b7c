#!/usr/bin/env bash
# The apps' benchmark on a GPU machine: every model of LinnOS (+0/+1/+2),
# MLLB and KML, at batch 1..1024, through liblake (lake-APP: liblake ->
# lakeD -> libcuda) and directly (lake-APP-direct: libcuda), in the same
# session, ROUNDS rounds alternating the two.  Each program runs its own
# `bench` command (docs/apps.md): the CPU path, the empty launch + sync
# floor, GPU inference only, with transfers (copies, mapped host memory,
# both with the completion polled, and which the app picks), CUDA-event
# device time, and auto mode (the CPU path in the first round only).
# report.py then puts the paper's figures (paper_figures.csv) beside them
# and checks the performance targets.
# Kleio runs at the paper's n = 20, 80, ..., 1160, KNN at batch 1..1024;
# report_kleio_knn.py reports those two (FLOP/s and bandwidth reached, their
# targets, the paper's figures).
# Usage: bench/apps/run.sh BUILD_DIR [OUT_DIR] [ITERS] [ROUNDS] [BUDGET_MS]
#        (LAKE_APPS: the apps, default "linnos mllb kml kleio knn")
# Writes OUT_DIR/bench.csv (every round), info-*.csv (each program's
# crossover and set-up measurements), report.csv and report.txt.
set -euo pipefail
build=$(cd "$1" && pwd)
out=${2:-bench-apps}
iters=${3:-300}
rounds=${4:-3}
budget=${5:-200}
mkdir -p "$out"
out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
sock=$(mktemp -u /tmp/lakeD-apps-bench.XXXXXX.sock)

read -r bench_cpu daemon_cpu list <<<"$("$here/../gpu-local-cpus.sh")" || true
pin() { local cpu=$1; shift; if [ -n "$cpu" ]; then taskset -c "$cpu" "$@"; else "$@"; fi; }
{
	echo "# $(nvidia-smi -L 2>/dev/null | head -n 1)"
	echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
	echo "# GPU-local CPUs: ${list:-unknown}; benchmark on ${bench_cpu:-any}, lakeD on ${daemon_cpu:-any}"
	echo "# iters $iters (at most ${budget} ms per measurement), $rounds rounds"
} >"$out/machine.txt"

pin "$daemon_cpu" "$build/daemon/lakeD" -f --socket "$sock" --device /dev/lake-absent \
	--log-level warn >"$out/lakeD.log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null || true; rm -f "$sock"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "bench/apps: lakeD did not start"; cat "$out/lakeD.log"; exit 1; }

# At least 3 samples of a measure (slow CPU paths: budget_ms bounds the rest).
cmd="bench app=all iters=$iters budget_ms=$budget min_iters=3"
echo "round,app,build,batch,measure,iters,mean_us,median_us,p99_us,min_us,detail" >"$out/bench.csv"
for round in $(seq "$rounds"); do
	for app in ${LAKE_APPS:-linnos mllb kml kleio knn}; do
		batches=1..1024
		[ "$app" = kleio ] && batches=$(seq -s, 20 60 1160)
		for variant in direct lake; do
			p=$build/apps/$app/lake-$app
			# The CPU path is the same code in both builds, and runs no
			# GPU code: timed in one build, in the first round.
			modes=gpu,auto
			if [ "$variant" = direct ]; then
				p=$p-direct
			elif [ "$round" = 1 ]; then
				modes=all
			fi
			echo "bench/apps: round $round: $app ($variant)" >&2
			LAKE_SOCKET=$sock LAKE_ARENA_MB=256 pin "$bench_cpu" "$p" quiet=1 $cmd batch="$batches" mode=$modes \
				>"$out/run.csv" 2>"$out/run-$app-$variant.log" ||
				{ echo "bench/apps: lake-$app ($variant) failed:"; tail -n 5 "$out/run-$app-$variant.log"; cat "$out/run.csv"; exit 1; }
			tail -n +2 "$out/run.csv" | sed "s/^/$round,/" >>"$out/bench.csv"
			[ "$round" = 1 ] && LAKE_SOCKET=$sock pin "$bench_cpu" "$p" quiet=1 info \
				>"$out/info-$app-$variant.csv" 2>/dev/null
		done
	done
done
rm -f "$out/run.csv"
python3 "$here/report.py" "$out" "$here/paper_figures.csv" | tee "$out/report.txt"
if grep -qE '^[0-9]+,(kleio|knn),' "$out/bench.csv"; then
	python3 "$here/report_kleio_knn.py" "$out" "$here" | tee -a "$out/report.txt"
fi
