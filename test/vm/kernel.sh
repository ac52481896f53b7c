#!/bin/sh
# kernel.sh - CTest vm_kernel: lake.ko from kernel context, run inside the
# test VM by lake-vm.sh (busybox sh) with lake.ko, lake_selftest.ko,
# lakeD-fake and stalld in /lake.
#
#   1. roundtrip    every spec'd function from kernel context; lakeD-fake
#                   --fake-verify checks every argument, the module every output
#   2. load         32 kthreads x 10,000 mixed sync/async calls, no lost or
#                   mismatched reply (null calls echo a cookie)
#   3. faults       kill -9 lakeD while 8 kthreads have calls in flight: all
#                   get -ENODEV at once (well within timeout_ms)
#                   and again under the mixed load: async commands in flight
#                   are reclaimed, nothing hangs
#   4. fail-fast    no daemon: calls fail at once
#   5. re-attach    a new lakeD serves again without reloading (bench 1000)
#   6. timeout      a daemon that attaches and never answers (stalld): calls
#                   fail with -ETIMEDOUT / CUDA_ERROR_TIMEOUT /
#                   NVML_ERROR_TIMEOUT after timeout_ms; its going frees
#                   the slots the callers abandoned
#   7. unload       rmmod lake refused while lake_selftest uses it and while
#                   a daemon holds /dev/lake; succeeds after; stats sane
#   8. reload       insmod again (nslots=2): backpressure timeouts with
#                   stalld, then load + bench through 2 slots with lakeD-fake;
#                   a module that leaked lakeShm: rmmod lake reclaims it and
#                   says so (no BUG in gen_pool_destroy)
#
# Every step checks its outcome; the first failure prints why (and the tail
# of the kernel log) and exits 1.  The harness also fails the run on any
# WARNING/BUG/oops in the kernel log.
set -u

ST=/sys/kernel/debug/lake_selftest
STATS=/sys/kernel/debug/lake/stats
P=/sys/module/lake/parameters
OUT=${LAKE_VM_OUT:-/out}
DPID=""

log() { echo "vm_kernel: $*"; }

now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
T0=$(now_ms)

fail() {
	echo "vm_kernel: FAIL: $*"
	echo "vm_kernel: --- kernel log, last 40 lines:"
	dmesg | tail -n 40
	for f in "$OUT"/*.log; do
		[ -f "$f" ] || continue
		echo "vm_kernel: --- $f, last 10 lines:"
		tail -n 10 "$f"
	done
	exit 1
}

step() { log "== $* (at $(($(now_ms) - T0)) ms)"; }

# run CMD...: one selftest command; its write fails when the test fails.
run() {
	echo "$*" >"$ST/run" || fail "selftest '$*' failed (its reasons are in the kernel log above)"
}

# kstat KEY: a "key: value" line of the stats file.
kstat() { sed -n "s/^$1: //p" "$STATS"; }

# calls NAME: the call count of a function in the stats file.
calls() {
	c=$(sed -n "s/^ *$1  *\([0-9][0-9]*\) calls.*/\1/p" "$STATS")
	echo "${c:-0}"
}
null_calls() { calls '(null round trip)'; }

expect_stat() {
	v=$(kstat "$1")
	[ "$v" = "$2" ] || fail "stats: $1 is '$v', expected '$2' ($3)"
}

# running PID: the process exists and is not a zombie.
running() {
	[ -r "/proc/$1/stat" ] || return 1
	! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" 2>/dev/null
}

# wait_done PID MS: wait at most MS ms for PID to end; 1 if it still runs.
wait_done() {
	end=$(($(now_ms) + $2))
	while running "$1"; do
		[ "$(now_ms)" -lt "$end" ] || return 1
		sleep 0.02
	done
	return 0
}

# start_daemon NAME PROGRAM [ARGS...]: run in the background (log in
# $OUT/NAME.log) and wait until the kernel reports it attached.
start_daemon() {
	name=$1
	shift
	"$@" >"$OUT/$name.log" 2>&1 &
	DPID=$!
	end=$(($(now_ms) + 10000))
	while [ "$(kstat daemon)" != attached ]; do
		running "$DPID" || fail "$name exited before attaching: $(tail -n 3 "$OUT/$name.log")"
		[ "$(now_ms)" -lt "$end" ] || fail "$name did not attach within 10 s"
		sleep 0.02
	done
	log "$name (pid $DPID) attached"
}

# stop_daemon SIGNAL WANT_STATUS: stop it, check how it ended and that the
# kernel saw it go.
stop_daemon() {
	kill "-$1" "$DPID" || fail "kill -$1 $DPID: no such daemon"
	wait_done "$DPID" 10000 || fail "daemon $DPID still running 10 s after SIG$1"
	wait "$DPID"
	rc=$?
	[ "$rc" -eq "$2" ] || fail "daemon $DPID exited with status $rc after SIG$1, expected $2"
	expect_stat daemon absent "after the daemon's exit"
	DPID=""
}

module_loaded() { grep -q "^$1 " /proc/modules; }

# --- setup -----------------------------------------------------------------
step "insmod lake.ko, lake_selftest.ko"
insmod /lake/lake.ko || fail "insmod lake.ko"
[ -c /dev/lake ] || fail "/dev/lake is missing after insmod"
insmod /lake/lake_selftest.ko || fail "insmod lake_selftest.ko"
[ -w "$ST/run" ] || fail "$ST/run is missing"
expect_stat daemon absent "after load"
expect_stat attaches 0 "after load"

# cuModuleLoad's test reads the test image from a file, as its caller would.
cp /lake/lake_test_image.ptx /tmp/lake-test-image.ptx || fail "cannot place the test image"

# --- 1. roundtrip ------------------------------------------------------------
step "1. roundtrip: every function from kernel context (lakeD-fake --fake-verify)"
start_daemon lakeD-verify /lake/lakeD-fake --fake-verify -f
run roundtrip
dmesg | grep 'lake_selftest: roundtrip:' | tail -n 1
stop_daemon TERM 0

# --- 2. load ---------------------------------------------------------------
step "2. load: 32 kthreads x 10000 mixed sync/async calls (lakeD-fake)"
start_daemon lakeD-load /lake/lakeD-fake -f
n0=$(null_calls)
l0=$(calls cuLaunchKernel)
run load 32 10000
dmesg | grep 'lake_selftest: load:' | tail -n 1
n1=$(null_calls)
l1=$(calls cuLaunchKernel)
# Each thread: 2500 of each kind (null, query, launch, sync).
[ $((n1 - n0)) -eq 80000 ] || fail "load: $((n1 - n0)) null round trips counted, expected 80000"
[ $((l1 - l0)) -eq 80000 ] || fail "load: $((l1 - l0)) launches counted, expected 80000"
expect_stat in_flight 0 "after load"
stop_daemon TERM 0

# --- 3. faults: lakeD killed with calls in flight ----------------------------
step "3. faults: kill -9 lakeD under 8 calling kthreads (timeout_ms=3000)"
echo 3000 >"$P/timeout_ms" || fail "cannot set timeout_ms"
start_daemon lakeD-faults /lake/lakeD-fake -f
n0=$(null_calls)
unav0=$(kstat unavailable)
(echo faults 8 >"$ST/run") 2>"$OUT/faults.log" &
FPID=$!
# Let the threads get going: calls in flight all the time.
end=$(($(now_ms) + 10000))
while [ "$(null_calls)" -lt $((n0 + 1000)) ]; do
	running "$FPID" || fail "faults: the test ended before the daemon was killed: $(cat "$OUT/faults.log")"
	[ "$(now_ms)" -lt "$end" ] || fail "faults: fewer than 1000 calls made in 10 s"
	sleep 0.1
done
n1=$(null_calls)
running "$FPID" || fail "faults: the test ended before the daemon was killed"
kill -9 "$DPID"
t_kill=$(now_ms)
wait_done "$FPID" 5000 || fail "faults: callers still waiting 5 s after lakeD was killed (timeout_ms 3000)"
t_done=$(now_ms)
wait "$FPID" || fail "faults: not every thread got -ENODEV: $(cat "$OUT/faults.log")"
wait "$DPID"
DPID=""
took=$((t_done - t_kill))
dmesg | grep 'lake_selftest: faults:' | tail -n 1
log "faults: $((n1 - n0))+ calls made before the kill; all 8 threads returned -ENODEV ${took} ms after it"
[ "$took" -lt 3000 ] || fail "faults: callers took ${took} ms to fail: they timed out instead of being failed at detach"
expect_stat daemon absent "after kill -9"
expect_stat in_flight 0 "after kill -9"
[ "$(kstat unavailable)" -ge $((unav0 + 8)) ] || fail "faults: 'unavailable' went from $unav0 to $(kstat unavailable), expected +8 or more"

# The same under the mixed load: async launches in flight at the kill are
# reclaimed with the daemon (nothing stays in flight), the load fails, nothing
# hangs.
start_daemon lakeD-faults2 /lake/lakeD-fake -f
l0=$(calls cuLaunchKernel)
(echo load 8 20000 >"$ST/run") 2>"$OUT/faults-load.log" &
FPID=$!
end=$(($(now_ms) + 10000))
while [ "$(calls cuLaunchKernel)" -lt $((l0 + 500)) ]; do
	running "$FPID" || fail "faults under load: the load ended before the kill"
	[ "$(now_ms)" -lt "$end" ] || fail "faults under load: fewer than 500 launches in 10 s"
	sleep 0.05
done
kill -9 "$DPID"
wait_done "$FPID" 30000 || fail "faults under load: the load still runs 30 s after lakeD was killed"
wait "$FPID" && fail "faults under load: the load passed although lakeD was killed under it"
wait "$DPID"
DPID=""
expect_stat in_flight 0 "async commands in flight at the kill are reclaimed"
log "faults under load: $(($(calls cuLaunchKernel) - l0)) launches before and after the kill; nothing left in flight"

# --- 4. fail-fast -----------------------------------------------------------
step "4. fail-fast: no daemon"
run fail-fast
dmesg | grep 'lake_selftest: fail-fast:' | tail -n 1

# --- 5. re-attach -----------------------------------------------------------
step "5. re-attach: a new lakeD serves without reloading (bench 1000)"
start_daemon lakeD-bench /lake/lakeD-fake -f
run bench 1000
dmesg | grep 'lake_selftest: bench:' | tail -n 1
stop_daemon TERM 0

# --- 6. timeout -------------------------------------------------------------
step "6. timeout: a daemon that never answers (stalld, timeout_ms=1000)"
echo 1000 >"$P/timeout_ms" || fail "cannot set timeout_ms"
t0=$(kstat timeouts)
start_daemon stalld /lake/stalld
run timeout 1000
cat "$ST/result"
[ "$(kstat timeouts)" -eq $((t0 + 3)) ] || fail "timeout: 'timeouts' went from $t0 to $(kstat timeouts), expected +3"
# The callers gave up; their slots stay lakeD's until it answers or goes.
expect_stat in_flight 3 "3 abandoned calls while stalld lives"
stop_daemon KILL 137
expect_stat in_flight 0 "the abandoned slots are freed when stalld goes"
echo 10000 >"$P/timeout_ms"

# --- 7. unload --------------------------------------------------------------
step "7. unload: refused while in use, then clean"
rmmod lake 2>/dev/null && fail "rmmod lake succeeded while lake_selftest uses it"
module_loaded lake || fail "lake.ko is gone after a refused rmmod"
cp "$STATS" "$OUT/stats-before-unload.txt"
log "stats before unload:"
cat "$STATS"
expect_stat daemon absent "before unload"
expect_stat in_flight 0 "before unload"
expect_stat arena_used 0 "before unload"
[ "$(kstat attaches)" -eq 6 ] || fail "stats: attaches $(kstat attaches), expected 6"
[ "$(kstat unavailable)" -ge 10 ] || fail "stats: unavailable $(kstat unavailable), expected >= 10"
[ "$(kstat bad_completions)" -eq 0 ] || fail "stats: lakeD-fake made $(kstat bad_completions) bad completions"
[ "$(null_calls)" -ge 81100 ] || fail "stats: $(null_calls) null round trips, expected >= 81100"
for f in cuInit cuModuleLoadData cuLaunchKernel cuCtxSynchronize nvmlDeviceGetCount; do
	[ "$(calls "$f")" -gt 0 ] || fail "stats: no calls of $f counted"
done
rmmod lake_selftest || fail "rmmod lake_selftest"
start_daemon lakeD-hold /lake/lakeD-fake -f
rmmod lake 2>/dev/null && fail "rmmod lake succeeded while lakeD holds /dev/lake"
module_loaded lake || fail "lake.ko is gone after a refused rmmod"
stop_daemon TERM 0
rmmod lake || fail "rmmod lake failed with nothing using it"
module_loaded lake && fail "lake.ko still loaded after rmmod"
[ -e /dev/lake ] && fail "/dev/lake is still there after rmmod"
[ -e "$STATS" ] && fail "$STATS is still there after rmmod"

# --- 8. reload --------------------------------------------------------------
step "8. reload: insmod lake.ko nslots=2 timeout_ms=1000"
insmod /lake/lake.ko nslots=2 timeout_ms=1000 || fail "insmod lake.ko again"
insmod /lake/lake_selftest.ko || fail "insmod lake_selftest.ko again"
expect_stat slots 2 "after reload"
expect_stat attaches 0 "after reload: fresh stats"
[ "$(null_calls)" -eq 0 ] || fail "stats after reload: $(null_calls) null calls already"
# Two calls take both slots and time out; the three after them wait for a
# slot (backpressure) and time out too.
start_daemon stalld-reload /lake/stalld
run timeout 1000 3
cat "$ST/result"
expect_stat in_flight 2 "both slots abandoned"
expect_stat timeouts 5 "timed out waiting for a reply or for a slot"
stop_daemon KILL 137
expect_stat in_flight 0 "after stalld"
echo 10000 >"$P/timeout_ms"
# Backpressure that resolves: 8 threads through 2 slots.
start_daemon lakeD-reload /lake/lakeD-fake -f
run load 8 400
dmesg | grep 'lake_selftest: load:' | tail -n 1
run bench 200
dmesg | grep 'lake_selftest: bench:' | tail -n 1
stop_daemon TERM 0
log "stats after reload:"
cat "$STATS"
[ "$(kstat attaches)" -eq 2 ] || fail "stats after reload: attaches $(kstat attaches), expected 2"
[ "$(null_calls)" -ge 1000 ] || fail "stats after reload: $(null_calls) null round trips"
expect_stat in_flight 0 "at the end"
expect_stat arena_used 0 "at the end"
# A module that leaks arena memory and goes: unloading lake.ko takes it back.
run leak 4096
expect_stat arena_used 4096 "the leaked allocation"
rmmod lake_selftest || fail "rmmod lake_selftest at the end"
rmmod lake || fail "rmmod lake at the end"
dmesg | grep -q 'lake: 4096 bytes of lakeShm were never freed .*reclaimed at unload' ||
	fail "the unload did not report the leaked 4096 bytes"

log "PASS ($(($(now_ms) - T0)) ms)"
