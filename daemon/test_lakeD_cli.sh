#!/bin/sh
# lakeD's command line, end to end, on a machine without /dev/lake:
# --help, --version, usage errors (exit 2) and the plain attach-time errors
# (exit 1), in the foreground and through the detaching parent; serving
# user-space clients only (a socket in a temporary directory).
# Usage: test_lakeD_cli.sh LAKED LAKED_FAKE
set -u
lakeD=$1
fake=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
: >"$tmp/empty.conf"
cfg="--config $tmp/empty.conf"	# hermetic: never the host's /etc/lake/lakeD.conf

# expect STATUS PATTERN CMD...: CMD exits STATUS and its output matches PATTERN.
expect() {
	want=$1 pat=$2
	shift 2
	"$@" >"$tmp/out" 2>&1
	got=$?
	if [ "$got" -ne "$want" ] || ! grep -q -- "$pat" "$tmp/out"; then
		echo "FAIL: $* -> exit $got (want $want), output:"
		sed 's/^/    /' "$tmp/out"
		echo "    (expected to match: $pat)"
		fails=$((fails + 1))
	else
		echo "ok: $* -> $got: $(grep -m1 -- "$pat" "$tmp/out")"
	fi
}

expect 0 "Usage: lakeD" "$lakeD" --help
expect 0 "spin-us" "$lakeD" -h
expect 0 "LAKE protocol [0-9]*, spec hash 0x" "$lakeD" --version
expect 0 "TEST DOUBLE" "$fake" --version
expect 2 "unknown argument '--bogus'" "$lakeD" --bogus
expect 2 "config file /nonexistent/lakeD.conf" "$lakeD" --config /nonexistent/lakeD.conf
expect 2 "spin_us" "$lakeD" $cfg --spin-us lots
expect 2 "only\|for lakeD-fake" "$lakeD" $cfg --fake-verify
echo "colour = blue" >"$tmp/bad.conf"
expect 2 "bad.conf:1: unknown key 'colour'" "$lakeD" --config "$tmp/bad.conf"

# No /dev/lake and no socket: a plain message, exit 1; also through the
# detaching parent.  (--no-socket: by default lakeD would serve user-space
# clients on /run/lake/lakeD.sock instead; see below.)
ns=--no-socket
expect 1 "/nonexistent/lake missing: is lake.ko loaded?" "$lakeD" $cfg $ns -f --device /nonexistent/lake
expect 1 "/nonexistent/lake missing: is lake.ko loaded?" "$lakeD" $cfg $ns --device /nonexistent/lake
printf 'device = /nonexistent/from-config\nsocket = none\n' >"$tmp/dev.conf"
expect 1 "/nonexistent/from-config missing" "$lakeD" --config "$tmp/dev.conf" -f
expect 1 "/nonexistent/from-cli missing" "$lakeD" --config "$tmp/dev.conf" -f -d /nonexistent/from-cli
# A device that is not /dev/lake (the socket is never reached).
expect 1 "not a LAKE device" "$lakeD" $cfg -f --device /dev/null
# The test double announces itself, then fails the same way.
expect 1 "lakeD-fake: using the recording TEST DOUBLE of libcuda" "$fake" $cfg $ns -f --device /nonexistent/lake
expect 1 "missing: is lake.ko loaded?" "$fake" $cfg $ns -f --device /nonexistent/lake

# Quotas and threads: the numeric keys, as options too; --status.
expect 2 "max_clients_per_uid: 'x' is not a number" "$lakeD" $cfg --max-clients-per-uid x
expect 2 "kernel_threads: '0' is not a number of serving threads 1..64" "$lakeD" $cfg --kernel-threads 0
printf 'max_arena_mb = 99999\n' >"$tmp/quota.conf"
expect 2 "quota.conf:1: max_arena_mb" "$lakeD" --config "$tmp/quota.conf"
expect 0 "max_pending_per_uid" "$lakeD" --help
expect 1 "cannot reach lakeD at $tmp/none.sock" "$lakeD" $cfg --status --socket "$tmp/none.sock"

# The socket's settings.
expect 2 "socket_mode: '999'" "$lakeD" $cfg --socket-mode 999
expect 2 "socket: path longer" "$lakeD" $cfg --socket "/$(printf 'x%.0s' $(seq 300))"
# Neither channel usable: no device, and the socket path is a plain file.
: >"$tmp/plain"
expect 1 "exists and is not a socket" "$fake" $cfg -f --device /nonexistent/lake --socket "$tmp/plain"

# No /dev/lake but a socket: a warning, then lakeD serves user-space clients
# only, until SIGTERM (exit 0).  The socket gets mode 0660 and goes away.
serve_only() {	# serve_only LAKED: start, check, stop
	sock="$tmp/s.sock"
	# Emptied here: the background job's own redirection may come after the
	# first grep below, which would then read the previous run's output.
	: >"$tmp/out"
	"$1" $cfg -f --device /nonexistent/lake --socket "$sock" >"$tmp/out" 2>&1 &
	pid=$!
	i=0
	while ! grep -q "serving user-space clients (liblake) on $sock" "$tmp/out" && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	mode=$(stat -c %a "$sock" 2>/dev/null)
	kill -TERM $pid
	wait $pid
	st=$?
	if [ $st -ne 0 ] || [ "$mode" != 660 ] || [ -e "$sock" ] ||
	   ! grep -q "missing: is lake.ko loaded? .*serving user-space clients only" "$tmp/out"; then
		echo "FAIL: $1 serving only its socket: exit $st, mode $mode, output:"
		sed 's/^/    /' "$tmp/out"
		fails=$((fails + 1))
	else
		echo "ok: $1 without /dev/lake serves $sock (mode $mode), exit $st on SIGTERM"
	fi
}
serve_only "$fake"
serve_only "$lakeD"

# --status of a running lakeD: its processes and limits.
"$fake" $cfg -f --device /nonexistent/lake --socket "$tmp/st.sock" --max-clients 17 >"$tmp/st.log" 2>&1 &
pid=$!
i=0
while ! grep -q "serving user-space clients (liblake) on" "$tmp/st.log" && [ $i -lt 400 ]; do
	sleep 0.05
	i=$((i + 1))
done
expect 0 "limits: clients 17 (64 per uid)" "$fake" $cfg --status --socket "$tmp/st.sock"
kill -TERM $pid
wait $pid

if [ "$fails" -ne 0 ]; then
	echo "$fails failure(s)"
	exit 1
fi
echo "all passed"
