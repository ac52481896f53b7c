#!/bin/sh
# bridge-guest.sh - CTest vm_bridge, the guest's half: lake.ko in the VM,
# served by lakeD-fake on the HOST across the ivshmem bridge.  Run by
# lake-vm.sh (busybox sh) with lake.ko, lake_selftest.ko, lake_hello.ko,
# lake-vmtool and the test image in /lake; test/vm/bridge/bridge.sh, on the
# host, answers the requests this script sends through the mailbox (a
# second, small ivshmem device):
#   start [ARGS]   start lakeD-fake --vm-shm (ARGS: e.g. --fake-verify)
#   start-lakeD    start the real lakeD --vm-shm (no GPU: CUDA_ERROR_NO_DEVICE)
#   stop | kill    SIGTERM (expect exit 0) | SIGKILL it, all its processes
#   kill-worker    SIGKILL the VM's worker process alone (the supervisor
#                  starts another)
#   kill-supervisor  SIGKILL the supervisor alone (its VM worker must end
#                  the session and exit)
#   hostile-host N / hostile-host-wait     lake-vmtool hostile-host, N s
#   fuzz-host N SEED / fuzz-host-stop      fuzz_kchan --vm-shm, N s at most
#   other-client N / other-client-wait     a liblake client on the host making
#                                          null and CUDA calls for N s
#   alive          is lakeD-fake still running?
#
#   1. roundtrip   every spec'd function from kernel context through the
#                  bridge (lakeD-fake --fake-verify on the host); a clean
#                  stop of lakeD ends the session at once
#   2. load        32 kthreads x 10,000 mixed sync/async calls
#   3. faults      lakeD killed (-9, all its processes) under 8 calling
#                  kthreads: all get -ENODEV within host_timeout_ms (1 s) +
#                  slack; again under the mixed load: nothing stays in flight
#   3b. worker death  the VM's worker process alone killed (-9) under 8
#                  calling kthreads: they fail as fast; the supervisor
#                  starts another worker, which offers a new session
#   3c. supervisor death  the supervisor alone killed (-9): its VM worker
#                  ends the session (callers fail at once) and exits
#   4. fail-fast   no lakeD: calls fail at once
#   5. re-attach   a new lakeD serves without reloading lake.ko; then
#                  lake_hello.ko served by the real lakeD says it went over
#                  ivshmem, and its failed cuInit counts 1 error, not 2
#   6. hostile host  garbage in the shared memory while 8 kthreads call:
#                  calls fail or pass, none hangs, the kernel log stays clean
#                  (the harness fails the run on any WARN/BUG/oops); then a
#                  real lakeD serves again
#   6b. fuzzing host  fuzz_kchan --vm-shm answers at random (lying layouts,
#                  counts and strings, completions wrong, twice, late or
#                  never) under 4 kthreads calling every function: no
#                  unterminated string reaches a caller; when its session
#                  ends nothing stays in flight, no arena is used and the
#                  layouts are flushed
#   7. hostile guest  lake.ko unloaded, lake-vmtool breaks the ring from
#                  this guest while a host liblake client keeps being served;
#                  lake.ko leaves a device holding foreign data alone unless
#                  named (vm=); then lake.ko is served again
#   8. VM death    lake.ko stays loaded with resources held when the VM powers
#                  off: the host checks that lakeD frees them
set -u

ST=/sys/kernel/debug/lake_selftest
STATS=/sys/kernel/debug/lake/stats
P=/sys/module/lake/parameters
OUT=${LAKE_VM_OUT:-/out}
TOOL=/lake/lake-vmtool

log() { echo "vm_bridge: $*"; }
# shellcheck source=../ktest-lib.sh
. /lake/ktest-lib.sh
T0=$(now_ms)

fail() {
	echo "vm_bridge: FAIL: $*"
	echo "vm_bridge: --- stats:"
	cat "$STATS" 2>/dev/null | head -20
	echo "vm_bridge: --- kernel log, last 30 lines:"
	dmesg | tail -n 30
	"$TOOL" mbox guest send done >/dev/null 2>&1
	exit 1
}

step() { log "== $* (at $(($(now_ms) - T0)) ms)"; }

# ask REQUEST: the host driver's answer, which must start with "ok".
ask() {
	"$TOOL" mbox guest send "$1" || fail "mailbox: cannot send '$1'"
	REPLY=$("$TOOL" mbox guest recv 60000) || fail "mailbox: no answer to '$1' within 60 s"
	case $REPLY in
	ok*) ;;
	*) fail "host: '$1' -> '$REPLY'" ;;
	esac
}

# wait_stat KEY VALUE MS: until the stats say so.
wait_stat() {
	end=$(($(now_ms) + $3))
	until [ "$(kstat "$1")" = "$2" ]; do
		[ "$(now_ms)" -lt "$end" ] || fail "stats: $1 is '$(kstat "$1")', not '$2' after $3 ms"
		sleep 0.02
	done
}
# start_host [ARGS]: a lakeD-fake on the host; wait for its session.
start_host() {
	ask "start $*"
	wait_stat daemon attached 10000
	log "host lakeD-fake ($REPLY) attached: session $(kstat vm_session)"
}

# --- setup -----------------------------------------------------------------
step "insmod lake.ko (the VM bridge: ivshmem), lake_selftest.ko"
insmod /lake/lake.ko host_timeout_ms=1000 || fail "insmod lake.ko"
case $(kstat transport) in
"ivshmem "*) log "transport: $(kstat transport)" ;;
*) fail "lake.ko did not take the ivshmem device: transport '$(kstat transport)'" ;;
esac
insmod /lake/lake_selftest.ko || fail "insmod lake_selftest.ko"
expect_stat daemon absent "before any host lakeD"
# cuModuleLoad's test reads the test image from a file, as its caller would.
cp /lake/lake_test_image.ptx /tmp/lake-test-image.ptx || fail "cannot place the test image"
# The bridge's writable parameter is bounded like the others.
for v in 199 600001 -1; do
	echo "$v" >"$P/host_timeout_ms" 2>/dev/null && fail "host_timeout_ms accepted $v"
done
[ "$(cat "$P/host_timeout_ms")" = 1000 ] || fail "host_timeout_ms changed by refused writes"

# --- 1. roundtrip ------------------------------------------------------------
step "1. roundtrip: every function from kernel context, through the bridge (host: lakeD-fake --fake-verify)"
start_host --fake-verify
run roundtrip
dmesg | grep 'lake_selftest: roundtrip:' | tail -n 1
ended0=$(kstat vm_host_ended)
t=$(now_ms)
ask stop
wait_stat daemon absent 2000
log "a clean stop of lakeD ended the session in $(($(now_ms) - t)) ms"
[ "$(kstat vm_host_ended)" -eq $((ended0 + 1)) ] || fail "vm_host_ended did not count the stop"

# --- 2. load -----------------------------------------------------------------
step "2. load: 32 kthreads x 10000 mixed sync/async calls"
start_host
n0=$(null_calls)
l0=$(calls cuLaunchKernel)
run load 32 10000
dmesg | grep 'lake_selftest: load:' | tail -n 1
[ $(($(null_calls) - n0)) -eq 80000 ] || fail "load: $(($(null_calls) - n0)) null round trips, expected 80000"
[ $(($(calls cuLaunchKernel) - l0)) -eq 80000 ] || fail "load: launches counted wrong"
wait_stat in_flight 0 2000
check_error_counts "after the load"

# --- 3. faults ----------------------------------------------------------------
step "3. faults: kill -9 the host's lakeD under 8 calling kthreads (host_timeout_ms=1000)"
silent0=$(kstat vm_host_silent)
n0=$(null_calls)
(echo faults 8 >"$ST/run") 2>"$OUT/faults.log" &
FPID=$!
wait_count null_calls $((n0 + 1000)) "$FPID" 10000 "faults (null round trips)"
ask kill
t_kill=$(now_ms)
wait_done "$FPID" 5000 || fail "faults: callers still waiting 5 s after lakeD was killed"
took=$(($(now_ms) - t_kill))
wait "$FPID" || fail "faults: not every thread got -ENODEV: $(cat "$OUT/faults.log")"
dmesg | grep 'lake_selftest: faults:' | tail -n 1
log "faults: all 8 threads returned -ENODEV ${took} ms after the kill"
[ "$took" -lt 2500 ] || fail "faults: callers took ${took} ms to fail (host_timeout_ms is 1000)"
[ "$(kstat vm_host_silent)" -eq $((silent0 + 1)) ] || fail "vm_host_silent did not count the silence"
expect_stat daemon absent "after the kill"
expect_stat in_flight 0 "after the kill"

start_host
l0=$(calls cuLaunchKernel)
(echo load 8 20000 >"$ST/run") 2>"$OUT/faults-load.log" &
FPID=$!
launches() { calls cuLaunchKernel; }
wait_count launches $((l0 + 500)) "$FPID" 10000 "faults under load (launches)"
ask kill
wait_done "$FPID" 30000 || fail "faults under load: the load still runs 30 s after the kill"
wait "$FPID" && fail "faults under load: the load passed although lakeD was killed under it"
wait_stat in_flight 0 2000
log "faults under load: nothing left in flight after the kill"

# --- 3b. worker death -------------------------------------------------------------
step "3b. worker death: the VM's worker process killed (-9) under 8 calling kthreads"
start_host
s0=$(kstat vm_session)
n0=$(null_calls)
(echo faults 8 >"$ST/run") 2>"$OUT/faults-worker.log" &
FPID=$!
wait_count null_calls $((n0 + 1000)) "$FPID" 10000 "worker death (null round trips)"
ask kill-worker
t_kill=$(now_ms)
wait_done "$FPID" 5000 || fail "worker death: callers still waiting 5 s after the VM's worker was killed"
took=$(($(now_ms) - t_kill))
wait "$FPID" || fail "worker death: not every thread got -ENODEV: $(cat "$OUT/faults-worker.log")"
[ "$took" -lt 2500 ] || fail "worker death: callers took ${took} ms to fail (host_timeout_ms is 1000)"
wait_stat daemon attached 10000
[ "$(kstat vm_session)" != "$s0" ] || fail "worker death: the session after the restart is the old one"
log "worker death: all 8 threads returned -ENODEV ${took} ms after the kill; the next worker's session: $(kstat vm_session)"
ask alive
run load 8 1000
wait_stat in_flight 0 2000

# --- 3c. supervisor death ----------------------------------------------------------
step "3c. supervisor death: the supervisor alone killed (-9)"
ended0=$(kstat vm_host_ended)
t=$(now_ms)
ask kill-supervisor
log "supervisor death: $REPLY"
wait_stat daemon absent 2000
log "supervisor death: the session ended in $(($(now_ms) - t)) ms"
[ "$(kstat vm_host_ended)" -gt "$ended0" ] || fail "supervisor death: the worker did not end its session (vm_host_ended did not count it)"

# --- 4. fail-fast -------------------------------------------------------------
step "4. fail-fast: no lakeD"
run fail-fast
dmesg | grep 'lake_selftest: fail-fast:' | tail -n 1

# --- 5. re-attach -------------------------------------------------------------
step "5. re-attach: a new lakeD serves without reloading lake.ko"
start_host
run bench 2000
dmesg | grep 'lake_selftest: bench:' | tail -n 1

# lake_hello.ko, served by the real lakeD (no GPU here: CUDA_ERROR_NO_DEVICE).
ask stop
wait_stat daemon absent 2000
ask start-lakeD
wait_stat daemon attached 10000
c0=$(calls cuInit)
e0=$(errors cuInit)
insmod /lake/lake_hello.ko || fail "insmod lake_hello.ko"
rmmod lake_hello || fail "rmmod lake_hello"
dmesg | grep 'lake_hello: ' | tail -n 5
dmesg | grep -q 'lake_hello: calling .*(each call: lake.ko -> ivshmem (the VM bridge) -> the host.s lakeD' ||
	fail "lake_hello.ko does not say that its calls went over the VM bridge"
dmesg | grep -q 'lake_hello: done: NO GPU' || fail "lake_hello.ko did not end with 'done: NO GPU'"
wait_stat in_flight 0 2000
[ "$(calls cuInit)" -eq $((c0 + 1)) ] && [ "$(errors cuInit)" -eq $((e0 + 1)) ] ||
	fail "lake_hello's failed cuInit: $(($(calls cuInit) - c0)) calls, $(($(errors cuInit) - e0)) errors counted, expected 1 and 1"
check_error_counts "after lake_hello.ko"

# --- 6. hostile host ------------------------------------------------------------
step "6. hostile host: garbage in the shared memory under 8 calling kthreads"
ask stop
wait_stat daemon absent 2000
echo 1000 >"$P/timeout_ms" || fail "cannot set timeout_ms"
bad0=$(kstat bad_completions)
ask "hostile-host 8"
hostile_end=$(($(now_ms) + 8000))
rounds=0
while [ "$(now_ms)" -lt "$hostile_end" ]; do
	(echo load 8 100 >"$ST/run") 2>/dev/null &
	LPID=$!
	(echo null 100 >"$ST/run") 2>/dev/null
	wait_done "$LPID" 30000 || fail "hostile host: a load still runs after 30 s (timeout_ms 1000)"
	wait "$LPID"
	rounds=$((rounds + 1))
done
ask hostile-host-wait
log "hostile host: $rounds rounds of calls; $REPLY; bad completions refused: $(($(kstat bad_completions) - bad0))"
[ "$(kstat bad_completions)" -gt "$bad0" ] || fail "hostile host: no bad completion was refused (did it run?)"
start_host
run load 8 1000
wait_stat in_flight 0 3000
wait_stat arena_used 0 3000
echo 10000 >"$P/timeout_ms"
log "hostile host: served normally again; stats: sessions $(kstat vm_sessions), silent $(kstat vm_host_silent), ended $(kstat vm_host_ended), corrupt $(kstat vm_host_corrupt)"

# --- 6b. fuzzing host -------------------------------------------------------------
step "6b. fuzzing host: fuzz_kchan --vm-shm under 4 kthreads calling every function"
ask stop
wait_stat daemon absent 2000
echo 300 >"$P/timeout_ms" || fail "cannot set timeout_ms"
seed=$(date +%s)
bad0=$(kstat bad_completions)
ask "fuzz-host 300 $seed"
wait_stat daemon attached 20000
log "fuzzing host: seed $seed, session $(kstat vm_session)"
run fuzz 8 4
dmesg | grep 'lake_selftest: fuzz:' | tail -n 1
[ "$(kstat daemon)" = attached ] || fail "fuzzing host: the session ended before the callers did (the host's heartbeat?)"
modules=$(kstat layout_modules)
ask fuzz-host-stop
log "fuzzing host: $REPLY; layouts kept during the session: $modules"
wait_stat daemon absent 3000
wait_stat in_flight 0 2000
expect_stat arena_used 0 "after the fuzzing host's session"
expect_stat layout_modules 0 "the fuzzing session's layouts (there were $modules)"
expect_stat layout_functions 0 "after the fuzzing host's session"
[ "$modules" -gt 0 ] || fail "fuzzing host: no layout was kept during the session (was it fuzzing?)"
[ "$(kstat bad_completions)" -gt "$bad0" ] || fail "fuzzing host: no bad completion was refused"
echo 10000 >"$P/timeout_ms"
start_host
run load 8 1000
wait_stat in_flight 0 3000

# --- 7. hostile guest -----------------------------------------------------------
step "7. hostile guest: lake-vmtool breaks the ring while a host client is served"
rmmod lake_selftest || fail "rmmod lake_selftest"
rmmod lake || fail "rmmod lake"
ask "other-client 20"
"$TOOL" hostile-guest 8 || fail "hostile guest: lakeD served an impossible layout, or never offered a session"
ask alive
ask other-client-wait
log "hostile guest: the host's other client: $REPLY"
# Shared memory that is not LAKE's is left alone, unless named.
"$TOOL" foreign || fail "lake-vmtool foreign"
insmod /lake/lake.ko || fail "insmod lake.ko with a foreign device"
[ "$(kstat transport)" = /dev/lake ] || fail "lake.ko took a device holding foreign data: $(kstat transport)"
dev=$(dmesg | sed -n "s/.*VM bridge: ivshmem \([^ ]*\) holds data that is not LAKE's.*/\1/p" | tail -n 1)
[ -n "$dev" ] || fail "lake.ko did not say why it left the device alone"
rmmod lake || fail "rmmod lake"
insmod /lake/lake.ko vm="$dev" host_timeout_ms=1000 || fail "insmod lake.ko vm=$dev"
log "a device holding foreign data: left alone, taken with vm=$dev"
insmod /lake/lake_selftest.ko || fail "insmod lake_selftest.ko again"
wait_stat daemon attached 10000
run load 8 1000
run bench 1000
dmesg | grep 'lake_selftest: bench:' | tail -n 1

# --- 8. VM death ------------------------------------------------------------------
step "8. VM death: power off with lake.ko loaded and resources held"
run load 1 4
ask "done"
log "PASS ($(($(now_ms) - T0)) ms)"
