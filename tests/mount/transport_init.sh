#!/usr/bin/env bash
# When the module allows io_uring but the kernel's INIT reply does not offer
# FUSE_OVER_IO_URING (the daemon is told to read INIT that way through
# PFS_TEST_HIDE_URING_OFFER=1, the only way to reach this on a kernel that
# offers it):
#   - transport=io_uring: the mount has come up by then, so the daemon
#     unmounts, says why in one line and exits 1, leaving no mount behind;
#   - transport=auto: it serves on /dev/fuse and says so once in its log;
#   - without the hook the same mount takes io_uring (the hook is what
#     made the difference).
. "$(dirname "$0")/lib.sh"
pfs_init "$@"
pfs_uring_take
pfs_uring_set Y

WHY="transport=io_uring: the kernel's INIT did not offer FUSE_OVER_IO_URING"

# transport=io_uring, INIT without the flag: unmount, one line, exit 1.
PFS_MOUNTS+=("$M") # cleanup unmounts it should the daemon leave it behind
PFS_TEST_HIDE_URING_OFFER=1 pfs_run 60 "$PFS_EXE" -f -o transport=io_uring "$B" "$M" \
	</dev/null >"$W/out" 2>"$W/err"
status=$?
if pfs_is_mounted "$M"; then
	pfs_fusermount_u "$M"
	pfs_fail "io_uring without the INIT flag: the mount was left behind"
fi
pfs_ok "io_uring without the INIT flag: nothing left mounted"
assert_eq 1 "$status" "io_uring without the INIT flag: exit status"
assert_eq 1 "$(grep -c "$WHY.*unmounting" "$W/err")" \
	"io_uring without the INIT flag: one line says why ($(head -c 600 "$W/err" | tr "\n" "|"))"
assert_eq 0 "$(grep -c -i -E 'error|fail|transport: ' "$W/err")" \
	"io_uring without the INIT flag: nothing else is reported"

# auto, INIT without the flag: /dev/fuse, said once in the log.
PFS_TEST_HIDE_URING_OFFER=1 pfs_mount -o transport=auto
head -c $((1 << 20)) /dev/urandom >"$W/src"
pfs_must cp "$W/src" "$M/f"
pfs_must cmp "$W/src" "$M/f"
stats_snap hidden_auto
assert_eq dev_fuse "$(stat_get hidden_auto transport)" "auto without the INIT flag: /dev/fuse"
assert_eq 1 "$(grep -c "transport: /dev/fuse (the kernel's INIT did not offer FUSE_OVER_IO_URING)" "$PFS_LOG")" \
	"auto without the INIT flag: one log line says why"
pfs_umount_clean
cmp "$W/src" "$B/f" || pfs_fail "auto without the INIT flag: the backing file differs"

# The same mount without the hook takes io_uring.
pfs_mount -o transport=io_uring
pfs_must cmp "$W/src" "$M/f"
stats_snap offered
assert_eq io_uring "$(stat_get offered transport)" "transport=io_uring with the flag offered"
pfs_umount_clean

pfs_ok "$PFS_CHECKS checks"
