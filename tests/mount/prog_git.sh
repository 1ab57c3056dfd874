#!/bin/bash
# Proves git works on the mount: init, add, commit, a second commit with a
# rename and a deletion, gc, and git fsck passes (also after remount).
# usage: prog_git.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
command -v git >/dev/null || pfs_fail "git is not installed"

export GIT_AUTHOR_NAME=pfs GIT_AUTHOR_EMAIL=pfs@example.invalid
export GIT_COMMITTER_NAME=pfs GIT_COMMITTER_EMAIL=pfs@example.invalid
export GIT_CONFIG_NOSYSTEM=1 HOME=$W
g() { pfs_run 120 git -C "$M/repo" -c init.defaultBranch=main -c safe.directory='*' "$@"; }

pfs_mount -o policy=retry
pfs_must mkdir -p "$M/repo"
g init -q || pfs_fail "git init"
pfs_must cp -a /usr/include/linux "$M/repo/linux"
g add -A || pfs_fail "git add"
g commit -q -m first || pfs_fail "git commit"
g mv linux/fs.h linux/fs_renamed.h || pfs_fail "git mv"
g rm -q linux/kd.h || pfs_fail "git rm"
pfs_must bash -c 'echo change >>"$1"' _ "$M/repo/linux/types.h"
g commit -q -a -m second || pfs_fail "second commit"
assert_eq 2 "$(g rev-list --count HEAD)" "two commits"
g gc -q || pfs_fail "git gc"
g fsck --strict >"$W/fsck" 2>&1 || pfs_fail "git fsck: $(tail -5 "$W/fsck")"
pfs_ok "git fsck passes"
assert_eq "" "$(g status --porcelain)" "work tree clean"
pfs_umount_clean
pfs_mount -o policy=enomem
g fsck --strict >"$W/fsck" 2>&1 || pfs_fail "git fsck after remount: $(tail -5 "$W/fsck")"
pfs_ok "git fsck passes after remount"
out=$(pfs_run 60 diff -r /usr/include/linux/fs.h "$M/repo/linux/fs_renamed.h") || pfs_fail "renamed file differs: $out"
pfs_ok "renamed file content kept"
pfs_umount_clean
