#!/bin/sh
# vm-bench.sh - the kernel-path benchmark, inside the test VM.
#
# bench/vm/run.sh boots the VM with this as lake-vm.sh's --run script and
# /lake holding lake.ko, lake_selftest.ko, lakeD (the real one), vmbench and
# bench.conf (the sizes below).  Every measurement is taken in this one
# boot, ROUNDS times, in this order (lakeD runs on CPU 1, the kernel-context
# caller and vmbench's measuring process on CPU 0: the two sides of every
# round trip are on different CPUs, the same ones in every round):
#   null_spin      lake_selftest `bench N`: null round trips from kernel
#                  context, lakeD --spin-us LAKED_SPIN_US, lake.ko's spin_us
#                  at its default
#   getppid        vmbench getppid (per call, timed in batches)
#   null_sleep     the same null round trips with lakeD --spin-us 0 and
#                  lake.ko spin_us=0: both sides sleep and are woken
#   eventfd        vmbench eventfd: two processes, blocking reads
#   spin           vmbench spin: two pinned processes spinning on a shared
#                  cache line (the hand-offs alone: a floor for null_spin)
#   clock_gettime  vmbench clock: the cost of reading the clock (reference)
# Results: /out/vmbench.csv (round,measurement,n,median_ns,p99_ns),
# /out/clocksource and /out/lakeD-*.log (each daemon's log, with its command
# and sleep counts).
set -u
ROUNDS=3
LAKED_SPIN_US=50
NULL_SPIN_N=20000
NULL_SLEEP_N=5000
GETPPID_N=20000
GETPPID_BATCH=16
EVENTFD_N=5000
SPIN_N=20000
CLOCK_N=5000
# shellcheck source=/dev/null
[ -r /lake/bench.conf ] && . /lake/bench.conf

out=${LAKE_VM_OUT:-/out}
csv=$out/vmbench.csv
stats=/sys/kernel/debug/lake/stats
run=/sys/kernel/debug/lake_selftest/run
param=/sys/module/lake/parameters/spin_us
daemon_pid=""

fail() {
	echo "vm-bench: FAILED: $*"
	[ -z "$daemon_pid" ] || kill -TERM "$daemon_pid" 2>/dev/null
	exit 1
}

# start_laked SPIN_US LOG: the real lakeD in the foreground, in the background.
start_laked() {
	taskset -c 1 /lake/lakeD --foreground --spin-us "$1" >"$2" 2>&1 &
	daemon_pid=$!
	i=0
	until grep -q '^daemon: attached' "$stats"; do
		kill -0 "$daemon_pid" 2>/dev/null || fail "lakeD exited: $(cat "$2")"
		i=$((i + 1))
		[ "$i" -le 300 ] || fail "lakeD did not attach within 30 s"
		sleep 0.1
	done
}

stop_laked() {
	kill -TERM "$daemon_pid"
	wait "$daemon_pid" || fail "lakeD exited with an error"
	daemon_pid=""
	until grep -q '^daemon: absent' "$stats"; do sleep 0.1; done
}

# record ROUND NAME LINE: LINE has n= median_ns= p99_ns=.
record() {
	v=$(echo "$3" | sed -n 's/.* n=\([0-9]*\) median_ns=\([0-9]*\) p99_ns=\([0-9]*\).*/\1,\2,\3/p')
	[ -n "$v" ] || fail "$2: no result in '$3'"
	echo "$1,$2,$v" >>"$csv"
	echo "round $1: $2: $3"
}

# kbench ROUND NAME N: lake_selftest's null round trip benchmark.
kbench() {
	before=$(dmesg | grep -c 'lake_selftest: bench:')
	taskset -c 0 sh -c "echo bench $3 >$run" || fail "$2: bench $3 failed (see dmesg)"
	line=$(dmesg | grep 'lake_selftest: bench:' | tail -n 1)
	[ "$(dmesg | grep -c 'lake_selftest: bench:')" -gt "$before" ] || fail "$2: no new bench line"
	record "$1" "$2" "$line"
}

ubench() { # ubench ROUND NAME ARGS...
	r=$1 name=$2
	shift 2
	line=$(/lake/vmbench "$@") || fail "vmbench $*"
	record "$r" "$name" "$line"
}

insmod /lake/lake.ko || fail "insmod lake.ko"
insmod /lake/lake_selftest.ko || fail "insmod lake_selftest.ko"
default_spin=$(cat "$param")
echo "round,measurement,n,median_ns,p99_ns" >"$csv"
cat /sys/devices/system/clocksource/clocksource0/current_clocksource >"$out/clocksource"
echo "vm-bench: $(nproc) vCPUs, clocksource $(cat "$out/clocksource")," \
	"lake.ko spin_us=$default_spin, lakeD --spin-us $LAKED_SPIN_US; $ROUNDS rounds"

r=1
while [ "$r" -le "$ROUNDS" ]; do
	echo "$default_spin" >"$param"
	start_laked "$LAKED_SPIN_US" "$out/lakeD-spin-$r.log"
	kbench "$r" null_spin "$NULL_SPIN_N"
	stop_laked
	ubench "$r" getppid getppid "$GETPPID_N" "$GETPPID_BATCH"

	echo 0 >"$param"
	start_laked 0 "$out/lakeD-sleep-$r.log"
	kbench "$r" null_sleep "$NULL_SLEEP_N"
	stop_laked
	ubench "$r" eventfd eventfd "$EVENTFD_N"
	ubench "$r" spin spin "$SPIN_N"
	ubench "$r" clock_gettime clock "$CLOCK_N" "$GETPPID_BATCH"
	r=$((r + 1))
done
echo "$default_spin" >"$param"
grep -h 'served' "$out"/lakeD-*.log
rmmod lake_selftest || fail "rmmod lake_selftest"
rmmod lake || fail "rmmod lake"
echo "vm-bench: done"
