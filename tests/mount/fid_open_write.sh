#!/bin/bash
# Proves the daemon opens a backing file for writing only when a writer
# opens it, and keeps that fd exactly as long as it must:
#  - execve of a backing file works while the mount has the inode cached
#    (looked up, read), and again once a writer through the mount has gone
#    and its data is written back (a process holding a write fd makes
#    execve fail with ETXTBSY);
#  - a file created read-only by its creating open (git's objects:
#    O_CREAT|O_RDWR, 0444) is written through that open's fd, and its data
#    reaches the backing file after the writer closed it and the daemon
#    wrote it back (an ordinary user's daemon cannot open it for writing
#    again);
#  - a file looked up read-only that later becomes writable (chmod) can be
#    opened for writing, and a kept write fd does not let a writer past a
#    read-only mode;
#  - git init/add/commit/fsck work in the mount.
# Meant to run as an ordinary user too (tests/mount/as_user.sh): that is
# where the read-only cases bite; as root the daemon may open anything.
# usage: fid_open_write.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
command -v git >/dev/null || pfs_fail "git is not installed"
ROOT=0
[ "$(id -u)" = 0 ] && ROOT=1

# exec_eventually FILE WHAT: execve FILE (a script in the backing dir). The
# kernel sends RELEASE after close() returns, so the daemon gets a bounded
# moment to close its write fd.
exec_eventually() {
	local i out
	for ((i = 0; i < 100; i++)); do
		out=$("$1" 2>&1) && break
		sleep 0.1
	done
	assert_eq ran "$out" "$2"
}

pfs_mount -o policy=retry,writeback_ms=600000
printf '#!/bin/sh\necho ran\n' >"$B/tool"
chmod 755 "$B/tool"
cat "$M/tool" >/dev/null || pfs_fail "read $M/tool"
stat "$M/tool" >/dev/null || pfs_fail "stat $M/tool"
out=$("$B/tool" 2>&1)
assert_eq ran "$out" "execve of a backing file the mount has looked up and read"
printf '#!/bin/sh\necho ran\n' >"$M/made"
chmod 755 "$M/made"
assert_eq OK "$(pfs_fsync "$M/made")" "a script written through the mount is written back"
exec_eventually "$B/made" "execve of it once the writer has closed it"
printf '#!/bin/sh\necho ran\n' >"$M/dirty"
chmod 755 "$M/dirty"
stat "$M/dirty" >/dev/null || pfs_fail "stat $M/dirty"
ctl_write sync 1
exec_eventually "$B/dirty" "execve of a file closed dirty, once written back (the shrinker closes its fd)"

# git's object files: created 0444 by an O_RDWR creating open.
out=$("$PFS_PY" - "$M/obj" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o444)
n = os.write(fd, b"x" * 100000)
os.close(fd)
print("OK %d" % n)
EOF
)
assert_eq "OK 100000" "$out" "a file its creating open made read-only takes that open's writes"
assert_eq 444 "$(stat -c %a "$B/obj")" "the file is read-only"
ctl_write sync 1
assert_eq "" "$(ctl_read dirty)" "its data was written back through the creating open's fd"
assert_eq 100000 "$(stat -c %s "$B/obj")" "the backing file has all of it"

# Read-only when looked up (made in the backing dir: the mount's first
# sight of it is a lookup), writable later.
echo one >"$B/later"
chmod 444 "$B/later"
cat "$M/later" >/dev/null || pfs_fail "cannot read later"
if [ "$ROOT" = 0 ]; then
	assert_eq EACCES "$(pfs_run 10 "$PFS_IO" put "$M/later" two)" "a read-only file refuses a writer"
	# A write fd kept for dirty pages must not skip that check either.
	pfs_must bash -c 'echo one >"$1"' _ "$M/kept"
	chmod 444 "$M/kept" || pfs_fail "chmod kept"
	assert_eq EACCES "$(pfs_run 10 "$PFS_IO" put "$M/kept" two)" \
		"a read-only file with dirty pages (a write fd kept) refuses a writer"
else
	pfs_say "as root every writer may open a read-only file: its refusal is checked as an ordinary user"
fi
chmod 644 "$M/later" || pfs_fail "chmod later"
assert_eq OK "$(pfs_run 10 "$PFS_IO" put "$M/later" two)" "the file made writable takes a writer"

export GIT_AUTHOR_NAME=pfs GIT_AUTHOR_EMAIL=pfs@example.invalid
export GIT_COMMITTER_NAME=pfs GIT_COMMITTER_EMAIL=pfs@example.invalid
export GIT_CONFIG_NOSYSTEM=1 HOME=$W
g() { pfs_run 120 git -C "$M/repo" -c init.defaultBranch=main -c safe.directory='*' "$@"; }
mkdir "$M/repo" || pfs_fail "mkdir repo"
g init -q >"$W/git.out" 2>&1 || pfs_fail "git init: $(tail -3 "$W/git.out")"
pfs_must cp -r /usr/include/linux "$M/repo/linux"
g add -A >"$W/git.out" 2>&1 || pfs_fail "git add: $(tail -3 "$W/git.out")"
g commit -q -m first >"$W/git.out" 2>&1 || pfs_fail "git commit: $(tail -3 "$W/git.out")"
pfs_must bash -c 'echo change >>"$1"' _ "$M/repo/linux/types.h"
g commit -q -a -m second >"$W/git.out" 2>&1 || pfs_fail "second commit: $(tail -3 "$W/git.out")"
assert_eq 2 "$(g rev-list --count HEAD)" "two commits"
g fsck --strict >"$W/fsck" 2>&1 || pfs_fail "git fsck: $(tail -5 "$W/fsck")"
pfs_ok "git fsck passes"
pfs_umount_clean
assert_eq 100000 "$(stat -c %s "$B/obj")" "after unmount the read-only file is whole"
assert_eq two "$(head -c 3 "$B/later")" "after unmount the file made writable has the write"
pfs_mount -o policy=retry
g fsck --strict >"$W/fsck" 2>&1 || pfs_fail "git fsck after remount: $(tail -5 "$W/fsck")"
pfs_ok "git fsck passes after remount"
pfs_umount_clean
