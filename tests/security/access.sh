#!/bin/bash
# Who may use the mount, with a second user (nobody):
#   - allow_other is off by default: nobody cannot even list the mount or
#     reach its control directory, and /proc/mounts has no allow_other;
#   - with allow_other, default_permissions is on (in /proc/mounts) unless
#     the user says otherwise, so the kernel checks modes: nobody cannot
#     read or overwrite the owner's 0600 file, nor create in a 0755 dir it
#     does not own;
#   - with allow_other, nobody reads stats and policy but gets EACCES
#     writing policy, mem_limit, balloon, crash; values kept, daemon alive.
# (tests/mount/ctl_access.sh covers every control file; this one covers the
# mount as a whole.)
# usage: access.sh PRESSUREFS PFS_MOUNT_IO
. "$(dirname "$0")/../mount/lib.sh"
pfs_init "$@"
PFS_NAME=security-access

[ "$(id -u)" = 0 ] || pfs_skip "switching to user nobody needs root"
pfs_use_nobody
# errno name of a command run as nobody: "OK" or e.g. "EACCES"
nobody_errno() {
	local out
	out=$(LC_ALL=C as_nobody "$@" 2>&1) && { echo OK; return; }
	case $out in
	*"Permission denied"*) echo EACCES ;;
	*"Operation not permitted"*) echo EPERM ;;
	*"No such file"*) echo ENOENT ;;
	*) echo "OTHER($out)" ;;
	esac
}
# Keep going after a failed check, so one run shows every consequence.
SOFT_FAILS=()
soft_check() { # expected actual what
	if [ "$1" = "$2" ]; then
		pfs_ok "$3"
	else
		printf '%s: FAIL: %s: expected %s, got %s\n' "$PFS_NAME" "$3" "$1" "$2" >&2
		SOFT_FAILS+=("$3")
	fi
}
mount_opts() { awk -v m="$M" '$2 == m { print $4 }' /proc/self/mounts; }
has_opt() { [[ ",$(mount_opts)," == *",$1,"* ]]; }

echo secret >"$B/secret"
chmod 600 "$B/secret"
mkdir "$B/private"
chmod 755 "$B/private"

# ---- allow_other off by default ----
pfs_mount -o policy=retry
if has_opt allow_other; then pfs_fail "allow_other is on without being asked: $(mount_opts)"; fi
pfs_ok "allow_other is off by default ($(mount_opts))"
assert_eq EACCES "$(nobody_errno ls "$M")" "nobody cannot list a mount without allow_other"
assert_eq EACCES "$(nobody_errno cat "$M/.pressurefs/stats")" "nobody cannot read stats without allow_other"
got=$(as_nobody "$PFS_T/io" put "$M/.pressurefs/crash" 1)
assert_eq EACCES "$got" "nobody cannot write crash without allow_other"
pfs_pid_alive "$PFS_PID" || pfs_fail "the daemon died"
pfs_umount_clean

# ---- a backing dir's name is not a mount option ----
# The daemon passes BACKING_DIR to libfuse as fsname=...; a ',' in it must
# not split off an option (",allow_other" would let every user in without
# default_permissions). Either the mount works without allow_other or it
# is refused with one line; it must never mount with allow_other.
B2="$PFS_T/b,allow_other"
mkdir -p "$B2"
chmod 755 "$B2"
cp -p "$B/secret" "$B2/secret"
# Not pfs_mount: refusing to mount is a pass here. The clean-up unmounts
# whatever is mounted under the temp root and ends the daemon.
timeout -k 5 20 "$PFS_EXE" -f "$B2" "$M" </dev/null >"$W/comma.log" 2>&1 &
comma_pid=$!
pfs_helper "$comma_pid"
for ((i = 0; i < 50; i++)); do
	pfs_is_mounted "$M" && break
	pfs_pid_alive "$comma_pid" || break
	sleep 0.1
done
if pfs_is_mounted "$M"; then
	opts=$(mount_opts)
	soft_check EACCES "$(nobody_errno cat "$M/secret")" \
		"nobody cannot read the 0600 file of a backing dir named '...,allow_other'"
	pfs_fusermount_u "$M" || pfs_fail "fusermount3 -u $M failed"
	wait "$comma_pid"
	if [[ ",$opts," == *",allow_other,"* ]] && [[ ",$opts," != *",default_permissions,"* ]]; then
		soft_check "no allow_other" "allow_other without default_permissions ($opts)" \
			"a ',allow_other' in BACKING_DIR's name does not become a mount option"
	else
		pfs_ok "a ',allow_other' in BACKING_DIR's name does not become a mount option ($opts)"
	fi
else
	wait "$comma_pid"
	pfs_ok "a BACKING_DIR with ',allow_other' in its name is refused, not turned into an option"
fi

# ---- allow_other on: default_permissions comes with it ----
pfs_mount -o allow_other,policy=retry,mem_limit=64M
has_opt allow_other || pfs_fail "allow_other missing from /proc/mounts: $(mount_opts)"
# Without default_permissions the kernel checks no mode, and the daemon
# (root) would serve every user: the checks below show what that costs.
soft_check yes "$(has_opt default_permissions && echo yes || echo no)" \
	"allow_other brings default_permissions (/proc/mounts: $(mount_opts))"
assert_eq OK "$(nobody_errno ls "$M")" "nobody lists the mount with allow_other"
soft_check EACCES "$(nobody_errno cat "$M/secret")" "nobody cannot read the owner's 0600 file"
got=$(as_nobody "$PFS_T/io" put "$M/secret" pwned)
soft_check EACCES "$got" "nobody cannot write the owner's 0600 file"
soft_check EACCES "$(nobody_errno touch "$M/private/x")" "nobody cannot create in a 0755 dir it does not own"
soft_check secret "$(cat "$M/secret")" "the 0600 file is unchanged"

# The control directory: read yes, write no.
as_nobody cat "$M/.pressurefs/stats" >"$W/stats.json" || pfs_fail "nobody cannot read stats"
assert_eq retry "$(json_get "$W/stats.json" policy)" "nobody reads stats"
for f in policy:enomem mem_limit:1M balloon:32M crash:1; do
	file=${f%%:*} value=${f#*:}
	before=$([ "$file" = crash ] || ctl_read "$file")
	got=$(as_nobody "$PFS_T/io" put "$M/.pressurefs/$file" "$value")
	assert_eq EACCES "$got" "nobody writing '$value' to $file"
	after=$([ "$file" = crash ] || ctl_read "$file")
	assert_eq "$before" "$after" "$file is unchanged after nobody's write"
done
pfs_pid_alive "$PFS_PID" || pfs_fail "the daemon died: nobody's write to crash was obeyed"
pfs_ok "the daemon survived nobody's write to crash"
# Control files keep their modes and owners, even for the owner (sysfs-like).
chmod 0666 "$M/.pressurefs/policy" 2>"$W/chmod.err" && pfs_fail "chmod of a control file succeeded"
grep -q "Operation not permitted" "$W/chmod.err" || pfs_fail "chmod of a control file: $(cat "$W/chmod.err"), expected EPERM"
chown nobody "$M/.pressurefs/policy" 2>/dev/null && pfs_fail "chown of a control file succeeded"
pfs_ok "chmod/chown of a control file get EPERM"
pfs_umount_clean
soft_check secret "$(cat "$B/secret")" "the 0600 file in the backing dir is unchanged"

# ---- the user can say otherwise: allow_other without default_permissions ----
pfs_mount -o allow_other,no_default_permissions,policy=retry
has_opt allow_other || pfs_fail "allow_other missing from /proc/mounts: $(mount_opts)"
if has_opt default_permissions; then
	pfs_fail "no_default_permissions was ignored: $(mount_opts)"
fi
pfs_ok "-o no_default_permissions keeps default_permissions off ($(mount_opts))"
pfs_umount_clean
[ ${#SOFT_FAILS[@]} = 0 ] || pfs_fail "${#SOFT_FAILS[@]} checks failed: ${SOFT_FAILS[*]}"
