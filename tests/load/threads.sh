#!/bin/bash
# Many writers at once: pfs-stress with 64 threads on a
# 2-core machine, under a small mem_limit so reclaim and writeback run the
# whole time. Proves: no deadlock (the run ends by its duration, the
# writer's watchdog never calls it hung, every wait here is bounded); no
# leak (live bytes back near the baseline after sync + drop_caches; the
# daemon's clean exit status, which under ASan includes LSan's verdict);
# every byte acknowledged reaches the backing dir at the clean unmount
# (verify: nothing lost at all); the daemon's peak RSS stays within
# mem_limit + a fixed overhead (PFS_RSS_OVERHEAD_MB, default 32; not
# checked under ASan, whose shadow memory makes RSS meaningless).
# usage: threads.sh PRESSUREFS PFS_MOUNT_IO PFS_STRESS [THREADS] [SECONDS] [POLICY]
. "$(dirname "$0")/../mount/lib.sh"
. "$(dirname "$0")/lib_load.sh"
STRESS=$(realpath -e "${3:?usage: threads.sh PRESSUREFS PFS_MOUNT_IO PFS_STRESS}") || exit 1
pfs_init "$(realpath -e "$1")" "$(realpath -e "$2")"
THREADS=${4:-64}
SECS=${5:-4}
POLICY=${6:-retry}
PFS_NAME="load-threads[$THREADS,$POLICY]"
MEM_MB=16
OVERHEAD_MB=${PFS_RSS_OVERHEAD_MB:-32}

pfs_mount -o "policy=$POLICY,mem_limit=${MEM_MB}M,page_size=16K,writeback_ms=100"
stats_snap baseline

pfs_run $((SECS + 120)) "$STRESS" run --dir "$M" --journal "$W/journal" --threads "$THREADS" \
	--files "$THREADS" --file-size 256K --block 4K --duration "$SECS" --fsync-every 16 \
	--on-error retry --stall-secs 30 --quiet >"$W/summary.json" 2>"$W/stress.err"
rc=$?
[ "$rc" = 0 ] || pfs_fail "pfs-stress exited $rc (4 = hung): $(tail -n 3 "$W/stress.err") $(cat "$W/summary.json")"
assert_eq 0 "$(json_get "$W/summary.json" hung)" "the writer's watchdog saw no hang"
assert_eq duration "$(json_get "$W/summary.json" exit_reason)" "the run ended by its duration"
writes=$(json_get "$W/summary.json" writes_ok)
assert_gt "$writes" 0 "$THREADS threads wrote"
pfs_say "writes_ok=$writes retries=$(json_get "$W/summary.json" retries) stalls=$(json_get "$W/summary.json" stalls)"

stats_snap loaded
pfs_say "stats after the run: live=$(stat_get loaded live) peak=$(stat_get loaded peak) budget_failures=$(stat_get loaded total.budget_failures)"
# Each file the kernel still remembers keeps an inode record: 2 KiB each.
pfs_leak_check baseline $((THREADS * 2048 + 65536)) "after $THREADS writers"

hwm=$(pfs_proc_kb "$PFS_PID" VmHWM)
if pfs_daemon_is_asan; then
	pfs_say "ASan build: peak RSS ${hwm} kB not compared with mem_limit"
else
	limit_kb=$(((MEM_MB + OVERHEAD_MB) * 1024))
	[ "$hwm" -le "$limit_kb" ] ||
		pfs_fail "daemon peak RSS ${hwm} kB exceeds mem_limit ${MEM_MB}M + overhead ${OVERHEAD_MB}M"
	pfs_ok "daemon peak RSS ${hwm} kB <= mem_limit ${MEM_MB} MiB + ${OVERHEAD_MB} MiB"
fi

pfs_umount_clean
pfs_run 120 "$STRESS" verify --dir "$B" --journal "$W/journal" --json >"$W/verify.json" ||
	pfs_fail "verify failed: $(cat "$W/verify.json")"
assert_eq 0 "$(json_get "$W/verify.json" lost_after_fsync_bytes)" "nothing lost after fsync"
assert_eq 0 "$(json_get "$W/verify.json" lost_after_write_bytes)" "nothing lost after write: the daemon wrote it all back before it exited"
assert_eq 0 "$(json_get "$W/verify.json" torn_or_corrupt_bytes)" "nothing torn"
