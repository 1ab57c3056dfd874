#!/bin/bash
# Proves a shrinking truncate that the backing fs refuses changes nothing:
# with dirty pages in the cache and the backing file immutable (chattr +i),
# truncate fails with EPERM, the size on the mount stays, the cached bytes
# read back unchanged, and after unmount the backing file holds every
# acknowledged byte (the dirty ones too). Then, allowed again, the same
# truncate cuts both the cache and the backing file.
# usage: fid_truncate.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
[ "$(id -u)" = 0 ] || pfs_fail "chattr +i needs root: run this test as root"
command -v chattr >/dev/null || pfs_fail "chattr (e2fsprogs) is not installed"

# The backing dir's fs must know the immutable flag (ext4, xfs, btrfs do;
# tmpfs and overlayfs do not).
: >"$B/probe"
if ! chattr +i "$B/probe" 2>"$W/chattr.err"; then
	pfs_skip "the backing dir's filesystem ($(stat -f -c %T "$B")) has no immutable flag: $(head -c 200 "$W/chattr.err")"
fi
chattr -i "$B/probe"
rm -f "$B/probe"

# Whatever happens, the flag goes before lib.sh's cleanup removes the dir.
IMMUTABLE=""
fid_cleanup() {
	local rc=$?
	[ -n "$IMMUTABLE" ] && chattr -i "$IMMUTABLE" 2>/dev/null
	(exit "$rc")
	pfs_cleanup
}
trap fid_cleanup EXIT

# Everything stays dirty until fsync; attributes are asked every time.
pfs_mount -o policy=retry,writeback_ms=600000,attr_timeout=0
F=$M/f
# 256 KiB on disk (fsync'd), then 64 KiB at 160 KiB rewritten in the cache
# only: the model is what the file must hold.
pfs_must head -c 262144 /dev/urandom >"$W/model"
pfs_must cp "$W/model" "$F"
assert_eq OK "$(pfs_fsync "$F")" "the first 256 KiB are written back"
pfs_must head -c 65536 /dev/urandom >"$W/patch"
pfs_dd_at "$W/patch" 0 65536 "$F" 163840 || pfs_fail "dirty write failed"
pfs_dd_at "$W/patch" 0 65536 "$W/model" 163840 || pfs_fail "model update failed"
dirty=$(ctl_read dirty)
assert_match '[0-9]' "$dirty" "the rewrite is dirty in the cache"

chattr +i "$B/f" || pfs_fail "chattr +i $B/f"
IMMUTABLE=$B/f
out=$("$PFS_PY" - "$F" <<'EOF'
import errno, os, sys
try:
    os.truncate(sys.argv[1], 4096)
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
EOF
)
assert_eq EPERM "$out" "truncate of an immutable backing file fails with EPERM"
assert_eq 262144 "$(stat -c %s "$F")" "the size on the mount is unchanged"
assert_file_eq "$W/model" "$F" "every byte reads back unchanged, the dirty ones too"
assert_eq 262144 "$(stat -c %s "$B/f")" "the backing file is unchanged"

chattr -i "$B/f" || pfs_fail "chattr -i $B/f"
IMMUTABLE=""
pfs_umount_clean
assert_file_eq "$W/model" "$B/f" "after unmount the backing file holds every acknowledged byte"

# Allowed, the same truncate cuts: a dirty page past the new end must not
# grow the file again when it would have been written back.
pfs_mount -o policy=retry,writeback_ms=600000,attr_timeout=0
pfs_dd_at "$W/patch" 0 65536 "$F" 163840 || pfs_fail "dirty write failed"
pfs_must truncate -s 4096 "$F"
assert_eq 4096 "$(stat -c %s "$F")" "the truncate is seen on the mount"
pfs_umount_clean
assert_eq 4096 "$(stat -c %s "$B/f")" "the backing file keeps the new size after writeback"
pfs_must head -c 4096 "$W/model" >"$W/model.cut"
assert_file_eq "$W/model.cut" "$B/f" "the bytes before the cut are kept"
