#!/usr/bin/env bash
# Builds lake_selftest.ko against lake.ko's exports, out of the source tree.
# Usage: build.sh KDIR BUILD_DIR GEN_DIR LAKE_KMOD_DIR [make args...]
set -euo pipefail
src=$(cd "$(dirname "$0")/../../.." && pwd)
kdir=$1 out=$2 gen=$3 lakemod=$4
shift 4
exec "$src/kmod/kbuild.sh" "$kdir" "$out" --symvers "$lakemod/Module.symvers" \
	"$src/test/vm/ktest/Kbuild" "$src/test/vm/ktest/lake_selftest.c:lake_selftest_main.c" \
	"$src/test/vm/ktest/lake_ktest.h" "$gen/lake_ktest_roundtrip.c" "$gen/lake_cuda.h" \
	"$gen/lake_nvml.h" "$gen/lake_proto_gen.h" "$gen/lake_testvals.h" \
	"$src/include/lake/lake_kernel.h" "$src/proto/lake_size.h" "$src/proto/lake_os.h" \
	"$src/include/uapi/linux/lake.h:uapi/linux/lake.h" -- "$@"
