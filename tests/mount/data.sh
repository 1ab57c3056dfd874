#!/bin/bash
# Proves, for one policy with no memory pressure: aligned, unaligned, sparse,
# appended, overwritten, truncated (down and up) writes and many tiny writes
# read back identically through the mount, and land byte for byte in the
# backing files after fsync and after unmount (compared with a model file
# built outside the mount by the same operations). Also: O_TRUNC on open,
# rename and a hard link stay coherent, st_ino is the backing inode number,
# and a remount reads the same bytes.
# usage: data.sh PRESSUREFS PFS_MOUNT_IO POLICY [MORE_MOUNT_OPTIONS]
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
POLICY=${3:?policy}
OPTS="policy=$POLICY${4:+,$4}"
PFS_NAME="data[$OPTS]"

mkdir -p "$W/model"
head -c $((8 << 20)) /dev/urandom >"$W/rand" || pfs_fail "urandom"

# step WHAT FILE CMD...: run CMD with {} replaced by the model file, then by
# the file in the mount, and compare both (content and size).
step() {
	local what=$1 f=$2 arg args
	shift 2
	for target in "$W/model/$f" "$M/$f"; do
		args=()
		for arg in "$@"; do args+=("${arg//\{\}/$target}"); done
		pfs_run "$PFS_OP_TIMEOUT" "${args[@]}" || pfs_fail "$what on $target failed: ${args[*]}"
	done
	assert_file_eq "$W/model/$f" "$M/$f" "$what: $f reads back through the mount"
	assert_eq "$(stat -c %s "$W/model/$f")" "$(pfs_run 10 stat -c %s "$M/$f")" "$what: $f size"
}

dd_at() { # SRC_OFF LEN DST_OFF -> a step command on {}
	echo dd if="$W/rand" of={} bs=65536 iflag=skip_bytes,count_bytes oflag=seek_bytes \
		skip="$1" count="$2" seek="$3" conv=notrunc status=none
}

backing_matches() { # what
	local f
	for f in "$@"; do
		assert_file_eq "$W/model/$f" "$B/$f" "$WHEN: backing $f is byte for byte the model"
	done
}

pfs_mount -o "$OPTS"

# shellcheck disable=SC2046
{
step "aligned write of 4 pages" a $(dd_at 0 262144 0)
step "unaligned write" a $(dd_at 300001 70001 12345)
step "overwrite across page boundaries" a $(dd_at 1000003 131073 65000)
step "sparse write far past EOF" a $(dd_at 7 10 5242883)
}
WHEN="after fsync"
assert_eq OK "$(pfs_fsync "$M/a")" "fsync a"
backing_matches a

# shellcheck disable=SC2046
{
step "append (O_APPEND)" a bash -c 'head -c 100003 "$1" >> "$2"' _ "$W/rand" {}
step "append again" a bash -c 'tail -c 65536 "$1" >> "$2"' _ "$W/rand" {}
step "truncate down" a truncate -s 100000 {}
step "truncate up (zeros after the old end)" a truncate -s 3000000 {}
step "write across the new end" a $(dd_at 2000 5000 2999000)
step "300 writes of 7 bytes" a dd if="$W/rand" of={} bs=7 count=300 seek=143 conv=notrunc status=none
step "truncate to a page boundary" a truncate -s 65536 {}
step "rewrite the cut tail" a $(dd_at 4096 100000 60000)

step "create b" b cp "$W/rand" {}
step "O_TRUNC open rewrites b smaller" b bash -c 'head -c 12345 "$1" > "$2"' _ "$W/rand" {}
step "truncate b to zero" b truncate -s 0 {}
step "write b again" b $(dd_at 77 200000 3)

step "create c" c $(dd_at 5000 150000 0)
}
pfs_must mv "$M/c" "$M/d"
mv "$W/model/c" "$W/model/d"
assert_file_eq "$W/model/d" "$M/d" "renamed file keeps its cached data"
pfs_must ln "$M/d" "$M/e"
ln "$W/model/d" "$W/model/e"
# shellcheck disable=SC2046
step "write through a hard link" e $(dd_at 400000 70000 100000)
assert_file_eq "$W/model/d" "$M/d" "the other name sees the write (one inode, one cache)"
assert_eq "$(stat -c %i "$B/d")" "$(pfs_run 10 stat -c %i "$M/e")" "st_ino through the mount is the backing inode"
assert_eq 2 "$(pfs_run 10 stat -c %h "$M/d")" "link count"

for f in a b d; do
	assert_eq OK "$(pfs_fsync "$M/$f")" "fsync $f"
done
WHEN="after fsync"
backing_matches a b d e

WHEN="after unmount"
pfs_umount_clean
backing_matches a b d e

pfs_mount -o "$OPTS"
for f in a b d e; do
	assert_file_eq "$W/model/$f" "$M/$f" "after remount: $f reads back"
done
ctl_write drop_caches 1
assert_file_eq "$W/model/a" "$M/a" "after drop_caches: a reads back from the backing file"
pfs_umount_clean
