#!/bin/sh
# vm-apps.sh - CTest vm_apps: the app modules in the test VM (lake-vm.sh,
# busybox sh), with lake.ko, lakeD, lakeD-fake, the modules and the
# programs (lake-APP, on liblake) in /lake.  There is no GPU here.
#
#   1. no lakeD: each module loads, says lakeD is not reachable, runs its
#      CPU path; "gpu" after lakeD started sets the GPU path up again, and
#      it reports the missing GPU (CUDA_ERROR_NO_DEVICE)
#   2. real lakeD, no GPU: every module loads and logs the paper's outputs
#      for the fixed input; the CPU path in kernel context gives the user
#      build's outputs bit for bit (hash over the fixed and random inputs at
#      batch 1..1024); GPU mode fails with ENODEV, auto mode runs the CPU
#      (counted); bad commands are refused with EINVAL; lake_hello says NO GPU
#   3. a LinnOS weights file (weights=): the module and the program agree
#   4. lakeD-fake (the test double answers every call): the check of the
#      GPU's outputs against the CPU's turns the GPU path off; auto mode
#      falls back, even with crossover=1
#   5. libcuda-emu behind lakeD (a TEST DOUBLE of libcuda that runs the apps'
#      CUDA kernel sources on the CPU; not a GPU): the modules' GPU paths
#      from kernel context through lake.ko and lakeD, by copies and on
#      mapped lakeShm memory, give the CPU path's outputs bit for bit; the
#      GPU benchmark measures and auto mode's GPU choice run and are counted;
#      lake_hello's vector add runs and every element checks
#   6. after each unload the arena is empty; every unload is clean
# The harness fails the run on any WARNING/BUG/oops in the kernel log.
set -u

STATS=/sys/kernel/debug/lake/stats
OUT=${LAKE_VM_OUT:-/out}
APPS="linnos mllb kml"
DPID=""
T=/tmp/vm-apps
mkdir -p "$T"
# The programs' liblake (see apps/CMakeLists.txt).
export LD_LIBRARY_PATH=/lake/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

log() { echo "vm_apps: $*"; }

fail() {
	echo "vm_apps: FAIL: $*"
	echo "vm_apps: --- kernel log, last 30 lines:"
	dmesg | tail -n 30
	exit 1
}

kstat() { sed -n "s/^$1: //p" "$STATS"; }

start_daemon() { # start_daemon PROGRAM [LD_LIBRARY_PATH]
	LD_LIBRARY_PATH=${2:-${LD_LIBRARY_PATH:-}} "/lake/$1" --foreground >"$OUT/$1${2:+-emu}.log" 2>&1 &
	DPID=$!
	i=0
	until grep -q '^daemon: attached' "$STATS"; do
		i=$((i + 1))
		[ "$i" -le 200 ] || fail "$1 did not attach"
		sleep 0.1
	done
}

stop_daemon() {
	[ -n "$DPID" ] || return 0
	kill -TERM "$DPID"
	wait "$DPID" 2>/dev/null
	DPID=""
	i=0
	while grep -q '^daemon: attached' "$STATS"; do
		i=$((i + 1))
		[ "$i" -le 100 ] || fail "the daemon did not detach"
		sleep 0.1
	done
}

# cmd APP COMMAND...: one run command; its results in $T/APP.csv.
cmd() {
	a=$1
	shift
	echo "$*" >"/sys/kernel/debug/lake_$a/run" || return 1
	cat "/sys/kernel/debug/lake_$a/results" >"$T/$a.csv"
}

load() { # load APP [PARAMS...]
	a=$1
	shift
	marker="vm_apps: load $a $$.$(date +%s)"
	echo "$marker" >/dev/kmsg
	insmod "/lake/lake_$a.ko" "$@" || fail "insmod lake_$a.ko $*"
	dmesg | awk -v m="$marker" 'index($0, m) { on = 1; next } on' >"$T/$a.load"
}

unload() {
	rmmod "lake_$1" || fail "rmmod lake_$1"
	used=$(kstat arena_used)
	[ "$used" = 0 ] || fail "lake_$1 unloaded, but the arena still has $used bytes in use"
}

expect_log() { # expect_log APP TEXT
	grep -qF "$2" "$T/$1.load" || {
		cat "$T/$1.load"
		fail "lake_$1's load log lacks: $2"
	}
}

# same_outputs APP KERNEL_CSV SETTINGS...: the program's hash over the same
# inputs must equal the module's (columns app, mode, batch, ..., row0).
same_outputs() {
	a=$1 kcsv=$2
	shift 2
	# shellcheck disable=SC2086
	"/lake/lake-$a" gpu=0 quiet=1 "$@" $HASH >"$T/$a.user.csv" || fail "lake-$a $* $HASH"
	cut -d, -f1,3- "$kcsv" >"$T/$a.k"
	cut -d, -f1,3- "$T/$a.user.csv" >"$T/$a.u"
	if ! cmp -s "$T/$a.k" "$T/$a.u"; then
		diff "$T/$a.k" "$T/$a.u"
		fail "$a: the kernel's CPU outputs differ from the user build's"
	fi
	n=$(($(wc -l <"$T/$a.k") - 1))
	[ "$n" -ge 11 ] || fail "$a: only $n hash rows"
}

HASH="hash app=all mode=cpu batch=1..1024 rows=200 seed=42"

expected() { # the CPU path's fixed-input line of each model
	case $1 in
	linnos) echo "linnos+0: CPU path on the fixed input: 272198 543598 slow|linnos+1: CPU path on the fixed input: 201373958 301403755 slow|linnos+2: CPU path on the fixed input: 303775520388 116550011269 fast" ;;
	mllb) echo "mllb: CPU path on the fixed input: 0.500133 class 1" ;;
	kml) echo "kml: CPU path on the fixed input: 2.99 -11.38 19.11 -11.09 class 2" ;;
	esac
}

insmod /lake/lake.ko || fail "insmod lake.ko"
[ -r "$STATS" ] || fail "no $STATS"

log "== 1. no lakeD: the GPU path says why, the CPU path works; 'gpu' sets it up later"
load mllb
expect_log mllb "GPU path off: lakeD is not reachable (cuInit: CUDA_ERROR_DEVICE_UNAVAILABLE)"
expect_log mllb "mllb: CPU path on the fixed input: 0.500133 class 1"
start_daemon lakeD
cmd mllb gpu app=mllb || fail "gpu command"
grep -q 'mllb,gpu,no GPU (cuInit: CUDA_ERROR_NO_DEVICE' "$T/mllb.csv" || {
	cat "$T/mllb.csv"
	fail "after 'gpu' with a GPU-less lakeD: no 'no GPU' status"
}
unload mllb

log "== 2. lakeD without a GPU: every module, the CPU path in kernel context = the user build"
for a in $APPS; do
	load "$a"
	expect_log "$a" "GPU path off: no GPU (cuInit: CUDA_ERROR_NO_DEVICE: lakeD has no GPU or no libcuda)"
	expected "$a" | tr '|' '\n' | while read -r line; do
		expect_log "$a" "$line"
	done || exit 1
	cmd "$a" "$HASH" || fail "$a: $HASH"
	cp "$T/$a.csv" "$T/$a.cpu.csv"
	same_outputs "$a" "$T/$a.cpu.csv"
	log "$a: $(($(wc -l <"$T/$a.cpu.csv") - 1)) batch sizes, outputs equal to the user build's"

	# GPU mode: refused (ENODEV) with the failure in the results.
	if cmd "$a" "hash mode=gpu batch=1 rows=1"; then
		fail "$a: GPU mode without a GPU succeeded"
	fi
	cat "/sys/kernel/debug/lake_$a/results" | grep -q ',error -19,' ||
		fail "$a: GPU mode without a GPU did not report -ENODEV"
	# Auto mode: the CPU path, counted.
	cmd "$a" "hash app=all mode=auto batch=1..1024 rows=200 seed=42" || fail "$a: auto mode failed"
	sed 's/,auto,/,cpu,/' "$T/$a.csv" | cut -d, -f1,3- >"$T/$a.auto"
	cut -d, -f1,3- "$T/$a.cpu.csv" | cmp -s - "$T/$a.auto" || fail "$a: auto mode's outputs are not the CPU's"
	cmd "$a" info || fail "$a: info"
	grep -q ',counts,.*auto_cpu=[1-9].* auto_gpu=0 ' "$T/$a.csv" || {
		cat "$T/$a.csv"
		fail "$a: auto mode's choices are not counted as CPU"
	}
	# A bad command: EINVAL and a reason.
	if echo "bench batch=99999" >"/sys/kernel/debug/lake_$a/run" 2>/dev/null; then
		fail "$a: a bad command was accepted"
	fi
	grep -q '^error,' "/sys/kernel/debug/lake_$a/results" || fail "$a: no reason for the bad command"
	# A short benchmark of the CPU and auto paths in kernel context.
	cmd "$a" "bench mode=all batch=1,64 iters=20" || fail "$a: bench"
	cp "$T/$a.csv" "$OUT/bench-$a.csv"
	grep -q ',1,cpu,20,' "$T/$a.csv" && grep -q ',64,auto,20,.*,cpu paired_us=' "$T/$a.csv" ||
		fail "$a: bench lacks its CPU/auto rows"
	unload "$a"
done

log "== 2b. lake_hello with a GPU-less lakeD"
marker="vm_apps: hello $$"
echo "$marker" >/dev/kmsg
insmod /lake/lake_hello.ko || fail "insmod lake_hello.ko"
rmmod lake_hello || fail "rmmod lake_hello"
dmesg | awk -v m="$marker" 'index($0, m) { on = 1; next } on' | grep -q 'lake_hello: done: NO GPU' ||
	fail "lake_hello did not end with 'done: NO GPU'"
[ "$(kstat arena_used)" = 0 ] || fail "lake_hello left arena memory in use"

log "== 3. a LinnOS weights file, in the module and in the program"
# linnos+0 with its output layer's biases moved: the decisions change.
awk '/^# bias_1 /{ print; getline; print "1300000 -1300000"; next } { print }
     NR == 1 { print "# model linnos+0" }' /lake/linnos_weights.txt >"$T/w.txt"
load linnos weights="$T/w.txt"
expect_log linnos "linnos+0: weights from $T/w.txt"
expect_log linnos "linnos+0: CPU path on the fixed input: 941675 -376842 fast"
expect_log linnos "linnos+1: CPU path on the fixed input: 201373958 301403755 slow"
cmd linnos "$HASH" || fail "linnos with weights=: $HASH"
cp "$T/linnos.csv" "$T/linnos.w.csv"
same_outputs linnos "$T/linnos.w.csv" weights="$T/w.txt"
cut -d, -f1,3- "$T/linnos.cpu.csv" | cmp -s - "$T/linnos.k" && fail "weights= changed nothing"
unload linnos
if insmod /lake/lake_linnos.ko weights=/nonexistent 2>/dev/null; then
	fail "a missing weights file was accepted"
fi
grep -q '^lake_linnos ' /proc/modules && fail "lake_linnos stayed loaded after a failed load"

log "== 4. lakeD-fake: the GPU check turns the GPU path off; auto falls back"
stop_daemon
start_daemon lakeD-fake
for a in $APPS; do
	load "$a" crossover=1
	expect_log "$a" "GPU path off:"
	grep -q "CUDA_ERROR_NO_DEVICE" "$T/$a.load" && fail "$a: lakeD-fake reported as no GPU"
	cmd "$a" "hash app=all mode=auto batch=1..1024 rows=200 seed=42" || fail "$a: auto mode"
	sed 's/,auto,/,cpu,/' "$T/$a.csv" | cut -d, -f1,3- >"$T/$a.auto"
	cut -d, -f1,3- "$T/$a.cpu.csv" | cmp -s - "$T/$a.auto" ||
		fail "$a: auto mode with lakeD-fake did not give the CPU's outputs"
	grep "GPU path off" "$T/$a.load" | head -n 1 | sed 's/^\[[ 0-9.]*\] /vm_apps: /'
	unload "$a"
done
stop_daemon

log "== 5. libcuda-emu behind lakeD (TEST DOUBLE: the kernels' source run on the CPU)"
# Emulated kernels under TCG are slow: batch-1024 checks take seconds.
echo 300000 >/sys/module/lake/parameters/timeout_ms
start_daemon lakeD /lake/emu
i=0
until grep -q 'GPU 0: libcuda-emu TEST DOUBLE' "$OUT/lakeD-emu.log"; do
	i=$((i + 1))
	[ "$i" -le 100 ] || fail "lakeD did not load libcuda-emu"
	sleep 0.1
done
for a in $APPS; do
	# +0 and +1 use every LinnOS kernel (libcuda-emu has 4 SMs); +2 the same
	# as +1 (unit_apps_emulated runs it).
	models=all
	case $a in
	linnos) batches=1,5,9,33 models=linnos+0,linnos+1 ;;
	mllb) batches=1,130 ;;
	kml) batches=1,300 ;;
	esac
	load "$a" crossover=16 xfer=mapped models=$models
	grep -q "GPU path off" "$T/$a.load" && {
		cat "$T/$a.load"
		fail "$a: the GPU path is off with libcuda-emu"
	}
	expect_log "$a" "GPU transfers: mapped host memory (set)"
	cmd "$a" "verify app=all batch=$batches rows=4" || {
		cat "/sys/kernel/debug/lake_$a/results"
		fail "$a: verify from kernel context failed"
	}
	awk -F, 'NR > 1 && ($4 != "ok" || $5 != $6 || $7 != 0 || $8 != 0) { bad = 1 }
		 NR > 1 { split($12, m, "/"); if (m[1] != m[2] || m[2] == 0) bad = 1 }
		 END { exit bad }' "$T/$a.csv" || {
		cat "$T/$a.csv"
		fail "$a: kernel-context GPU outputs differ from the CPU's"
	}
	cmd "$a" "hash app=all mode=gpu batch=1,33 rows=8" || fail "$a: hash mode=gpu"
	sed 's/,gpu,/,X,/' "$T/$a.csv" >"$T/$a.gpuhash"
	cmd "$a" "hash app=all mode=cpu batch=1,33 rows=8" || fail "$a: hash mode=cpu"
	sed 's/,cpu,/,X,/' "$T/$a.csv" | cmp -s - "$T/$a.gpuhash" || {
		diff "$T/$a.csv" "$T/$a.gpuhash"
		fail "$a: GPU-mode outputs differ from CPU-mode outputs"
	}
	cmd "$a" "bench mode=gpu,auto batch=1,33 iters=3" || {
		cat "/sys/kernel/debug/lake_$a/results"
		fail "$a: GPU bench"
	}
	cp "$T/$a.csv" "$OUT/bench-emu-$a.csv"
	for m in floor gpu_infer gpu_xfer_copy gpu_xfer_mapped device device_xfer; do
		grep -q ",33,$m,3," "$T/$a.csv" || fail "$a: the GPU bench lacks $m"
	done
	grep -q ',33,auto,3,.*,gpu paired_us=' "$T/$a.csv" || fail "$a: auto mode did not choose the GPU at batch 33"
	cmd "$a" info || fail "$a: info"
	grep -q ',counts,.* gpu=[1-9].* auto_gpu=[1-9].* mapped=[1-9]' "$T/$a.csv" || {
		cat "$T/$a.csv"
		fail "$a: the GPU choices are not counted"
	}
	log "$a: kernel-context GPU path (emulated kernels) = CPU path at batch $batches"
	unload "$a"
done
marker="vm_apps: hello emu $$"
echo "$marker" >/dev/kmsg
insmod /lake/lake_hello.ko size_kb=64 || fail "insmod lake_hello.ko (libcuda-emu)"
rmmod lake_hello || fail "rmmod lake_hello"
dmesg | awk -v m="$marker" 'index($0, m) { on = 1; next } on' >"$T/hello.emu"
grep -q 'lake_hello: done: OK: .*every element checked' "$T/hello.emu" || {
	cat "$T/hello.emu"
	fail "lake_hello's vector add (libcuda-emu) did not end with 'done: OK'"
}
log "lake_hello: $(grep -o 'cuLaunchKernel.*' "$T/hello.emu")"
[ "$(kstat arena_used)" = 0 ] || fail "lake_hello left arena memory in use"
stop_daemon
echo 10000 >/sys/module/lake/parameters/timeout_ms

grep -E '^lake_(linnos|mllb|kml|hello) ' /proc/modules && fail "an app module is still loaded"
rmmod lake || fail "rmmod lake"
log "PASS"
exit 0
