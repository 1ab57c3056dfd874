#!/bin/bash
# mount.crash_power: a power cut below pressurefs loses what a daemon crash
# keeps. The backing dir is an ext4 image on a loop device; three files go
# through pressurefs:
#   durable      written and fsynced            -> intact after the cut
#   written-back written, `sync` control file   -> in the backing fs's page
#                (the daemon wrote it back,        cache only: gone after
#                 nobody fsynced)                  the cut
#   dirty        written only                   -> gone after the cut
# The cut is what the crash matrix's power mode does: SIGSTOP the daemon
# and wait until every thread is stopped (stop.sh), pfs-godown
# (FS_IOC_SHUTDOWN, NOLOGFLUSH),
# SIGKILL, unmount, mount the image again. Then the same steps with a daemon
# crash (the crash control file) instead: written-back survives it, because
# the backing fs was never cut. If pfs-godown did nothing, written-back
# would survive the power cut too and the test fails.
#   power.sh PRESSUREFS PFS_MOUNT_IO PFS_GODOWN
. "$(dirname "$0")/../mount/lib.sh"
. "$(dirname "$0")/stop.sh"
GODOWN=$(realpath -e "${3:?usage: power.sh PRESSUREFS PFS_MOUNT_IO PFS_GODOWN}") ||
	{ echo "power.sh: pfs-godown $3 is missing" >&2; exit 1; }
pfs_init "$(realpath -e "$1")" "$(realpath -e "$2")"
PFS_NAME=crash-power

[ "$(id -u)" = 0 ] || pfs_skip "not root: mounting an ext4 image on a loop device needs it"
[ -e /dev/loop-control ] || pfs_skip "/dev/loop-control is missing: no loop devices"
command -v mkfs.ext4 >/dev/null || pfs_skip "mkfs.ext4 is not installed"
[ -x "$GODOWN" ] || pfs_fail "$GODOWN is not built"

IMG=$PFS_T/backing.img
E=$PFS_T/ext4
mkdir -p "$E"
truncate -s 64M "$IMG" && mkfs.ext4 -q -F -E nodiscard "$IMG" || pfs_fail "cannot make the ext4 image"
PFS_EXTRA_MOUNTS+=("$E")
# mount -o loop attaches with autoclear: each unmount detaches the device.
pfs_run 30 mount -o loop -t ext4 "$IMG" "$E" ||
	pfs_skip "cannot mount an ext4 image on a loop device here"

remount_image() {
	pfs_run 60 umount "$E" || pfs_fail "cannot unmount the ext4 image"
	pfs_run 60 mount -o loop -t ext4 "$IMG" "$E" || pfs_fail "the image does not mount again"
}

for f in durable written-back dirty; do head -c 200000 /dev/urandom >"$W/$f"; done

# ---- power cut ----
pfs_mount_at "$E" "$M" -o policy=retry,writeback_ms=600000,dirty_limit=256M
pfs_must cp "$W/durable" "$M/durable"
assert_eq OK "$(pfs_fsync "$M/durable")" "fsync of durable"
pfs_must cp "$W/written-back" "$M/written-back"
ctl_write sync 1
assert_file_eq "$W/written-back" "$E/written-back" "written-back reached the backing fs (its page cache)"
pfs_must cp "$W/dirty" "$M/dirty"
cmp -s "$W/dirty" "$E/dirty" && pfs_fail "dirty is in the backing fs before any writeback"
pfs_ok "dirty is only in pressurefs' cache"

dpid=$PFS_PID
crash_stop_all "$dpid" 30 || pfs_fail "the daemon did not stop (every thread) before the cut"
pfs_run 30 "$GODOWN" --nologflush "$E" || pfs_fail "pfs-godown $E failed"
crash_all_stopped "$dpid" || pfs_fail "a thread of the daemon ran on after the cut"
kill -KILL "$dpid"
pfs_wait_pid "$dpid" 30 || pfs_fail "the daemon is still alive after SIGKILL"
pfs_forget_pid "$dpid"
assert_eq 137 "$PFS_STATUS" "the daemon died by SIGKILL"
pfs_umount_at "$M" ""
remount_image

assert_file_eq "$W/durable" "$E/durable" "the fsynced file is intact after the power cut"
cmp -s "$W/written-back" "$E/written-back" 2>/dev/null &&
	pfs_fail "written-back survived the power cut: the backing fs was not cut (pfs-godown did nothing?)"
pfs_ok "written back but not fsynced: lost in the power cut ($(stat -c %s "$E/written-back" 2>/dev/null || echo no) bytes left of 200000)"
cmp -s "$W/dirty" "$E/dirty" 2>/dev/null && pfs_fail "dirty survived the power cut"
pfs_ok "dirty: lost in the power cut"

# ---- daemon crash, for contrast ----
rm -f "$E/written-back" "$E/dirty"
pfs_mount_at "$E" "$M" -o policy=retry,writeback_ms=600000,dirty_limit=256M
pfs_must cp "$W/written-back" "$M/written-back"
ctl_write sync 1
pfs_must cp "$W/dirty" "$M/dirty"
got=$(pfs_run 30 "$PFS_IO" put "$M/.pressurefs/crash" 1)
[ "$got" != OK ] || pfs_fail "writing crash returned OK (the daemon should die)"
dpid=$PFS_PID
pfs_wait_pid "$dpid" 30 || pfs_fail "the daemon is still alive after crash"
pfs_forget_pid "$dpid"
assert_eq 134 "$PFS_STATUS" "the crash control file aborts the daemon"
pfs_umount_at "$M" ""
remount_image
assert_file_eq "$W/written-back" "$E/written-back" "written back, not fsynced: kept by a daemon crash"
cmp -s "$W/dirty" "$E/dirty" 2>/dev/null && pfs_fail "dirty survived the daemon crash"
pfs_ok "dirty: lost in the daemon crash too"
assert_file_eq "$W/durable" "$E/durable" "the fsynced file is still intact"

pfs_run 60 umount "$E" || pfs_fail "cannot unmount the ext4 image"
