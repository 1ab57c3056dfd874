#!/bin/bash
# Proves the ctldir option: hidden (default) shadows a backing file named
# .pressurefs with the control dir and leaves it out of ls -a; none removes
# the control dir (the backing file shows through); visible lists it in
# ls -a of the root.
# usage: ctldir.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"

printf 'backing file\n' >"$B/.pressurefs"
printf 'x\n' >"$B/plain"

pfs_mount -o ctldir=hidden
assert_eq directory "$(pfs_run 10 stat -c %F "$M/.pressurefs")" "hidden: .pressurefs is the control dir (shadows the backing file)"
ctl_read stats >"$W/stats.json" || exit 1
assert_eq retry "$(json_get "$W/stats.json" policy)" "hidden: stats readable by name"
listing=$(pfs_run 10 ls -a "$M") || pfs_fail "ls -a"
grep -qx plain <<<"$listing" || pfs_fail "ls -a misses an ordinary file"
if grep -qx .pressurefs <<<"$listing"; then pfs_fail "hidden: ls -a lists .pressurefs"; fi
pfs_ok "hidden: ls -a of the root does not list .pressurefs"
pfs_umount_clean

pfs_mount -o ctldir=none
assert_eq "regular file" "$(pfs_run 10 stat -c %F "$M/.pressurefs")" "none: .pressurefs is the backing file"
assert_eq "backing file" "$(pfs_run 10 cat "$M/.pressurefs")" "none: the backing file's content"
if pfs_run 10 test -e "$M/.pressurefs/stats"; then pfs_fail "none: .pressurefs/stats exists"; fi
pfs_ok "none: no control files"
pfs_umount_clean

rm -f "$B/.pressurefs"
pfs_mount -o ctldir=none
if pfs_run 10 test -e "$M/.pressurefs"; then pfs_fail "none: .pressurefs exists without a backing file"; fi
pfs_ok "none: .pressurefs does not exist"
pfs_umount_clean

pfs_mount -o ctldir=visible
listing=$(pfs_run 10 ls -a "$M") || pfs_fail "ls -a"
grep -qx .pressurefs <<<"$listing" || pfs_fail "visible: ls -a does not list .pressurefs: ${listing//$'\n'/ }"
pfs_ok "visible: ls -a lists .pressurefs"
assert_eq directory "$(pfs_run 10 stat -c %F "$M/.pressurefs")" "visible: it is the control dir"
assert_eq retry "$(ctl_read policy | cut -d, -f1)" "visible: control files work"
pfs_umount_clean
