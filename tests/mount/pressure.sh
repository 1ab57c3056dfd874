#!/bin/bash
# Proves what each policy does under memory pressure (a small mem_limit and
# fault injection with a fixed seed), with a writer that journals every
# acknowledgement outside the mount and a verifier that reads the backing
# file after unmount:
#   enomem: writes get ENOMEM or short counts; nothing acknowledged is lost;
#           the budget is never exceeded.
#   retry:  caller retries are counted and the application sees fewer errors
#           than enomem under the same seed and workload; nothing acked lost.
#   nofail: no errors, direct reclaim or in-allocator loops counted, the
#           writes finish because writeback frees memory; nothing acked lost.
#   abort:  the daemon dies (SIGABRT), the mount answers ENOTCONN until it is
#           unmounted, and every fsynced byte is intact in the backing dir.
# usage: pressure.sh PRESSUREFS PFS_MOUNT_IO POLICY
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
POLICY=${3:?policy}
PFS_NAME="pressure[$POLICY]"

INJECT="page_size=64K,writeback_ms=100,fail_probability=10,fail_seed=7,fail_sites=cache_page"
WRITE_BOUND=150		# a writer taking longer is hung (three fit in the 600 s timeout)

kv() { # key "k=v k=v ...": the value of key
	tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}

# run_writer NAME FILE SIZE [writer args...]: sets OUT (its summary) and RC.
run_writer() {
	local name=$1 file=$2 size=$3
	shift 3
	OUT=$(pfs_run "$WRITE_BOUND" "$PFS_IO" writer --file "$file" --size "$size" --chunk 262144 \
		--journal "$W/$name.journal" --seed 3 "$@")
	RC=$?
	[ "$RC" = 124 ] || [ "$RC" = 137 ] && pfs_fail "$name: writer hung (no progress within ${WRITE_BOUND}s)"
	pfs_say "$name: $OUT"
}

# verify NAME BACKING_FILE: sets VOUT.
verify() {
	VOUT=$("$PFS_IO" verify --file "$2" --journal "$W/$1.journal" --seed 3) || pfs_fail "verify $1"
	pfs_say "$1 verify: $VOUT"
}

# inject_run POLICY_OPTS NAME: the injection workload; sets ERRORS (what the
# application saw: ENOMEM results plus short counts) and snapshots stats.
inject_run() {
	local opts=$1 name=$2
	rm -rf "${B:?}"/*
	pfs_mount -o "$opts,$INJECT"
	run_writer "$name" "$M/f" $((16 << 20)) --fsync-every 8
	[ "$RC" = 0 ] || pfs_fail "$name: writer status $RC: $OUT"
	[ "$(kv other_errors "$OUT")" = 0 ] || pfs_fail "$name: errors other than ENOMEM: $OUT"
	[ "$(kv fsync_errors "$OUT")" = 0 ] || pfs_fail "$name: fsync failed with injection on cache pages only: $OUT"
	ERRORS=$(($(kv enomem "$OUT") + $(kv short "$OUT")))
	stats_snap "$name"
	pfs_umount_clean
	verify "$name" "$B/f"
	assert_eq 0 "$(kv acked_lost "$VOUT")" "$name: no acknowledged byte lost after unmount"
	assert_gt "$(stat_get "$name" total.injected_failures)" 0 "$name: injected failures counted"
}

case $POLICY in
enomem)
	inject_run policy=enomem enomem_inject
	assert_gt "$ERRORS" 0 "enomem: the application saw ENOMEM or short writes"
	assert_gt "$(stat_get enomem_inject total.enomem)" 0 "enomem: stats count the ENOMEMs"

	# A budget of 2 MiB for a 16 MiB file: the budget holds, data is kept.
	rm -rf "${B:?}"/*
	pfs_mount -o policy=enomem,mem_limit=2M,page_size=64K,writeback_ms=50
	run_writer budget "$M/g" $((16 << 20)) --fsync-every 4 --retries 50
	[ "$RC" = 0 ] || pfs_fail "budget: writer status $RC: $OUT"
	stats_snap budget
	assert_ge 2097152 "$(stat_get budget total.peak)" "enomem: peak stays within mem_limit=2M"
	assert_ge 2097152 "$(stat_get budget peak)" "enomem: stats.peak within mem_limit"
	pfs_umount_clean
	verify budget "$B/g"
	assert_eq 0 "$(kv acked_lost "$VOUT")" "enomem under mem_limit: no acknowledged byte lost"
	;;
retry)
	inject_run policy=enomem enomem_inject
	ENOMEM_ERRORS=$ERRORS
	inject_run policy=retry,retries=8,backoff_ms=1 retry_inject
	assert_gt "$ENOMEM_ERRORS" 0 "enomem baseline saw errors"
	assert_lt "$ERRORS" "$ENOMEM_ERRORS" "retry: fewer application errors than enomem (same seed, same workload)"
	assert_gt "$(stat_get retry_inject total.caller_retries)" 0 "retry: caller_retries counted"

	rm -rf "${B:?}"/*
	pfs_mount -o policy=retry,retries=8,backoff_ms=1,mem_limit=2M,page_size=64K,writeback_ms=50
	run_writer budget "$M/g" $((16 << 20)) --fsync-every 4 --retries 50
	[ "$RC" = 0 ] || pfs_fail "budget: writer status $RC: $OUT"
	stats_snap budget
	assert_ge 2097152 "$(stat_get budget total.peak)" "retry: peak stays within mem_limit=2M"
	pfs_umount_clean
	verify budget "$B/g"
	assert_eq 0 "$(kv acked_lost "$VOUT")" "retry under mem_limit: no acknowledged byte lost"
	;;
nofail)
	pfs_mount -o policy=nofail,wait_ms=5,mem_limit=2M,page_size=64K,writeback_ms=20
	run_writer budget "$M/g" $((16 << 20)) --fsync-every 0
	[ "$RC" = 0 ] || pfs_fail "nofail: writer status $RC: $OUT"
	assert_eq 0 "$(($(kv enomem "$OUT") + $(kv short "$OUT") + $(kv other_errors "$OUT")))" "nofail: no write errors, no short writes"
	assert_eq 16777216 "$(kv acked_bytes "$OUT")" "nofail: the 16 MiB writes finish under a 2 MiB budget"
	stats_snap budget
	# Direct reclaim drops the pages writeback cleaned before the policy is
	# asked; nofail loops only when it finds none clean: either met the full budget.
	assert_gt "$(($(stat_get budget total.loops) + $(stat_get budget total.reclaimed)))" 0 "nofail: the full budget met by direct reclaim or in-allocator loops"
	assert_eq 0 "$(stat_get budget total.enomem)" "nofail: no ENOMEM returned"
	assert_ge 2097152 "$(stat_get budget total.peak)" "nofail: peak stays within mem_limit=2M"
	pfs_umount_clean
	verify budget "$B/g"
	assert_eq 0 "$(kv acked_lost "$VOUT")" "nofail: no acknowledged byte lost"

	inject_run policy=nofail,wait_ms=1 nofail_inject
	assert_eq 0 "$ERRORS" "nofail under injection: no errors"
	assert_gt "$(stat_get nofail_inject total.loops)" 0 "nofail under injection: loops counted"
	;;
abort)
	pfs_mount -o policy=abort,page_size=64K,writeback_ms=100
	pid=$PFS_PID
	run_writer synced "$M/synced" $((2 << 20)) --fsync-every 2
	[ "$RC" = 0 ] || pfs_fail "synced: writer status $RC: $OUT"
	assert_eq 0 "$(kv fsync_errors "$OUT")" "abort: fsyncs before the failure succeed"
	ctl_write fail_sites cache_page
	ctl_write fail_probability 100
	run_writer doomed "$M/doomed" $((2 << 20)) --fsync-every 1
	assert_eq 3 "$RC" "abort: the writer sees the daemon gone (ENOTCONN/ECONNABORTED): $OUT"
	pfs_wait_pid "$pid" 30 || pfs_fail "abort: the daemon is still alive after the failed allocation"
	pfs_forget_pid "$pid"
	assert_eq 134 "$PFS_STATUS" "abort: the daemon died of SIGABRT"
	err=$(LC_ALL=C pfs_run 10 stat "$M/synced" 2>&1)
	# ECONNABORTED with io_uring (a request queued while the rings go).
	assert_match 'Transport endpoint is not connected|Software caused connection abort|Operation canceled' "$err" "abort: the mount answers ENOTCONN (or ECONNABORTED, or ECANCELED on io_uring)"
	pfs_is_mounted "$M" || pfs_fail "abort: the dead mount vanished before it was unmounted"
	pfs_umount_at "$M" ""
	verify synced "$B/synced"
	assert_eq 0 "$(kv fsynced_lost "$VOUT")" "abort: every fsynced byte is intact in the backing dir"
	assert_eq 0 "$(kv acked_lost "$VOUT")" "abort: the fsynced file is whole"
	;;
*)
	pfs_fail "unknown policy $POLICY"
	;;
esac
