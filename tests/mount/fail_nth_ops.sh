#!/bin/bash
# The fail-the-Nth-allocation loop over the daemon's operations on a real
# mount, under one policy (fail_nth_ops.py says what each run checks):
# create+write, lookup, readdir, rename, setattr, a control-file render and
# a policy switch, in transient and persistent mode, each succeeds or fails
# with ENOMEM, leaks nothing (live bytes back to the baseline) and loses no
# acknowledged byte; then the daemon unmounts cleanly (pressurefs -u, exit 0;
# under ASan: nothing leaked at exit either).
# usage: fail_nth_ops.sh PRESSUREFS PFS_MOUNT_IO POLICY[,ARGS]
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
spec=${3:?policy}

pfs_mount -o "policy=$spec"
pfs_run 1200 "$PFS_PY" "$PFS_SRC/fail_nth_ops.py" "$M" "$B" "$spec" >"$W/loop.out" 2>&1
rc=$?
cat "$W/loop.out"
[ "$rc" = 0 ] || pfs_fail "the loop failed (status $rc): $(grep FAIL "$W/loop.out" | tail -1)"
assert_eq 14 "$(grep -c 'no leak, nothing acknowledged lost' "$W/loop.out")" "seven operations, two modes each"
enomem=$(sed -n 's/^ENOMEM seen in total: //p' "$W/loop.out")
case $spec in
nofail*) assert_eq 0 "$enomem" "nofail: no operation saw ENOMEM" ;;
*) assert_gt "$enomem" 0 "some runs failed cleanly with ENOMEM" ;;
esac
stats_snap after
assert_gt "$(stat_get after total.injected_failures)" 0 "the countdown did fail allocations"
case $spec in
nofail*) assert_gt "$(stat_get after total.loops)" 0 "nofail looped through the failures" ;;
retry*) assert_gt "$(stat_get after total.caller_retries)" 0 "retry's callers retried" ;;
esac
out=$(pfs_run 120 "$PFS_EXE" -u "$M" 2>&1) || pfs_fail "pressurefs -u: $out"
pfs_forget_mount "$M"
pfs_wait_pid "$PFS_PID" 30 && pfs_forget_pid "$PFS_PID"
assert_eq 0 "$PFS_STATUS" "the daemon's exit status after the loop"
