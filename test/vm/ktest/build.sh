#!/usr/bin/env bash
# Builds lake_selftest.ko against lake.ko's exports, out of the source tree.
# Usage: build.sh KDIR BUILD_DIR GEN_DIR LAKE_KMOD_DIR [make args...]
set -euo pipefail
src=$(cd "$(dirname "$0")/../../.." && pwd)
kdir=$1
mkdir -p "$2"
out=$(cd "$2" && pwd) gen=$(cd "$3" && pwd) lakemod=$(cd "$4" && pwd)
shift 4
mkdir -p "$out/uapi/linux"
ln -sfn "$src/test/vm/ktest/Kbuild" "$out/Kbuild"
ln -sfn "$src/test/vm/ktest/lake_selftest.c" "$out/lake_selftest_main.c"
ln -sfn "$src/test/vm/ktest/lake_ktest.h" "$out/lake_ktest.h"
for f in lake_ktest_roundtrip.c lake_cuda.h lake_nvml.h lake_proto_gen.h lake_testvals.h; do
	ln -sfn "$gen/$f" "$out/$f"
done
ln -sfn "$src/include/lake/lake_kernel.h" "$out/lake_kernel.h"
ln -sfn "$src/proto/lake_size.h" "$out/lake_size.h"
ln -sfn "$src/proto/lake_os.h" "$out/lake_os.h"
ln -sfn "$src/include/uapi/linux/lake.h" "$out/uapi/linux/lake.h"
exec make -C "$kdir" M="$out" KBUILD_EXTRA_SYMBOLS="$lakemod/Module.symvers" "$@" modules
