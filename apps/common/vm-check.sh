#!/bin/sh
# vm-check.sh - an app module of the workload kit in a VM served by the
# host's lakeD over the VM bridge (scripts/gpu-vm-guest.sh runs it as
# /lake/apps/lake_APP.vm-check.sh, busybox sh, lake.ko attached): the
# module's GPU path, on the host's GPU, must match its CPU path in the
# guest's kernel.
#
#   1. load    insmod with crossover=16 xfer=mapped (no set-up measurement;
#              GPU buffers in lakeShm, which the host's lakeD registered)
#   2. verify  the kit's verify (the fixed input and random rows at a few
#              batch sizes; every way the app runs a batch on the GPU:
#              each variant by copies, on mapped memory and polled): no row
#              beyond tolerance, no class differs, every way gives the
#              copies' outputs
#   3. unload  rmmod; lake.ko's arena is empty again
# The last line says what was checked (gpu-vm-guest.sh puts it in the
# summary).  Exit 0: passed; 1: failed (said why).  Without a GPU on the
# host (the module says CUDA_ERROR_NO_DEVICE) it says so and exits 0.
set -u
name=$(basename "$0" .vm-check.sh)	# lake_APP
app=${name#lake_}
ko=/lake/apps/$name.ko
dbg=/sys/kernel/debug/$name
stats=/sys/kernel/debug/lake/stats
T=/tmp/vm-check-$app
mkdir -p "$T"

say() { echo "$app: $*"; }
fail() {
	say "FAILED: $*"
	dmesg | tail -n 30
	rmmod "$name" 2>/dev/null
	exit 1
}

# Under TCG the guest's CPU reference is emulated: a few batch sizes, a
# few random rows each (the heavier models fewer).
case $app in
linnos) batches=1,5,9,33,256 rows=32 ;;
mllb) batches=1,130,1024 rows=32 ;;
kml) batches=1,300 rows=32 ;;
kleio) batches=1,3 rows=2 ;;
knn) batches=1,5,64 rows=8 ;;
*) batches=1,16 rows=8 ;;
esac

marker="vm-check: $app $$"
echo "$marker" >/dev/kmsg
insmod "$ko" crossover=16 xfer=mapped || fail "insmod $ko"
dmesg | awk -v m="$marker" 'index($0, m) { on = 1; next } on' >"$T/load"
if grep -q "GPU path off" "$T/load"; then
	if grep -q "GPU path off: no GPU (cuInit: CUDA_ERROR_NO_DEVICE" "$T/load"; then
		rmmod "$name" || fail "rmmod"
		say "no GPU on the host (CUDA_ERROR_NO_DEVICE): GPU path not checked"
		exit 0
	fi
	fail "the GPU path is off: $(grep -o 'GPU path off.*' "$T/load" | head -n 1)"
fi
grep -o 'GPU transfers:.*' "$T/load" | head -n 1 | sed "s/^/$app: /"

if ! echo "verify app=all batch=$batches rows=$rows seed=1" >"$dbg/run"; then
	cat "$dbg/results"
	fail "verify found differences, or a GPU run failed (results above)"
fi
cat "$dbg/results" >"$T/verify.csv"
cp "$T/verify.csv" "${LAKE_VM_OUT:-/out}/apps/$app-verify.csv" 2>/dev/null
# app,build,batch,status,rows,bit_exact,beyond_tolerance,class_differs,max_abs_diff,cpu_hash,gpu_hash,ways_same,ways
summary=$(awk -F, 'NR > 1 && $4 == "skipped" { skipped = 1 }
	NR > 1 && $4 != "skipped" {
		n++; rows += $5; exact += $6; tol += $7; cls += $8
		if ($4 != "ok") bad = 1
		split($12, m, "/"); mapped += m[1]; mrows += m[2]
		if ($9 + 0 > max + 0) max = $9
	}
	END {
		if (skipped || !n || !rows || bad || tol || cls || mapped != mrows) code = 1
		printf "%d runs, %d rows: %d bit-exact, %d beyond tolerance, %d classes differ, max |diff| %s, other ways %d/%d rows identical\n",
		       n, rows, exact, tol, cls, max == "" ? "0" : max, mapped, mrows
		exit code
	}' "$T/verify.csv") || {
	cat "$T/verify.csv"
	fail "GPU outputs do not match the CPU's: $summary"
}
rmmod "$name" || fail "rmmod $name"
used=$(sed -n 's/^arena_used: //p' "$stats")
[ "$used" = 0 ] || fail "unloaded, but lake.ko's arena still has $used bytes in use"
say "GPU (host, through the bridge) = CPU (guest kernel) at batch $batches: $summary"
