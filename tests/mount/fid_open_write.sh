#!/bin/bash
# Proves the daemon opens a backing file for writing only when a writer
# opens it, and keeps that fd exactly as long as it must:
#  - execve of a backing file works while the mount has the inode cached
#    (looked up, read), and again once a writer through the mount has gone
#    and its data is written back (a process holding a write fd makes
#    execve fail with ETXTBSY);
#  - with the daemon run as an ordinary user (nobody), a file created
#    read-only by its creating open (git's objects: O_CREAT|O_RDWR, 0444)
#    is written through that open's fd, and its data reaches the backing
#    file after the writer closed it and the daemon wrote it back;
#  - a file looked up read-only that later becomes writable (chmod) can be
#    opened for writing;
#  - git init/add/commit/fsck work in the mount as that user.
# The ordinary user's part needs /dev/fuse usable by that user, as Debian
# ships it (0666): if it is not, this test makes it so for its run and puts
# the old mode back on exit (scripts/run-tests does the same for the suite).
# usage: fid_open_write.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
[ "$(id -u)" = 0 ] || pfs_fail "this test switches to user nobody and must run as root"
command -v git >/dev/null || pfs_fail "git is not installed"
pfs_use_nobody

FUSE_MODE=""
fid_cleanup() {
	local rc=$?
	[ -n "$FUSE_MODE" ] && chmod "$FUSE_MODE" /dev/fuse
	(exit "$rc")
	pfs_cleanup
}
trap fid_cleanup EXIT

# run_backing FILE: execve FILE (a script in the backing dir); prints its
# output or the error.
run_backing() { "$1" 2>&1; }
# exec_eventually FILE WHAT: the kernel sends RELEASE after close()
# returns, so give the daemon a bounded moment to close its write fd.
exec_eventually() {
	local i out
	for ((i = 0; i < 100; i++)); do
		out=$(run_backing "$1") && break
		sleep 0.1
	done
	assert_eq ran "$out" "$2"
}

# ---- as root: no write fd for files only looked up or read ----
pfs_mount -o policy=retry,writeback_ms=600000
printf '#!/bin/sh\necho ran\n' >"$B/tool"
chmod 755 "$B/tool"
assert_eq ran "$(cat "$M/tool" >/dev/null && stat "$M/tool" >/dev/null && run_backing "$B/tool")" \
	"execve of a backing file the mount has looked up and read"
printf '#!/bin/sh\necho ran\n' >"$M/made"
chmod 755 "$M/made"
assert_eq OK "$(pfs_fsync "$M/made")" "a script written through the mount is written back"
exec_eventually "$B/made" "execve of it once the writer has closed it"
printf '#!/bin/sh\necho ran\n' >"$M/dirty"
chmod 755 "$M/dirty"
stat "$M/dirty" >/dev/null || pfs_fail "stat $M/dirty"
ctl_write sync 1
exec_eventually "$B/dirty" "execve of a file closed dirty, once written back (the shrinker closes its fd)"
pfs_umount_clean

# ---- as nobody: the daemon and every program ----
if ! setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
	test -r /dev/fuse -a -w /dev/fuse; then
	FUSE_MODE=$(stat -c %a /dev/fuse) || pfs_fail "stat /dev/fuse"
	chmod 0666 /dev/fuse || pfs_fail "chmod 0666 /dev/fuse"
	pfs_say "/dev/fuse was mode $FUSE_MODE: 0666 for this run, as Debian ships it"
fi
cat >"$PFS_T/pfs-as-nobody" <<EOF
#!/bin/sh
exec setpriv --reuid=$NOBODY_UID --regid=$NOBODY_GID --clear-groups $PFS_EXE "\$@"
EOF
chmod 755 "$PFS_T/pfs-as-nobody"
PFS_EXE=$PFS_T/pfs-as-nobody
H=$PFS_T/home
mkdir -p "$H"
chown "$NOBODY_UID:$NOBODY_GID" "$B" "$M" "$H"
# Without allow_other only the mounting user (nobody) may use the mount.
nobody_ctl_write() {
	as_nobody sh -c 'echo "$2" >"$1"' _ "$(ctl_path "$1")" "$2" || pfs_fail "nobody cannot write $2 to $1"
}
nobody_ctl_read() { as_nobody cat "$(ctl_path "$1")" || pfs_fail "nobody cannot read $1"; }
pfs_mount -o policy=retry,writeback_ms=600000
owner=$(awk -v m="$M" '$2 == m { print $4 }' /proc/self/mounts)
assert_match 'user_id='"$NOBODY_UID"'([^0-9]|$)' "$owner" "the daemon runs as nobody"

# git's object files: created 0444 by an O_RDWR creating open.
out=$(as_nobody "$PFS_PY" - "$M/obj" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o444)
n = os.write(fd, b"x" * 100000)
os.close(fd)
print("OK %d" % n)
EOF
)
assert_eq "OK 100000" "$out" "nobody writes a file its creating open made read-only"
assert_eq 444 "$(stat -c %a "$B/obj")" "the file is read-only"
nobody_ctl_write sync 1
assert_eq "" "$(nobody_ctl_read dirty)" "its data was written back through the creating open's fd"
assert_eq 100000 "$(stat -c %s "$B/obj")" "the backing file has all of it"

# Read-only when looked up, writable later.
# (made in the backing dir: the mount's first sight of it is a lookup)
as_nobody sh -c 'echo one >"$1" && chmod 444 "$1"' _ "$B/later" || pfs_fail "make later"
as_nobody cat "$M/later" >/dev/null || pfs_fail "nobody cannot read later"
out=$(as_nobody "$PFS_T/io" put "$M/later" two)
assert_eq EACCES "$out" "a read-only file refuses a writer"
as_nobody chmod 644 "$M/later" || pfs_fail "chmod later"
out=$(as_nobody "$PFS_T/io" put "$M/later" two)
assert_eq OK "$out" "the file made writable takes a writer"

export GIT_AUTHOR_NAME=pfs GIT_AUTHOR_EMAIL=pfs@example.invalid
export GIT_COMMITTER_NAME=pfs GIT_COMMITTER_EMAIL=pfs@example.invalid
export GIT_CONFIG_NOSYSTEM=1
g() {
	pfs_run 120 setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
		env HOME="$H" git -C "$M/repo" -c init.defaultBranch=main "$@"
}
as_nobody mkdir "$M/repo" || pfs_fail "mkdir repo"
g init -q >"$W/git.out" 2>&1 || pfs_fail "git init as nobody: $(tail -3 "$W/git.out")"
as_nobody cp -r /usr/include/linux "$M/repo/linux" || pfs_fail "cp as nobody"
g add -A >"$W/git.out" 2>&1 || pfs_fail "git add as nobody: $(tail -3 "$W/git.out")"
g commit -q -m first >"$W/git.out" 2>&1 || pfs_fail "git commit as nobody: $(tail -3 "$W/git.out")"
as_nobody sh -c 'echo change >>"$1"' _ "$M/repo/linux/types.h" || pfs_fail "edit as nobody"
g commit -q -a -m second >"$W/git.out" 2>&1 || pfs_fail "second commit as nobody: $(tail -3 "$W/git.out")"
assert_eq 2 "$(g rev-list --count HEAD)" "two commits as nobody"
g fsck --strict >"$W/fsck" 2>&1 || pfs_fail "git fsck as nobody: $(tail -5 "$W/fsck")"
pfs_ok "git fsck passes as nobody"
pfs_umount_clean
assert_eq 100000 "$(stat -c %s "$B/obj")" "after unmount the read-only file is whole"
assert_eq two "$(head -c 3 "$B/later")" "after unmount the file made writable has the write"
pfs_mount -o policy=retry
g fsck --strict >"$W/fsck" 2>&1 || pfs_fail "git fsck as nobody after remount: $(tail -5 "$W/fsck")"
pfs_ok "git fsck passes as nobody after remount"
pfs_umount_clean
