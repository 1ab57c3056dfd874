#!/bin/bash
# Proves the operations real programs rely on beyond plain read/write, each
# against the backing dir or a model: one 4 MiB write() (split into 1 MiB
# requests); fallocate punch-hole and extend on dirty data; SEEK_DATA and
# SEEK_HOLE agree with the backing file; stat shows the cached size and
# mtime of dirty data; chmod, chown and utimensat reach the backing file;
# rename with RENAME_NOREPLACE (EEXIST, nothing changed) and
# RENAME_EXCHANGE (contents swap, dirty data included); statfs reports the
# backing filesystem; mkdir/rmdir/unlink with ENOTEMPTY; xattrs set,
# listed, read and removed; a dirty file in a subdirectory is listed in
# `dirty` by its path from the mount root; two concurrent O_APPEND writers
# lose and tear no line.
# usage: ops.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"

mkdir -p "$W/model"
head -c $((6 << 20)) /dev/urandom >"$W/rand"
pfs_mount -o policy=retry,writeback_ms=600000

# One big write() call.
pfs_must dd if="$W/rand" of="$M/big" bs=4M count=1 status=none
head -c $((4 << 20)) "$W/rand" >"$W/model/big"
assert_file_eq "$W/model/big" "$M/big" "one 4 MiB write() reads back"

# fallocate on dirty data.
for t in "$W/model/big" "$M/big"; do
	pfs_must fallocate -p -o 100000 -l 300000 "$t"
done
assert_file_eq "$W/model/big" "$M/big" "punch hole (keep size) on dirty pages"
for t in "$W/model/big" "$M/big"; do
	pfs_must fallocate -o $((5 << 20)) -l 123456 "$t"
done
assert_file_eq "$W/model/big" "$M/big" "fallocate past EOF extends the file"
assert_eq OK "$(pfs_fsync "$M/big")" "fsync big"
assert_file_eq "$W/model/big" "$B/big" "backing file after fallocate and fsync"

# SEEK_DATA / SEEK_HOLE: a sparse file, answers equal to the backing file's.
pfs_must dd if="$W/rand" of="$M/sparse" bs=65536 count=2 status=none
pfs_must dd if="$W/rand" of="$M/sparse" bs=65536 count=2 seek=64 conv=notrunc status=none
for off in 0 100000 1000000 $((64 * 65536)) $((65 * 65536 + 7)); do
	for how in data hole; do
		got=$(pfs_run 10 "$PFS_IO" seek "$M/sparse" "$how" "$off")
		want=$("$PFS_IO" seek "$B/sparse" "$how" "$off")
		assert_eq "$want" "$got" "SEEK_$how from $off matches the backing file"
	done
done
hole=$(pfs_run 10 "$PFS_IO" seek "$M/sparse" hole 0)
assert_lt "$hole" $((64 * 65536)) "SEEK_HOLE finds the hole before the second extent"

# Attributes reach the backing file.
# An ordinary user may only chown to itself and its own groups.
if [ "$(id -u)" = 0 ]; then to_uid=65534 to_gid=65534; else to_uid=$(id -u) to_gid=$(id -g); fi
pfs_must chmod 640 "$M/big"
pfs_must chown "$to_uid:$to_gid" "$M/big"
pfs_must touch -m -d '2002-03-04 05:06:07.5' "$M/big"
assert_eq "640 $to_uid $to_gid" "$(stat -c '%a %u %g' "$B/big")" "chmod/chown reach the backing file"
assert_eq "$(stat -c %Y "$B/big")" "$(pfs_run 10 stat -c %Y "$M/big")" "mtime through the mount equals the backing mtime"
assert_eq 1015218367 "$(stat -c %Y "$B/big")" "utimensat reaches the backing file"

# Stat shows the cached size and mtime before writeback.
pfs_must bash -c 'echo old > "$1"' _ "$M/mt"
pfs_must touch -m -d '2001-01-01 00:00:00' "$M/mt"
before=$(date +%s)
assert_eq OK "$(pfs_run 10 "$PFS_IO" write "$M/mt" 0 200000)" "write to mt (stays dirty)"
assert_eq 200000 "$(pfs_run 10 stat -c %s "$M/mt")" "stat through the mount shows the cached size"
assert_ge "$(pfs_run 10 stat -c %Y "$M/mt")" "$((before - 1))" "stat through the mount shows the cached write's mtime"
# (touch does not write back: "old" may still be dirty too)
assert_lt "$(stat -c %s "$B/mt")" 5 "the backing file does not have the write yet (nothing written back)"

# renameat2.
head -c 70000 "$W/rand" >"$W/model/x"
tail -c 90000 "$W/rand" >"$W/model/y"
pfs_must cp "$W/model/x" "$M/x"
pfs_must cp "$W/model/y" "$M/y"
assert_eq EEXIST "$(pfs_run 10 "$PFS_IO" rename2 "$M/x" "$M/y" noreplace)" "RENAME_NOREPLACE onto a file: EEXIST"
assert_file_eq "$W/model/x" "$M/x" "NOREPLACE left x alone"
assert_file_eq "$W/model/y" "$M/y" "NOREPLACE left y alone"
assert_eq OK "$(pfs_run 10 "$PFS_IO" rename2 "$M/x" "$M/y" exchange)" "RENAME_EXCHANGE"
assert_file_eq "$W/model/y" "$M/x" "after EXCHANGE x has y's dirty data"
assert_file_eq "$W/model/x" "$M/y" "after EXCHANGE y has x's dirty data"
assert_eq OK "$(pfs_run 10 "$PFS_IO" rename2 "$M/x" "$M/z" noreplace)" "RENAME_NOREPLACE to a new name"
ctl_write sync 1
assert_file_eq "$W/model/y" "$B/z" "backing z after sync"
assert_file_eq "$W/model/x" "$B/y" "backing y after sync"

# statfs is the backing filesystem's.
assert_eq "$(stat -f -c '%S %b' "$B")" "$(pfs_run 10 stat -f -c '%S %b' "$M")" "statfs block size and blocks match the backing fs"

# Directories.
pfs_must mkdir -p "$M/d1/d2"
pfs_must bash -c 'echo hi > "$1"' _ "$M/d1/d2/f"
err=$(LC_ALL=C pfs_run 10 rmdir "$M/d1/d2" 2>&1)
assert_match 'not empty' "$err" "rmdir of a non-empty dir: ENOTEMPTY"
ino=$(stat -c %i "$B/d1/d2/f")
grep -q "^$ino 0 3 d1/d2/f\$" <(ctl_read dirty) || pfs_fail "dirty does not list d1/d2/f by its path: $(ctl_read dirty)"
pfs_ok "dirty names a nested file by its path from the mount root"
pfs_must rm "$M/d1/d2/f"
pfs_must rmdir "$M/d1/d2" "$M/d1"
[ -e "$B/d1" ] && pfs_fail "rmdir did not reach the backing dir"
pfs_ok "unlink and rmdir reach the backing dir"

# xattrs.
pfs_must bash -c 'echo x > "$1"' _ "$M/xa"
out=$(pfs_run 10 "$PFS_PY" - "$M/xa" <<'PY'
import os, sys
p = sys.argv[1]
os.setxattr(p, "user.one", b"1")
os.setxattr(p, "user.two", b"2" * 3000)
names = sorted(n for n in os.listxattr(p) if n.startswith("user."))
big = os.getxattr(p, "user.two")
os.removexattr(p, "user.one")
after = sorted(n for n in os.listxattr(p) if n.startswith("user."))
try:
    os.getxattr(p, "user.one")
    gone = "still there"
except OSError as e:
    gone = "ENODATA" if e.errno == 61 else str(e)
print(",".join(names), len(big), ",".join(after), gone)
PY
)
assert_eq "user.one,user.two 3000 user.two ENODATA" "$out" "setxattr/listxattr/getxattr/removexattr through the mount"
assert_eq 3000 "$("$PFS_PY" -c 'import os,sys; print(len(os.getxattr(sys.argv[1], "user.two")))' "$B/xa")" "the xattr is on the backing file"

# Two appenders at once (O_APPEND): no line is lost or torn.
appender() { # TAG: one write() per line, each through an O_APPEND open
	pfs_run 60 bash -c 'for ((i = 0; i < 400; i++)); do
		printf "%s %04d ........................\n" "$1" "$i" >>"$2" || exit 1
	done' _ "$1" "$M/log"
}
appender A &
a=$!
appender B &
b=$!
wait "$a" || pfs_fail "appender A failed"
wait "$b" || pfs_fail "appender B failed"
assert_eq 800 "$(pfs_run 10 grep -c -E '^[AB] [0-9]{4} \.{24}$' "$M/log")" "800 whole lines from two concurrent appenders"
assert_eq 25600 "$(pfs_run 10 stat -c %s "$M/log")" "the appended size"

pfs_umount_clean
assert_eq 800 "$(grep -c -E '^[AB] [0-9]{4} \.{24}$' "$B/log")" "the appended lines in the backing file"
