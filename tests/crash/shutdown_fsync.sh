#!/bin/bash
# shutdown_fsync.sh PFS_SHUTDOWN_FSYNC [ITERATIONS]: the ext4 half of the
# seed 7025 finding (README.md), without pressurefs. Each iteration makes a
# fresh ext4 image, mounts it on a loop device, runs pfs-shutdown-fsync on it
# (four threads appending 64 KiB + fsync, FS_IOC_SHUTDOWN NOLOGFLUSH after a
# random 50..349 ms), unmounts, mounts again (the journal is replayed) and
# compares each file's size with what its last successful fsync covered.
# Prints every file that lost fsynced data and a summary line; exit status 0
# when it ran (a loss is a finding about the kernel, not a failure of this
# script), 1 when it could not run. Needs root, loop devices, mkfs.ext4.
# Not a CI test: the window is narrow and hit only now and then (README.md
# has the figures).
set -u -o pipefail
PROBE=$(realpath -e "${1:?usage: shutdown_fsync.sh PFS_SHUTDOWN_FSYNC [ITERATIONS]}") ||
	{ echo "shutdown_fsync.sh: $1 is missing" >&2; exit 1; }
N=${2:-20}
case $N in '' | *[!0-9]*) echo "shutdown_fsync.sh: ITERATIONS '$N': expected a number" >&2; exit 1 ;; esac
[ "$(id -u)" = 0 ] || { echo "shutdown_fsync.sh: needs root (mount -o loop)" >&2; exit 1; }
T=$(mktemp -d /tmp/pfs-shutdown-fsync.XXXXXX) || exit 1
cleanup() {
	mountpoint -q "$T/e" && umount "$T/e"
	rm -rf --one-file-system "$T"
}
trap cleanup EXIT
mkdir -p "$T/e"
after=0 lost=0
for ((i = 1; i <= N; i++)); do
	truncate -s 256M "$T/img" && mkfs.ext4 -q -F -E nodiscard "$T/img" ||
		{ echo "shutdown_fsync.sh: cannot make an ext4 image" >&2; exit 1; }
	timeout 30 mount -o loop -t ext4 "$T/img" "$T/e" ||
		{ echo "shutdown_fsync.sh: cannot mount the image on a loop device" >&2; exit 1; }
	out=$(timeout 60 "$PROBE" "$T/e" $((50 + RANDOM % 300))) || { umount "$T/e"; exit 1; }
	timeout 60 umount "$T/e" && timeout 30 mount -o loop -t ext4 "$T/img" "$T/e" ||
		{ echo "shutdown_fsync.sh: the image does not mount again" >&2; exit 1; }
	while read -r id end n_after; do
		size=$(stat -c %s "$T/e/f$id" 2>/dev/null || echo 0)
		after=$((after + n_after))
		if [ "$size" -lt "$end" ]; then
			lost=$((lost + 1))
			echo "iteration $i, f$id: fsync covered $end bytes, $size after the replay ($n_after fsync(s) returned 0 after the shutdown began)"
		fi
	done <<<"$out"
	timeout 60 umount "$T/e"
done
echo "iterations=$N fsyncs_ok_after_shutdown_began=$after files_short_of_their_fsync=$lost"
