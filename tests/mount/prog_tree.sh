#!/bin/bash
# Proves real tree tools work on the mount: `cp -a` of /usr/include/linux
# and of a crafted tree (empty and large files, sparse file, symlinks, a
# hard link, a fifo, odd modes, a user xattr, old mtimes) compares equal
# with `diff -r` (the fifo by type only: diff cannot compare fifos) and
# keeps types, modes, sizes, link targets, hard links and mtimes;
# `tar c | tar x` into the mount and `tar c` out of it round-trip; after
# unmount the backing dir holds the same trees.
# usage: prog_tree.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"

SRC=/usr/include/linux
[ -d "$SRC" ] || pfs_fail "$SRC is missing (linux-libc-dev is a dependency of libc6-dev)"

T=$W/tree
mkdir -p "$T/sub/deeper" "$T/empty_dir"
: >"$T/empty"
head -c 3000000 /dev/urandom >"$T/big"
head -c 777 /dev/urandom >"$T/sub/small"
truncate -s 5M "$T/sparse" && printf 'end' >>"$T/sparse"
printf 'deep\n' >"$T/sub/deeper/f"
ln -s sub/small "$T/link_rel"
ln -s /nonexistent/target "$T/link_dangling"
ln "$T/big" "$T/big_hardlink"
mkfifo "$T/fifo"
chmod 600 "$T/sub/small"
chmod 751 "$T/sub/deeper"
chmod 4755 "$T/empty" 2>/dev/null || chmod 755 "$T/empty"
touch -d '2001-02-03 04:05:06.123456789' "$T/sub/small" "$T/empty_dir"
"$PFS_PY" -c 'import os,sys; os.setxattr(sys.argv[1], "user.pfs", b"value")' "$T/sub/deeper/f" ||
	pfs_fail "cannot set a user xattr on the temp dir's filesystem"

# What cp -a must keep, listed without the tree's own path.
meta() { # DIR
	(cd "$1" && find . -printf '%p %y %m %s %n %l %T@\n' | sort) || echo "META FAILED"
}

pfs_mount -o policy=retry,mem_limit=64M

pfs_must cp -a "$SRC" "$M/linux"
out=$(pfs_run 120 diff -r "$SRC" "$M/linux" 2>&1) || pfs_fail "diff -r after cp -a: $(head -c 600 <<<"$out")"
pfs_ok "cp -a /usr/include/linux: diff -r equal"

pfs_must cp -a "$T" "$M/tree"
out=$(pfs_run 120 diff -r --no-dereference -x fifo "$T" "$M/tree" 2>&1) || pfs_fail "diff -r of the crafted tree: $(head -c 600 <<<"$out")"
pfs_ok "cp -a of the crafted tree: diff -r equal"
meta "$T" >"$W/meta.src"
pfs_run 60 bash -c "$(declare -f meta); meta '$M/tree'" >"$W/meta.mnt"
out=$(diff "$W/meta.src" "$W/meta.mnt") || pfs_fail "cp -a lost metadata (type mode size links target mtime): $out"
pfs_ok "cp -a keeps types, modes, sizes, hard links, symlink targets and mtimes"
x=$(pfs_run 10 "$PFS_PY" -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.pfs").decode())' "$M/tree/sub/deeper/f" 2>&1)
assert_eq value "$x" "cp -a keeps the user xattr"
assert_eq "$(pfs_run 10 stat -c %i "$M/tree/big")" "$(pfs_run 10 stat -c %i "$M/tree/big_hardlink")" "hard link is one inode through the mount"

pfs_must mkdir -p "$M/tarx"
pfs_run 120 bash -c 'tar -C "$1" -cf - linux | tar -C "$2" -xf -' _ /usr/include "$M/tarx" ||
	pfs_fail "tar c | tar x into the mount"
out=$(pfs_run 120 diff -r "$SRC" "$M/tarx/linux" 2>&1) || pfs_fail "diff -r after tar x: $(head -c 600 <<<"$out")"
pfs_ok "tar c | tar x into the mount: diff -r equal"
mkdir -p "$W/out"
pfs_run 120 bash -c 'tar -C "$1" -cf - tree | tar -C "$2" -xf -' _ "$M" "$W/out" || pfs_fail "tar c out of the mount"
out=$(diff -r --no-dereference -x fifo "$T" "$W/out/tree" 2>&1) || pfs_fail "diff -r after tar out of the mount: $(head -c 600 <<<"$out")"
pfs_ok "tar c out of the mount: diff -r equal"

pfs_umount_clean
out=$(diff -r "$SRC" "$B/linux" 2>&1) || pfs_fail "backing dir after unmount: $(head -c 600 <<<"$out")"
out=$(diff -r --no-dereference -x fifo "$T" "$B/tree" 2>&1) || pfs_fail "backing tree after unmount: $(head -c 600 <<<"$out")"
meta "$B/tree" >"$W/meta.bak"
out=$(diff "$W/meta.src" "$W/meta.bak") || pfs_fail "backing tree metadata: $out"
pfs_ok "after unmount the backing dir holds the same trees"
