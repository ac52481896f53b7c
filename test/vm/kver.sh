#!/usr/bin/env bash
# kver.sh - print the version of the Debian kernel that the LAKE VM tests boot.
#
# Usage: kver.sh [--build]
#   (no option)  print the version, e.g. 6.1.0-56-amd64
#   --build      print its Kbuild directory, /lib/modules/<ver>/build
#
# The version comes from the installed linux-image-<ver> packages that also
# have /boot/vmlinuz-<ver> and a Kbuild tree at /lib/modules/<ver>/build
# (from linux-headers-<ver>); the highest such version wins.  Never
# `uname -r`: the machine that builds and runs the tests may run a kernel
# that is not Debian's.  LAKE_KVER in the environment overrides the choice
# (it must still have a vmlinuz and a Kbuild tree).
set -euo pipefail

usable() {
	[ -r "/boot/vmlinuz-$1" ] && [ -f "/lib/modules/$1/build/Makefile" ]
}

kver=""
if [ -n "${LAKE_KVER:-}" ]; then
	kver=$LAKE_KVER
	if ! usable "$kver"; then
		echo "kver.sh: LAKE_KVER=$kver has no /boot/vmlinuz-$kver or /lib/modules/$kver/build" >&2
		exit 1
	fi
else
	candidates=()
	while IFS=$'\t' read -r pkg status; do
		case $status in ii*) ;; *) continue ;; esac
		ver=${pkg#linux-image-}
		ver=${ver%-unsigned}
		case $ver in *-dbg) continue ;; esac
		if usable "$ver"; then
			candidates+=("$ver")
		fi
	done < <(dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\n' 'linux-image-[0-9]*' 2>/dev/null || true)
	if [ ${#candidates[@]} -gt 0 ]; then
		kver=$(printf '%s\n' "${candidates[@]}" | sort -V | tail -n 1)
	fi
fi

if [ -z "$kver" ]; then
	echo "kver.sh: no installed Debian linux-image-<ver> with /boot/vmlinuz-<ver> and" \
		"/lib/modules/<ver>/build; run scripts/install-deps.sh" >&2
	exit 1
fi

case ${1:-} in
"") echo "$kver" ;;
--build) echo "/lib/modules/$kver/build" ;;
*)
	echo "usage: kver.sh [--build]" >&2
	exit 2
	;;
esac
