#!/bin/bash
# Proves the control directory works as the spec says: hidden from ls -a of
# the root but reachable by name; every file readable (or write-only) with
# the right mode; valid writes read back; malformed writes fail with EINVAL
# and change nothing; the policy switched at run time shows in stats and
# changes what writes meet (retry counts caller retries, enomem does not;
# a balloon squeeze makes writes fail with ENOMEM until it is let go);
# `dirty` lists a file's unwritten range and is empty after `sync`.
# usage: ctl.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"

pfs_mount -o policy=retry,retries=2,backoff_ms=1,mem_limit=8M,page_size=64K,writeback_ms=600000
C=$M/.pressurefs

# ---- visibility and modes ----
listing=$(pfs_run 10 ls -a "$M") || pfs_fail "ls -a of the root"
if grep -qx '.pressurefs' <<<"$listing"; then
	pfs_fail "ls -a of the root shows .pressurefs (ctldir=hidden is the default)"
fi
pfs_ok "ls -a of the root hides .pressurefs"
ctl_list=$(pfs_run 10 ls "$C") || pfs_fail "ls $C fails"
RW_FILES="policy mem_limit balloon fail_probability fail_interval fail_times fail_space fail_sites fail_seed fail_verbose dirty_limit clean_limit writeback_ms fail_nth dirty_throttle writeback_delay_us"
RO_FILES="stats dirty"
WO_FILES="drop_caches sync crash"
for f in $RW_FILES $RO_FILES $WO_FILES; do
	grep -qx "$f" <<<"$ctl_list" || pfs_fail "ls .pressurefs does not list $f (got: ${ctl_list//$'\n'/ })"
done
pfs_ok "ls .pressurefs lists every control file"
# Owned by the mount's owner (this script's user, root or not).
me=$(id -u)
for f in $RW_FILES; do assert_eq "644 $me" "$(pfs_run 10 stat -c '%a %u' "$C/$f")" "mode/owner of $f"; done
for f in $RO_FILES; do assert_eq "444 $me" "$(pfs_run 10 stat -c '%a %u' "$C/$f")" "mode/owner of $f"; done
for f in $WO_FILES; do assert_eq "200 $me" "$(pfs_run 10 stat -c '%a %u' "$C/$f")" "mode/owner of $f"; done
assert_eq directory "$(pfs_run 10 stat -c %F "$C")" ".pressurefs is a directory"

# ---- initial values (the mount options) ----
assert_eq "retry,retries=2,backoff_ms=1,backoff_max_ms=1000" "$(ctl_read policy)" "policy from the mount options"
assert_eq 8388608 "$(ctl_read mem_limit)" "mem_limit=8M reads as bytes"
assert_eq 0 "$(ctl_read balloon)" "balloon default"
assert_eq 0 "$(ctl_read fail_probability)" "fail_probability default"
assert_eq 1 "$(ctl_read fail_interval)" "fail_interval default"
assert_eq -1 "$(ctl_read fail_times)" "fail_times default"
assert_eq 0 "$(ctl_read fail_space)" "fail_space default"
assert_eq all "$(ctl_read fail_sites)" "fail_sites default"
assert_eq 1 "$(ctl_read fail_seed)" "fail_seed default"
assert_eq 0 "$(ctl_read fail_verbose)" "fail_verbose default"
assert_eq 600000 "$(ctl_read writeback_ms)" "writeback_ms from the mount options"
dl=$(ctl_read dirty_limit) || exit 1
[ "$dl" = 0 ] || [ "$dl" = 4194304 ] || pfs_fail "dirty_limit auto with mem_limit=8M: expected 0 or 4194304, got '$dl'"
pfs_ok "dirty_limit auto"
assert_eq 0 "$(ctl_read clean_limit)" "clean_limit default (auto)"
assert_eq "" "$(ctl_read dirty)" "dirty is empty on a fresh mount"
stats_snap s0
assert_eq retry "$(stat_get s0 policy)" "stats.policy"

# ---- valid writes read back ----
check_write() { # file value expected
	ctl_write "$1" "$2"
	assert_eq "$3" "$(ctl_read "$1")" "write '$2' to $1 reads back"
}
check_write mem_limit 64M 67108864
check_write mem_limit 1G 1073741824
check_write mem_limit 16777216 16777216
check_write balloon 1K 1024
check_write balloon 0 0
check_write fail_probability 5 5
check_write fail_interval 3 3
check_write fail_times 10 10
check_write fail_times -1 -1
check_write fail_space 4K 4096
check_write fail_seed 42 42
check_write fail_verbose 1 1
check_write fail_verbose 0 0
check_write dirty_limit 8M 8388608
check_write clean_limit 2M 2097152
check_write clean_limit 0 0
check_write writeback_ms 1000 1000
check_write writeback_ms 600000 600000
check_write fail_sites cache_page+writeback cache_page,writeback
check_write fail_sites writeback,cache_page cache_page,writeback
check_write fail_sites cache_page:inode cache_page,inode
check_write fail_sites all all
ctl_write fail_sites none
v=$(ctl_read fail_sites) || exit 1
[ "$v" = none ] || [ "$v" = "" ] || pfs_fail "fail_sites after 'none': got '$v'"
pfs_ok "fail_sites none"
check_write fail_sites all all
check_write fail_probability 0 0
# Without the trailing newline too.
assert_eq OK "$(ctl_try fail_seed 7)" "write without newline accepted"
assert_eq 7 "$(ctl_read fail_seed)" "and read back"

# ---- malformed writes: EINVAL, nothing changes ----
check_einval() { # file value
	local before after got
	before=$(ctl_read "$1") || exit 1
	got=$(ctl_try "$1" "$2")
	[ "$got" = EINVAL ] || pfs_fail "write '$2' to $1: expected EINVAL, got $got"
	after=$(ctl_read "$1") || exit 1
	[ "$before" = "$after" ] || pfs_fail "malformed write '$2' changed $1 from '$before' to '$after'"
	pfs_ok "$1 refuses '$2' with EINVAL and keeps '$before'"
}
check_einval mem_limit 12Q
check_einval mem_limit -1
check_einval mem_limit abc
check_einval mem_limit $'\n'
check_einval mem_limit 99999999999999999999
check_einval mem_limit 99999999999G
check_einval mem_limit "1K1"
check_einval mem_limit "$(head -c 5000 /dev/zero | tr '\0' '1')"
check_einval balloon x
check_einval fail_probability 101
check_einval fail_probability -5
check_einval fail_probability abc
check_einval fail_interval 0
check_einval fail_times abc
check_einval fail_seed abc
check_einval fail_verbose 2
check_einval writeback_ms x
check_einval writeback_ms -1
check_einval dirty_limit 12Q
check_einval clean_limit 1X
check_einval fail_sites bogus
check_einval fail_sites cache_page,bogus
check_einval policy bogus
check_einval policy retry,bogus=1
check_einval policy enomem,retries=3
check_einval policy retry,retries=abc
check_einval policy retry,retries=-1
check_einval policy $'\n'
for f in drop_caches sync; do
	got=$(ctl_try "$f" x)
	assert_eq EINVAL "$got" "$f refuses 'x'"
done

# ---- policy switch at run time ----
ctl_write policy enomem
assert_eq enomem "$(ctl_read policy)" "policy switched to enomem"
stats_snap s1
assert_eq enomem "$(stat_get s1 policy)" "stats.policy follows the switch"
ctl_write policy "retry retries=4 backoff_ms=1"
assert_eq "retry,retries=4,backoff_ms=1,backoff_max_ms=1000" "$(ctl_read policy)" "policy 'NAME arg=v' form"
ctl_write policy retry,retries=3,backoff_ms=1
assert_eq "retry,retries=3,backoff_ms=1,backoff_max_ms=1000" "$(ctl_read policy)" "policy 'NAME,arg=v' form"
stats_snap s2
assert_eq retry "$(stat_get s2 policy)" "stats.policy back to retry"
assert_match 'retries=3' "$(stat_get s2 policy_args)" "stats.policy_args shows the arguments"

# Behaviour: every cache page allocation fails by injection.
assert_eq OK "$(pfs_run 30 "$PFS_IO" write "$M/f" 0 65536)" "write before injection"
assert_eq OK "$(pfs_fsync "$M/f")" "fsync before injection"
# The knobs written above must not soften the injection (interval, space).
ctl_write fail_interval 1
ctl_write fail_space 0
ctl_write fail_times -1
ctl_write fail_sites cache_page
ctl_write fail_probability 100
got=$(pfs_run 60 "$PFS_IO" write "$M/f" 1048576 262144)
assert_eq ENOMEM "$got" "retry under 100% injection: write gets ENOMEM after the retries"
stats_snap s3
assert_gt "$(stat_get s3 total.caller_retries)" "$(stat_get s2 total.caller_retries)" "retry: caller_retries grew"
ctl_write policy enomem
stats_snap s4
got=$(pfs_run 60 "$PFS_IO" write "$M/f" 1048576 262144)
assert_eq ENOMEM "$got" "enomem under 100% injection: write gets ENOMEM"
stats_snap s5
assert_eq "$(stat_get s4 total.caller_retries)" "$(stat_get s5 total.caller_retries)" "enomem: no caller retries"
assert_gt "$(stat_get s5 total.enomem)" "$(stat_get s4 total.enomem)" "enomem: the ENOMEM is counted"
ctl_write fail_probability 0
ctl_write fail_sites all
assert_eq OK "$(pfs_run 30 "$PFS_IO" write "$M/f" 1048576 262144)" "injection off: the write works again"

# Behaviour: a balloon as large as the budget squeezes writes out.
ctl_write sync 1
ctl_write drop_caches 1
ctl_write balloon 8M
ctl_write mem_limit 8M
# A short count is the other answer the spec allows: budget a thread had
# already charged (its stock) before the squeeze may still hold a page.
got=$(pfs_run 60 "$PFS_IO" write "$M/f" 4194304 2097152)
assert_match '^(ENOMEM|SHORT [0-9]+)$' "$got" "enomem with balloon = mem_limit: write gets ENOMEM or a short count"
ctl_write balloon 0
assert_eq 0 "$(ctl_read balloon)" "balloon let go at the limit"
assert_eq OK "$(pfs_run 30 "$PFS_IO" write "$M/f" 4194304 2097152)" "balloon let go: the write works again"

# ---- dirty, sync, drop_caches ----
head -c 100000 /dev/urandom >"$W/d"
pfs_must cp "$W/d" "$M/dirtyfile"
ino=$(stat -c %i "$B/dirtyfile")
dirty=$(ctl_read dirty) || exit 1
printf '%s\n' "$dirty" | sed '/^$/d' >"$W/dirty.txt"
out=$(pfs_check dirty-covers "$W/dirty.txt" "$ino" 100000 dirtyfile 2>&1) ||
	pfs_fail "dirty listing wrong: $out; listing: '$dirty'"
pfs_ok "dirty lists 'INO OFF LEN dirtyfile' ranges covering the unwritten bytes"
ctl_write sync 1
assert_eq "" "$(ctl_read dirty)" "dirty is empty after sync"
assert_file_eq "$W/d" "$B/dirtyfile" "sync wrote the file to the backing dir"
ctl_write drop_caches 1
assert_file_eq "$W/d" "$M/dirtyfile" "after drop_caches the file reads back"

# Last: a malformed write to crash must not crash.
assert_eq EINVAL "$(ctl_try crash 0)" "crash refuses '0'"
pfs_pid_alive "$PFS_PID" || pfs_fail "the daemon died after a malformed write to crash"
pfs_umount_clean
