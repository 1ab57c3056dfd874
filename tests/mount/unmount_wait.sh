#!/bin/bash
# Proves what each way of unmounting promises about data written without
# fsync (writeback_ms long, so all of it is still dirty in the daemon):
#   - `pressurefs -u MNT` returns only when every byte is in the backing
#     dir and the daemon has exited, for a daemon in the foreground and for
#     one that daemonized;
#   - plain `fusermount3 -u` does not wait, but once the daemon's PID has
#     exited every byte is there too;
#   - `pressurefs -u` exits 1 with one clear line, and leaves the mount and
#     the daemon as they were, when the mount is busy, when MNT is not a
#     FUSE mount, and when no daemon answers (killed);
#   - when the daemon dies while writing back (policy=abort, writeback
#     allocations failing), it exits 1 with a line naming the daemon's PID;
#   - when the backing fs is full (a 1 MiB tmpfs, as root), it exits 1 with
#     a line naming the error, and the daemon exits with status 1.
# usage: unmount_wait.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"

# Files of random bytes, made outside the mount.
head -c $((40 * 1024 * 1024)) /dev/urandom >"$W/big"
head -c 5000 /dev/urandom >"$W/small"

write_files() { # MNT
	pfs_must cp "$W/big" "$1/big"
	pfs_must mkdir -p "$1/d/e"
	pfs_must cp "$W/small" "$1/d/e/small"
	# Still in the daemon's cache: the test would prove nothing otherwise.
	local dirty
	dirty=$(CTL_MNT=$1 ctl_read dirty | wc -l)
	assert_ge "$dirty" 2 "before unmounting, both files are dirty in the daemon"
}

check_backing() { # BACKING what
	assert_file_eq "$W/big" "$1/big" "$2: every byte of the 40 MiB file is in the backing dir"
	assert_file_eq "$W/small" "$1/d/e/small" "$2: the small file is in the backing dir"
}

# 1. pressurefs -u, daemon in the foreground (our child).
pfs_mount -o writeback_ms=600000
write_files "$M"
out=$(pfs_run 120 "$PFS_EXE" -u "$M" 2>&1) || pfs_fail "pressurefs -u failed: $out"
pfs_forget_mount "$M"
# No wait of ours between its return and these checks.
check_backing "$B" "pressurefs -u, foreground daemon"
pfs_pid_alive "$PFS_PID" && pfs_fail "the daemon still runs after pressurefs -u returned"
pfs_ok "the daemon had exited when pressurefs -u returned"
pfs_wait_pid "$PFS_PID" 10 && pfs_forget_pid "$PFS_PID"
assert_eq 0 "$PFS_STATUS" "the daemon's exit status"
pfs_is_mounted "$M" && pfs_fail "$M still mounted after pressurefs -u"

# 2. pressurefs -u, a daemon that daemonized (not our child).
B2=$PFS_T/backing2
mkdir -p "$B2"
pfs_must "$PFS_EXE" -o writeback_ms=600000 "$B2" "$M"
write_files "$M"
out=$(pfs_run 120 "$PFS_EXE" -u "$M" 2>&1) || pfs_fail "pressurefs -u (daemonized) failed: $out"
check_backing "$B2" "pressurefs -u, daemonized"
pfs_is_mounted "$M" && pfs_fail "$M still mounted after pressurefs -u"

# 3. plain fusermount3 -u, then wait for the daemon's PID.
B3=$PFS_T/backing3
mkdir -p "$B3"
pfs_mount_at "$B3" "$M" -o writeback_ms=600000
write_files "$M"
pfs_umount_at "$M" "$PFS_PID"
assert_eq 0 "$PFS_STATUS" "daemon exit status after fusermount3 -u"
check_backing "$B3" "fusermount3 -u, then the daemon's exit"

# 4. Refusals: each says why, and changes nothing.
pfs_mount -o writeback_ms=600000
pfs_must cp "$W/small" "$M/busy"
exec 7<"$M/busy"
out=$(pfs_run 60 "$PFS_EXE" -u "$M" 2>&1)
rc=$?
exec 7<&-
assert_eq 1 "$rc" "pressurefs -u on a busy mount: exit status"
assert_match 'nothing was unmounted, the daemon runs on' "$out" "busy: the line says nothing changed"
pfs_is_mounted "$M" || pfs_fail "busy: the mount went away"
pfs_pid_alive "$PFS_PID" || pfs_fail "busy: the daemon went away"
assert_file_eq "$W/small" "$M/busy" "busy: the data is still readable"
out=$(pfs_run 120 "$PFS_EXE" -u "$M" 2>&1) || pfs_fail "pressurefs -u once no longer busy: $out"
pfs_forget_mount "$M"
pfs_wait_pid "$PFS_PID" 10 && pfs_forget_pid "$PFS_PID"
assert_file_eq "$W/small" "$B/busy" "once no longer busy: unmounted and written back"

out=$(pfs_run 30 "$PFS_EXE" -u "$W" 2>&1)
assert_eq 1 "$?" "pressurefs -u on a plain directory: exit status"
assert_match "is not a FUSE mount point; nothing was unmounted" "$out" "plain directory: the line"
out=$(pfs_run 30 "$PFS_EXE" -u 2>&1)
assert_eq 1 "$?" "pressurefs -u without a mount point: exit status"
assert_match "usage: pressurefs -u MOUNTPOINT" "$out" "no mount point: the line"
out=$(pfs_run 30 "$PFS_EXE" "$B" "$M" -u 2>&1)
assert_eq 1 "$?" "-u after other arguments: exit status"
assert_match "-u comes first" "$out" "-u after other arguments: the line"
pfs_is_mounted "$M" && pfs_fail "-u after other arguments mounted something"

pfs_mount
kill -KILL "$PFS_PID"
pfs_wait_pid "$PFS_PID" 10 && pfs_forget_pid "$PFS_PID"
out=$(pfs_run 60 "$PFS_EXE" -u "$M" 2>&1)
assert_eq 1 "$?" "pressurefs -u with the daemon killed: exit status"
assert_match "no pressurefs daemon answers .* nothing was unmounted" "$out" "killed daemon: the line"
pfs_is_mounted "$M" || pfs_fail "killed daemon: pressurefs -u unmounted anyway"
pfs_fusermount_u "$M" || pfs_fail "fusermount3 -u of the dead mount"
pfs_forget_mount "$M"

# 5. The daemon dies while writing back after the unmount: under
# policy=abort with every writeback allocation failing, the last writeback
# aborts it.
pfs_mount -o policy=abort,writeback_ms=600000
pfs_must cp "$W/small" "$M/doomed"
ctl_write fail_sites writeback
ctl_write fail_probability 100
out=$(pfs_run 120 "$PFS_EXE" -u "$M" 2>&1)
assert_eq 1 "$?" "pressurefs -u, daemon aborted while writing back: exit status"
assert_match "unmounted, but the daemon \(pid $PFS_PID\) ended without saying that everything was written back" \
	"$out" "daemon aborted: the line names the daemon and says what is lost"
pfs_forget_mount "$M"
pfs_wait_pid "$PFS_PID" 10 || pfs_fail "the aborted daemon still runs"
pfs_forget_pid "$PFS_PID"
assert_ne 0 "$PFS_STATUS" "the aborted daemon's exit status"

# 6. The backing fs fills up: data cannot be written back.
if [ "$(id -u)" = 0 ]; then
	SMALL=$PFS_T/small_fs
	mkdir -p "$SMALL"
	mount -t tmpfs -o size=1M tmpfs "$SMALL" || pfs_fail "cannot mount a 1 MiB tmpfs"
	PFS_EXTRA_MOUNTS+=("$SMALL")
	pfs_mount_at "$SMALL" "$M" -o writeback_ms=600000
	pfs_must head -c $((3 * 1024 * 1024)) "$W/big" >"$M/too_big"
	out=$(pfs_run 120 "$PFS_EXE" -u "$M" 2>&1)
	assert_eq 1 "$?" "pressurefs -u, backing fs full: exit status"
	pfs_say "its line: $out"
	assert_match "unmounted, but writing back failed \\(No space left on device\\)" "$out" \
		"backing fs full: the line names the error"
	[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || pfs_fail "backing fs full: more than one line: $out"
	pfs_forget_mount "$M"
	pfs_wait_pid "$PFS_PID" 10 || pfs_fail "the daemon still runs after pressurefs -u returned"
	pfs_forget_pid "$PFS_PID"
	assert_eq 1 "$PFS_STATUS" "backing fs full: the daemon's exit status"
else
	pfs_say "not root: the full-backing-fs case needs a tmpfs mount, left to the root run"
fi
