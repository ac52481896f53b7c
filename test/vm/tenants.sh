#!/bin/sh
# tenants.sh - CTest vm_tenants: lakeD's processes with the kernel channel
# and a user client of another uid, inside the test VM (lake-vm.sh, busybox
# sh) with lake.ko, lake_selftest.ko, lakeD-fake, lake-smoke and runas in /lake.
#
#   - lakeD-fake attaches; its supervisor keeps CAP_SETUID, CAP_SETGID and
#     CAP_KILL only; the kernel channel is served by a process of its own,
#     without capabilities, with no new privileges, with 4 serving threads;
#   - kernel callers (lake_selftest load) and a liblake client of uid 65534
#     are served at the same time, by different processes, the user's as
#     uid 65534 without capabilities;
#   - SIGTERM stops them all; lake.ko sees the daemon go.
set -u
ST=/sys/kernel/debug/lake_selftest
STATS=/sys/kernel/debug/lake/stats
OUT=${LAKE_VM_OUT:-/out}
log() { echo "vm_tenants: $*"; }
fail() {
	echo "vm_tenants: FAIL: $*"
	for f in "$OUT"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done
	exit 1
}
kstat() { sed -n "s/^$1: //p" "$STATS"; }
field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | cut -f1; }
# served PATTERN: the pid the supervisor logged as serving PATTERN ("kernel channel", "uid 65534").
served() { sed -n "s/.*: info: $1.*: served by process \([0-9]*\).*/\1/p" "$OUT/lakeD.log" | tail -n 1; }

insmod /lake/lake.ko || fail "insmod lake.ko"
insmod /lake/lake_selftest.ko || fail "insmod lake_selftest.ko"
mkdir -p /run/lake
/lake/lakeD-fake -f --socket /run/lake/t.sock --socket-mode 0666 >"$OUT/lakeD.log" 2>&1 &
DPID=$!
i=0
while [ "$(kstat daemon)" != attached ] || [ ! -S /run/lake/t.sock ]; do
	i=$((i + 1))
	[ $i -lt 500 ] || fail "lakeD-fake did not attach and open its socket"
	sleep 0.02
done
K=$(served "kernel channel")
[ -n "$K" ] || fail "the supervisor $DPID logged no kernel channel process"
[ "$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$K/status")" = "$DPID" ] || fail "process $K is not the supervisor's"
[ "$K" != "$DPID" ] || fail "the supervisor serves the kernel channel itself"
log "supervisor $DPID (CapEff $(field "$DPID" CapEff)), kernel channel process $K"
# CAP_KILL (5), CAP_SETGID (6), CAP_SETUID (7): 0xe0.
[ "$(field "$DPID" CapEff)" = 00000000000000e0 ] ||
	fail "the supervisor's capabilities: $(field "$DPID" CapEff), expected 00000000000000e0"
[ "$(field "$K" CapEff)" = 0000000000000000 ] || fail "the kernel channel's process has capabilities $(field "$K" CapEff)"
[ "$(field "$K" CapBnd)" = 0000000000000000 ] || fail "the kernel channel's process may regain capabilities: $(field "$K" CapBnd)"
[ "$(field "$K" NoNewPrivs)" = 1 ] || fail "the kernel channel's process may gain privileges"
[ "$(field "$K" Threads)" -ge 4 ] || fail "the kernel channel has $(field "$K" Threads) threads, expected 4 serving threads"

# Both tenants at once.
(echo load 8 2000 >"$ST/run") 2>"$OUT/load.log" &
LOAD=$!
LAKE_SOCKET=/run/lake/t.sock LAKE_SPIN_US=0 /lake/runas 65534 /lake/lake-smoke --calls-only \
	>"$OUT/smoke.log" 2>&1 &
SMOKE=$!
i=0
U=""
while [ -z "$U" ] && [ $i -lt 500 ]; do
	U=$(served "uid 65534")
	i=$((i + 1))
	sleep 0.02
done
[ -n "$U" ] || fail "no user process appeared for the uid 65534 client"
log "uid 65534's client served by process $U (Uid $(field "$U" Uid), CapEff $(field "$U" CapEff))"
[ "$(field "$U" Uid)" = 65534 ] || fail "the user's process runs as uid $(field "$U" Uid)"
[ "$(field "$U" CapEff)" = 0000000000000000 ] || fail "the user's process has capabilities"
[ "$U" != "$K" ] || fail "the kernel and the user share a process"
wait $SMOKE || fail "the uid 65534 client failed: $(tail -n 5 "$OUT/smoke.log")"
wait $LOAD || fail "the kernel load failed while the user was served: $(cat "$OUT/load.log")"
dmesg | grep 'lake_selftest: load:' | tail -n 1

kill -TERM "$DPID"
i=0
while kill -0 "$DPID" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 500 ] || fail "lakeD still running 10 s after SIGTERM"
	sleep 0.02
done
wait "$DPID" || fail "lakeD exited with status $? after SIGTERM"
[ "$(kstat daemon)" = absent ] || fail "lake.ko still sees a daemon"
for p in $K $U; do
	[ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" && fail "process $p outlived lakeD"
done
rmmod lake_selftest && rmmod lake || fail "rmmod"
log "PASS"
