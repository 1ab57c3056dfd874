#!/bin/bash
# A 4 GiB sparse file with scattered writes: the file is
# extended to 4 GiB with ftruncate, 64 blocks of 4 KiB random data are
# written at random offsets (seeded; some straddle a page boundary), and
# the last byte of the file is written. Proves: each spot reads back
# through the mount (from the cache) and, after fsync and a remount, from
# the backing file; a hole between them reads as zeros; st_size is 4 GiB
# exactly and st_blocks stays small (the daemon never fills holes: at most
# one cache page per spot was written); the write-back reaches the backing
# file with the same content and stays sparse there.
# usage: sparse.sh PRESSUREFS PFS_MOUNT_IO [SEED]
. "$(dirname "$0")/../mount/lib.sh"
. "$(dirname "$0")/lib_load.sh"
pfs_init "$1" "$2"
SEED=${3:-4}
PFS_NAME=load-sparse-4g
SIZE=$((4 << 30))
PAGE=64K

check() { # MODE FILE: write or check the spots; prints OK or what is wrong
	pfs_run 300 "$PFS_PY" - "$@" "$SIZE" "$SEED" <<'PY'
import os, random, sys
mode, path, size, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
spots = []
for i in range(64):
    off = rng.randrange(0, size - 8192)
    if i % 8 == 0:                      # straddle a 64 KiB page boundary
        off = (off // 65536) * 65536 + 65536 - 2048
    spots.append((off, rng.randbytes(4096)))
spots.append((size - 1, b"Z"))
if mode == "write":
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, size)
    for off, data in spots:
        if os.pwrite(fd, data, off) != len(data):
            sys.exit("short write at %d" % off)
    os.close(fd)
    print("OK")
    sys.exit(0)
fd = os.open(path, os.O_RDONLY)
st = os.fstat(fd)
if st.st_size != size:
    sys.exit("st_size %d, expected %d" % (st.st_size, size))
# Later spots may overlap earlier ones: check against the final image.
for i, (off, data) in enumerate(spots):
    want = bytearray(data)
    for off2, data2 in spots[i + 1:]:
        lo, hi = max(off, off2), min(off + len(data), off2 + len(data2))
        if lo < hi:
            want[lo - off:hi - off] = data2[lo - off2:hi - off2]
    got = os.pread(fd, len(data), off)
    if got != bytes(want):
        sys.exit("spot %d at %d reads back wrong" % (i, off))
# A hole far from every spot reads as zeros.
for probe in (4096 * 3, size // 2 + 12345, size - 70000):
    if any(off - 131072 < probe < off + 131072 for off, _ in spots):
        continue
    if os.pread(fd, 4096, probe) != bytes(4096):
        sys.exit("the hole at %d is not zeros" % probe)
print("OK blocks=%d" % st.st_blocks)
PY
}

pfs_mount -o "policy=retry,mem_limit=64M,page_size=$PAGE,writeback_ms=600000"
stats_snap baseline
assert_eq OK "$(check write "$M/sparse")" "4 GiB sparse file with 65 scattered writes"
out=$(check read "$M/sparse")
assert_match '^OK' "$out" "every spot reads back from the cache, holes are zeros"
assert_eq OK "$(pfs_fsync "$M/sparse")" "fsync of the sparse file"
blocks=$(stat -c %b "$M/sparse")
# 65 spots, each at most two 64 KiB pages written back: 130 * 128 sectors.
assert_lt "$blocks" $((130 * 128 + 1)) "st_blocks through the mount stays small"
pfs_leak_check baseline 65536 "after the sparse file"
pfs_umount_clean

assert_eq "$SIZE" "$(stat -c %s "$B/sparse")" "the backing file is 4 GiB"
assert_lt "$(stat -c %b "$B/sparse")" $((130 * 128 + 1)) "the backing file stays sparse"
out=$(check read "$B/sparse")
assert_match '^OK' "$out" "the backing file holds every spot"
pfs_mount -o policy=retry,page_size=4K
out=$(check read "$M/sparse")
assert_match '^OK' "$out" "a fresh mount with another page size reads every spot back"
pfs_umount_clean
