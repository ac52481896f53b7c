#!/usr/bin/env bash
# bridge-apps.sh BUILD_DIR OUT_DIR - CTest vm_bridge_apps: the app modules on
# the workload kit in the VM, served over the VM bridge by the host's real
# lakeD with libcuda-emu behind it (a TEST DOUBLE of libcuda that runs the
# apps' CUDA kernel sources on the host's CPU; not a GPU), by
# scripts/gpu-vm-run.sh's `apps` job: each module's vm-check
# (apps/common/vm-check.sh) must find its GPU path on and its outputs equal
# to the CPU path's in the guest's kernel, by copies and on mapped lakeShm.
# The same job on the GPU machine runs them on the real GPU.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../../.." && pwd)
build=$1 out=$2
emu=$build/apps/emu
[ -e "$emu/libcuda.so.1" ] || { echo "bridge-apps: $emu/libcuda.so.1 is not built"; exit 1; }
LD_LIBRARY_PATH=$emu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
	"$SRC/scripts/gpu-vm-run.sh" --build "$build" "$out" apps
rc=$?
summary=$out/summary.txt
grep -q "GPU 0: libcuda-emu TEST DOUBLE" "$summary" ||
	{ echo "bridge-apps: FAIL: the host's lakeD did not serve libcuda-emu"; exit 1; }
for ko in "$build"/apps/*/kmod/lake_*.ko; do
	name=$(basename "$ko" .ko)
	grep -q "app $name: OK: .*GPU (host, through the bridge) = CPU (guest kernel)" "$summary" ||
		{ echo "bridge-apps: FAIL: $name's GPU path was not checked against its CPU path ($summary)"; exit 1; }
done
[ "$rc" = 0 ] || { echo "bridge-apps: FAIL: gpu-vm-run.sh exited $rc"; exit 1; }
echo "bridge-apps: PASS: every kit module's GPU path through the bridge (libcuda-emu) = its CPU path"
