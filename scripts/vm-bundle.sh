#!/usr/bin/env bash
# vm-bundle.sh - pack what the VM bridge needs on a machine that has none of
# it (the GPU machine: no qemu, no Debian kernel, no network) into one
# archive, or stage it in a directory.
#
# Usage: scripts/vm-bundle.sh BUILD_DIR [OUT.tar.xz]   (default BUILD_DIR/vm-bundle/lake-vm-bundle.tar.xz)
#        scripts/vm-bundle.sh --stage BUILD_DIR DIR     (the same tree, unpacked, no archive)
#        scripts/vm-bundle.sh --check BUILD_DIR         (stage it, bound its size, boot it isolated)
#        scripts/vm-bundle.sh --check-archive FILE      (unpack FILE, boot it isolated)
#
# The bundle (lake-vm-bundle/):
#   bin/qemu-system-x86_64   runs Debian's QEMU with the bundle's own dynamic
#                            loader (ld.so --library-path lib), modules
#                            (QEMU_MODULE_DIR: the TCG accelerator) and
#                            firmware (-L share/qemu: SeaBIOS, linuxboot);
#                            nothing from the host's /usr/lib
#   tools/cpio, tools/modinfo  Debian's, the same way, for hosts without them
#   boot/vmlinuz, boot/kver  the Debian kernel the modules are built for
#   busybox                  static: the guest's userland
#   guest/                   lake.ko, lake_selftest.ko, lake_kbench.ko, every
#                            app module (apps/*/*.ko, apps/*/kmod/*.ko) and its
#                            vm-check script, vmbench, lake-vmtool,
#                            the GPU kernels' fatbin
#   host/                    lakeD, lakeD-fake, liblake and the host rows of
#                            the benchmark (lake_bench_lake, _direct)
#   scripts/                 lake-vm.sh, vm-init.sh, gpu-vm-run.sh, the
#                            guest's script and the report
#   MANIFEST                 what is in it, from which build
# The checks boot the bundle with the host's /usr/lib (and so /usr/lib64's
# loader link) and QEMU's and SeaBIOS' data directories hidden, in a private
# mount namespace (root and unshare), after proving that the system's own
# QEMU cannot start that way: a library or firmware file the bundle lacks
# fails here, not on the GPU machine.  --check bounds the archive's size with
# a fast gzip -1 (xz -9 packs smaller still) rather than minutes of xz: it
# is the CTest vm_bundle.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
PROG=vm-bundle
LIMIT=$((40 * 1024 * 1024))
die() {
	echo "$PROG: error: $*" >&2
	exit 2
}

# boot_isolated DIR: the bundle in DIR boots its kernel and loads lake.ko
# there, with nothing of the host's libraries or firmware visible.
boot_isolated() {
	local b=$1 t
	[ "$(id -u)" = 0 ] && command -v unshare >/dev/null ||
		die "the check hides the host's libraries in a mount namespace: it needs root and unshare"
	if unshare -m sh -c 'mount -t tmpfs -o ro lake-hidden /usr/lib && exec "$1" --version' sh \
		"$(command -v qemu-system-x86_64 || echo /usr/bin/qemu-system-x86_64)" >/dev/null 2>&1; then
		die "hiding /usr/lib does not stop the system's QEMU: the check would prove nothing"
	fi
	t=$(mktemp -d "${TMPDIR:-/tmp}/lake-vm-bundle-check.XXXXXX")
	printf '%s\n' 'insmod /lake/lake.ko || exit 1' \
		"grep -q '^transport: /dev/lake' /sys/kernel/debug/lake/stats || exit 1" \
		'rmmod lake || exit 1' \
		'echo "bundle check: lake.ko loaded and unloaded in the bundle kernel"' >"$t/run.sh"
	# Every library the bundle's programs load resolves inside the bundle.
	for f in qemu-system-x86_64 cpio kmod; do
		"$b/lib/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$b/lib" --list \
			"$b/libexec/$f" | awk -v b="$b/" '/=>/ && index($3, b) != 1 { bad = bad " " $1 }
			END { if (bad != "") { print "resolved outside the bundle:" bad; exit 1 } }' ||
			die "$f needs libraries the bundle lacks"
	done
	LAKE_BUNDLE_ISOLATE=1 "$b/bin/qemu-system-x86_64" --version | head -n 1 ||
		die "the bundle's QEMU does not start isolated"
	LAKE_BUNDLE_ISOLATE=1 LAKE_VM_QEMU="$b/bin/qemu-system-x86_64" LAKE_VM_BUSYBOX="$b/busybox" \
		"$b/scripts/lake-vm.sh" --kernel "$b/boot/vmlinuz" --kver "$(cat "$b/boot/kver")" \
		--timeout 120 --file "$b/guest/lake.ko" --run "$t/run.sh" --out "$t/out" ||
		die "the bundle did not boot isolated (logs in $t/out)"
	rm -rf "$t"
}

mode=pack
case ${1:-} in
--stage | --check | --check-archive) mode=${1#--}; shift ;;
esac
[ $# -ge 1 ] || die "usage: vm-bundle.sh [--stage|--check] BUILD_DIR [OUT|DIR] | --check-archive FILE"
if [ "$mode" = check-archive ]; then
	[ -f "$1" ] || die "no bundle at $1"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/lake-vm-bundle.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	tar -xJf "$1" -C "$tmp"
	boot_isolated "$tmp/lake-vm-bundle"
	echo "$PROG: $1 ($(du -h "$1" | cut -f1)) boots with nothing from the host's /usr/lib"
	exit 0
fi
build=$(cd "$1" && pwd)
if [ "$mode" = stage ]; then
	[ $# -eq 2 ] || die "--stage needs BUILD_DIR and DIR"
	dest=$2
else
	out=${2:-$build/vm-bundle/lake-vm-bundle.tar.xz}
fi
qemu=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 not found (scripts/install-deps.sh)"
busybox=${LAKE_VM_BUSYBOX:-/bin/busybox}
[ -e "$build/kmod/lake.ko" ] || die "$build/kmod/lake.ko is not built (cmake --build $build)"
kver=$(modinfo -F vermagic "$build/kmod/lake.ko" | cut -d' ' -f1)
[ -r "/boot/vmlinuz-$kver" ] || die "lake.ko is built for $kver, but /boot/vmlinuz-$kver is missing"
moddir=/usr/lib/x86_64-linux-gnu/qemu
[ -f "$moddir/accel-tcg-x86_64.so" ] || die "no TCG accelerator module in $moddir"

# stage DIR: the bundle's tree in DIR.
stage() {
	local d=$1 f lib
	rm -rf "$d"
	mkdir -p "$d"/{bin,tools,libexec,lib/qemu,share/qemu,boot,guest/apps,host,scripts}

	# QEMU, cpio and kmod with every library they load and the loader.
	cp -L "$qemu" "$d/libexec/qemu-system-x86_64"
	cp -L "$(command -v cpio)" "$d/libexec/cpio"
	cp -L "$(command -v kmod || echo /bin/kmod)" "$d/libexec/kmod"
	cp -L "$moddir/accel-tcg-x86_64.so" "$d/lib/qemu/"
	for f in "$d/libexec/qemu-system-x86_64" "$d/libexec/cpio" "$d/libexec/kmod" \
		"$d/lib/qemu/accel-tcg-x86_64.so"; do
		while read -r lib; do
			[ -e "$d/lib/$(basename "$lib")" ] || cp -L "$lib" "$d/lib/"
		done < <(LC_ALL=C ldd "$f" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }')
	done
	[ -e "$d/lib/ld-linux-x86-64.so.2" ] || die "no dynamic loader found for QEMU"
	# Firmware for -machine pc with -kernel and -nodefaults: SeaBIOS, the
	# linuxboot option ROM, and kvmvapic (used under KVM).
	for f in bios-256k.bin linuxboot_dma.bin kvmvapic.bin; do
		lib=""
		for dir in /usr/share/qemu /usr/share/seabios; do
			[ -e "$dir/$f" ] && lib=$dir/$f && break
		done
		[ -n "$lib" ] || die "QEMU firmware $f not found"
		cp -L "$lib" "$d/share/qemu/"
	done
	cat >"$d/bin/qemu-system-x86_64" <<'EOF'
#!/bin/sh
# Debian's QEMU from this bundle: its own loader, libraries, TCG module and
# firmware.  LAKE_BUNDLE_ISOLATE=1 (root) hides the host's library and data
# directories first, to prove nothing is taken from there.
b=$(cd "$(dirname "$0")/.." && pwd)
export QEMU_MODULE_DIR="$b/lib/qemu"
set -- "$b/lib/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$b/lib" \
	--argv0 qemu-system-x86_64 "$b/libexec/qemu-system-x86_64" -L "$b/share/qemu" "$@"
if [ -n "${LAKE_BUNDLE_ISOLATE:-}" ]; then
	# /usr/lib last: mount itself needs it (and /usr/lib64's loader link
	# points there).
	exec unshare -m sh -c 'for d in /usr/share/qemu /usr/share/seabios /usr/lib; do
		[ -d "$d" ] && mount -t tmpfs -o ro lake-hidden "$d"; done; exec "$@"' sh "$@"
fi
exec "$@"
EOF
	for f in cpio modinfo; do
		sed -e "s/@NAME@/$f/" -e "s/@BIN@/$([ $f = modinfo ] && echo kmod || echo $f)/" \
			>"$d/tools/$f" <<'EOF'
#!/bin/sh
# Debian's @NAME@ from this bundle, with its own loader and libraries.
b=$(cd "$(dirname "$0")/.." && pwd)
exec "$b/lib/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$b/lib" --argv0 @NAME@ "$b/libexec/@BIN@" "$@"
EOF
	done
	chmod 0755 "$d"/bin/* "$d"/tools/*

	cp -L "/boot/vmlinuz-$kver" "$d/boot/vmlinuz"
	echo "$kver" >"$d/boot/kver"
	cp -L "$busybox" "$d/busybox"

	# The guest's files: lake.ko and the modules built against it.
	for f in kmod/lake.ko test/vm/ktest/lake_selftest.ko bench/bridge/kbench/lake_kbench.ko \
		bench/vm/vmbench test/vm/bridge/lake-vmtool; do
		[ -e "$build/$f" ] || die "$build/$f is not built (cmake --build $build)"
		cp -L "$build/$f" "$d/guest/"
	done
	# Each module on the workload kit (apps/APP/kmod/) comes with
	# apps/common/vm-check.sh, which checks its GPU path against its CPU
	# path in the VM; an app's own apps/APP/vm-check.sh takes its place.
	for f in "$build"/apps/*/*.ko "$build"/apps/*/kmod/*.ko; do
		[ -e "$f" ] || continue
		cp -L "$f" "$d/guest/apps/"
		app=${f#"$build"/apps/}
		app=${app%%/*}
		check=$SRC/apps/$app/vm-check.sh
		[ -e "$check" ] || case $f in */kmod/*) check=$SRC/apps/common/vm-check.sh ;; esac
		[ -e "$check" ] && cp "$check" "$d/guest/apps/$(basename "$f" .ko).vm-check.sh"
	done
	[ -e "$d/guest/apps/lake_hello.ko" ] || die "$build/apps/hello/lake_hello.ko is not built"
	cp "$SRC/apps/hello/demo-run.sh" "$d/guest/"
	# The host's: lakeD (libcuda is the host's own, loaded at run time).
	cp -L "$build/daemon/lakeD" "$build/daemon/lakeD-fake" "$d/host/"
	if [ -e "$build/lake_kernels.fatbin" ]; then
		cp -L "$build/lake_kernels.fatbin" "$d/guest/"
		cp -L "$build/lake_kernels.fatbin" "$d/host/"
		for f in bench/gpu/lake_bench_lake bench/gpu/lake_bench_direct; do
			[ -e "$build/$f" ] && cp -L "$build/$f" "$d/host/"
		done
		cp -aL "$build"/client/liblake.so* "$d/host/" 2>/dev/null || true
	fi

	cp "$SRC/test/vm/lake-vm.sh" "$SRC/test/vm/vm-init.sh" "$SRC/test/vm/kver.sh" \
		"$SRC/scripts/gpu-vm-run.sh" "$SRC/scripts/gpu-vm-guest.sh" "$SRC/bench/bridge/report.py" \
		"$d/scripts/"
	{
		echo "LAKE VM bundle: Debian's kernel $kver, QEMU and lake.ko for the VM bridge"
		echo "built: $(date -u +%FT%TZ) on $(hostname) from $(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown)"
		echo "spec hash: $(awk '/define LAKE_SPEC_HASH/ { print $3 }' "$build/gen/lake_proto_gen.h")"
		echo "qemu: $("$qemu" --version | head -n 1)"
		echo "run: scripts/gpu-vm-run.sh --bundle-dir DIR OUT_DIR [all|hello|bench|SCRIPT]"
		echo "files:"
		(cd "$d" && find . -type f | LC_ALL=C sort | xargs sha256sum)
	} >"$d/MANIFEST"
}

case $mode in
stage)
	stage "$dest"
	exit 0
	;;
check)
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/lake-vm-bundle.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	stage "$tmp/lake-vm-bundle"
	bound=$(tar -C "$tmp" -cf - lake-vm-bundle | gzip -1 | wc -c)
	[ "$bound" -lt "$LIMIT" ] ||
		die "the bundle packs to $((bound >> 20)) MiB with gzip -1: over the 40 MiB limit"
	boot_isolated "$tmp/lake-vm-bundle"
	echo "$PROG: the bundle ($(du -sh "$tmp/lake-vm-bundle" | cut -f1) unpacked, $((bound >> 20)) MiB with gzip -1) boots with nothing from the host's /usr/lib"
	exit 0
	;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lake-vm-bundle.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
stage "$tmp/lake-vm-bundle"
mkdir -p "$(dirname "$out")"
tar -C "$tmp" -cf - lake-vm-bundle | xz -T2 -9 -c >"$out.tmp"
mv "$out.tmp" "$out"
size=$(stat -c %s "$out")
echo "$PROG: $out: $((size >> 20)) MiB ($(du -sh "$tmp/lake-vm-bundle" | cut -f1) unpacked; limit 40 MiB)"
[ "$size" -lt "$LIMIT" ] || {
	echo "$PROG: error: the bundle is over 40 MiB" >&2
	exit 1
}
