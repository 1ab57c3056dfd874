#!/bin/bash
# Runs one POSIX conformance executable, or the exerciser, on a plain temp
# directory (no mount): the proof that the test itself is right, since it
# must pass on the host filesystem (ext4 on the CI machine).
# usage: posix_plain.sh TEST_EXE
#        posix_plain.sh --fsx PFS_FSX [pfs-fsx options]
# The exerciser's "remount" is a sync here: there is nothing to remount.
set -u -o pipefail

# Absolute paths before the cd below.
args=()
for a in "$@"; do
	if [ -x "$a" ] && [ -f "$a" ]; then a=$(realpath "$a"); fi
	args+=("$a")
done
set -- "${args[@]}"

d=$(mktemp -d "${TMPDIR:-/tmp}/pfs-posix-plain.XXXXXX") || exit 1
chmod 755 "$d" # the tests acting as nobody must reach it
trap 'cd / && rm -rf --one-file-system "$d"' EXIT
cd "$d" || exit 1
mkdir t && chmod 755 t

if [ "${1:-}" = --fsx ]; then
	exe=${2:?pfs-fsx}
	shift 2
	timeout -k 5 600 "$exe" --file "$d/t/fsx" --remount-cmd sync "$@"
	exit
fi
exe=${1:?test executable}
PFS_POSIX_DIR=$d/t timeout -k 5 300 "$exe"
