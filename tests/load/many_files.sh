#!/bin/bash
# Many files in one directory: create N files (default
# 10,000 in CI; bench/soak --many-files 100000 for the long version), each
# with a few bytes, stat a sample of them, count them with readdir (through
# the mount and in the backing dir), then unlink them all. Proves: every
# create, stat and unlink succeeds, readdir returns each name exactly once
# (no entry lost or repeated across readdir's continuation offsets), the
# directory is empty afterwards, live bytes come back near the baseline
# after sync + drop_caches (the daemon's inode table shrinks), and the
# clean exit status.
#
# With NOFILE, the daemon runs with RLIMIT_NOFILE = NOFILE (soft and hard,
# and as root without CAP_SYS_RESOURCE, so it cannot raise it): N far above
# NOFILE then proves the inode shrinker keeps the daemon's fds (one per
# inode) under the limit, and the daemon's log must say it dropped
# dentries. FLAGS, a comma list: "early-writeback" also requires that it
# wrote dirty files back early to do so (OPTIONS that keep files dirty:
# small pages under a roomy mem_limit); "writers=W" creates the files from
# W processes at once (creators in one directory race the shrinker for the
# directory's kernel lock, so close() must hold them back). Also: close()
# costs a FLUSH round trip only while fds are short.
# usage: many_files.sh PFS_EXE PFS_MOUNT_IO [N [NOFILE [OPTIONS [FLAGS]]]]
. "$(dirname "$0")/../mount/lib.sh"
. "$(dirname "$0")/lib_load.sh"
pfs_init "$1" "$2"
N=${3:-10000}
NOFILE=${4:-}
OPTIONS=${5:-}
FLAGS=",${6:-},"
WRITERS=1
[[ $FLAGS =~ ,writers=([0-9]+), ]] && WRITERS=${BASH_REMATCH[1]}
PFS_NAME="load-many-files[$N${NOFILE:+,nofile=$NOFILE}${6:+,$6}]"

if [ -n "$NOFILE" ]; then
	ulimit -n "$NOFILE" || pfs_fail "ulimit -n $NOFILE"
	if [ "$(id -u)" = 0 ]; then
		command -v setpriv >/dev/null || pfs_skip "setpriv (util-linux) is needed as root"
		# Root may raise its hard limit (main.c does, to fs.nr_open):
		# the daemon runs without the capability that allows it.
		printf '#!/bin/sh\nexec setpriv --inh-caps -sys_resource --bounding-set -sys_resource -- "%s" "$@"\n' \
			"$PFS_EXE" >"$W/pressurefs-nofile"
		chmod +x "$W/pressurefs-nofile"
		PFS_EXE=$W/pressurefs-nofile
	fi
fi

pfs_mount -o "policy=retry,mem_limit=32M${OPTIONS:+,$OPTIONS}"
if [ -n "$NOFILE" ]; then
	limit=$(awk '/^Max open files/ { print $4 }' "/proc/$PFS_PID/limits")
	assert_eq "$NOFILE" "$limit" "the daemon runs with at most $NOFILE fds"
fi
stats_snap baseline
mkdir "$M/d" || pfs_fail "mkdir"

# One Python process does the whole phase: no fork per file.
phase() {
	pfs_run $((60 + N / 100)) "$PFS_PY" - "$@" <<'PY'
import os, random, sys
phase, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = ["file %06d \u00e9" % i for i in range(n)]
if phase == "create":
    writers = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    kids = []
    for w in range(writers):
        pid = os.fork() if writers > 1 else 0
        if pid:
            kids.append(pid)
            continue
        try:
            for i in range(w, n, writers):
                fd = os.open(os.path.join(d, names[i]),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, b"%d\n" % i)
                os.close(fd)
        except OSError as e:
            print("writer %d: %s" % (w, e), file=sys.stderr)
            os._exit(1)
        if writers > 1:
            os._exit(0)
    if any(os.waitpid(k, 0)[1] for k in kids):
        sys.exit("a writer failed")
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

assert_eq OK "$(phase create "$M/d" "$N" "$WRITERS")" "$N files created in one directory by $WRITERS writer(s)"
# close() reaches the daemon (FLUSH) only for files opened while the inode
# table was past the shrinker's mark (half the fd limit): that is where
# close() holds creators back. The other closes cost no round trip.
stats_snap created
flushes=$(stat_get created flush_requests)
if [ -n "$NOFILE" ]; then
	assert_ge "$flushes" 1 "closes of files opened while fds were short came to the daemon ($flushes)"
fi
assert_lt "$flushes" $((N / 2)) "$flushes of $N closes sent a FLUSH (only those opened past the mark)"
assert_eq OK "$(phase stat "$M/d" "$N")" "a sample of 1000 stats shows the right sizes"
assert_eq OK "$(phase list "$M/d" "$N")" "readdir through the mount lists each name exactly once"
ctl_write sync 1
assert_eq OK "$(phase list "$B/d" "$N")" "the backing dir holds the same $N names"
assert_eq OK "$(phase unlink "$M/d" "$N")" "$N files unlinked"
assert_eq 0 "$(find "$M/d" -mindepth 1 | wc -l)" "the directory is empty through the mount"
assert_eq 0 "$(find "$B/d" -mindepth 1 | wc -l)" "and in the backing dir"
pfs_leak_check baseline 65536 "after $N files came and went"
pfs_umount_clean
# "inode shrinker: D dentries dropped, W dirty files written back early, ..."
line=$(grep -m1 'inode shrinker: [0-9]* dentries dropped' "$PFS_LOG")
[ -z "$line" ] || pfs_say "${line#pressurefs: }"
if [ -n "$NOFILE" ]; then
	[ -n "$line" ] || pfs_fail "the daemon's log does not say the inode shrinker worked"
	read -r dropped written < <(sed -E 's/.*shrinker: ([0-9]+) dentries dropped, ([0-9]+) dirty.*/\1 \2/' <<<"$line")
	assert_ge "$dropped" $((N - NOFILE)) "the shrinker had the kernel drop $dropped dentries"
	if [[ $FLAGS == *,early-writeback,* ]]; then
		assert_ge "$written" 1 "it wrote $written dirty files back early to get there"
	fi
fi
