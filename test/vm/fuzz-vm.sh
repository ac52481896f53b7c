#!/bin/sh
# fuzz-vm.sh - runs inside the test VM (fuzz-kchan.sh, CTest vm_fuzz_kchan):
# fuzz_kchan answers lake.ko with random and mutated replies while 4 kthreads
# of lake_selftest.ko ("fuzz") call every function.  Then the daemon goes:
# nothing may be left in flight, and both modules must unload.  The harness
# fails the run on any oops, WARN, BUG or lockup in the kernel log.
#
# /lake/fuzz.conf, when present, sets SECONDS and SEED (default 20 s, a
# seed from the clock, printed).
set -u
STATS=/sys/kernel/debug/lake/stats
ST=/sys/kernel/debug/lake_selftest
SECONDS=20
SEED=$(date +%s)
[ -r /lake/fuzz.conf ] && . /lake/fuzz.conf

fail() {
	echo "fuzz: FAIL: $*"
	dmesg | tail -n 30
	exit 1
}
kstat() { sed -n "s/^$1: //p" "$STATS"; }
# wait_daemon STATE: wait (10 s at most) until the stats say the daemon is STATE.
wait_daemon() {
	i=0
	while [ "$(kstat daemon)" != "$1" ]; do
		i=$((i + 1))
		[ $i -lt 500 ] || fail "the daemon is not $1 after 10 s"
		sleep 0.02
	done
}

# timeout_ms 300: unanswered calls end quickly, so the run sees many of each.
insmod /lake/lake.ko nslots=16 timeout_ms=300 || fail "insmod lake.ko"
insmod /lake/lake_selftest.ko || fail "insmod lake_selftest.ko"
cp /lake/lake_test_image.ptx /tmp/lake-test-image.ptx || fail "cannot place the test image"
echo "fuzz: $SECONDS s, seed $SEED (rerun: test/vm/fuzz-kchan.sh --seconds $SECONDS --seed $SEED)"
/lake/fuzz_kchan "$((SECONDS + 2))" "$SEED" >"${LAKE_VM_OUT:-/out}/fuzz_kchan.log" 2>&1 &
DPID=$!
wait_daemon attached
echo "fuzz $SECONDS 4" >"$ST/run" || fail "the fuzz callers failed (a string past its buffer?)"
cat "$ST/result"
wait "$DPID" || fail "fuzz_kchan failed: $(tail -n 3 "${LAKE_VM_OUT:-/out}/fuzz_kchan.log")"
cat "${LAKE_VM_OUT:-/out}/fuzz_kchan.log"
wait_daemon absent
cp "$STATS" "${LAKE_VM_OUT:-/out}/stats.txt"
grep -E '^(in_flight|arena_used|timeouts|bad_completions|layout_)' "$STATS"
[ "$(kstat in_flight)" = 0 ] || fail "$(kstat in_flight) slots still in flight after the daemon went"
[ "$(kstat arena_used)" = 0 ] || fail "$(kstat arena_used) arena bytes still in use"
[ "$(kstat layout_modules)" = 0 ] || fail "layouts left after the daemon went"
[ "$(kstat bad_completions)" -gt 0 ] || fail "no bad completion was counted: was it fuzzing?"
rmmod lake_selftest || fail "rmmod lake_selftest"
rmmod lake || fail "rmmod lake"
echo "fuzz: PASS"
