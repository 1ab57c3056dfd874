#!/bin/bash
# Proves that writers on a real mount wait at dirty_limit, without a
# mem_limit: with write-back slowed to 2 ms a 64 KiB page (the test-only
# writeback_delay_us), one dd of 8 MiB in 1 MiB writes returns with at most
# dirty_limit + one write not yet written back, and the stats count writes
# that waited. The same dd with dirty_throttle=0 (a control file), against
# write-back ten times slower still (8 MiB take it 2.5 s), leaves more than
# that behind: the check can fail. Every byte reaches the backing file.
# usage: throttle.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"

limit=$((1 << 20))
pfs_mount -o dirty_limit=1M,writeback_delay_us=2000,writeback_ms=600000

# unwritten NAME: dirty + under-writeback bytes in stats snapshot NAME.
unwritten() { echo $(($(stat_get "$1" dirty) + $(stat_get "$1" writeback))); }

pfs_must dd if=/dev/urandom of="$W/src" bs=1M count=8 status=none
pfs_must dd if="$W/src" of="$M/a" bs=1M status=none
stats_snap a
assert_ge $((limit + (1 << 20))) "$(unwritten a)" "throttled: at most dirty_limit + one write left unwritten"
assert_gt "$(stat_get a throttled_writes)" 0 "writes waited at dirty_limit"

ctl_write dirty_throttle 0
ctl_write writeback_delay_us 20000
pfs_must dd if="$W/src" of="$M/b" bs=1M status=none
stats_snap b
assert_gt "$(unwritten b)" $((limit + (1 << 20))) "unthrottled: the writer runs ahead of write-back"
assert_eq "$(stat_get a throttled_writes)" "$(stat_get b throttled_writes)" "and nothing waited"

assert_eq OK "$(pfs_fsync "$M/a")" "fsync a"
assert_eq OK "$(pfs_fsync "$M/b")" "fsync b"
pfs_umount_clean
assert_file_eq "$W/src" "$B/a" "a is in the backing file"
assert_file_eq "$W/src" "$B/b" "b is in the backing file"
