#!/bin/bash
# Proves what each policy does when a balloon squeezes the budget at run
# time (balloon = mem_limit: no allocation can succeed), and that letting
# the balloon go restores service:
#   enomem: a write fails with ENOMEM (or a short count) at once; budget
#           failures are counted.
#   retry:  a write fails the same way after the policy's retries, which are
#           counted as caller retries.
#   nofail: a write waits (in-allocator loops keep growing, the writer has
#           neither finished nor failed) and completes without an error once
#           the balloon is let go; the data is intact after unmount.
#   abort:  the first write dies with the daemon (SIGABRT); the mount then
#           answers ENOTCONN; what was fsynced before is intact.
#   write_through: a 2 MiB write like the one enomem fails, through a
#           descriptor opened before the squeeze, succeeds with no error:
#           every page it cannot get goes to the backing file (counted as
#           bypassed), and after fsync the backing file holds exactly the
#           bytes written. A new open under the squeeze fails with ENOMEM
#           (its handle record is a site without a reserve).
# usage: squeeze.sh PRESSUREFS PFS_MOUNT_IO POLICY
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
POLICY=${3:?policy}
PFS_NAME="squeeze[$POLICY]"

kv() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

case $POLICY in
retry) opts=policy=retry,retries=3,backoff_ms=1 ;;
nofail) opts=policy=nofail,wait_ms=5 ;;
*) opts=policy=$POLICY ;;
esac
pfs_mount -o "$opts,mem_limit=4M,page_size=64K,writeback_ms=600000"
pid=$PFS_PID

# Data that must survive whatever the squeeze does.
assert_eq OK "$(pfs_run 30 "$PFS_IO" write "$M/before" 0 1000000 9)" "write before the squeeze"
assert_eq OK "$(pfs_fsync "$M/before")" "fsync before the squeeze"
pfs_must touch "$M/victim"
if [ "$POLICY" = write_through ]; then
	assert_eq OK "$("$PFS_IO" write "$W/victim" 0 2097152 7)" "model of the squeezed write"
	exec 3<>"$M/victim"
fi
ctl_write sync 1
ctl_write drop_caches 1
stats_snap s0
ctl_write balloon 4M

case $POLICY in
enomem | retry)
	# A short count is allowed too: budget already charged to a thread's
	# stock before the squeeze may still hold a page or two. 2 MiB is more
	# than any stock and all that reclaim could find.
	got=$(pfs_run 60 "$PFS_IO" write "$M/victim" 0 2097152)
	assert_match '^(ENOMEM|SHORT [0-9]+)$' "$got" "$POLICY: a write under the squeeze fails with ENOMEM or a short count"
	stats_snap s1
	assert_gt "$(stat_get s1 total.budget_failures)" "$(stat_get s0 total.budget_failures)" "$POLICY: budget failures counted"
	if [ "$POLICY" = retry ]; then
		assert_ge "$(stat_get s1 total.caller_retries)" $(($(stat_get s0 total.caller_retries) + 3)) "retry: the 3 retries are counted"
	else
		assert_eq "$(stat_get s0 total.caller_retries)" "$(stat_get s1 total.caller_retries)" "enomem: no retries"
	fi
	ctl_write balloon 0
	assert_eq OK "$(pfs_run 30 "$PFS_IO" write "$M/victim" 0 262144)" "$POLICY: the balloon let go, the write works"
	pfs_umount_clean
	;;
nofail)
	pfs_run 120 "$PFS_IO" writer --file "$M/victim" --size 1048576 --chunk 262144 \
		--journal "$W/victim.journal" --seed 5 >"$W/writer.out" 2>&1 &
	writer=$!
	loops0=$(stat_get s0 total.loops)
	for ((i = 0; i < 200; i++)); do
		stats_snap s1
		[ "$(stat_get s1 total.loops)" -gt "$loops0" ] && break
		sleep 0.1
	done
	assert_gt "$(stat_get s1 total.loops)" "$loops0" "nofail: the squeezed write loops in the allocator"
	pfs_pid_alive "$writer" || pfs_fail "nofail: the writer did not wait: $(cat "$W/writer.out")"
	pfs_ok "nofail: the writer is still waiting, no error"
	ctl_write balloon 0
	wait "$writer"
	rc=$?
	out=$(cat "$W/writer.out")
	pfs_say "writer: $out"
	assert_eq 0 "$rc" "nofail: the writer finishes once the balloon is let go"
	assert_eq 1048576 "$(kv acked_bytes "$out")" "nofail: every byte acknowledged"
	assert_eq 0 "$(($(kv enomem "$out") + $(kv short "$out") + $(kv other_errors "$out")))" "nofail: no errors"
	stats_snap s2
	assert_gt "$(stat_get s2 total.stalls)" "$(stat_get s0 total.stalls)" "nofail: the stall is counted"
	pfs_umount_clean
	v=$("$PFS_IO" verify --file "$B/victim" --journal "$W/victim.journal" --seed 5)
	assert_eq 0 "$(kv acked_lost "$v")" "nofail: the waited-for data is intact after unmount"
	;;
write_through)
	# dd writes to fd 3 (no open under the squeeze), 64 KiB a write.
	pfs_run 60 dd if="$W/victim" bs=65536 status=none >&3 2>"$W/dd.err" ||
		pfs_fail "write_through: a write under the squeeze failed: $(cat "$W/dd.err")"
	pfs_ok "write_through: a 2 MiB write under the squeeze succeeds, no ENOMEM"
	stats_snap s1
	assert_gt "$(stat_get s1 total.bypassed)" "$(stat_get s0 total.bypassed)" "write_through: its pages went straight to the backing file"
	assert_eq "$(stat_get s0 sites.cache_page.enomem)" "$(stat_get s1 sites.cache_page.enomem)" "write_through: no cache page failed to the caller"
	pfs_run 30 python3 -c 'import os; os.fsync(3)' ||
		pfs_fail "write_through: fsync under the squeeze failed"
	pfs_ok "write_through: fsync under the squeeze"
	assert_file_eq "$W/victim" "$B/victim" "write_through: after fsync the backing file holds every byte"
	got=$(pfs_run 60 "$PFS_IO" write "$M/other" 0 4096)
	assert_eq ENOMEM "$got" "write_through: a new open under the squeeze fails at once, like enomem"
	exec 3>&-
	ctl_write balloon 0
	pfs_umount_clean
	;;
abort)
	got=$(pfs_run 60 "$PFS_IO" write "$M/victim" 0 262144)
	assert_match '^(ECONNABORTED|ENOTCONN|ECANCELED)$' "$got" "abort: the squeezed write sees the daemon die"
	pfs_wait_pid "$pid" 30 || pfs_fail "abort: the daemon is still alive"
	pfs_forget_pid "$pid"
	assert_eq 134 "$PFS_STATUS" "abort: SIGABRT"
	err=$(LC_ALL=C pfs_run 10 stat "$M/before" 2>&1)
	# ECONNABORTED with io_uring (a request queued while the rings go).
	assert_match 'Transport endpoint is not connected|Software caused connection abort|Operation canceled' "$err" "abort: the mount answers ENOTCONN (or ECONNABORTED, or ECANCELED on io_uring)"
	pfs_umount_at "$M" ""
	;;
*) pfs_fail "unknown policy $POLICY" ;;
esac
printf 'x' >"$W/x"
assert_eq OK "$("$PFS_IO" write "$W/x" 0 1000000 9)" "model of the fsynced file"
assert_file_eq "$W/x" "$B/before" "the data fsynced before the squeeze is intact"
