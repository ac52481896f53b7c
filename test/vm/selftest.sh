#!/usr/bin/env bash
# selftest.sh BUILD_DIR - prove that lake-vm.sh passes a good run and fails
# bad ones.
#
# Builds test/vm/hello (module + a dynamically linked program) in BUILD_DIR,
# then boots the VM three times:
#   good     insmod with a parameter, /proc/modules, dmesg, /sys params,
#            --kmod null_blk, a --file with DEST, a dynamic ELF, /out files
#            coming back, rmmod: the harness must PASS.
#   warn     insmod warn=1 (WARN_ON at load), script exits 0: the harness
#            must FAIL and name the WARNING.
#   hang     the script never ends: the harness must kill it and FAIL.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -eq 1 ] || {
	echo "usage: selftest.sh BUILD_DIR" >&2
	exit 2
}
mkdir -p "$1"
build=$(cd "$1" && pwd)
t0=$SECONDS
failed=0
summary=()

pass() { summary+=("PASS  $*"); }
fail() {
	summary+=("FAIL  $*")
	failed=1
}

finish() {
	printf 'selftest: %s\n' "${summary[@]}"
	if [ "$failed" -eq 0 ]; then
		echo "selftest: PASS (${#summary[@]} checks, $((SECONDS - t0))s)"
		exit 0
	fi
	echo "selftest: FAIL (logs under $build)"
	exit 1
}

# --- build -----------------------------------------------------------------
kver=$("$HERE/kver.sh")
kdir=$("$HERE/kver.sh" --build)
rm -rf "$build/hello" "$build/runs"
mkdir -p "$build/hello" "$build/runs"
cp "$HERE/hello/lake_vm_hello.c" "$HERE/hello/Kbuild" "$build/hello/"
if ! make -C "$kdir" M="$build/hello" W=1 KCFLAGS=-Werror modules >"$build/hello/build.log" 2>&1; then
	cat "$build/hello/build.log" >&2
	fail "build lake_vm_hello.ko against $kdir"
	finish
fi
ko=$build/hello/lake_vm_hello.ko
if ! gcc -O2 -Wall -Wextra -Werror -o "$build/hello/user_hello" "$HERE/hello/user_hello.c" \
	-Wl,--no-as-needed -lm >>"$build/hello/build.log" 2>&1; then
	cat "$build/hello/build.log" >&2
	fail "build user_hello"
	finish
fi
pass "built lake_vm_hello.ko for $kver and user_hello"

# vm NAME SCRIPT [lake-vm.sh options...]: run one VM; its output goes to
# runs/NAME.txt, its status to $vm_rc.
vm() {
	local name=$1 script=$2
	shift 2
	set +e
	"$HERE/lake-vm.sh" --out "$build/runs/$name" --run "$script" "$@" \
		>"$build/runs/$name.txt" 2>&1
	vm_rc=$?
	set -e
}

# --- good run ----------------------------------------------------------------
cat >"$build/runs/good.sh" <<'EOF'
set -e
insmod /lake/lake_vm_hello.ko greeting=hi-from-selftest
grep -q '^lake_vm_hello ' /proc/modules
dmesg | grep -q 'lake_vm_hello: hi-from-selftest from the LAKE test VM'
cat /sys/module/lake_vm_hello/parameters/greeting >/out/greeting.txt
modprobe null_blk nr_devices=1
test -b /dev/nullb0
/opt/t/user_hello 2 >/out/user_hello.txt
mkdir -p /out/sub
grep -c . /proc/modules >/out/sub/nmodules.txt
rmmod lake_vm_hello
! grep -q '^lake_vm_hello ' /proc/modules
dmesg | grep -q 'lake_vm_hello: goodbye'
EOF
vm good "$build/runs/good.sh" --timeout 120 --file "$ko" \
	--file "$build/hello/user_hello:/opt/t/user_hello" --kmod null_blk
if [ "$vm_rc" -ne 0 ]; then
	cat "$build/runs/good.txt" >&2
	fail "good run: harness failed (status $vm_rc)"
elif [ "$(cat "$build/runs/good/greeting.txt" 2>/dev/null)" != hi-from-selftest ] ||
	[ "$(cat "$build/runs/good/user_hello.txt" 2>/dev/null)" != "user_hello: sqrt(2)=1.414214" ] ||
	! [ -s "$build/runs/good/sub/nmodules.txt" ]; then
	fail "good run: files written under /out did not come back (see $build/runs/good)"
else
	pass "good run: $(sed -n 's/^lake-vm: PASS (\(.*\); logs in.*/\1/p' "$build/runs/good.txt")"
fi

# --- must fail: WARN_ON at load ------------------------------------------------
cat >"$build/runs/warn.sh" <<'EOF'
insmod /lake/lake_vm_hello.ko warn=1
rmmod lake_vm_hello
exit 0
EOF
vm warn "$build/runs/warn.sh" --timeout 120 --file "$ko"
if [ "$vm_rc" -eq 1 ] && grep -q 'offending kernel log lines' "$build/runs/warn.txt" &&
	grep -q 'WARNING: CPU: .*lake_vm_hello' "$build/runs/warn.txt"; then
	pass "warn run: a WARN_ON at load fails the run"
else
	cat "$build/runs/warn.txt" >&2
	fail "warn run: the harness did not report the WARN_ON (status $vm_rc)"
fi

# --- must fail: the script hangs -----------------------------------------------
cat >"$build/runs/hang.sh" <<'EOF'
echo "hanging on purpose"
sleep 100000
EOF
vm hang "$build/runs/hang.sh" --timeout 35
if [ "$vm_rc" -eq 1 ] && grep -q 'script still running after' "$build/runs/hang.txt" &&
	grep -q 'hanging on purpose' "$build/runs/hang.txt"; then
	pass "hang run: a hung script is killed and fails the run"
else
	cat "$build/runs/hang.txt" >&2
	fail "hang run: the harness did not report the hang (status $vm_rc)"
fi

finish
