#!/bin/bash
# mount.crash_kernel_cache_write_all_or_nothing: with writeback_cache=1 a
# WRITE from the kernel's own writeback that meets an allocation failure
# part-way is refused whole (pfs_op_write, a1cd605), so fsync reports it;
# a short count would lose the rest silently (the seed 5154 bug of the
# crash matrix, README.md). kernel_cache.py says what each step checks.
# Skips (77) where the kernel offers no write-back cache to FUSE.
#   kernel_cache.sh PRESSUREFS PFS_MOUNT_IO
. "$(dirname "$0")/../mount/lib.sh"
pfs_init "$@"
PFS_NAME=crash-kernel-cache

# 4 KiB pages: one allocation per page of a 64 KiB WRITE. No writeback of
# the daemon's own but by the sync control file.
pfs_mount -o writeback_cache=1,policy=enomem,page_size=4K,writeback_ms=600000,dirty_limit=256M
stats_snap conn
[ "$(json_get "$W/conn.json" kernel_wbcache)" = 1 ] ||
	pfs_skip "the kernel did not grant the write-back cache (kernel_wbcache false)"
pfs_run 600 "$PFS_PY" "$PFS_SRC/kernel_cache.py" "$M" "$B" >"$W/loop.out" 2>&1
rc=$?
cat "$W/loop.out"
[ "$rc" = 0 ] || pfs_fail "kernel_cache.py exited $rc"
pfs_umount_clean
pfs_ok "a kernel write-back WRITE is answered all or nothing"
