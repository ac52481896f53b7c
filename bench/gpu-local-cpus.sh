#!/usr/bin/env bash
# Prints two CPUs local to the (first) GPU, for pinning a benchmark and lakeD
# apart ("BENCH_CPU DAEMON_CPU"), then the GPU's local CPU list; prints
# nothing when that cannot be found out (no nvidia-smi, no taskset, no
# local_cpulist).  Used by bench/gpu/run.sh and bench/apps/run.sh.
set -uo pipefail
command -v nvidia-smi >/dev/null && command -v taskset >/dev/null || exit 0
bus=$(nvidia-smi --query-gpu=pci.bus_id --format=csv,noheader 2>/dev/null | head -1 | tr 'A-F' 'a-f' | sed 's/^0000//')
[ -n "$bus" ] || exit 0
list=$(cat /sys/bus/pci/devices/*"${bus#0000}"/local_cpulist 2>/dev/null | head -1)
[ -n "$list" ] || exit 0
python3 -c "
import sys
c=[]
for part in sys.argv[1].split(','):
    a,_,b=part.partition('-'); c+=range(int(a),int(b or a)+1)
print(c[1] if len(c)>2 else c[0], c[2] if len(c)>2 else c[-1], sys.argv[1])" "$list"
