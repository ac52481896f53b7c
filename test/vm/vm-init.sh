#!/bin/sh
# vm-init.sh - /init of the LAKE test VM (busybox sh, PID 1).
#
# lake-vm.sh copies this into the initramfs as /init.  It mounts the usual
# file systems, runs /lake/run.sh under a watchdog, then prints, between
# markers that lake-vm.sh parses on the host:
#   LAKE-VM-DMESG-BEGIN / -END    the whole kernel log
#   LAKE-VM-OUT-BEGIN / -END      /out as a base64 tar.gz (only if non-empty)
#   LAKE-VM-RESULT: rc=<n>        always last: the VM finished every stage
# and powers off.  Settings come from /lake/vm.conf, written by lake-vm.sh.
# shellcheck shell=sh

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/lake
export HOME=/tmp

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug
exec </dev/null >/dev/console 2>&1

# shellcheck source=/dev/null
. /lake/vm.conf
export LAKE_VM=1 LAKE_VM_OUT=/out LAKE_KVER
[ -n "${LAKE_VM_LD_LIBRARY_PATH:-}" ] && export LD_LIBRARY_PATH="$LAKE_VM_LD_LIBRARY_PATH"

uptime_s() {
	read -r u _ </proc/uptime
	echo "$u"
}

t0=$(uptime_s)
echo "LAKE-VM-INIT: uptime=$t0"

# The script gets what is left of the host's overall limit, less a margin for
# the dumps and the power-off.
limit=$((LAKE_VM_TIMEOUT - LAKE_VM_MARGIN - ${t0%.*}))
[ "$limit" -ge 5 ] || limit=5

echo "LAKE-VM-SCRIPT-BEGIN"
cd /lake || exit 1
setsid sh /lake/run.sh &
pid=$!
(
	sleep "$limit"
	if kill -0 "$pid" 2>/dev/null; then
		echo "LAKE-VM-TIMEOUT: script still running after ${limit}s, killed"
		kill -KILL -- "-$pid" 2>/dev/null
		kill -KILL "$pid" 2>/dev/null
	fi
) &
wait "$pid"
rc=$?
echo "LAKE-VM-SCRIPT-END: uptime=$(uptime_s)"

# Stop everything the script left behind (daemons included), keep the console
# to ourselves while dumping, and report.
kill -KILL -1 2>/dev/null
echo 1 >/proc/sys/kernel/printk
echo "LAKE-VM-DMESG-BEGIN"
dmesg
echo "LAKE-VM-DMESG-END"
if [ -n "$(ls -A /out)" ]; then
	echo "LAKE-VM-OUT-BEGIN"
	tar -C /out -cf - . | gzip -c | base64
	echo "LAKE-VM-OUT-END"
fi
echo "LAKE-VM-RESULT: rc=$rc"
poweroff -f
# Not reached; if it were, PID 1 exiting panics and panic=-1 + -no-reboot
# make QEMU exit anyway.
echo o >/proc/sysrq-trigger
