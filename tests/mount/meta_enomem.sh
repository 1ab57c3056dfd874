#!/bin/bash
# Proves metadata operations fail cleanly under allocation failure: with
# policy=enomem and 30% of the inode, handle, readdir and request
# allocations failing (fixed seed), a workload of mkdir, create, write,
# stat, readdir, rename, link, symlink, xattr and unlink calls sees only
# ENOMEM (or success) -- never another errno, never a dead daemon; once
# injection stops, the tree is consistent (the mount's view equals the
# backing dir), and the daemon unmounts with status 0 (under ASan: nothing
# leaked).
# usage: meta_enomem.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"

pfs_mount -o policy=enomem,fail_seed=11
ctl_write fail_sites inode+handle+readdir+request
ctl_write fail_probability 30

out=$(pfs_run 120 "$PFS_PY" - "$M" <<'PY'
import collections, errno, os, sys
root = sys.argv[1]
seen = collections.Counter()
def attempt(fn, *args):
    try:
        fn(*args)
        seen["ok"] += 1
    except OSError as e:
        seen[errno.errorcode.get(e.errno, str(e.errno))] += 1
def create(p):
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"x" * 5000)
    finally:
        os.close(fd)
for i in range(300):
    d = os.path.join(root, "d%d" % (i % 10))
    f = os.path.join(d, "f%d" % i)
    attempt(os.mkdir, d)
    attempt(create, f)
    attempt(os.stat, f)
    attempt(os.listdir, d)
    attempt(os.rename, f, f + ".r")
    attempt(os.link, f + ".r", f + ".l")
    attempt(os.symlink, "f%d.r" % i, f + ".s")
    attempt(os.setxattr, f + ".r", "user.k", b"v")
    attempt(os.getxattr, f + ".r", "user.k")
    if i % 3 == 0:
        attempt(os.unlink, f + ".l")
print(" ".join("%s=%d" % kv for kv in sorted(seen.items())))
PY
) || pfs_fail "the metadata workload did not finish: $out"
pfs_say "results: $out"
others=$(tr ' ' '\n' <<<"$out" | grep -v -E '^(ok|ENOMEM|EEXIST|ENOENT)=' | tr '\n' ' ')
# EEXIST/ENOENT follow from an earlier step that failed with ENOMEM
# (mkdir of an existing dir, a rename whose create failed...).
assert_eq "" "$others" "only ENOMEM (and its EEXIST/ENOENT consequences) under injection"
assert_match 'ENOMEM=[1-9]' "$out" "injection did make metadata operations fail"
pfs_pid_alive "$PFS_PID" || pfs_fail "the daemon died under metadata ENOMEM"
pfs_ok "the daemon survived"
stats_snap s1
assert_gt "$(stat_get s1 total.injected_failures)" 0 "injected failures counted"

ctl_write fail_probability 0
ctl_write sync 1
ctl_write drop_caches 1
(cd "$B" && find . -printf '%p %y %s\n' | sort) >"$W/backing.list"
(cd "$M" && pfs_run 60 find . -printf '%p %y %s\n' | sort) >"$W/mount.list" || pfs_fail "find through the mount"
out=$(diff "$W/backing.list" "$W/mount.list") || pfs_fail "the mount's tree differs from the backing dir: $out"
pfs_ok "after injection the mount shows exactly the backing tree"
pfs_umount_clean
