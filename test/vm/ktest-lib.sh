#!/bin/sh
# ktest-lib.sh - helpers of the VM scripts that drive lake.ko's tests
# (kernel.sh, bridge/bridge-guest.sh), sourced inside the VM (busybox sh).
# The caller sets ST (lake_selftest's debugfs directory) and STATS (lake.ko's
# stats file) and defines fail MESSAGE, which must not return.
# shellcheck shell=sh

now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

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

# errors NAME: the error count of a function in the stats file.
errors() {
	e=$(sed -n "s/^ *$1  *[0-9][0-9]* calls \([0-9][0-9]*\) errors$/\1/p" "$STATS")
	echo "${e:-0}"
}

# check_error_counts WHEN: no function counts more errors than calls (a
# failed call is counted once, however its completion arrives).
check_error_counts() {
	bad=$(awk '/ calls [0-9]+ errors$/ && $(NF-1) > $(NF-3)' "$STATS")
	[ -z "$bad" ] || fail "stats ($1): more errors than calls: $bad"
}

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

# wait_count COUNTER TARGET PID MS WHAT: until the command COUNTER prints
# TARGET or more, while PID (a test in the background) runs, at most MS ms.
wait_count() {
	end=$(($(now_ms) + $4))
	while [ "$($1)" -lt "$2" ]; do
		running "$3" || fail "$5: the test ended before it was interrupted"
		[ "$(now_ms)" -lt "$end" ] || fail "$5: fewer than $2 counted within $4 ms"
		sleep 0.05
	done
}
