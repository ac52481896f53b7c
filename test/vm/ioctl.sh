#!/bin/sh
# ioctl.sh - CTest vm_ioctl: runs test_ioctl (test/vm/test_ioctl.c) inside the
# test VM with lake.ko and lake_selftest.ko loaded and no daemon, then checks
# that nothing was left behind: no slot in flight, no arena in use, bad
# completions counted, and both modules unload.
set -u
STATS=/sys/kernel/debug/lake/stats

fail() {
	echo "vm_ioctl: FAIL: $*"
	dmesg | tail -n 30
	exit 1
}
kstat() { sed -n "s/^$1: //p" "$STATS"; }

insmod /lake/lake.ko || fail "insmod lake.ko"
insmod /lake/lake_selftest.ko || fail "insmod lake_selftest.ko"
/lake/test_ioctl || fail "test_ioctl failed (see above)"
cp "$STATS" "${LAKE_VM_OUT:-/out}/stats.txt"
cat "$STATS"
[ "$(kstat daemon)" = absent ] || fail "a daemon is still attached"
[ "$(kstat in_flight)" = 0 ] || fail "$(kstat in_flight) slots still in flight"
[ "$(kstat arena_used)" = 0 ] || fail "$(kstat arena_used) arena bytes still in use"
[ "$(kstat bad_completions)" -gt 0 ] || fail "no bad completions were counted"
[ "$(kstat timeouts)" -gt 0 ] || fail "no timeouts were counted"
rmmod lake_selftest || fail "rmmod lake_selftest"
rmmod lake || fail "rmmod lake: something still holds it"
echo "vm_ioctl: PASS"
