#!/usr/bin/env bash
# gpu-vm-run.sh - kernel modules in a VM, computing on this machine's GPU:
# the VM bridge in one command (docs/vm-bridge.md).
#
# Unpacks the VM bundle (scripts/vm-bundle.sh: QEMU, Debian's kernel,
# lake.ko and the modules built for it, lakeD), starts the host's lakeD on
# this machine's GPU serving a shared file, boots the VM with that file as
# an ivshmem device, runs a job in the guest, brings the results back and
# prints a summary.  Needs no qemu, Debian kernel or network here; runs as
# root or not (the VM is TCG, or KVM where it boots).
#
# Usage: scripts/gpu-vm-run.sh [--bundle FILE | --bundle-dir DIR | --build DIR]
#                              [--accel auto|tcg|kvm] [--daemon real|fake]
#                              [--rounds N] [--quick] OUT_DIR [JOB]
#   JOB        all (default: hello, apps, bench), hello, apps, bench (or a
#              quoted list of them), or a script of your own: it runs in the
#              guest as lake-vm.sh's --run script with the bundle's guest
#              files in /lake (lake.ko, lake_selftest.ko, lake_kbench.ko,
#              apps/, vmbench, lake-vmtool, lake_kernels.fatbin); insmod
#              /lake/lake.ko and wait for "daemon: attached" in
#              /sys/kernel/debug/lake/stats; write results under /out
#   --bundle   the archive (default $LAKE_VM_BUNDLE, else
#              build/vm-bundle/lake-vm-bundle.tar.xz); --bundle-dir an
#              unpacked one; --build a build tree, staged on the fly (this
#              machine's QEMU and kernel: the build machine)
#   --accel    auto (default, or $LAKE_VM_ACCEL): KVM if /dev/kvm is usable,
#              is not kvm-pvm and boots the kernel within 60 s, else TCG
#   --daemon   the host's daemon: real (lakeD, default) or fake (lakeD-fake,
#              the TEST DOUBLE: no GPU used)
#   --rounds N the benchmark's rounds (default 3); --quick: small sizes
# Environment: LAKE_VM_SHM_MB (the shared file, a power of two; default 128),
# LAKE_VM_SHM_DIR (a tmpfs for it, default /dev/shm; a tmpfs of our own is
# mounted when it has too little room),
# LAKE_VM_SMP (the VM's vCPUs, default 2), LAKE_VM_ACCEL, LAKE_VM_BUNDLE,
# LAKE_VM_USER (whom lakeD's process for the VM runs as, default nobody; it
# must be able to open /dev/nvidia*).
# Output, in OUT_DIR: summary.txt (also printed), lakeD.log, vm/ (the
# guest's /out: hello/, apps/, bench/; console.log, dmesg.txt), bench/
# (table.txt, ratios.csv, host.csv).  Exit 0 when every part passed.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
PROG=gpu-vm-run
die() {
	echo "$PROG: error: $*" >&2
	exit 2
}
say() { echo "$PROG: $*"; }

bundle=${LAKE_VM_BUNDLE:-$SRC/build/vm-bundle/lake-vm-bundle.tar.xz}
bundle_dir="" build_dir="" accel=${LAKE_VM_ACCEL:-auto} daemon=real rounds=3 quick=0
while [ $# -gt 0 ]; do
	case $1 in
	--bundle) bundle=$2; shift ;;
	--bundle-dir) bundle_dir=$2; shift ;;
	--build) build_dir=$2; shift ;;
	--accel) accel=$2; shift ;;
	--daemon) daemon=$2; shift ;;
	--rounds) rounds=$2; shift ;;
	--quick) quick=1 ;;
	-h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
	shift
done
[ $# -ge 1 ] || die "usage: gpu-vm-run.sh [options] OUT_DIR [JOB] (see --help)"
mkdir -p "$1" || die "cannot create $1"
out=$(cd "$1" && pwd)
job=${2:-all}
case $accel in auto | tcg | kvm) ;; *) die "--accel must be auto, tcg or kvm" ;; esac
case $daemon in real | fake) ;; *) die "--daemon must be real or fake" ;; esac
case $rounds in '' | *[!0-9]* | 0) die "--rounds must be a positive number" ;; esac
custom=""
case $job in
all | hello | apps | bench | *" "*) ;;
*)
	[ -f "$job" ] || die "JOB '$job' is neither all/hello/apps/bench nor a script"
	custom=$(cd "$(dirname "$job")" && pwd)/$(basename "$job")
	;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lake-gpu-vm.XXXXXX")
shm="" sock="" dpid="" shm_mount=""
cleanup() {
	[ -n "$dpid" ] && kill -KILL "$dpid" 2>/dev/null
	[ -n "$shm" ] && rm -f "$shm"
	[ -n "$shm_mount" ] && umount "$shm_mount" 2>/dev/null
	rm -rf "$tmp"
	[ -n "$sock" ] && rm -f "$sock"
}
trap cleanup EXIT
rm -rf "$out/vm" "$out/bench" "$out/summary.txt" "$out/lakeD.log"
t0=$SECONDS

# --- the bundle ------------------------------------------------------------------
if [ -n "$build_dir" ]; then
	b=$tmp/lake-vm-bundle
	"$SRC/scripts/vm-bundle.sh" --stage "$build_dir" "$b" || die "cannot stage a bundle from $build_dir"
	from="build tree $build_dir"
elif [ -n "$bundle_dir" ]; then
	b=$(cd "$bundle_dir" && pwd)
	from=$b
else
	[ -f "$bundle" ] || die "no VM bundle at $bundle: build it where Debian's kernel and QEMU are (cmake --build build --target vm_bundle) and bring build/vm-bundle/lake-vm-bundle.tar.xz here"
	if command -v xz >/dev/null; then
		tar -xJf "$bundle" -C "$tmp" || die "cannot unpack $bundle"
	else
		python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
			"$bundle" "$tmp" || die "cannot unpack $bundle (no xz, and python3 failed)"
	fi
	b=$tmp/lake-vm-bundle
	from=$bundle
fi
[ -x "$b/bin/qemu-system-x86_64" ] && [ -r "$b/boot/kver" ] || die "$from is not a VM bundle"
kver=$(cat "$b/boot/kver")
export PATH="$PATH:$b/tools"	# cpio, modinfo where the host has none
export LAKE_VM_QEMU=$b/bin/qemu-system-x86_64 LAKE_VM_BUSYBOX=$b/busybox
vm=("$b/scripts/lake-vm.sh" --kernel "$b/boot/vmlinuz" --kver "$kver")
say "bundle: $from (Debian kernel $kver, $("$LAKE_VM_QEMU" --version | head -n 1))"

# --- the GPU and the accelerator ---------------------------------------------------
gpu=""
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
	gpu=$(nvidia-smi -L | head -n 1)
fi
why_accel=""
if [ "$accel" = auto ]; then
	accel=tcg
	if [ ! -w /dev/kvm ]; then
		why_accel="no usable /dev/kvm"
	elif [ -d /sys/module/kvm_pvm ] || dmesg 2>/dev/null | grep -q 'kvm-pvm'; then
		why_accel="/dev/kvm is kvm-pvm, which boots only PVM guest kernels"
	else
		printf '%s\n' 'echo kvm-probe' >"$tmp/probe.sh"
		if "${vm[@]}" --accel kvm --timeout 60 -q --out "$tmp/probe" --run "$tmp/probe.sh" >/dev/null 2>&1; then
			accel=kvm
			why_accel="KVM boots Debian's kernel here"
		else
			why_accel="KVM did not boot Debian's kernel within 60 s"
		fi
	fi
else
	why_accel="asked for"
fi
say "accelerator: $accel ($why_accel)"

# --- the host's lakeD ---------------------------------------------------------------
# The shared file must be shmem (tmpfs): lakeD pins its pages for DMA.
# /dev/shm if it has room (containers often give it 64 MiB), else a tmpfs of
# our own.
shm_mb=${LAKE_VM_SHM_MB:-128}
case $shm_mb in 8 | 16 | 32 | 64 | 128 | 256 | 512 | 1024 | 2048 | 4096) ;;
*) die "LAKE_VM_SHM_MB must be a power of two from 8 to 4096, not '$shm_mb'" ;; esac
shm_dir=${LAKE_VM_SHM_DIR:-/dev/shm}
avail=$(df -B1 --output=avail "$shm_dir" 2>/dev/null | tail -n 1 | tr -d ' ')
if [ -z "$avail" ] || [ "$avail" -lt $(((shm_mb + 16) << 20)) ]; then
	shm_dir=$tmp/shm
	mkdir -p "$shm_dir"
	mount -t tmpfs -o size=$((shm_mb + 16))m,mode=0700 lake-vm "$shm_dir" 2>/dev/null ||
		die "${LAKE_VM_SHM_DIR:-/dev/shm} has $((${avail:-0} >> 20)) MiB free, $shm_mb MiB are needed, and a tmpfs cannot be mounted here (not root?): set LAKE_VM_SHM_MB lower (at least 8)"
	shm_mount=$shm_dir
fi
shm=$(mktemp "$shm_dir/lake-vm.XXXXXX") || die "cannot create the shared file in $shm_dir"
truncate -s "${shm_mb}M" "$shm"
sock=$(mktemp -u "${TMPDIR:-/tmp}/lake-gpu-vm.XXXXXX.sock")
laked=$b/host/lakeD
fake_arg=""
if [ "$daemon" = fake ]; then
	laked=$b/host/lakeD-fake
	fake_arg=--fake
fi
# The VM's worker process runs as vm_user (nobody unless LAKE_VM_USER says
# otherwise; never root): it must be able to open the GPU's device files.
vm_user=${LAKE_VM_USER:-nobody}
if [ "$(id -u)" = 0 ] && [ "$daemon" = real ] && [ -e /dev/nvidiactl ]; then
	case $(stat -c %a /dev/nvidiactl 2>/dev/null) in
	*[67]) ;;
	*) say "warning: /dev/nvidiactl is not open to other users ($(stat -c '%A %U:%G' /dev/nvidiactl)): the VM's process (user $vm_user) may not reach the GPU; set LAKE_VM_USER to a user who can" ;;
	esac
fi
"$laked" -f --device /nonexistent/lake --socket "$sock" --vm-shm "$shm" --vm-user "$vm_user" \
	--spin-us 50 >"$out/lakeD.log" 2>&1 &
dpid=$!
for _ in $(seq 300); do
	grep -q "waiting for the guest" "$out/lakeD.log" && break
	kill -0 "$dpid" 2>/dev/null || break
	sleep 0.1
done
grep -q "waiting for the guest" "$out/lakeD.log" || {
	cat "$out/lakeD.log"
	die "the host's lakeD did not start"
}
# Without nvidia-smi, lakeD's own probe says which GPU it serves.
[ -n "$gpu" ] || [ "$daemon" = fake ] ||
	gpu=$(sed -n 's/^lakeD[^:]*: info: \(GPU 0: .*\)/\1/p' "$out/lakeD.log" | head -n 1)
say "host: $(basename "$laked") (pid $dpid) serves the VM's ivshmem file $shm${gpu:+ on $gpu}"

# --- the VM -----------------------------------------------------------------------------
if [ "$quick" = 1 ]; then
	sizes="NULL_N=2000 GETPPID_N=2000 MLP_N=500"
	host_n=500
else
	sizes="NULL_N=20000 GETPPID_N=20000 MLP_N=5000"
	host_n=5000
fi
echo "MODE=\"$job\" ROUNDS=$rounds $sizes" >"$tmp/job.conf"
files=(--file "$b/guest/lake.ko" --file "$b/guest/lake_selftest.ko" --file "$b/guest/lake_kbench.ko"
	--file "$b/guest/apps:/lake/" --file "$b/guest/demo-run.sh" --file "$b/guest/vmbench"
	--file "$b/guest/lake-vmtool" --file "$tmp/job.conf")
[ -e "$b/guest/lake_kernels.fatbin" ] && files+=(--file "$b/guest/lake_kernels.fatbin")
run=${custom:-$b/scripts/gpu-vm-guest.sh}
say "booting the VM ($accel): job '${custom:-$job}' ..."
"${vm[@]}" --accel "$accel" --smp "${LAKE_VM_SMP:-2}" --timeout 480 --ivshmem "$shm" --append "clocksource=tsc tsc=reliable" \
	"${files[@]}" --run "$run" --out "$out/vm"
vm_rc=$?

# --- the host's rows of the benchmark (same session, same lakeD) --------------------------
host_rc=0
bench_job=0
case " $job " in *" all "* | *" bench "*) [ -z "$custom" ] && bench_job=1 ;; esac
if [ "$bench_job" = 1 ] && [ -n "$gpu" ] && [ -x "$b/host/lake_bench_lake" ] && [ "$daemon" = real ]; then
	mkdir -p "$out/bench"
	say "host rows: the same MLP through liblake (this lakeD) and direct CUDA ..."
	{
		echo "variant,test,unit,median,p99,n"
		"$b/host/lake_bench_direct" "$b/host/lake_kernels.fatbin" "$host_n" mlp || host_rc=1
		LD_LIBRARY_PATH=$b/host${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} LAKE_SOCKET=$sock \
			"$b/host/lake_bench_lake" "$b/host/lake_kernels.fatbin" "$host_n" mlp || host_rc=1
	} >"$out/bench/host.csv" 2>"$out/bench/host.err"
fi
kill -TERM "$dpid" 2>/dev/null
wait "$dpid"
d_rc=$?
dpid=""

# --- summary ------------------------------------------------------------------------------
{
	echo "== VM bridge on $(hostname): ${gpu:-no GPU}"
	echo "   path:        kernel module in a VM (Debian $kver under QEMU, $accel: $why_accel)"
	if [ "$daemon" = real ] && [ -n "$gpu" ] && [ -z "${gpu##*TEST DOUBLE*}" ]; then
		echo "                -> lake.ko -> ivshmem -> this machine's lakeD -> libcuda-emu (a TEST DOUBLE: no GPU used)"
	elif [ -n "$gpu" ] && [ "$daemon" = real ]; then
		echo "                -> lake.ko -> ivshmem -> this machine's lakeD -> libcuda -> the GPU"
	elif [ "$daemon" = real ]; then
		echo "                -> lake.ko -> ivshmem -> this machine's lakeD -> libcuda (no GPU here)"
	else
		echo "                -> lake.ko -> ivshmem -> this machine's lakeD-fake (the TEST DOUBLE: no GPU used)"
	fi
	if [ "$vm_rc" = 0 ]; then
		echo "   VM run:      PASS ($(grep -a '^LAKE-VM-SCRIPT-END' "$out/vm/console.log" | sed 's/.*uptime=/guest uptime /')s)"
	else
		echo "   VM run:      FAILED (lake-vm.sh exit $vm_rc; $out/vm/console.log)"
	fi
	sed -n 's/^gpu-vm-guest: \(hello: .*\|app .*\)$/   \1/p' "$out/vm/console.log"
	grep -h "session .* over\|serving the guest" "$out/lakeD.log" | sed 's/^[^:]*: [a-z]*: /   host: /'
	[ "$d_rc" = 0 ] || echo "   host lakeD exited with status $d_rc (lakeD.log)"
	if [ -s "$out/vm/bench/vmbench.csv" ]; then
		mkdir -p "$out/bench"
		report=$SRC/bench/bridge/report.py
		[ -f "$report" ] || report=$(dirname "$0")/report.py	# in a bundle
		python3 "$report" --accel "$accel" --gpu "${gpu:-none}" ${fake_arg:+"$fake_arg"} \
			--guest "$out/vm/bench" ${gpu:+--host "$out/bench/host.csv"} --out "$out/bench" ||
			echo "   benchmark report failed"
	fi
	[ "$host_rc" = 0 ] || echo "   host benchmark rows FAILED: $(tail -n 3 "$out/bench/host.err")"
	echo "   time:        $((SECONDS - t0)) s; results in $out"
} | tee "$out/summary.txt"
[ "$vm_rc" = 0 ] && [ "$d_rc" = 0 ] && [ "$host_rc" = 0 ]
