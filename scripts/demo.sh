#!/usr/bin/env bash
# LAKE's main job, end to end in about a minute: installs what is missing,
# builds everything, shows what the generator made from api-spec/, then has a
# kernel module (apps/hello/lake_hello.ko) call the CUDA Driver API through
# lake.ko and the real lakeD:
#   - on this machine, where it can load kernel modules (root, and lake.ko
#     was built for the running kernel);
#   - otherwise inside the test VM (Debian's kernel under QEMU, test/vm/).
# Where a GPU is present but modules cannot be loaded, the GPU demo runs
# through liblake (user space) instead; see the HOOK below.
# Environment: LAKE_BUILD_DIR (default build), LAKE_DEMO_VM=1 forces the VM.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
bash scripts/install-deps.sh
BUILD=${LAKE_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo | grep -E "LAKE|SKIPPED" || true
cmake --build "$BUILD" -j"$(nproc)" >"$BUILD/demo-build.log" 2>&1 || {
	tail -n 40 "$BUILD/demo-build.log"
	echo "demo: the build failed (full log: $BUILD/demo-build.log)"
	exit 1
}
t_build=$((SECONDS - t0))

# --- what the build generated ------------------------------------------------
gen=$BUILD/gen
nfun=$(grep -cE '^\s+X\(' "$gen/lake_proto_gen.h")
hash=$(awk '/define LAKE_SPEC_HASH/ { sub(/U?LL$/, "", $3); print $3 }' "$gen/lake_proto_gen.h")
echo
echo "== Built in ${t_build}s. Generated from api-spec/ into $gen/ ($nfun remoted functions, spec hash $hash; file(lines)):"
for f in "$gen"/*; do
	printf '%s(%d)\n' "$(basename "$f")" "$(wc -l <"$f")"
done | paste -sd' ' | fold -s -w 100 | sed 's/^/   /'
echo "   The same spec hash is baked into lake.ko and lakeD: a mismatch refuses to attach."
echo "   Read one stub: grep -A 30 '^CUresult cuMemcpyHtoD(' $gen/lake_stubs.c"

# --- the kernel demo: where it can run -------------------------------------------
lake_ko=$BUILD/kmod/lake.ko
laked=$BUILD/daemon/lakeD
hello_ko=$BUILD/apps/hello/lake_hello.ko
out=$BUILD/demo
rm -rf "$out"
kdemo=""	# host, vm, or empty: skipped, because of $kskip
kskip=""
kpath=""
if [ ! -e "$lake_ko" ] || [ ! -e "$hello_ko" ]; then
	kskip="lake.ko and lake_hello.ko are not built here (no Debian kernel build tree: scripts/install-deps.sh)"
else
	ko_kver=$(modinfo -F vermagic "$lake_ko" | cut -d' ' -f1)
	# This machine loads lake.ko itself when: we are root, its kernel has
	# loadable modules (/proc/modules, modules_disabled=0, insmod and
	# modprobe work), its Kbuild tree is installed, and lake.ko was built
	# for it.
	why_not_here=""
	if [ ! -r /proc/modules ] || [ "$(cat /proc/sys/kernel/modules_disabled 2>/dev/null || echo 0)" != 0 ] ||
		! command -v insmod >/dev/null || ! modprobe --version >/dev/null 2>&1; then
		why_not_here="this machine cannot load modules"
	elif [ "$(id -u)" != 0 ]; then
		why_not_here="this machine cannot load lake.ko: not root"
	elif [ ! -d "/lib/modules/$(uname -r)/build" ]; then
		why_not_here="this machine cannot load lake.ko: no Kbuild tree for its kernel $(uname -r)"
	elif [ "$ko_kver" != "$(uname -r)" ]; then
		why_not_here="this machine cannot load lake.ko: built for $ko_kver, it runs $(uname -r); cmake -DLAKE_KDIR=/lib/modules/$(uname -r)/build"
	fi
	[ -z "${LAKE_DEMO_VM:-}" ] || why_not_here="LAKE_DEMO_VM is set"
	if [ -z "$why_not_here" ]; then
		kdemo=host
		kpath="kernel module on this machine ($(uname -r))"
	elif test/vm/kver.sh >/dev/null 2>&1 && command -v qemu-system-x86_64 >/dev/null; then
		kdemo=vm
		kpath="kernel module in a VM ($why_not_here)"
	else
		kskip="$why_not_here, and the test VM cannot run here (qemu-system-x86, Debian's kernel: scripts/install-deps.sh)"
	fi
fi

rc=0
khello=""
t1=$SECONDS
if [ -n "$kdemo" ]; then
	echo
	echo "== LAKE demo: $kpath"
	mkdir -p "$out"
	set +e
	if [ "$kdemo" = host ]; then
		LAKE_KO=$lake_ko LAKED=$laked HELLO_KO=$hello_ko DEMO_OUT=$out \
			sh apps/hello/demo-run.sh >"$out/run.log" 2>&1
		krc=$?
		sed 's/^/   /' "$out/run.log"
		klogs="run.log in $out"
	else
		echo "   Booting Debian's $ko_kver under QEMU (TCG): insmod lake.ko, start lakeD, insmod lake_hello.ko ..."
		vm=$(test/vm/lake-vm.sh --timeout 180 --out "$out" --file "$lake_ko" --file "$laked" \
			--file "$hello_ko" --run apps/hello/demo-run.sh 2>&1)
		krc=$?
		printf '%s\n' "$vm" | sed 's/^/   /'
		klogs="console.log in $out"
	fi
	set -e
	show() { # show TITLE FILE
		[ -s "$2" ] || return 0
		echo "-- $1"
		sed 's/^/   /' "$2"
	}
	echo
	show "lake_hello.ko's kernel log (every cu* call went lake.ko -> /dev/lake -> lakeD and back):" "$out/lake_hello.log"
	show "lakeD's log:" "$out/lakeD.log"
	show "lake.ko's call counts (/sys/kernel/debug/lake/stats):" "$out/stats.txt"
	khello=$(sed -n 's/^lake_hello: done: //p' "$out/lake_hello.log" 2>/dev/null | tail -n 1)
	case $krc:$khello in
	0:OK:* | 0:"NO GPU:"*) ;;
	*)
		khello="${khello:-FAILED} (see above; $klogs)"
		rc=1
		;;
	esac
fi

# --- the GPU demo through liblake (user space) -------------------------------------
# HOOK: where a GPU is present but lake.ko cannot be loaded here (the GPU
# machine), the kernel demo above cannot reach the GPU, so the same kind of
# sequence runs in user space: client/'s lake-smoke, a program written
# against the plain CUDA Driver API and linked with liblake, through the
# real lakeD (serving a private socket) and libcuda.  To show another
# program here, change gpu_demo below.
gpu=""
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
	gpu=$(nvidia-smi -L | head -n 1)
fi
gpu_demo=$BUILD/client/lake-smoke
gline=""
if [ -n "$gpu" ] && [ "$kdemo" != host ]; then
	echo
	echo "== GPU demo through liblake (user space; lake.ko cannot be loaded here): $gpu"
	if [ ! -x "$gpu_demo" ] || [ ! -x "$laked" ]; then
		echo "   TODO: $gpu_demo or lakeD is not built here (client/, daemon/)"
		gline="$gpu: TODO: the liblake demo is not built here"
		rc=1
	else
		mkdir -p "$out"
		sock=$(mktemp -u "${TMPDIR:-/tmp}/lake-demo.XXXXXX.sock")
		"$laked" --foreground --socket "$sock" --device /dev/lake-absent >"$out/lakeD-user.log" 2>&1 &
		dpid=$!
		for _ in $(seq 100); do
			[ -S "$sock" ] || ! kill -0 "$dpid" 2>/dev/null && break
			sleep 0.1
		done
		set +e
		LAKE_SOCKET=$sock "$gpu_demo" 2>&1 | sed 's/^/   /'
		grc=${PIPESTATUS[0]}
		set -e
		kill "$dpid" 2>/dev/null
		wait "$dpid" 2>/dev/null || true
		if [ "$grc" = 0 ]; then
			gline="$gpu: OK through liblake -> lakeD -> libcuda ($(basename "$gpu_demo"))"
		else
			echo "-- lakeD's log:"
			sed 's/^/   /' "$out/lakeD-user.log"
			gline="$gpu: FAILED through liblake ($(basename "$gpu_demo") exited $grc; lakeD's log in $out)"
			rc=1
		fi
	fi
fi
t_demo=$((SECONDS - t1))

# --- summary -------------------------------------------------------------------
echo
echo "== Summary"
if [ -n "$kdemo" ]; then
	echo "   path:   $kpath"
	echo "   result: $khello"
else
	echo "   kernel demo: skipped: $kskip"
fi
if [ -n "$gline" ]; then
	echo "   GPU:    $gline"
elif [ -z "$gpu" ]; then
	case $khello in "NO GPU:"*)
		echo "   GPU:    none here (with one, the module loads its embedded GPU kernel, adds two vectors from lakeShm on the GPU and checks every element)" ;;
	esac
fi
if [ -z "$kdemo" ] && [ -z "$gline" ]; then
	echo "   nothing could be demonstrated on this machine (see above)"
	rc=1
fi
echo "   time:   build ${t_build}s, demo ${t_demo}s; logs in $out"
exit "$rc"
