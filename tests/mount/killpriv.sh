#!/bin/bash
# Proves the promise FUSE_HANDLE_KILLPRIV_V2 makes: with killpriv
# on (the default) the kernel stops asking for security.capability before
# every write(), and the daemon itself clears setuid, setgid and
# security.capability when a caller without CAP_FSETID writes, truncates or
# opens with O_TRUNC; a root writer keeps setuid/setgid. Modes are checked through
# the mount with `stat -c %a` (a mode-only statx, so a stale kernel cache
# shows) and in the backing dir. Then the GETXATTR count of N writes:
# small with killpriv=1, at least N with killpriv=0 (counted by the daemon
# as requests arrive, no clock involved).
# usage: killpriv.sh PRESSUREFS PFS_MOUNT_IO [EXTRA_OPTIONS]
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
EXTRA=${3:+,$3}

[ "$(id -u)" = 0 ] || pfs_fail "this test switches to user nobody and must run as root"
pfs_use_nobody
N=1000

mode_of() { stat -c %a -- "$1"; }

# fresh NAME MODE: a file of nobody's with MODE, made through the mount.
fresh() {
	pfs_must sh -c 'rm -f -- "$1" && printf base >"$1" && chown "$2:$3" "$1" && chmod "$4" "$1"' \
		_ "$M/$1" "$NOBODY_UID" "$NOBODY_GID" "$2"
	assert_eq "$2" "$(mode_of "$M/$1")" "$1 starts with mode $2"
}

# check_mode NAME MODE WHAT: through the mount and in the backing dir.
check_mode() {
	assert_eq "$2" "$(mode_of "$M/$1")" "$3 (mount)"
	assert_eq "$2" "$(mode_of "$B/$1")" "$3 (backing dir)"
}

caps_of() { # NAME: the security.capability value in hex, or the errno name
	"$PFS_PY" - "$1" <<'EOF'
import errno, os, sys
try:
    print(os.getxattr(sys.argv[1], "security.capability").hex())
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
}

getxattrs() { stats_snap "$1" && stat_get "$1" getxattr_requests; }

pfs_mount -o "allow_other,writeback_ms=600000$EXTRA"
stats_snap init
if [ "$(stat_get init killpriv_v2)" != 1 ]; then
	grep -q "does not offer FUSE_HANDLE_KILLPRIV_V2" "$PFS_LOG" &&
		pfs_skip "this kernel does not offer FUSE_HANDLE_KILLPRIV_V2"
	pfs_fail "killpriv_v2 is not on by default: $(cat "$W/init.json")"
fi
pfs_ok "stats report killpriv_v2 on by default"

# Write by nobody: setuid and setgid go, the data stays.
fresh w 6775
as_nobody sh -c 'printf more >>"$1"' _ "$M/w" || pfs_fail "nobody cannot append to w"
check_mode w 775 "a write by nobody clears setuid and setgid"
assert_eq basemore "$(cat "$M/w")" "nobody's write reached the file"
# A second write on a clear inode changes nothing.
as_nobody sh -c 'printf again >>"$1"' _ "$M/w" || pfs_fail "nobody cannot append to w again"
check_mode w 775 "a second write by nobody keeps the plain mode"
# chmod through the mount sets the bits again, and the next write clears them.
pfs_must chmod 4775 "$M/w"
as_nobody sh -c 'printf x >>"$1"' _ "$M/w" || pfs_fail "nobody cannot append to w after chmod"
check_mode w 775 "a write after chmod u+s clears setuid again"

# chown(f, -1, -1) by its owner clears setuid too (the kernel leaves it to us).
pfs_must chmod 4775 "$M/w"
as_nobody "$PFS_PY" -c 'import os, sys; os.chown(sys.argv[1], -1, -1)' "$M/w" ||
	pfs_fail "nobody cannot chown w to -1:-1"
check_mode w 775 "chown(w, -1, -1) by its owner clears setuid"

# Write by root (CAP_FSETID): the bits stay.
fresh r 6775
pfs_must sh -c 'printf more >>"$1"' _ "$M/r"
check_mode r 6775 "a write by root keeps setuid and setgid"

# Truncate by nobody.
fresh t 4755
as_nobody truncate -s 2 "$M/t" || pfs_fail "nobody cannot truncate t"
check_mode t 755 "truncate by nobody clears setuid"
assert_eq ba "$(cat "$M/t")" "nobody's truncate took effect"

# open(O_TRUNC) by nobody, on an empty file too (no data changes at all).
fresh o 6775
as_nobody sh -c ': >"$1"' _ "$M/o" || pfs_fail "nobody cannot open o with O_TRUNC"
check_mode o 775 "open(O_TRUNC) by nobody clears setuid and setgid"
pfs_must chmod 4775 "$M/o"
as_nobody sh -c ': >"$1"' _ "$M/o" || pfs_fail "nobody cannot open empty o with O_TRUNC"
check_mode o 775 "open(O_TRUNC) of an empty file by nobody clears setuid"

# security.capability (a valid v2 blob: effective, CAP_NET_RAW permitted).
fresh c 755
CAPS=0100000200200000000000000000000000000000
pfs_must "$PFS_PY" -c 'import os, sys; os.setxattr(sys.argv[1], "security.capability", bytes.fromhex(sys.argv[2]))' \
	"$M/c" "$CAPS"
assert_eq "$CAPS" "$(caps_of "$M/c")" "security.capability is set through the mount"
as_nobody sh -c 'printf more >>"$1"' _ "$M/c" || pfs_fail "nobody cannot append to c"
assert_eq ENODATA "$(caps_of "$M/c")" "a write by nobody removes security.capability (mount)"
assert_eq ENODATA "$(caps_of "$B/c")" "a write by nobody removes security.capability (backing dir)"
# Unlike setuid, file capabilities go on any write, root's too (as on ext4).
pfs_must "$PFS_PY" -c 'import os, sys; os.setxattr(sys.argv[1], "security.capability", bytes.fromhex(sys.argv[2]))' \
	"$M/c" "$CAPS"
pfs_must sh -c 'printf more >>"$1"' _ "$M/c"
assert_eq ENODATA "$(caps_of "$B/c")" "a write by root removes security.capability too"

# chown by root: the backing fs clears setuid/setgid itself (the daemon
# chowns as root, and the VFS clears them on any chown of a regular file).
fresh g 6775
pfs_must chown 0:0 "$M/g"
check_mode g 775 "chown by root clears setuid and setgid"

# The cost: N writes, GETXATTR requests counted by the daemon.
pfs_must dd if=/dev/zero of="$M/n" bs=4096 count=1 status=none
before=$(getxattrs kp_before)
pfs_must dd if=/dev/zero of="$M/n" bs=4096 count=$N conv=notrunc status=none
after=$(getxattrs kp_after)
pfs_say "killpriv=1: $((after - before)) GETXATTR requests for $N writes"
assert_lt $((after - before)) $((N / 10)) "killpriv=1: few GETXATTR requests for $N writes"
pfs_umount_clean

pfs_mount -o "allow_other,killpriv=0$EXTRA"
stats_snap off
assert_eq 0 "$(stat_get off killpriv_v2)" "killpriv=0: stats report killpriv_v2 off"
pfs_must dd if=/dev/zero of="$M/n" bs=4096 count=1 conv=notrunc status=none
before=$(getxattrs off_before)
pfs_must dd if=/dev/zero of="$M/n" bs=4096 count=$N conv=notrunc status=none
after=$(getxattrs off_after)
pfs_say "killpriv=0: $((after - before)) GETXATTR requests for $N writes"
assert_ge $((after - before)) $N "killpriv=0: a GETXATTR request per write"
# The kernel clears the bits itself then.
fresh w0 6775
as_nobody sh -c 'printf more >>"$1"' _ "$M/w0" || pfs_fail "nobody cannot append to w0"
check_mode w0 775 "killpriv=0: a write by nobody clears setuid and setgid"
pfs_umount_clean
pfs_say "all $PFS_CHECKS checks passed"
