#!/usr/bin/env bash
# lake-vm.sh - run a test script inside Debian's kernel under QEMU (TCG).
#
# Builds a busybox initramfs holding the given files and script, boots the
# installed Debian kernel with it, and fails unless the script exits 0 and the
# kernel log is clean.  See test/vm/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=lake-vm

usage() {
	cat <<'EOF'
Usage: lake-vm.sh [options] --run SCRIPT

  --run SCRIPT        shell script run by busybox sh inside the VM as
                      /lake/run.sh, in /lake (required)
  --file SRC[:DEST]   copy SRC (file or directory) into the VM at DEST
                      (absolute; default /lake/<basename>; a DEST ending in /
                      is a directory); dynamically linked ELF files bring
                      their shared libraries and loader.  Repeatable.
  --kmod NAME         include module NAME of the booted kernel and its
                      dependencies (modprobe NAME inside).  Repeatable.
  --out DIR           keep console.log, dmesg.txt and what the script wrote
                      under /out in DIR (default: a new temporary directory)
  --timeout SECS      overall limit, boot included (default 300)
  --mem MB            guest memory (default 1024)
  --smp N             virtual CPUs (default 2)
  --kver VER          kernel version (default: the one kver.sh prints)
  --append ARGS       extra kernel command-line arguments
  --kernel FILE       boot FILE instead of /boot/vmlinuz-VER (with --kver VER;
                      /lib/modules/VER is then needed only for --kmod)
  --accel tcg|kvm     QEMU's accelerator (default tcg, or \$LAKE_VM_ACCEL)
  --ivshmem FILE      attach an ivshmem-plain PCI device whose memory is
                      FILE on the host (shared, a power-of-two size); in
                      order, one device each.  Repeatable.
  -q, --quiet         print nothing on success
  -h, --help          this text

Exit status: 0 pass, 1 the run failed, 2 bad usage or setup.
EOF
}

die() {
	echo "$PROG: error: $*" >&2
	exit 2
}

timeout_s=300
mem=1024
smp=2
kver=""
run=""
out=""
append=""
quiet=0
files=()
kmods=()
kernel=""
accel=${LAKE_VM_ACCEL:-tcg}
ivshmem=()
qemu=${LAKE_VM_QEMU:-qemu-system-x86_64}

while [ $# -gt 0 ]; do
	opt=$1
	val=""
	case $opt in
	--*=*)
		val=${opt#*=}
		opt=${opt%%=*}
		;;
	--run | --file | --kmod | --out | --timeout | --mem | --smp | --kver | --append | \
		--kernel | --accel | --ivshmem)
		[ $# -ge 2 ] || die "$opt needs an argument"
		val=$2
		shift
		;;
	esac
	case $opt in
	--run) run=$val ;;
	--file) files+=("$val") ;;
	--kmod) kmods+=("$val") ;;
	--out) out=$val ;;
	--timeout) timeout_s=$val ;;
	--mem) mem=$val ;;
	--smp) smp=$val ;;
	--kver) kver=$val ;;
	--append) append=$val ;;
	--kernel) kernel=$val ;;
	--accel) accel=$val ;;
	--ivshmem) ivshmem+=("$val") ;;
	-q | --quiet) quiet=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown argument: $opt"
		;;
	esac
	shift
done

[ -n "$run" ] || {
	usage >&2
	die "--run SCRIPT is required"
}
[ -f "$run" ] || die "--run $run: no such file"
for n in "$timeout_s" "$mem" "$smp"; do
	case $n in '' | *[!0-9]*) die "not a positive number: '$n'" ;; esac
done
[ "$timeout_s" -ge 30 ] || die "--timeout must be at least 30 (boot alone takes ~5 s)"

if [ -z "$kver" ]; then
	[ -z "$kernel" ] || die "--kernel needs --kver (the version its modules are built for)"
	kver=$(LAKE_KVER="" "$HERE/kver.sh") || die "no kernel to boot (see kver.sh)"
fi
if [ -z "$kernel" ]; then
	kernel=/boot/vmlinuz-$kver
	[ -d "/lib/modules/$kver" ] || die "no /lib/modules/$kver"
fi
[ -r "$kernel" ] || die "cannot read $kernel"
case $accel in
tcg) accel_arg=tcg,thread=multi ;;
kvm) accel_arg=kvm ;;
*) die "--accel must be tcg or kvm, not '$accel'" ;;
esac
for t in "$qemu" cpio gzip base64 tar ldd timeout modinfo; do
	command -v "$t" >/dev/null || die "$t not found; run scripts/install-deps.sh"
done
# One ivshmem-plain device per --ivshmem FILE, in order, backed by FILE.
ivshmem_args=()
for i in "${!ivshmem[@]}"; do
	f=${ivshmem[$i]}
	[ -f "$f" ] && [ -r "$f" ] && [ -w "$f" ] || die "--ivshmem $f: not a readable and writable file"
	sz=$(stat -Lc %s -- "$f")
	[ "$sz" -ge 4096 ] && [ $((sz & (sz - 1))) -eq 0 ] ||
		die "--ivshmem $f: its size ($sz bytes) must be a power of two of at least 4096"
	ivshmem_args+=(-object "memory-backend-file,id=lake_ivshmem$i,share=on,mem-path=$f,size=$sz"
		-device "ivshmem-plain,memdev=lake_ivshmem$i")
done
busybox=${LAKE_VM_BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "$busybox not found; run scripts/install-deps.sh (busybox-static)"

# --- output directory --------------------------------------------------------
# Only a directory that is new, empty or made by an earlier run (marker file)
# is used, and that one is emptied first so no stale result survives.
if [ -z "$out" ]; then
	out=$(mktemp -d "${TMPDIR:-/tmp}/lake-vm-out.XXXXXX")
elif [ -e "$out" ]; then
	[ -d "$out" ] || die "--out $out is not a directory"
	if [ -e "$out/.lake-vm-out" ]; then
		find "$out" -mindepth 1 -delete
	elif [ -n "$(ls -A "$out")" ]; then
		die "--out $out is not empty and was not made by $PROG; refusing to overwrite it"
	fi
else
	mkdir -p "$out"
fi
out=$(cd "$out" && pwd)
touch "$out/.lake-vm-out"

work=$(mktemp -d "${TMPDIR:-/tmp}/lake-vm.XXXXXX")
if [ -n "${LAKE_VM_KEEP:-}" ]; then
	echo "$PROG: keeping work directory $work" >&2
else
	trap 'rm -rf "$work"' EXIT
fi
root=$work/root

# --- initramfs -----------------------------------------------------------
declare -A libdirs=()

# is_dyn_elf FILE: an ELF executable or shared object (not a .ko or .o).
is_dyn_elf() {
	local hdr
	hdr=$(od -An -tx1 -N18 -- "$1" 2>/dev/null | tr -d ' \n') || return 1
	[[ $hdr == 7f454c46* ]] || return 1
	case ${hdr:32:4} in 0200 | 0300) return 0 ;; esac
	return 1
}

copy_lib() {
	local lib=$1 dest
	dest=$lib
	# The guest mounts tmpfs over /tmp, /run and /dev/shm (vm-init.sh): a
	# library of a build tree there goes to /lake/lib, first on the path.
	case $lib in
	/tmp/* | /run/* | /dev/shm/*) dest=/lake/lib/$(basename "$lib") ;;
	esac
	libdirs[$(dirname "$dest")]=1
	[ -e "$root$dest" ] && return 0
	mkdir -p "$root$(dirname "$dest")"
	cp -L -- "$lib" "$root$dest"
}

# add_libs FILE: copy FILE's shared libraries and dynamic loader.
add_libs() {
	local f=$1 deps line lib
	deps=$(LC_ALL=C ldd -- "$f" 2>&1) || return 0 # static: nothing to do
	while IFS= read -r line; do
		line=${line#"${line%%[![:space:]]*}"}
		case $line in
		*"=> not found"*) die "$f needs ${line%% *}, which ldd cannot find (LD_LIBRARY_PATH?)" ;;
		*"=> /"*)
			lib=${line#*=> }
			lib=${lib%% (*}
			;;
		/*) lib=${line%% (*} ;;
		*) continue ;;
		esac
		copy_lib "$lib"
	done <<<"$deps"
}

check_ko() {
	local ko=$1 vermagic
	vermagic=$(modinfo -F vermagic -- "$ko" 2>/dev/null) || die "$ko: not a kernel module (modinfo failed)"
	[ "${vermagic%% *}" = "$kver" ] ||
		die "$ko was built for kernel '${vermagic%% *}', the VM boots $kver"
}

add_file() {
	local spec=$1 src dest f
	if [[ $spec == *:/* ]]; then
		src=${spec%:/*}
		dest=/${spec##*:/}
	else
		src=$spec
		dest=/lake/
	fi
	[ -e "$src" ] || die "--file $src: no such file or directory"
	[[ $dest == */ ]] && dest=$dest$(basename -- "$src")
	mkdir -p "$root$(dirname "$dest")"
	cp -RL --preserve=mode,timestamps -- "$src" "$root$dest"
	while IFS= read -r -d '' f; do
		case $f in *.ko) check_ko "$f" ;; esac
		if is_dyn_elf "$f"; then
			add_libs "$f"
		fi
	done < <(find -L "$src" -type f -print0)
}

add_kmod() {
	local name=$1 deps line ko
	deps=$(modprobe -S "$kver" --show-depends "$name" 2>&1) ||
		die "--kmod $name: not a module of $kver ($deps)"
	while IFS= read -r line; do
		case $line in
		insmod\ /*)
			ko=${line#insmod }
			ko=${ko%% *}
			mkdir -p "$root$(dirname "$ko")"
			cp -- "$ko" "$root$ko"
			;;
		esac
	done <<<"$deps"
}

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,out,lake,etc}
cp -- "$busybox" "$root/bin/busybox"
add_libs "$busybox"
while IFS= read -r applet; do
	[ "$applet" = bin/busybox ] && continue
	mkdir -p "$root/$(dirname "$applet")"
	ln -sf /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)
cp -- "$HERE/vm-init.sh" "$root/init"
cp -- "$run" "$root/lake/run.sh"
chmod 0755 "$root/init" "$root/lake/run.sh"
for spec in ${files[@]+"${files[@]}"}; do
	add_file "$spec"
done
if [ ${#kmods[@]} -gt 0 ]; then
	for m in "${kmods[@]}"; do
		add_kmod "$m"
	done
	for f in modules.dep modules.alias modules.softdep modules.builtin modules.order modules.symbols; do
		if [ -e "/lib/modules/$kver/$f" ]; then
			cp -- "/lib/modules/$kver/$f" "$root/lib/modules/$kver/$f"
		fi
	done
fi

ld_path=""
if [ ${#libdirs[@]} -gt 0 ]; then
	ld_path=$(printf '%s\n' "${!libdirs[@]}" | LC_ALL=C sort | paste -sd: -)
	[ -z "${libdirs[/lake/lib]:-}" ] || ld_path=/lake/lib:$(printf '%s\n' "${!libdirs[@]}" |
		grep -vx /lake/lib | LC_ALL=C sort | paste -sd: -)
fi
cat >"$root/lake/vm.conf" <<EOF
LAKE_VM_TIMEOUT=$timeout_s
LAKE_VM_MARGIN=20
LAKE_KVER=$kver
LAKE_VM_LD_LIBRARY_PATH=$ld_path
EOF

initrd=$work/initrd.cpio.gz
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio -o -H newc --owner 0:0 --reproducible --quiet) | gzip -1 -n >"$initrd"

# --- boot --------------------------------------------------------------------
raw=$work/console.raw
t_start=$EPOCHREALTIME
set +e
timeout -k 5 "$timeout_s" "$qemu" \
	-nodefaults -no-user-config -nographic -serial stdio \
	-machine pc -accel "$accel_arg" -smp "$smp" -m "$mem" -no-reboot \
	-kernel "$kernel" -initrd "$initrd" ${ivshmem_args[@]+"${ivshmem_args[@]}"} \
	-append "console=ttyS0 quiet loglevel=5 printk.time=1 log_buf_len=1M panic=-1 $append" \
	</dev/null >"$raw" 2>&1
qemu_rc=$?
set -e
t_total=$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

# --- verdict -----------------------------------------------------------------
log=$out/console.log
# Drop CRs and the terminal escapes SeaBIOS prints (one disables line wrap).
sed -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[a-zA-Z]//g' "$raw" >"$log"

section() { # section NAME: the lines between LAKE-VM-NAME-BEGIN and -END
	awk -v b="LAKE-VM-$1-BEGIN" -v e="LAKE-VM-$1-END" \
		'index($0, e) == 1 { on = 0 } on { print } $0 == b { on = 1 }' "$log"
}

failures=()
result=$(grep -a '^LAKE-VM-RESULT: rc=' "$log" | tail -n 1 || true)
rc=${result#LAKE-VM-RESULT: rc=}

if [ -z "$result" ]; then
	if [ "$qemu_rc" -eq 124 ] || [ "$qemu_rc" -eq 137 ]; then
		failures+=("VM did not finish within ${timeout_s}s (QEMU killed)")
	else
		failures+=("VM did not finish (QEMU exited with status $qemu_rc)")
	fi
	if grep -aq 'Kernel panic' "$log"; then
		failures+=("the kernel panicked")
	fi
else
	section DMESG >"$out/dmesg.txt"
	if grep -aq '^LAKE-VM-OUT-BEGIN$' "$log"; then
		if ! section OUT | base64 -d | tar -xzf - -C "$out" --no-same-owner 2>"$work/untar.err"; then
			failures+=("could not unpack the VM's /out: $(head -n 3 "$work/untar.err")")
		fi
	fi
	if grep -aq '^LAKE-VM-TIMEOUT:' "$log"; then
		failures+=("$(grep -a '^LAKE-VM-TIMEOUT:' "$log" | head -n 1 | sed 's/^LAKE-VM-TIMEOUT: //')")
	fi
	if [ "$rc" != 0 ]; then
		failures+=("the script exited with status $rc")
	fi
fi

# Kernel log lines (console and dmesg dump alike carry a [ seconds.micros ]
# stamp) that show a kernel problem.  Script output without such a stamp is
# never matched.
bad_patterns=(
	'WARNING:' 'BUG:' 'BUG [^ ]+ \(' 'kernel BUG' 'Oops' 'general protection fault'
	'Kernel panic' 'Unable to handle kernel' 'Call Trace:'
	'possible circular locking' 'possible recursive locking' 'inconsistent lock state'
	'suspicious RCU usage' 'rcu: INFO:' 'blocked for more than [0-9]+ seconds'
	'UBSAN' 'KASAN' 'refcount_t:' 'list_add corruption' 'list_del corruption'
	'segfault at '
)
ok_patterns=(
	'loading out-of-tree module taints kernel'
	'module verification failed'
)
bad_re=$(IFS='|' && echo "${bad_patterns[*]}")
ok_re=$(IFS='|' && echo "${ok_patterns[*]}")
offending=$(grep -aE '\[ *[0-9]+\.[0-9]{6}\]' "$log" | grep -aE -- "$bad_re" |
	grep -avE -- "$ok_re" | awk '!seen[$0]++' || true)
if [ -n "$offending" ]; then
	failures+=("the kernel log shows problems")
fi

boot=$(sed -n 's/^LAKE-VM-INIT: uptime=//p' "$log" | head -n 1)
script_end=$(sed -n 's/^LAKE-VM-SCRIPT-END: uptime=//p' "$log" | head -n 1)
script_s='?'
if [ -n "$boot" ] && [ -n "$script_end" ]; then
	script_s=$(awk -v a="$boot" -v b="$script_end" 'BEGIN { printf "%.1f", b - a }')
fi
times="boot ${boot:-?}s, script ${script_s}s, total ${t_total}s"

if [ ${#failures[@]} -eq 0 ]; then
	if [ "$quiet" -eq 0 ]; then
		echo "$PROG: PASS ($kver, $accel; $times; logs in $out)"
	fi
	exit 0
fi

{
	msg=$(printf '%s; ' "${failures[@]}")
	echo "$PROG: FAIL: ${msg%; }"
	if [ -n "$offending" ]; then
		echo "$PROG: offending kernel log lines:"
		echo "$offending" | head -n 60 | sed 's/^/    /'
		if [ -n "$result" ]; then
			first=$(grep -anFx -m 1 -- "$(head -n 1 <<<"$offending")" "$log" | cut -d: -f1)
			echo "$PROG: the first one in context:"
			sed -n "$((first > 5 ? first - 5 : 1)),$((first + 30))p" "$log" | sed 's/^/    /'
		fi
	fi
	if [ -z "$result" ]; then
		echo "$PROG: last console lines:"
		tail -n 40 "$log" | sed 's/^/    /'
	elif [ "$rc" != 0 ]; then
		echo "$PROG: last lines of the script's output:"
		section SCRIPT | tail -n 30 | sed 's/^/    /'
	fi
	echo "$PROG: $kver, $accel; $times; full console log: $log"
} >&2
exit 1
