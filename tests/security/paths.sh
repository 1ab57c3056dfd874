#!/bin/bash
# Nothing in a path from the kernel makes the daemon touch a file outside
# BACKING_DIR.
#
# Layout: the backing dir is $T/deep/back and a directory $T/deep/outside
# sits next to it; the mount is $T/mnt. A relative symlink in the backing
# dir, "../outside/target", means $T/deep/outside/target if the DAEMON
# followed it inside the backing tree, but $T/outside/target (which does
# not exist) when the KERNEL follows it through the mount, as it must. So
# any data reaching $T/deep/outside proves the daemon followed a link.
#
# What arrives from the kernel, and what is checked:
#   - symlinks are returned as symlinks (readlink, lstat), and operations
#     on the link itself (lchown, utimensat NOFOLLOW, lsetxattr, link,
#     rename) never reach the target;
#   - open/create through a dangling or a directory symlink resolves in the
#     caller's namespace: nothing is created outside;
#   - ".." at the root is the kernel's (the mount's parent), never the
#     backing dir's parent: the daemon is never asked for "..";
#   - names with '/' cannot arrive: the kernel splits paths at '/' and
#     refuses a component holding one (documented here; a name with '\'
#     is an ordinary name);
#   - rename and link across the mount's boundary fail with EXDEV.
# usage: paths.sh PRESSUREFS PFS_MOUNT_IO
. "$(dirname "$0")/../mount/lib.sh"
pfs_init "$@"
PFS_NAME=security-paths

D=$PFS_T/deep
BK=$D/back
OUT=$D/outside
mkdir -p "$BK/sub" "$OUT"
echo outside-secret >"$OUT/target"
chmod 644 "$OUT/target"
[ ! -e "$PFS_T/outside" ] || pfs_fail "layout: $PFS_T/outside must not exist"
ln -s ../outside/target "$BK/rel"
ln -s ../outside/new "$BK/dangling"
ln -s ../outside "$BK/dirlink"
ln -s ../../outside/target "$BK/sub/rel2"
ln -s "$OUT/target" "$BK/abs"
echo inside >"$BK/file"
touch -d '2001-01-01' "$OUT/target"
target_state() { stat -c '%u:%g %a %Y %h %s' "$OUT/target"; }
target_before=$(target_state)

# py CODE: run Python with os imported; prints OK or the errno name.
py() {
	pfs_run 30 "$PFS_PY" - "$@" <<EOF
import errno, os, sys
try:
    $PY_CODE
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
}
pyrun() { PY_CODE=$1; shift; py "$@"; }

pfs_mount_at "$BK" "$M" -o policy=retry

# Symlinks come back as symlinks.
assert_eq ../outside/target "$(readlink "$M/rel")" "readlink returns the link's text"
assert_eq "symbolic link" "$(stat -c %F "$M/rel")" "lstat sees a symlink"
assert_eq "$OUT/target" "$(readlink "$M/abs")" "readlink of an absolute link"
# Followed by the kernel through the mount, the relative link leads nowhere.
assert_eq ENOENT "$(pyrun 'open(sys.argv[1]).read()' "$M/rel")" "reading through ../outside/target does not reach the backing dir's neighbour"
assert_eq ENOENT "$(pyrun 'open(sys.argv[1]).read()' "$M/sub/rel2")" "nor from a subdirectory"
assert_eq ELOOP "$(pyrun 'os.open(sys.argv[1], os.O_RDONLY | os.O_NOFOLLOW)' "$M/rel")" "O_NOFOLLOW refuses the link"

# Operations on the link itself stay on the link.
assert_eq OK "$(pyrun 'os.chown(sys.argv[1], 65534, 65534, follow_symlinks=False)' "$M/rel")" "lchown of the link"
assert_eq 65534:65534 "$(stat -c %u:%g "$BK/rel")" "lchown changed the link in the backing dir"
assert_eq OK "$(pyrun 'os.utime(sys.argv[1], (0, 0), follow_symlinks=False)' "$M/rel")" "utimensat NOFOLLOW on the link"
assert_eq 0 "$(stat -c %Y "$BK/rel")" "utimensat NOFOLLOW changed the link's mtime"
got=$(pyrun 'os.setxattr(sys.argv[1], "user.pfs", b"1", follow_symlinks=False)' "$M/rel")
pfs_ok "lsetxattr user.* on the link: $got (EPERM is Linux's answer for user xattrs on symlinks)"
assert_eq OK "$(pyrun 'os.link(sys.argv[1], sys.argv[2], follow_symlinks=False)' "$M/rel" "$M/rel_hard")" "link() of the link"
assert_eq "symbolic link" "$(stat -c %F "$BK/rel_hard")" "the hard link is to the symlink, not to its target"
assert_eq OK "$(pyrun 'os.rename(sys.argv[1], sys.argv[2])' "$M/rel_hard" "$M/sub/moved")" "rename of a link"
assert_eq "symbolic link" "$(stat -c %F "$BK/sub/moved")" "the renamed link is still a link"
assert_eq "$target_before" "$(target_state)" "the link's target outside the backing dir is untouched (owner, mode, mtime, links, size)"
assert_eq 0 "$("$PFS_PY" -c 'import os, sys; print(len(os.listxattr(sys.argv[1])))' "$OUT/target")" "the target got no xattr"

# Create through a dangling link and a directory link: nothing outside.
assert_eq ENOENT "$(pyrun 'open(sys.argv[1], "w").write("x")' "$M/dangling")" "create through a dangling link"
assert_eq ENOENT "$(pyrun 'open(sys.argv[1], "w").write("x")' "$M/dirlink/new2")" "create through a directory link"
assert_eq ENOENT "$(pyrun 'os.mkdir(sys.argv[1])' "$M/dirlink/newdir")" "mkdir through a directory link"
assert_eq ENOENT "$(pyrun 'os.listdir(sys.argv[1])' "$M/dirlink/")" "listing through a directory link"
assert_eq "target" "$(ls -A "$OUT" | tr '\n' ' ' | sed 's/ $//')" "nothing was created next to the backing dir"

# ".." at the root is the mount's parent.
assert_eq "$(stat -c %d:%i "$PFS_T")" "$(stat -c %d:%i "$M/..")" "'..' of the mount root is the mount's parent"
assert_eq "$(stat -c %d:%i "$M")" "$(stat -c %d:%i "$M/sub/..")" "'..' inside stays inside"
assert_eq ENOENT "$(pyrun 'os.stat(sys.argv[1])' "$M/../outside/target")" "no way from the mount to the backing dir's neighbour"
# '/' cannot be part of a name that reaches the daemon; '\' can.
assert_eq OK "$(pyrun 'open(sys.argv[1], "w").write("b")' "$M/back\\slash")" "a name with a backslash is an ordinary name"

# Rename and link across the mount's boundary fail.
assert_eq EXDEV "$(pyrun 'os.rename(sys.argv[1], sys.argv[2])' "$M/file" "$PFS_T/stolen")" "rename out of the mount"
assert_eq EXDEV "$(pyrun 'os.rename(sys.argv[1], sys.argv[2])' "$PFS_T/deep/outside/target" "$M/in")" "rename into the mount"
assert_eq EXDEV "$(pyrun 'os.link(sys.argv[1], sys.argv[2])' "$M/file" "$PFS_T/stolen")" "link out of the mount"
assert_eq EXDEV "$(pyrun 'os.link(sys.argv[1], sys.argv[2])' "$OUT/target" "$M/in")" "link into the mount"
assert_eq inside "$(cat "$BK/file")" "the file stayed in the backing dir"
[ ! -e "$PFS_T/stolen" ] && [ ! -e "$BK/in" ] || pfs_fail "a cross-boundary rename or link left a file"
pfs_ok "no file crossed the boundary"

pfs_umount_clean
assert_eq b "$(cat "$BK/back\\slash")" "the backslash name is in the backing dir under that name"
assert_eq "$target_before" "$(target_state)" "the outside target is still untouched after unmount"
