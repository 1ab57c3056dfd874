#!/bin/bash
# Proves a file's mtime (and, on the mount, its ctime) is the time of its
# last write(), before and after writeback, and that the backing file's
# mtime is set back to it after writeback (the daemon owns it, or is root);
# an explicit utimensat (touch -d) made while data is dirty survives the
# writeback too. attr_timeout=0: every stat asks the daemon, so the test
# sees what the daemon reports, not the kernel's cached copy.
# The sleeps only make the write's time and the writeback's differ; no
# assertion is about time taken.
# usage: fid_mtime.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"

times() { stat -c '%.9Y %.9Z' -- "$1" || pfs_fail "stat $1"; }
mtime() { stat -c '%.9Y' -- "$1" || pfs_fail "stat $1"; }

pfs_mount -o policy=retry,writeback_ms=600000,attr_timeout=0
F=$M/f
pfs_must bash -c 'echo x >"$1"' _ "$F"
before=$(times "$F")
assert_match '^[0-9]+\.[0-9]+ [0-9]+\.[0-9]+$' "$before" "mtime and ctime of the written file"
pfs_must sleep 1.1
ctl_write sync 1
assert_eq "" "$(ctl_read dirty)" "the file is written back"
assert_eq "$before" "$(times "$F")" "mtime and ctime on the mount are the write's, after writeback"
assert_eq "${before%% *}" "$(mtime "$B/f")" "the backing file's mtime is the write's"

# Appending more later moves it, to that write's time, and no further.
pfs_must sleep 1.1
pfs_must bash -c 'echo y >>"$1"' _ "$F"
second=$(times "$F")
assert_ne "$before" "$second" "a later write moves mtime and ctime"
pfs_must sleep 1.1
ctl_write sync 1
assert_eq "$second" "$(times "$F")" "after the second writeback, still the second write's times"
assert_eq "${second%% *}" "$(mtime "$B/f")" "the backing file's mtime is the second write's"

# An explicit time set while data is dirty is what stays.
pfs_must bash -c 'echo z >>"$1"' _ "$F"
pfs_must env TZ=UTC0 touch -m -d '2001-02-03 04:05:06.789' "$F"
explicit=$(mtime "$F")
assert_eq "981173106.789000000" "$explicit" "touch -d sets the mtime"
pfs_must sleep 1.1
ctl_write sync 1
assert_eq "$explicit" "$(mtime "$F")" "the explicit mtime survives the writeback"
assert_eq "$explicit" "$(mtime "$B/f")" "the backing file keeps the explicit mtime"

# After remount, the backing file's times are all there is.
last=$(mtime "$F")
pfs_umount_clean
pfs_mount -o policy=retry,attr_timeout=0
assert_eq "$last" "$(mtime "$F")" "the mtime after remount is the one set last"
assert_eq "x
y
z" "$(cat "$F")" "the data is intact"

# Without explicit times: write, unmount at once (the data is written back
# on the way out), and the backing mtime is still the write's.
pfs_must bash -c 'echo w >"$1"' _ "$M/g"
wtime=$(mtime "$M/g")
pfs_must sleep 1.1
pfs_umount_clean
assert_eq "$wtime" "$(mtime "$B/g")" "written back at unmount, the backing mtime is the write's"
