#!/bin/bash
# The daemon under valgrind:
# mount with memcheck, write, overwrite, truncate, read, rename, unlink,
# switch policy, squeeze the budget, sync, drop caches, unmount. Valgrind
# must report no error and nothing definitely or indirectly lost, and the
# daemon must exit 0. The ASan build runs LSan in every mount test instead
# (its exit status), so there this test skips (77): valgrind cannot run an
# ASan binary.
# usage: valgrind.sh PRESSUREFS PFS_MOUNT_IO
. "$(dirname "$0")/../mount/lib.sh"
. "$(dirname "$0")/lib_load.sh"
pfs_init "$1" "$2"
PFS_NAME=load-valgrind
command -v valgrind >/dev/null || pfs_skip "valgrind is not installed"
pfs_daemon_is_asan && pfs_skip "ASan build: LSan checks the daemon in every mount test"

REAL_EXE=$PFS_EXE
PFS_EXE=$PFS_T/pressurefs-vg
cat >"$PFS_EXE" <<VG
#!/bin/sh
exec valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \\
	--errors-for-leak-kinds=definite,indirect --track-fds=no --log-file="$W/valgrind.log" \\
	"$REAL_EXE" "\$@"
VG
chmod +x "$PFS_EXE"
# Valgrind is slow to start and to exit.
PFS_MOUNT_TIMEOUT=120
PFS_EXIT_TIMEOUT=240

# /dev/fuse: memcheck sees what read() fills in, not what the kernel writes
# into io_uring ring buffers behind its back.
pfs_mount -o policy=retry,mem_limit=8M,page_size=16K,writeback_ms=50,transport=dev_fuse
assert_match 'memcheck|valgrind' "$(readlink "/proc/$PFS_PID/exe")" "the daemon runs under valgrind"
head -c 3000000 /dev/urandom >"$W/data"
pfs_must cp "$W/data" "$M/a"
pfs_must dd if=/dev/urandom of="$M/a" bs=4096 count=10 seek=100 conv=notrunc status=none
pfs_must truncate -s 1000000 "$M/a"
pfs_must cp "$M/a" "$W/a.read"
pfs_must mv "$M/a" "$M/b"
pfs_must cp "$W/data" "$M/c"
ctl_write policy enomem
ctl_write mem_limit 1M
pfs_run 60 dd if="$W/data" of="$M/d" bs=65536 status=none 2>/dev/null
ctl_write mem_limit 8M
ctl_write policy retry
ctl_write sync 1
ctl_write drop_caches 1
ls -la "$M" >/dev/null
pfs_must rm "$M/c"
stats_snap final
pfs_umount
assert_eq 0 "$PFS_STATUS" "the daemon under valgrind exits 0 (99 = valgrind found errors)"
if grep -q -E 'definitely lost|indirectly lost|Invalid|uninitialised|ERROR SUMMARY: [1-9]' "$W/valgrind.log"; then
	head -n 80 "$W/valgrind.log" >&2
	pfs_fail "valgrind reports errors or leaks"
fi
pfs_ok "valgrind: no error, nothing definitely or indirectly lost ($(wc -l <"$W/valgrind.log") log lines)"
cmp -s "$W/a.read" "$B/b" || pfs_fail "the renamed file's content is wrong after unmount"
pfs_ok "data written under valgrind reached the backing dir"
