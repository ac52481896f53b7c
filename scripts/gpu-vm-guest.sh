#!/bin/sh
# gpu-vm-guest.sh - the VM bridge's job inside the guest: scripts/gpu-vm-run.sh
# boots the VM with this as lake-vm.sh's --run script (busybox sh) and the
# host's lakeD serving the ivshmem device.  /lake holds lake.ko,
# lake_selftest.ko, lake_kbench.ko, apps/*.ko, demo-run.sh, vmbench, the GPU
# kernels' fatbin and job.conf (MODE, sizes).
#
#   hello   lake_hello.ko (apps/hello/demo-run.sh): its cu* calls go
#           guest kernel -> lake.ko -> ivshmem -> the host's lakeD -> the
#           host's GPU; logs in /out/hello
#   apps    every other module in apps/: loaded and unloaded; one that comes
#           with apps/NAME.vm-check.sh is checked by that script instead (the
#           workload kit's modules: GPU path on the host's GPU = CPU path)
#   bench   ROUNDS rounds of: NULL_N null round trips from kernel context
#           (lake_selftest `bench`) and a getppid() loop (vmbench), then the
#           MLP of bench/gpu from kernel context (lake_kbench.ko), batch 1
#           and 1024, where the host has a GPU; /out/bench/vmbench.csv and
#           /out/bench/mlp.txt
# MODE is "all" or a list of these.  Exit 0 when every part ran and passed.
set -u
MODE=all
ROUNDS=3
NULL_N=20000
GETPPID_N=20000
MLP_N=5000
# shellcheck source=/dev/null
[ -r /lake/job.conf ] && . /lake/job.conf
[ "$MODE" = all ] && MODE="hello apps bench"
out=${LAKE_VM_OUT:-/out}
stats=/sys/kernel/debug/lake/stats
rc=0

say() { echo "gpu-vm-guest: $*"; }
fail() {
	say "FAILED: $*"
	dmesg | tail -n 20
	exit 1
}
want() { case " $MODE " in *" $1 "*) return 0 ;; esac; return 1; }

insmod /lake/lake.ko || fail "insmod lake.ko"
case $(sed -n 's/^transport: //p' "$stats") in
ivshmem*) ;;
*) fail "lake.ko found no ivshmem device: $(sed -n 's/^transport: //p' "$stats")" ;;
esac
i=0
until grep -q '^daemon: attached' "$stats"; do
	i=$((i + 1))
	[ "$i" -le 300 ] || fail "the host's lakeD did not attach within 30 s"
	sleep 0.1
done
say "lake.ko is served by the host's lakeD over ivshmem: $(sed -n 's/^vm_session: //p' "$stats")"

if want hello; then
	mkdir -p "$out/hello"
	if HELLO_KO=/lake/apps/lake_hello.ko DEMO_OUT=$out/hello sh /lake/demo-run.sh >"$out/hello/run.log" 2>&1; then
		say "hello: $(sed -n 's/^lake_hello: done: //p' "$out/hello/lake_hello.log" | tail -n 1)"
	else
		cat "$out/hello/run.log"
		say "hello: FAILED"
		rc=1
	fi
	sed 's/^/  /' "$out/hello/lake_hello.log" 2>/dev/null
fi

if want apps; then
	mkdir -p "$out/apps"
	for ko in /lake/apps/*.ko; do
		name=$(basename "$ko" .ko)
		[ "$name" = lake_hello ] && continue
		[ -e "$ko" ] || continue
		if [ -r "/lake/apps/$name.vm-check.sh" ]; then
			if sh "/lake/apps/$name.vm-check.sh" >"$out/apps/$name.log" 2>&1; then
				say "app $name: OK: $(tail -n 1 "$out/apps/$name.log")"
			else
				say "app $name: FAILED (its vm-check; $out/apps/$name.log)"
				rc=1
			fi
			continue
		fi
		marker="gpu-vm-guest: app $name $$"
		echo "$marker" >/dev/kmsg
		if insmod "$ko" && rmmod "$name"; then
			say "app $name: loaded and unloaded"
		else
			say "app $name: FAILED to load or unload"
			rc=1
		fi
		dmesg | awk -v m="$marker" 'index($0, m) { on = 1; next } on' >"$out/apps/$name.log"
	done
fi

if want bench; then
	mkdir -p "$out/bench"
	csv=$out/bench/vmbench.csv
	insmod /lake/lake_selftest.ko || fail "insmod lake_selftest.ko"
	insmod /lake/lake_kbench.ko || fail "insmod lake_kbench.ko"
	echo "round,measurement,n,median_ns,p99_ns" >"$csv"
	cat /sys/devices/system/clocksource/clocksource0/current_clocksource >"$out/bench/clocksource"
	record() { # record ROUND NAME LINE (with n= median_ns= p99_ns=)
		v=$(echo "$3" | sed -n 's/.*n=\([0-9]*\) median_ns=\([0-9]*\) p99_ns=\([0-9]*\).*/\1,\2,\3/p')
		[ -n "$v" ] || fail "$2: no result in '$3'"
		echo "$1,$2,$v" >>"$csv"
		say "round $1: $2: $3"
	}
	r=1
	while [ "$r" -le "$ROUNDS" ]; do
		taskset -c 0 sh -c "echo bench $NULL_N >/sys/kernel/debug/lake_selftest/run" ||
			fail "null round trips failed (dmesg)"
		record "$r" null_spin "$(dmesg | grep 'lake_selftest: bench:' | tail -n 1)"
		record "$r" getppid "$(taskset -c 0 /lake/vmbench getppid "$GETPPID_N" 16)"
		r=$((r + 1))
	done
	if [ -r /lake/lake_kernels.fatbin ]; then
		cat /lake/lake_kernels.fatbin >/sys/kernel/debug/lake_kbench/image || fail "loading the fatbin"
		for b in 1 1024; do
			n=$MLP_N
			[ "$b" = 1 ] || n=$((MLP_N / 4))
			if taskset -c 0 sh -c "echo mlp $b $n >/sys/kernel/debug/lake_kbench/run"; then
				line=$(cat /sys/kernel/debug/lake_kbench/result)
				record 1 "mlp_b$b" "$line"
				echo "$line" >>"$out/bench/mlp.txt"
			else
				line=$(cat /sys/kernel/debug/lake_kbench/result)
				echo "$line" >>"$out/bench/mlp.txt"
				say "MLP batch $b from kernel context: $line (no GPU behind the host's lakeD?)"
			fi
		done
	fi
	rmmod lake_kbench
	rmmod lake_selftest
fi

rmmod lake || fail "rmmod lake"
say "done (status $rc)"
exit "$rc"
