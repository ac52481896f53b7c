#!/usr/bin/env bash
# Fuzzes what a hostile user client can send lakeD (daemon/fuzz_ring.c): the
# hello checks, the server core and the dispatch, over the TEST DOUBLE.
#
#   scripts/fuzz.sh [SECONDS] [BUILD_DIR]     (default 60 s, build/)
#
# With clang's libFuzzer (ASan + UBSan) when clang can build it, else a
# self-contained random mutator (with the sanitizers gcc has).  The corpus
# is kept in BUILD_DIR/fuzz/corpus between runs; a crash leaves its input in
# BUILD_DIR/fuzz/ and fails (exit 1).  Needs BUILD_DIR configured (the
# generated sources in BUILD_DIR/gen).
set -euo pipefail
budget=${1:-60}
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${2:-$here/build}" && pwd)
gen=$build/gen
out=$build/fuzz
mkdir -p "$out/corpus"
[ -f "$gen/lake_dispatch.c" ] || { echo "fuzz.sh: $gen/lake_dispatch.c missing: build first" >&2; exit 2; }
srcs=("$here/daemon/fuzz_ring.c" "$here/daemon/lake_server.c" "$here/daemon/lake_ulisten.c"
      "$here/daemon/lake_log.c" "$gen/lake_dispatch.c" "$gen/lake_fake.c" "$here/proto/lake_image.c"
      "$here/proto/lake_os.c")
incs=(-I"$here/daemon" -I"$here/proto" -I"$here/include/uapi" -I"$here/include/lake" -I"$gen")
flags=(-std=gnu11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter)
if command -v clang >/dev/null &&
   clang "${flags[@]}" -fsanitize=fuzzer,address,undefined "${incs[@]}" "${srcs[@]}" \
	-o "$out/fuzz_ring" -lpthread 2>"$out/build.log"; then
	echo "fuzz.sh: libFuzzer (clang), ${budget} s"
	cd "$out"
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	ASAN_OPTIONS=detect_leaks=1 \
		./fuzz_ring -max_total_time="$budget" -print_final_stats=1 -max_len=16384 \
		-timeout=10 -rss_limit_mb=2048 corpus 2>&1 | tail -n 15
	exit "${PIPESTATUS[0]}"
fi
echo "fuzz.sh: no libFuzzer ($(tail -n 1 "$out/build.log" 2>/dev/null)); the standalone mutator, ${budget} s"
cc=${CC:-cc}
san=(-fsanitize=address,undefined)
"$cc" "${flags[@]}" "${san[@]}" -DLAKE_FUZZ_STANDALONE "${incs[@]}" "${srcs[@]}" \
	-o "$out/fuzz_ring_standalone" -lpthread 2>>"$out/build.log" ||
	"$cc" "${flags[@]}" -DLAKE_FUZZ_STANDALONE "${incs[@]}" "${srcs[@]}" \
		-o "$out/fuzz_ring_standalone" -lpthread
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$out/fuzz_ring_standalone" "$budget"
