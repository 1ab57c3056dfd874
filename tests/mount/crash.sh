#!/bin/bash
# Proves what a crash keeps and loses. Data is written and fsynced; more is
# written without fsync (a new file, then renamed; an overwrite of a synced
# range; a small file; a dirty file that is then unlinked); `dirty` is read
# (it names the renamed file by its new name and omits the unlinked one);
# then the daemon dies: by a write of 1 to `crash` (MODE=ctl) or by kill -9
# (MODE=kill9). Then: the daemon is gone with the right signal, the mount
# answers ENOTCONN until unmounted, every fsynced byte not overwritten later
# is in the backing dir, every byte that differs from what the application
# wrote lies in a range `dirty` listed, and what `dirty` listed did go
# missing (writeback was kept from running).
# usage: crash.sh PRESSUREFS PFS_MOUNT_IO MODE
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
MODE=${3:?mode}
PFS_NAME="crash[$MODE]"

mkdir -p "$W/model"
head -c $((1 << 20)) /dev/urandom >"$W/model/a"
head -c 100000 /dev/urandom >"$W/new_a"
head -c 524288 /dev/urandom >"$W/model/b"
head -c 5000 /dev/urandom >"$W/model/c"

pfs_mount -o policy=retry,page_size=64K,writeback_ms=600000,dirty_limit=256M
pid=$PFS_PID

# Synced.
pfs_must cp "$W/model/a" "$M/a"
pfs_must cp "$W/model/c" "$M/c"
assert_eq OK "$(pfs_fsync "$M/a")" "fsync a"
assert_eq OK "$(pfs_fsync "$M/c")" "fsync c"
cp "$W/model/a" "$W/synced_a"
assert_file_eq "$W/model/a" "$B/a" "fsynced a is in the backing dir before the crash"

# Not synced.
pfs_must dd if="$W/new_a" of="$M/a" bs=65536 oflag=seek_bytes seek=300000 conv=notrunc status=none
dd if="$W/new_a" of="$W/model/a" bs=65536 oflag=seek_bytes seek=300000 conv=notrunc status=none
pfs_must cp "$W/model/b" "$M/b"
pfs_must dd if=/dev/zero of="$M/c" bs=1000 count=1 seek=2 conv=notrunc status=none
dd if=/dev/zero of="$W/model/c" bs=1000 count=1 seek=2 conv=notrunc status=none
# A dirty file renamed: `dirty` must name it by its new name. A dirty file
# unlinked: its data is gone for good and must not be listed.
pfs_must mv "$M/b" "$M/b2"
mv "$W/model/b" "$W/model/b2"
pfs_must cp "$W/model/c" "$M/gone"
pfs_must rm "$M/gone"
for f in a b2 c; do
	assert_file_eq "$W/model/$f" "$M/$f" "$f reads back before the crash"
done

ctl_read dirty >"$W/dirty.txt" || exit 1
pfs_say "dirty before the crash:"
cat "$W/dirty.txt"
for f in a b2 c; do
	ino=$(stat -c %i "$B/$f")
	grep -q "^$ino [0-9]* [0-9]* $f\$" "$W/dirty.txt" || pfs_fail "dirty does not list $f (inode $ino)"
done
pfs_ok "dirty lists a, b2 (by its new name) and c"
if grep -q 'gone$' "$W/dirty.txt"; then pfs_fail "dirty lists the unlinked file"; fi
pfs_ok "dirty does not list the unlinked file"

case $MODE in
ctl)
	got=$(pfs_run 30 "$PFS_IO" put "$M/.pressurefs/crash" 1)
	pfs_say "write 1 to crash: $got"
	want_status=134
	;;
kill9)
	kill -KILL "$pid"
	want_status=137
	;;
*) pfs_fail "unknown mode $MODE" ;;
esac
pfs_wait_pid "$pid" 30 || pfs_fail "the daemon is still alive after the crash"
pfs_forget_pid "$pid"
assert_eq "$want_status" "$PFS_STATUS" "the daemon died with the expected signal"
err=$(LC_ALL=C pfs_run 10 ls "$M" 2>&1)
# With io_uring, a request that meets the dead daemon's rings while they are
# torn down ends with ECONNABORTED (the abort) or ECANCELED (a stopped queue).
assert_match 'Transport endpoint is not connected|Software caused connection abort|Operation canceled' "$err" "the dead mount answers ENOTCONN (or ECONNABORTED, or ECANCELED on io_uring)"
pfs_umount_at "$M" ""

# Every fsynced byte that was not overwritten afterwards survives.
cmp -n 300000 "$W/synced_a" "$B/a" >/dev/null || pfs_fail "fsynced bytes of a before the overwrite are lost"
cmp -i 400000 "$W/synced_a" "$B/a" >/dev/null || pfs_fail "fsynced bytes of a after the overwrite are lost"
pfs_ok "fsynced bytes of a outside the unsynced overwrite are intact"
cmp -n 2000 "$W/model/c" "$B/c" >/dev/null || pfs_fail "fsynced bytes of c are lost"
cmp -i 3000 "$W/model/c" "$B/c" >/dev/null || pfs_fail "fsynced tail of c is lost"
pfs_ok "fsynced bytes of c outside the unsynced overwrite are intact"

for f in a b2 c; do
	ino=$(stat -c %i "$B/$f")
	out=$(pfs_check crash-check "$W/model/$f" "$B/$f" "$ino" "$W/dirty.txt" 2>&1) ||
		pfs_fail "$f: $out"
	pfs_ok "$f: every lost byte was listed in dirty ($out)"
	differing=$(sed -n 's/^differing=\([0-9]*\).*/\1/p' <<<"$out")
	assert_gt "$differing" 0 "$f: what dirty listed did go missing"
done
