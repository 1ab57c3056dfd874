#!/bin/bash
# Proves only the mount's owner may write control files: with allow_other,
# another user (nobody) can read policy and stats, but every write it tries
# (policy, mem_limit, balloon, drop_caches, sync, crash) fails with EACCES
# and changes nothing, while the owner's writes still work. The writes are
# tried twice: as plain nobody (the kernel's mode check may already refuse
# when default_permissions is on) and as nobody holding CAP_DAC_OVERRIDE,
# which passes every mode check, so only the daemon's own owner check can
# refuse.
# usage: ctl_access.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"

[ "$(id -u)" = 0 ] || pfs_fail "this test switches to user nobody and must run as root"
pfs_use_nobody
# Another uid that the kernel's permission checks let through.
as_nobody_dac() {
	pfs_run 30 setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
		--inh-caps=+dac_override --ambient-caps=+dac_override "$@"
}
as_nobody_dac true || pfs_fail "setpriv cannot keep CAP_DAC_OVERRIDE for another uid"

pfs_mount -o allow_other,policy=retry,mem_limit=64M
C=$M/.pressurefs

out=$(as_nobody cat "$C/policy") || pfs_fail "nobody cannot read policy: $out"
assert_eq "$(ctl_read policy)" "$out" "nobody reads policy"
as_nobody cat "$C/stats" >"$W/stats.json" || pfs_fail "nobody cannot read stats"
assert_eq retry "$(json_get "$W/stats.json" policy)" "nobody reads stats"

check_eacces() { # file value [wo]
	local before="(write-only)" after="(write-only)" got
	[ "${3:-}" = wo ] || before=$(ctl_read "$1") || exit 1
	got=$(as_nobody "$PFS_T/io" put "$C/$1" "$2")
	[ "$got" = EACCES ] || pfs_fail "nobody writing '$2' to $1: expected EACCES, got '$got'"
	got=$(as_nobody_dac "$PFS_T/io" put "$C/$1" "$2")
	[ "$got" = EACCES ] || pfs_fail "nobody with CAP_DAC_OVERRIDE writing '$2' to $1: expected EACCES, got '$got'"
	[ "${3:-}" = wo ] || after=$(ctl_read "$1") || exit 1
	[ "$before" = "$after" ] || pfs_fail "nobody's write changed $1 from '$before' to '$after'"
	pfs_ok "nobody writing '$2' to $1 gets EACCES (with or without CAP_DAC_OVERRIDE), value kept"
}
check_eacces policy enomem
check_eacces mem_limit 1M
check_eacces balloon 32M
check_eacces fail_probability 100
check_eacces drop_caches 1 wo
check_eacces sync 1 wo
check_eacces crash 1 wo
pfs_pid_alive "$PFS_PID" || pfs_fail "the daemon died: nobody's write to crash was obeyed"
pfs_ok "the daemon survived nobody's write to crash"

# The owner still may.
ctl_write policy enomem
assert_eq enomem "$(ctl_read policy)" "the owner switches the policy"
# 16M: room for files beside the worker pool charged at mount.
ctl_write mem_limit 16M
assert_eq 16777216 "$(ctl_read mem_limit)" "the owner sets mem_limit"
# Ordinary files stay usable by nobody where the backing modes allow it.
pfs_must install -m 666 /dev/null "$M/shared"
out=$(as_nobody "$PFS_T/io" write "$M/shared" 0 1000)
assert_eq OK "$out" "nobody writes a file it may write"
pfs_umount_clean
