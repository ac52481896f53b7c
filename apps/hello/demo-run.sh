#!/bin/sh
# demo-run.sh - load lake.ko, start lakeD, load lake_hello.ko, collect the logs.
#
# scripts/demo.sh runs this where kernel modules can be loaded: inside the
# test VM (as lake-vm.sh's --run script, with the files in /lake and results
# to /out) or, as root, on the host.  Plain POSIX sh (busybox in the VM).
#
# Environment (the VM defaults in brackets):
#   LAKE_KO   lake.ko                      [/lake/lake.ko]
#   LAKED     the real lakeD, not the fake [/lake/lakeD]
#   HELLO_KO  lake_hello.ko                [/lake/lake_hello.ko]
#   DEMO_OUT  where the logs go            [$LAKE_VM_OUT, else /tmp]
# Writes DEMO_OUT/lake_hello.log (the module's kernel log lines),
# DEMO_OUT/lakeD.log (the daemon's log) and DEMO_OUT/stats.txt (lake.ko's
# per-function call counts).  A lake.ko or lakeD already running is used,
# and left running; what this script started, it stops.  Exit 0 when the
# demo ran to its end (whatever the GPU answered), 1 otherwise.
set -u
lake_ko=${LAKE_KO:-/lake/lake.ko}
laked=${LAKED:-/lake/lakeD}
hello_ko=${HELLO_KO:-/lake/lake_hello.ko}
out=${DEMO_OUT:-${LAKE_VM_OUT:-/tmp}}
stats=/sys/kernel/debug/lake/stats
loaded_lake=0
daemon_pid=""

say() { echo "demo: $*"; }

cleanup() {
	if [ -n "$daemon_pid" ]; then
		kill -TERM "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
		daemon_pid=""
	fi
	if [ "$loaded_lake" = 1 ]; then
		rmmod lake || say "rmmod lake failed"
		loaded_lake=0
	fi
}

fail() {
	say "FAILED: $*"
	cleanup
	exit 1
}

mkdir -p "$out"
: >"$out/lakeD.log"

if grep -q '^lake ' /proc/modules; then
	say "lake.ko is already loaded: using it"
else
	insmod "$lake_ko" || fail "insmod $lake_ko"
	loaded_lake=1
	say "insmod lake.ko: /dev/lake is ready"
fi
[ -r "$stats" ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
[ -r "$stats" ] || fail "no $stats (is debugfs mounted?)"

if grep -q '^daemon: attached' "$stats"; then
	say "a lakeD is already attached to /dev/lake: using it"
else
	"$laked" --foreground >"$out/lakeD.log" 2>&1 &
	daemon_pid=$!
	i=0
	until grep -q '^daemon: attached' "$stats"; do
		kill -0 "$daemon_pid" 2>/dev/null || {
			daemon_pid=""
			cat "$out/lakeD.log"
			fail "lakeD exited before attaching"
		}
		i=$((i + 1))
		[ "$i" -le 300 ] || fail "lakeD did not attach within 30 s"
		sleep 0.1
	done
	say "started lakeD (pid $daemon_pid): attached to /dev/lake"
fi

if grep -q '^lake_hello ' /proc/modules; then
	rmmod lake_hello || fail "rmmod of an earlier lake_hello"
fi
marker="lake-demo: begin $$.$(date +%s)"
echo "$marker" >/dev/kmsg
insmod "$hello_ko" || fail "insmod $hello_ko"
say "insmod lake_hello.ko: its demo ran at load"
rmmod lake_hello || fail "rmmod lake_hello"
say "rmmod lake_hello: unloaded cleanly"

dmesg | awk -v m="$marker" 'index($0, m) { on = 1; next } on' | grep 'lake_hello: ' |
	sed 's/^\[[ 0-9.]*\] //' >"$out/lake_hello.log"
grep -E '^  (cu|nvml)' "$stats" | awk '$2 != 0' >"$out/stats.txt"
kill -0 "${daemon_pid:-$$}" 2>/dev/null || fail "lakeD died during the demo"
cleanup
grep -q 'lake_hello: done: ' "$out/lake_hello.log" || fail "lake_hello did not finish its demo"
say "done"
exit 0
