#!/bin/sh
# hostile.sh - CTest vm_hostile: runs test_hostile (test/vm/test_hostile.c)
# inside the test VM with lake.ko (nslots=2) and lake_selftest.ko loaded and
# no daemon: the test plays a lakeD that lies.  Then nothing may be left
# behind and both modules must unload; the harness fails the run on any
# oops, WARN or lockup in the kernel log.
set -u
STATS=/sys/kernel/debug/lake/stats

fail() {
	echo "vm_hostile: FAIL: $*"
	dmesg | tail -n 30
	exit 1
}
kstat() { sed -n "s/^$1: //p" "$STATS"; }

insmod /lake/lake.ko nslots=2 || fail "insmod lake.ko"
insmod /lake/lake_selftest.ko || fail "insmod lake_selftest.ko"
cp /lake/lake_test_image.ptx /tmp/lake-test-image.ptx || fail "cannot place the test image"
/lake/test_hostile || fail "test_hostile failed (see above)"
cp "$STATS" "${LAKE_VM_OUT:-/out}/stats.txt"
cat "$STATS"
[ "$(kstat daemon)" = absent ] || fail "a daemon is still attached"
[ "$(kstat in_flight)" = 0 ] || fail "$(kstat in_flight) slots still in flight"
[ "$(kstat arena_used)" = 0 ] || fail "$(kstat arena_used) arena bytes still in use"
[ "$(kstat layout_modules)" = 0 ] || fail "layouts left after the last daemon went"
rmmod lake_selftest || fail "rmmod lake_selftest"
rmmod lake || fail "rmmod lake: something still holds it"
echo "vm_hostile: PASS"
