#!/bin/bash
# Many files in one directory (issue 6, "Load"): create N files (default
# 10,000 in CI; bench/soak --many-files 100000 for the long version), each
# with a few bytes, stat a sample of them, count them with readdir (through
# the mount and in the backing dir), then unlink them all. Proves: every
# create, stat and unlink succeeds, readdir returns each name exactly once
# (no entry lost or repeated across readdir's continuation offsets), the
# directory is empty afterwards, live bytes come back near the baseline
# after sync + drop_caches (the daemon's inode table shrinks), and the
# clean exit status.
# usage: many_files.sh PRESSUREFS PFS_MOUNT_IO [N]
. "$(dirname "$0")/../mount/lib.sh"
. "$(dirname "$0")/lib_load.sh"
pfs_init "$1" "$2"
N=${3:-10000}
PFS_NAME="load-many-files[$N]"

pfs_mount -o policy=retry,mem_limit=32M
stats_snap baseline
mkdir "$M/d" || pfs_fail "mkdir"

# One Python process does the whole phase: no fork per file.
phase() {
	pfs_run $((60 + N / 100)) "$PFS_PY" - "$@" <<'PY'
import os, random, sys
phase, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = ["file %06d \u00e9" % i for i in range(n)]
if phase == "create":
    for i, name in enumerate(names):
        fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"%d\n" % i)
        os.close(fd)
elif phase == "stat":
    rng = random.Random(6)
    for i in rng.sample(range(n), min(n, 1000)):
        st = os.stat(os.path.join(d, names[i]))
        if st.st_size != len(b"%d\n" % i):
            sys.exit("%s: size %d" % (names[i], st.st_size))
elif phase == "list":
    seen = [e.name for e in os.scandir(d)]
    if len(seen) != len(set(seen)):
        sys.exit("readdir repeated %d names" % (len(seen) - len(set(seen))))
    if set(seen) != set(names):
        sys.exit("readdir: %d names missing, %d unexpected" %
                 (len(set(names) - set(seen)), len(set(seen) - set(names))))
elif phase == "unlink":
    for name in names:
        os.unlink(os.path.join(d, name))
print("OK")
PY
}

assert_eq OK "$(phase create "$M/d" "$N")" "$N files created in one directory"
assert_eq OK "$(phase stat "$M/d" "$N")" "a sample of 1000 stats shows the right sizes"
assert_eq OK "$(phase list "$M/d" "$N")" "readdir through the mount lists each name exactly once"
ctl_write sync 1
assert_eq OK "$(phase list "$B/d" "$N")" "the backing dir holds the same $N names"
assert_eq OK "$(phase unlink "$M/d" "$N")" "$N files unlinked"
assert_eq 0 "$(find "$M/d" -mindepth 1 | wc -l)" "the directory is empty through the mount"
assert_eq 0 "$(find "$B/d" -mindepth 1 | wc -l)" "and in the backing dir"
pfs_leak_check baseline 65536 "after $N files came and went"
pfs_umount_clean
