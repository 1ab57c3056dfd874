#!/bin/bash
# Proves pressurefs-stat reads a live mount: the title names the policy and
# the budget, -w/-c print that many rows, a row's allocation calls grow with
# writes, the failure columns count injected failures, and a directory that
# is not a pressurefs mount gets one line and exit status 1.
# usage: stat_tool.sh PRESSUREFS PFS_MOUNT_IO PRESSUREFS_STAT
. "${0%/*}/lib.sh" || exit 1
STAT=$3
pfs_init "$1" "$2"

pfs_mount -o policy=enomem,mem_limit=32M,writeback_ms=600000

out=$(pfs_run 30 "$STAT" "$M") || pfs_fail "pressurefs-stat exited $?: $out"
assert_match "policy enomem" "$(head -1 <<<"$out")" "title names the policy"
assert_match "mem_limit 32.0M" "$(head -1 <<<"$out")" "title names the budget"
assert_eq 3 "$(wc -l <<<"$out")" "one title, one header, one row"

# Rows while data is written: the calls column grows.
out=$(pfs_run 30 "$STAT" -w 0.2 -c 3 "$M") || pfs_fail "pressurefs-stat -w exited $?"
assert_eq 5 "$(wc -l <<<"$out")" "-c 3: three rows"
calls_col=$(awk 'NR == 2 { for (i = 1; i <= NF; i++) if ($i == "calls") print i }' <<<"$out")
[ -n "$calls_col" ] || pfs_fail "no calls column in: $out"
before=$(pfs_run 30 "$STAT" "$M" | awk -v c="$calls_col" 'NR == 3 { print $c }')
pfs_must dd if=/dev/zero of="$M/f" bs=64K count=64 status=none
after=$(pfs_run 30 "$STAT" "$M" | awk -v c="$calls_col" 'NR == 3 { print $c }')
assert_ge "$after" $((before + 64)) "calls since mount grow by a page per 64K written"

# Injected failures show in the fail and enomem columns.
ctl_write fail_probability 100
ctl_write fail_sites cache_page
dd if=/dev/zero of="$M/g" bs=64K count=4 status=none 2>/dev/null
ctl_write fail_probability 0
row=$(pfs_run 30 "$STAT" "$M" | tail -1)
fail_col=$(awk 'NR == 2 { for (i = 1; i <= NF; i++) if ($i == "fail") print i }' <<<"$out")
assert_gt "$(awk -v c="$fail_col" '{ print $c }' <<<"$row")" 0 "the fail column counts injected failures"
pfs_ok "pressurefs-stat shows a live mount"

rc=0
err=$(pfs_run 30 "$STAT" "$W" 2>&1 >/dev/null) || rc=$?
assert_eq 1 "$rc" "exit status on a directory that is not a mount"
assert_eq 1 "$(wc -l <<<"$err")" "one line of error"
assert_match "not a pressurefs mount" "$err" "the error says why"
rc=0
pfs_run 30 "$STAT" -c 2 "$M" >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "-c without -w is a usage error"
pfs_ok "pressurefs-stat refuses bad input with one line"

pfs_umount_clean
