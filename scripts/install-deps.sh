#!/usr/bin/env bash
# Installs, from Debian's archive, every package LAKE needs to build and test.
# Idempotent: packages already present are not touched, and apt is only run
# when something is missing.  Run as root (or with sudo available).
set -euo pipefail

# Why each package is here:
#   build-essential, cmake, pkg-config   the build itself
#   python3, python3-jinja2, python3-yaml the code generator (templates + spec parser)
#   python3-pytest                        the generator's unit tests
#   check                                 libcheck, the C unit-test framework
#   linux-image-amd64, linux-headers-amd64  the kernel the VM tests boot, and its Kbuild tree
#   qemu-system-x86, busybox-static, cpio  the VM test harness (boot + initramfs)
#   sparse                                the kernel module's static checker (make C=1)
#   kmod                                  modinfo, for the harness's module sanity checks
#   clang                                 libFuzzer, for the fuzz target of lakeD's user ring
#   liblz4-dev, libzstd-dev               liblake decompresses compressed fatbin entries to
#                                         read kernel parameter layouts (lake.ko uses the
#                                         kernel's own LZ4 and Zstandard)
#   python3-numpy                         the apps' reference outputs in their tests; LinnOS training
PACKAGES=(build-essential cmake pkg-config python3 python3-jinja2 python3-yaml
          python3-pytest check linux-image-amd64 linux-headers-amd64
          qemu-system-x86 busybox-static cpio sparse kmod clang liblz4-dev libzstd-dev
          python3-numpy)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ -n "${LAKE_NO_INSTALL:-}" ]; then
	# Machines without Debian's archive (the offline GPU machine): build
	# what the tools present allow; CMake says what it skips.
	echo "install-deps: LAKE_NO_INSTALL is set: not installing ${missing[*]}" >&2
	exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
