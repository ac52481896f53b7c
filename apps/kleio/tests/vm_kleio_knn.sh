#!/bin/sh
# vm_kleio_knn.sh - CTest vm_kleio_knn: lake_kleio.ko and lake_knn.ko in
# kernel context, run inside the test VM by lake-vm.sh (busybox sh) with
# lake.ko, lakeD, lakeD-fake, both modules and both user programs in /lake.
# (The kit's vm_apps does the same for the MLP apps at batch 1..1024; these
# two models are 10-100 times heavier per row, so they get smaller batches
# here, and the long runs the soft-lockup detector must stay quiet through.)
#
# For each app:
#   1. load     the module loads; without lakeD the GPU path says lakeD is
#               not reachable; with lakeD (no GPU here) that there is no
#               GPU; with lakeD-fake, 'gpu' sets it up again and the kit's
#               check turns it off (the test double's outputs are not the
#               CPU's), saying so
#   2. same     the CPU path in kernel context gives the user build's
#               outputs bit for bit (the kit's hash over the fixed input and
#               random batches, from the module and from lake-<app> gpu=0)
#   3. fallback GPU mode fails with ENODEV; auto mode runs the CPU path (the
#               same outputs) and counts it
#   4. long     one CPU run (one command) of ~8 s with the soft-lockup
#               detector at 6 s (watchdog_thresh=3): short FPU regions and
#               rescheduling between them keep it quiet
#   5. unload   rmmod; the arena is empty afterwards
# The harness fails the run on any WARNING/BUG/soft lockup in the kernel log.
set -u

OUT=${LAKE_VM_OUT:-/out}
STATS=/sys/kernel/debug/lake/stats
DPID=""

log() { echo "vm_kleio_knn: $*"; }

fail() {
	echo "vm_kleio_knn: FAIL: $*"
	echo "vm_kleio_knn: --- kernel log, last 30 lines:"
	dmesg | tail -n 30
	exit 1
}

now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
kstat() { sed -n "s/^$1: //p" "$STATS"; }

# run APP CMD...: one command of the module's run interface; its results in
# $OUT/APP-last.csv.  Fails the test when the command fails.
run() {
	app=$1
	shift
	echo "$*" >"/sys/kernel/debug/lake_$app/run" || fail "$app: '$*' failed: $(cat "/sys/kernel/debug/lake_$app/results")"
	cat "/sys/kernel/debug/lake_$app/results" >"$OUT/$app-last.csv"
}

info() { run "$1" "info app=$1" && sed -n "s/^$1,$2,//p" "$OUT/$1-last.csv"; }

insmod /lake/lake.ko || fail "insmod lake.ko"
echo 3 >/proc/sys/kernel/watchdog_thresh || fail "cannot set watchdog_thresh"
log "soft-lockup detector at $((2 * $(cat /proc/sys/kernel/watchdog_thresh))) s"

# --- 1. load, with and without lakeD -------------------------------------------
# start_daemon PROGRAM: in the background, attached to lake.ko
start_daemon() {
	"/lake/$1" --foreground >"$OUT/$1.log" 2>&1 &
	DPID=$!
	end=$(($(now_ms) + 10000))
	while [ "$(kstat daemon)" != attached ]; do
		[ "$(now_ms)" -lt "$end" ] || fail "$1 did not attach: $(tail -n 3 "$OUT/$1.log")"
		sleep 0.05
	done
}

stop_daemon() {
	kill "$DPID"
	wait "$DPID"
	while [ "$(kstat daemon)" = attached ]; do sleep 0.05; done
}

log "== 1. load"
insmod /lake/lake_knn.ko || fail "insmod lake_knn.ko without lakeD"
info knn gpu | grep -q "lakeD is not reachable" || fail "knn: no lakeD not reported: $(info knn gpu)"
start_daemon lakeD
run knn "gpu app=knn"
insmod /lake/lake_kleio.ko || fail "insmod lake_kleio.ko"
for app in kleio knn; do
	why=$(info $app gpu)
	log "$app: with lakeD and no GPU: $why"
	echo "$why" | grep -q "no GPU (cuInit: CUDA_ERROR_NO_DEVICE" || fail "$app: the missing GPU was not reported: $why"
	dmesg | grep -q "lake_$app: $app: CPU path on the fixed input" || fail "$app: no CPU result at load"
done
stop_daemon
start_daemon lakeD-fake
for app in kleio knn; do
	run $app "gpu app=$app"
	why=$(info $app gpu)
	log "$app: with lakeD-fake: $why"
	# Refused either by the kit's GPU check or, before it, by lake.ko, which
	# does not believe the test double's answers: its kernels all take
	# (8, 4, 8) bytes, not the layout lake.ko read from the app's own image,
	# and it names every loaded module with the same handle.  (The error's
	# name is lakeD's text: the test double's, under lakeD-fake.)
	echo "$why" | grep -q "test double" ||
		{ echo "$why" | grep -qE "cuModule(GetFunction|LoadData).*: (CUDA_ERROR_UNKNOWN|lake fake text of cuGetErrorName)" &&
		  dmesg | grep -qE "lake: lakeD('s parameter layout for kernel .* differs from the module image's| answered a module load with the handle of another loaded module)"; } ||
		fail "$app: the test double's GPU path was not refused: $why"
done

for app in kleio knn; do
	if [ $app = kleio ]; then
		hash="batch=3,20 rows=20 seed=7" auto="batch=20" long="batch=20"
	else
		hash="batch=1,5,64 rows=64 seed=7" auto="batch=16" long="batch=256"
	fi

	# --- 2. kernel context = user space ----------------------------------------
	log "== 2. $app: CPU path in kernel context vs the user build ($hash)"
	run $app "hash app=$app mode=cpu $hash"
	cut -d, -f1,3- "$OUT/$app-last.csv" >"$OUT/$app-hash-kernel.csv"
	/lake/lake-$app gpu=0 quiet=1 hash app=$app mode=cpu $hash >"$OUT/$app-hash-user.csv" ||
		fail "lake-$app hash failed"
	cut -d, -f1,3- "$OUT/$app-hash-user.csv" >"$OUT/$app-hash-user.cut"
	[ "$(grep -c ",cpu," "$OUT/$app-hash-kernel.csv")" -ge 2 ] || fail "$app: hash gave no rows"
	cmp -s "$OUT/$app-hash-kernel.csv" "$OUT/$app-hash-user.cut" ||
		fail "$app: kernel and user outputs differ: $(cat "$OUT/$app-hash-kernel.csv" "$OUT/$app-hash-user.cut")"
	cat "$OUT/$app-hash-kernel.csv"

	# --- 3. no GPU: GPU mode refused, auto mode on the CPU -----------------------
	log "== 3. $app: GPU mode refused, auto mode falls back"
	echo "hash app=$app mode=gpu batch=1 rows=1" >"/sys/kernel/debug/lake_$app/run" 2>/dev/null &&
		fail "$app: GPU mode ran without a usable GPU"
	grep -q "error -19" "/sys/kernel/debug/lake_$app/results" ||
		fail "$app: GPU mode did not fail with ENODEV: $(cat "/sys/kernel/debug/lake_$app/results")"
	run $app "hash app=$app mode=auto $hash"
	cut -d, -f1,4- "$OUT/$app-last.csv" >"$OUT/$app-hash-auto.cut"
	cut -d, -f1,4- "$OUT/$app-hash-user.csv" >"$OUT/$app-hash-user-mode.cut"
	cmp -s "$OUT/$app-hash-auto.cut" "$OUT/$app-hash-user-mode.cut" ||
		fail "$app: auto mode's outputs are not the CPU path's"
	info $app counts | grep -q "auto_cpu=[1-9][0-9]* auto_gpu=0" ||
		fail "$app: auto mode's choices not counted: $(info $app counts)"
	run $app "bench app=$app mode=auto $auto iters=2 warmup=0"
	grep -q "^$app,kernel,[0-9]*,auto,2,.*,cpu paired_us=" "$OUT/$app-last.csv" ||
		fail "$app: auto mode did not choose the CPU: $(cat "$OUT/$app-last.csv")"

	# --- 4. long CPU runs ------------------------------------------------------
	# One command (one entry into the kernel) of ~8 s: only the module's
	# rescheduling between FPU regions keeps the detector quiet.
	run $app "bench app=$app mode=cpu $long iters=1 warmup=0"
	us=$(sed -n "s/^$app,kernel,[0-9]*,cpu,1,\([0-9]*\)\..*/\1/p" "$OUT/$app-last.csv")
	[ -n "$us" ] || fail "$app: no CPU time in $(cat "$OUT/$app-last.csv")"
	iters=$((8000000 / (us + 1) + 1)) tries=0 t=0
	while [ "$t" -lt 7000 ] && [ $tries -lt 4 ]; do	# the emulated CPU's speed varies
		t0=$(now_ms)
		run $app "bench app=$app mode=cpu $long iters=$iters warmup=0"
		t=$(($(now_ms) - t0))
		log "== 4. $app: one CPU run of $t ms ($long, $iters iterations)"
		iters=$((iters * 2)) tries=$((tries + 1))
	done
	[ "$t" -ge 7000 ] || fail "$app: no run took longer than the soft-lockup threshold"
done

# --- 5. unload -----------------------------------------------------------------
log "== 5. unload"
rmmod lake_kleio || fail "rmmod lake_kleio"
rmmod lake_knn || fail "rmmod lake_knn"
[ "$(kstat arena_used)" = 0 ] || fail "arena not empty after unload: $(kstat arena_used) bytes used"
stop_daemon
rmmod lake || fail "rmmod lake"
log "PASS"
