#!/bin/bash
# A policy plugin is loaded only from the plugin directory or an explicit
# path the mounting user gave, never from the current directory by accident.
# A shared object whose constructor leaves a marker
# is planted in the current directory as foo.so and as retry.so (the name of
# a real policy); the mount is started from there, with LD_LIBRARY_PATH=.
# too. Then:
#   policy=foo    refused before mounting (unknown policy), status 1, no marker;
#   policy=retry  the real retry from the plugin dir, no marker;
#   policy=./foo.so (an explicit path) is the user's choice: it is opened
#                 (the marker appears) and refused as not a plugin, status 1,
#                 nothing mounted — which proves the marker would show a load.
# usage: policy_cwd.sh PRESSUREFS PFS_MOUNT_IO MARKER_SO
. "$(dirname "$0")/../mount/lib.sh"
MARKER_SO=$(realpath -e "${3:?usage: policy_cwd.sh PRESSUREFS PFS_MOUNT_IO MARKER_SO}") ||
	{ echo "policy_cwd.sh: $3 missing" >&2; exit 1; }
pfs_init "$(realpath -e "$1")" "$(realpath -e "$2")"
PFS_NAME=security-policy-cwd

CWD=$PFS_T/cwd
mkdir -p "$CWD"
cp "$MARKER_SO" "$CWD/foo.so"
cp "$MARKER_SO" "$CWD/retry.so"
export PFS_MARKER=$W/marker
cd "$CWD" || pfs_fail "cd $CWD"

# policy=foo: refused, nothing mounted, the planted foo.so never opened.
out=$(LD_LIBRARY_PATH=. pfs_run 30 "$PFS_EXE" -f -o policy=foo "$B" "$M" 2>&1)
rc=$?
assert_eq 1 "$rc" "policy=foo with foo.so in the current dir exits 1"
assert_match "^pressurefs: unknown policy 'foo'" "$out" "and says the policy is unknown"
pfs_is_mounted "$M" && pfs_fail "policy=foo mounted something"
[ ! -e "$PFS_MARKER" ] || pfs_fail "policy=foo loaded ./foo.so from the current directory"
pfs_ok "./foo.so was not loaded"

# policy=retry: the plugin dir's retry, not ./retry.so.
LD_LIBRARY_PATH=. pfs_mount -o policy=retry
assert_eq retry "$(ctl_read policy | cut -d, -f1)" "policy=retry is in force"
pfs_umount_clean
[ ! -e "$PFS_MARKER" ] || pfs_fail "policy=retry loaded ./retry.so from the current directory"
pfs_ok "./retry.so was not loaded; the plugin dir's retry was"

# An explicit path is honoured (and this marker proves a load is seen).
out=$(pfs_run 30 "$PFS_EXE" -f -o policy=./foo.so "$B" "$M" 2>&1)
rc=$?
assert_eq 1 "$rc" "policy=./foo.so (not a plugin) exits 1"
assert_match "^pressurefs: .*foo.so" "$out" "and names the file"
pfs_is_mounted "$M" && pfs_fail "policy=./foo.so mounted something"
[ -e "$PFS_MARKER" ] || pfs_fail "the marker did not appear for an explicit path: the test could not see a load"
pfs_ok "an explicit path is opened (marker seen), refused as not a plugin"
