#!/bin/bash
# Proves the filesystem never drops acknowledged data when writeback fails,
# and reports the failure through fsync:
#   - the backing filesystem is full (a 2 MiB tmpfs): 4 MiB of writes are
#     acknowledged (they sit in the cache), fsync returns ENOSPC, `dirty`
#     still lists the data and stats count writeback errors; once the tmpfs
#     grows, fsync returns 0 and every acknowledged byte is in the backing
#     file after unmount;
#   - writeback's own allocations fail (injection at site writeback): fsync
#     returns ENOMEM, the data stays dirty, and the next fsync after the
#     injection stops succeeds;
#   - unmount with data that can never be written (still full): the daemon
#     still exits (bounded), says so on stderr, and the exit status is not 0.
# usage: writeback_errors.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
[ "$(id -u)" = 0 ] || pfs_fail "this test mounts a small tmpfs and must run as root"

kv() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

mount -t tmpfs -o size=2M,mode=755 pfs-test "$B" || pfs_fail "cannot mount a tmpfs on $B"
PFS_EXTRA_MOUNTS+=("$B")

pfs_mount -o policy=enomem,writeback_ms=600000
out=$(pfs_run 60 "$PFS_IO" writer --file "$M/f" --size $((4 << 20)) --chunk 262144 --journal "$W/f.journal")
pfs_say "writer: $out"
assert_eq 4194304 "$(kv acked_bytes "$out")" "4 MiB acknowledged into the cache of a 2 MiB backing fs"
assert_eq ENOSPC "$(kv last_errno "$out")" "its fsync returns ENOSPC"
assert_eq ENOSPC "$(pfs_fsync "$M/f")" "a second fsync still reports ENOSPC"
ctl_read dirty >"$W/dirty.txt" || exit 1
grep -q " f\$" "$W/dirty.txt" || pfs_fail "dirty no longer lists f after the failed writeback: $(cat "$W/dirty.txt")"
pfs_ok "the unwritten data stays dirty"
stats_snap s1
assert_gt "$(stat_get s1 writeback_errors)" 0 "writeback errors counted"

mount -o remount,size=16M "$B" || pfs_fail "cannot grow the tmpfs"
assert_eq OK "$(pfs_fsync "$M/f")" "room again: fsync succeeds"
assert_eq "" "$(ctl_read dirty)" "nothing dirty after the successful fsync"

# Writeback's own allocations fail.
assert_eq OK "$(pfs_run 30 "$PFS_IO" write "$M/g" 0 300000 4)" "write g"
ctl_write fail_sites writeback
ctl_write fail_probability 100
got=$(pfs_fsync "$M/g")
stats_snap s2
if [ "$(stat_get s2 sites.writeback.calls)" = 0 ]; then
	pfs_say "note: writeback allocates nothing, the injected-writeback case cannot fail"
	assert_eq OK "$got" "fsync g"
else
	assert_eq ENOMEM "$got" "fsync reports the failed writeback allocation"
	grep -q " g\$" <(ctl_read dirty) || pfs_fail "g is no longer dirty after the failed writeback"
	pfs_ok "g stays dirty"
	ctl_write fail_probability 0
	assert_eq OK "$(pfs_fsync "$M/g")" "injection off: fsync succeeds"
fi
ctl_write fail_probability 0
pfs_umount_clean
out=$("$PFS_IO" verify --file "$B/f" --journal "$W/f.journal")
assert_eq 0 "$(kv acked_lost "$out")" "every acknowledged byte of f is in the backing file"
printf '' >"$W/g"
"$PFS_IO" write "$W/g" 0 300000 4 >/dev/null
assert_file_eq "$W/g" "$B/g" "g is in the backing file"

# Unmount with data that cannot be written.
rm -f "$B/f" "$B/g"
mount -o remount,size=1M "$B" || pfs_fail "cannot shrink the tmpfs"
pfs_mount -o policy=enomem,writeback_ms=600000
out=$(pfs_run 60 "$PFS_IO" writer --file "$M/h" --size $((2 << 20)) --chunk 262144 --journal "$W/h.journal")
assert_eq ENOSPC "$(kv last_errno "$out")" "full again: fsync reports ENOSPC"
log=$PFS_LOG
pfs_umount
assert_ne 0 "$PFS_STATUS" "unmount that could not write everything back: exit status not 0"
[ "$(grep -vc '^+ ' "$log")" -gt 0 ] || pfs_fail "the daemon lost data at unmount without a word on stderr"
pfs_ok "the daemon reports the loss: $(grep -v '^+ ' "$log" | head -2 | tr '\n' ' ')"
