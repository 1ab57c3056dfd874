#!/bin/bash
# Proves pressurefs mounts the way system tools mount it:
#   - mount.fuse3 with the daemon found on PATH: `mount.fuse3 BACKING MNT
#     -t pressurefs -o policy=enomem` (what `mount -t fuse.pressurefs` runs);
#   - mount(8) itself: `mount -t fuse "/path/pressurefs#BACKING" MNT -o ...`
#     and `mount -t fuse.pressurefs` when pressurefs is installed in mount's
#     own PATH (util-linux mount is setuid and drops the caller's PATH, so a
#     temp dir first on PATH cannot reach it);
#   - an fstab line (an alternative fstab file, `mount -T`) with the generic
#     options fstab lines carry (noatime, nodev, nosuid, _netdev, nofail).
# The daemon daemonizes; unmount works with umount and with fusermount3 -u,
# and the daemon then writes everything back and exits. Generic options on
# the command line (rw, dev, suid, exec, noatime, _netdev, nofail, ...) are
# accepted, and a bare nofail does not switch the policy.
# usage: mount_fuse3.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
[ "$(id -u)" = 0 ] || pfs_fail "mount -t needs root"
command -v mount.fuse3 >/dev/null || pfs_fail "mount.fuse3 is missing (package fuse3)"

mkdir -p "$PFS_T/bin"
ln -s "$(readlink -f "$PFS_EXE")" "$PFS_T/bin/pressurefs"
export PATH="$PFS_T/bin:$PATH"
# A daemonized sanitizer build has no stderr: keep its reports for pfs_fail.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$PFS_T/daemon.san"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$PFS_T/daemon.san"

# The PID of the daemon serving $M (it daemonized, so we did not start it
# as a child): found by its unique command line, only to wait for it.
daemon_pid() {
	ps -eo pid=,args= | awk -v m="$M" '$2 ~ /pressurefs$/ && index($0, " " m) { print $1; exit }'
}

# wait_gone: bounded wait until no daemon serves $M any more (the one we
# saw may have been the parent that daemonized, so look again each time).
wait_gone() {
	local i p
	for ((i = 0; i < PFS_EXIT_TIMEOUT * 10; i++)); do
		p=$(daemon_pid)
		[ -z "$p" ] && return 0
		sleep 0.1
	done
	PID=$p
	return 1
}

check_mount() { # WHAT EXPECTED_POLICY_PREFIX
	pfs_is_mounted "$M" || pfs_fail "$1: not mounted"
	assert_eq "fuse.pressurefs" "$(awk -v m="$M" '$2 == m { print $3 }' /proc/self/mounts)" "$1: fstype in /proc/mounts"
	assert_match "^$2" "$(ctl_read policy)" "$1: policy from the options"
	head -c 300000 /dev/urandom >"$W/data"
	pfs_must cp "$W/data" "$M/data"
	assert_file_eq "$W/data" "$M/data" "$1: a file reads back"
	PID=$(daemon_pid)
	[ -n "$PID" ] || pfs_fail "$1: cannot find the daemon serving $M"
}

after_unmount() { # WHAT
	pfs_is_mounted "$M" && pfs_fail "$1: still mounted"
	wait_gone || { kill -TERM "$PID"; pfs_fail "$1: daemon $PID did not exit after unmount"; }
	assert_file_eq "$W/data" "$B/data" "$1: unmount wrote the file back"
	rm -f "$B/data"
}

out=$(pfs_run 30 mount.fuse3 "$B" "$M" -t pressurefs -o policy=enomem 2>&1) ||
	pfs_fail "mount.fuse3 -t pressurefs: $out"
check_mount "mount.fuse3 -t pressurefs" "enomem"
pfs_run 30 umount "$M" || pfs_fail "umount"
after_unmount "mount.fuse3 / umount"

EXE_ABS=$(readlink -f "$PFS_EXE")
out=$(pfs_run 30 mount -t fuse "$EXE_ABS#$B" "$M" -o policy=nofail,wait_ms=3 2>&1) ||
	pfs_fail "mount -t fuse PROG#BACKING: $out"
check_mount "mount -t fuse PROG#BACKING" "nofail.*wait_ms=3"
pfs_fusermount_u "$M" || pfs_fail "fusermount3 -u"
after_unmount "mount -t fuse / fusermount3 -u"

installed=$(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -c 'command -v pressurefs')
if [ -n "$installed" ] && [ "$(readlink -f "$installed")" = "$EXE_ABS" ]; then
	out=$(pfs_run 30 mount -t fuse.pressurefs "$B" "$M" -o policy=enomem 2>&1) ||
		pfs_fail "mount -t fuse.pressurefs (installed $installed): $out"
	check_mount "mount -t fuse.pressurefs" "enomem"
	pfs_run 30 umount "$M" || pfs_fail "umount"
	after_unmount "mount -t fuse.pressurefs / umount"
else
	pfs_say "note: this build is not what mount's PATH finds as pressurefs; mount -t fuse.pressurefs checked through mount.fuse3 only"
fi

printf '%s#%s %s fuse policy=retry,retries=3,mem_limit=32M,noatime,nodev,nosuid,_netdev,nofail 0 0\n' \
	"$EXE_ABS" "$B" "$M" >"$W/fstab"
out=$(pfs_run 30 mount -T "$W/fstab" "$M" 2>&1) || pfs_fail "mount from fstab: $out"
check_mount "fstab" "retry,retries=3"
assert_eq 33554432 "$(ctl_read mem_limit)" "fstab: mem_limit"
pfs_fusermount_u "$M" || pfs_fail "fusermount3 -u"
after_unmount "fstab / fusermount3 -u"

# Generic options straight on the command line, as mount.fuse3 may pass them.
pfs_mount -o rw,dev,suid,exec,atime,relatime,noatime,nodev,nosuid,noexec,_netdev,nofail
assert_match '^retry' "$(ctl_read policy)" "generic options accepted; bare nofail is the fstab flag, not a policy switch"
pfs_umount_clean
