#!/usr/bin/env bash
# bridge.sh BUILD_DIR OUT_DIR - CTest vm_bridge: the VM bridge end to end on
# this machine, with lakeD-fake (the TEST DOUBLE of libcuda) on the HOST
# serving lake.ko in the test VM across an ivshmem device.
#
# The host's half: makes the shared file (64 MiB, /dev/shm) and a mailbox
# (a 4 KiB second ivshmem file), boots the VM (test/vm/lake-vm.sh, which
# fails on any WARN/BUG/oops in the guest's kernel log) running
# bridge-guest.sh, and answers that script's requests: starting, stopping
# and killing lakeD-fake (or the real lakeD, which answers every CUDA call
# with CUDA_ERROR_NO_DEVICE here) -- all its processes, only the VM's
# worker process, or only the supervisor --, running the hostile host
# (lake-vmtool hostile-host), the fuzzing host (fuzz_kchan --vm-shm) and a
# liblake client of the same lakeD-fake while the guest is hostile.  After
# the VM is gone it checks what only the host can see: lakeD-fake freed the
# resources the powered-off guest held (its heartbeat stopped), it refused
# to pin more than --vm-pin-max-mb, the VM's worker ran unprivileged, and no
# lakeD-fake crashed.  Logs in OUT_DIR: lakeD-N.log, hostile-host.log, fuzz-host.log,
# other-client.log, vm/ (console.log, dmesg.txt).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM=$HERE/..
[ $# -eq 2 ] || {
	echo "usage: bridge.sh BUILD_DIR OUT_DIR" >&2
	exit 2
}
build=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
fake=$build/daemon/lakeD-fake
laked=$build/daemon/lakeD
tool=$build/test/vm/bridge/lake-vmtool
fuzz=$build/test/vm/fuzz_kchan
client=$build/client/tests/lake-null-bench
hello=$build/apps/hello/lake_hello.ko
image=$build/gen/lake_test_image.ptx
for f in "$fake" "$laked" "$tool" "$fuzz" "$client" "$hello" "$image" "$build/kmod/lake.ko" \
	"$build/test/vm/ktest/lake_selftest.ko"; do
	[ -e "$f" ] || {
		echo "bridge: $f is not built" >&2
		exit 2
	}
done
find "$out" -maxdepth 1 -name '*.log' -delete

shm=$(mktemp /dev/shm/lake-bridge.XXXXXX)
mbox=$(mktemp /dev/shm/lake-mbox.XXXXXX)
sock=$(mktemp -u "${TMPDIR:-/tmp}/lake-bridge.XXXXXX.sock")
truncate -s 64M "$shm"
truncate -s 4096 "$mbox"
dpid="" hpid="" fpid="" cpid="" vmpid="" n=0
failures=()

cleanup() {
	local p
	for p in $dpid $hpid $fpid $cpid $vmpid; do
		kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -f "$shm" "$mbox" "$sock"
}
trap cleanup EXIT

say() { echo "bridge: $*"; }
reply() { "$tool" mbox host "$mbox" send "$*"; }

# start_fake BINARY [ARGS]: lakeD-fake (or lakeD) serving the VM's file and a socket.
start_fake() {
	local bin=$1
	shift
	n=$((n + 1))
	"$bin" -f --socket "$sock" --device /nonexistent/lake --vm-shm "$shm" \
		--vm-guest-timeout-ms 3000 --vm-pin-max-mb 1 "$@" >"$out/lakeD-$n.log" 2>&1 &
	dpid=$!
	for _ in $(seq 200); do
		grep -q "waiting for the guest" "$out/lakeD-$n.log" && return 0
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.05
	done
	return 1
}

# The processes lakeD started (its workers): children of $dpid.
workers() {
	local f pid comm state ppid rest
	for f in /proc/[0-9]*/stat; do
		read -r pid comm state ppid rest <"$f" 2>/dev/null || continue
		[ "$ppid" = "$dpid" ] && echo "$pid"
	done
}

# The VM's worker, as the supervisor's log last named it.
vm_worker() {
	sed -n 's/.*: VM 0 (.*): served by process \([0-9]*\).*/\1/p' "$out/lakeD-$n.log" | tail -n 1
}

# kill_all: lakeD dies with all its processes (stopped first, so that it
# starts no new worker meanwhile).
kill_all() {
	local w
	kill -STOP "$dpid" 2>/dev/null || return 1
	for w in $(workers); do
		kill -KILL "$w"
	done
	stop_fake KILL 137
}

# gone PID MS: PID exits (or is a zombie) within MS milliseconds.
gone() {
	local i st
	for i in $(seq $(($2 / 20))); do
		[ -e "/proc/$1/stat" ] || return 0
		read -r _ _ st _ <"/proc/$1/stat" 2>/dev/null || return 0
		[ "$st" = Z ] && return 0
		sleep 0.02
	done
	return 1
}

# stop_fake SIGNAL WANT: stop it and check its exit status.
stop_fake() {
	local st
	kill "-$1" "$dpid" 2>/dev/null
	wait "$dpid"
	st=$?
	dpid=""
	if [ "$st" != "$2" ]; then
		failures+=("lakeD-fake (lakeD-$n.log) exited with $st after SIG$1, expected $2")
		return 1
	fi
	return 0
}

# The other tenant: liblake null and CUDA calls on the same lakeD-fake
# until the deadline; every run must pass.
other_client() {
	local end=$((SECONDS + $1)) runs=0 bad=0
	while [ "$SECONDS" -lt "$end" ]; do
		if LAKE_SOCKET=$sock "$client" 2000 >>"$out/other-client.log" 2>&1; then
			runs=$((runs + 1))
		else
			bad=$((bad + 1))
		fi
	done
	echo "runs=$runs failed=$bad" >"$out/other-client.result"
}

"$VM/lake-vm.sh" --quiet --timeout 420 --out "$out/vm" --ivshmem "$shm" --ivshmem "$mbox" \
	--file "$build/kmod/lake.ko" --file "$build/test/vm/ktest/lake_selftest.ko" \
	--file "$tool" --file "$VM/ktest-lib.sh" --file "$hello" --file "$image" \
	--run "$HERE/bridge-guest.sh" &
vmpid=$!

while kill -0 "$vmpid" 2>/dev/null; do
	msg=$("$tool" mbox host "$mbox" recv 500) || continue
	say "guest asks: $msg"
	case $msg in
	start-lakeD)
		if start_fake "$laked"; then reply "ok pid $dpid"; else reply "lakeD did not start: $(tail -n 2 "$out/lakeD-$n.log")"; fi
		;;
	start*)
		# shellcheck disable=SC2086
		if start_fake "$fake" ${msg#start}; then reply "ok pid $dpid"; else reply "lakeD-fake did not start: $(tail -n 2 "$out/lakeD-$n.log")"; fi
		;;
	stop)
		if stop_fake TERM 0; then reply ok; else reply "lakeD-fake did not exit 0 on SIGTERM"; fi
		;;
	kill)
		kill_all && reply ok || reply "lakeD-fake was not running"
		;;
	kill-worker)
		w=$(vm_worker)
		if [ -n "$w" ] && kill -KILL "$w" 2>/dev/null; then reply "ok pid $w"; else reply "no VM worker to kill (lakeD-$n.log)"; fi
		;;
	kill-supervisor)
		w=$(vm_worker)
		if [ -z "$w" ]; then
			reply "no VM worker (lakeD-$n.log)"
		elif ! stop_fake KILL 137; then
			reply "lakeD-fake was not running"
		elif gone "$w" 5000; then
			reply "ok worker $w exited"
		else
			reply "the VM's worker $w outlived its supervisor by 5 s"
		fi
		;;
	"hostile-host "*)
		"$tool" hostile-host "$shm" "${msg#hostile-host }" >"$out/hostile-host.log" 2>&1 &
		hpid=$!
		reply ok
		;;
	hostile-host-wait)
		if wait "$hpid"; then reply "ok $(tail -n 1 "$out/hostile-host.log")"; else reply "hostile-host failed: $(tail -n 1 "$out/hostile-host.log")"; fi
		hpid=""
		;;
	"fuzz-host "*)
		# shellcheck disable=SC2086
		"$fuzz" --vm-shm "$shm" ${msg#fuzz-host } >"$out/fuzz-host.log" 2>&1 &
		fpid=$!
		reply ok
		;;
	fuzz-host-stop)
		kill -TERM "$fpid" 2>/dev/null
		if wait "$fpid"; then reply "ok $(tail -n 1 "$out/fuzz-host.log")"; else reply "fuzz_kchan failed: $(tail -n 2 "$out/fuzz-host.log")"; fi
		fpid=""
		;;
	"other-client "*)
		rm -f "$out/other-client.result"
		other_client "${msg#other-client }" &
		cpid=$!
		reply ok
		;;
	other-client-wait)
		wait "$cpid"
		cpid=""
		r=$(cat "$out/other-client.result" 2>/dev/null)
		case $r in
		runs=[1-9]*" failed=0") reply "ok $r" ;;
		*) reply "the host's other client was not served: ${r:-no result} (other-client.log)" ;;
		esac
		;;
	alive)
		if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then reply ok; else reply "lakeD-fake is dead (lakeD-$n.log)"; fi
		;;
	done)
		reply ok
		;;
	*)
		reply "unknown request"
		;;
	esac
done
wait "$vmpid"
vm_rc=$?
vmpid=""
[ "$vm_rc" = 0 ] || failures+=("the VM run failed (lake-vm.sh exit $vm_rc; see above and $out/vm/console.log)")

# What only the host sees, once the guest is gone.
if [ -n "$dpid" ]; then
	log=$out/lakeD-$n.log
	for _ in $(seq 100); do
		grep -q "went silent" "$log" && break
		sleep 0.1
	done
	gone=$(grep "went silent" "$log" | tail -n 1)
	case $gone in
	*"freed "[1-9]*) say "VM death: ${gone#*: }" ;;
	*) failures+=("after the VM powered off, lakeD-fake did not free the guest's resources (${gone:-no 'went silent' in $log})") ;;
	esac
	stop_fake TERM 0
else
	failures+=("no lakeD-fake was running when the VM powered off")
fi
grep -hq "not pinning the guest's .* exceed vm_pin_max_mb" "$out"/lakeD-*.log ||
	failures+=("no lakeD-fake refused to pin an arena beyond --vm-pin-max-mb 1")
# Running as root here: the VM's worker ran as the unprivileged vm_user.
if [ "$(id -u)" = 0 ] && ! grep -hq "serving VM 0 (.*) as uid [1-9]" "$out"/lakeD-*.log; then
	failures+=("the VM's worker did not run as an unprivileged user ($(grep -h "serving VM 0" "$out"/lakeD-*.log | tail -n 1))")
fi
grep -hq "VM 0 (.*): its process [0-9]* was killed by signal 9; starting another" "$out"/lakeD-*.log ||
	failures+=("no supervisor said it restarted the VM's killed worker")
if grep -l "Segmentation\|Aborted\|core dumped" "$out"/lakeD-*.log >/dev/null 2>&1; then
	failures+=("a lakeD-fake crashed: $(grep -l "Segmentation\|Aborted\|core dumped" "$out"/lakeD-*.log)")
fi

if [ ${#failures[@]} -gt 0 ]; then
	printf 'bridge: FAIL: %s\n' "${failures[@]}"
	exit 1
fi
say "PASS ($n lakeD-fake runs; logs in $out)"
