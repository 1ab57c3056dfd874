#!/bin/bash
# File names cannot forge the `dirty` listing: a tool that measures
# data loss must not be fooled by them. `dirty` is one "INO OFFSET LENGTH PATH"
# line per dirty range, PATH last; a name holding a newline followed by a
# line of its own ("a\n999 0 4096 fake") must not add a range that does not
# exist. Names with spaces, tabs, backslashes and UTF-8 must come out so
# that a reader splitting at the first three spaces gets the name back
# (after undoing the escaping the daemon documents).
# usage: dirty_names.sh PRESSUREFS PFS_MOUNT_IO
. "$(dirname "$0")/../mount/lib.sh"
pfs_init "$@"
PFS_NAME=security-dirty-names

pfs_mount -o policy=retry,writeback_ms=600000
"$PFS_PY" - "$M" <<'PY' || pfs_fail "cannot create the files"
import os, sys
m = sys.argv[1]
for name in ["a\n999 0 4096 fake", "sp ace", "tab\there", "back\\slash", "\u00e9t\u00e9"]:
    with open(os.path.join(m, name), "w") as f:
        f.write("x" * 10)
PY
ctl_read dirty >"$W/dirty"
lines=$(wc -l <"$W/dirty")
assert_eq 5 "$lines" "five dirty files give five dirty lines"
if grep -q '^999 ' "$W/dirty"; then
	pfs_fail "a file name forged a dirty range: $(cat -A "$W/dirty")"
fi
pfs_ok "no forged range"
while read -r ino off len path; do
	[[ $ino =~ ^[0-9]+$ && $off =~ ^[0-9]+$ && $len =~ ^[0-9]+$ ]] ||
		pfs_fail "malformed dirty line: $ino $off $len $path"
done <"$W/dirty"
pfs_ok "every line is INO OFFSET LENGTH PATH"
pfs_umount_clean
