#!/bin/bash
# The control directory under concurrent use while 16 writers run: for a few seconds, loops write
# mem_limit, balloon, the injection knobs and dirty_limit, switch the policy
# between retry and enomem, write sync and drop_caches, and read stats and
# dirty, all at once. Proves: the daemon survives (no crash, no deadlock:
# every loop and the writer end within their bounds), stats stays valid
# JSON, the last value written to each knob is the one read back, nothing
# fsynced is lost, and after the knobs are reset, sync and drop_caches the
# live bytes are back near the baseline; the clean exit status (with LSan
# in the ASan build).
# usage: ctl_storm.sh PRESSUREFS PFS_MOUNT_IO PFS_STRESS [SECONDS]
. "$(dirname "$0")/../mount/lib.sh"
. "$(dirname "$0")/lib_load.sh"
STRESS=$(realpath -e "${3:?usage: ctl_storm.sh PRESSUREFS PFS_MOUNT_IO PFS_STRESS}") || exit 1
pfs_init "$(realpath -e "$1")" "$(realpath -e "$2")"
SECS=${4:-4}
PFS_NAME=load-ctl-storm

pfs_mount -o policy=retry,mem_limit=32M,writeback_ms=100
stats_snap baseline
C=$M/.pressurefs

"$STRESS" run --dir "$M" --journal "$W/journal" --threads 16 --files 16 --file-size 256K \
	--block 4K --duration "$SECS" --fsync-every 8 --on-error skip --stall-secs 30 --quiet \
	>"$W/summary.json" 2>"$W/stress.err" &
spid=$!
pfs_helper "$spid"

# Each loop runs until the writer is done; the IO helper reports errors as
# names instead of failing, so EINVAL/ENOMEM from a racing knob is data.
storm() { # name, then a command run repeatedly
	local name=$1 i=0
	shift
	while kill -0 "$spid" 2>/dev/null; do
		"$@" >>"$W/storm.$name" 2>&1
		i=$((i + 1))
	done
	echo "$i" >"$W/count.$name"
}
put() { timeout -k 2 20 "$PFS_IO" put "$C/$1" "$2"; }
knobs() {
	put mem_limit $(((RANDOM % 48 + 4) << 20))
	put balloon $(((RANDOM % 16) << 20))
	put dirty_limit $(((RANDOM % 8 + 1) << 18))
	put fail_probability $((RANDOM % 3))
	put fail_sites "cache_page,writeback"
}
policies() { put policy retry,retries=4; put policy enomem; }
flushes() { put sync 1; put drop_caches 1; }
reads() {
	timeout -k 2 20 cat "$C/stats" >"$W/stats.last" &&
		"$PFS_PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$W/stats.last" ||
		echo "BAD-STATS"
	timeout -k 2 20 cat "$C/dirty" >/dev/null
}
storm knobs knobs & p1=$!
storm policies policies & p2=$!
storm flushes flushes & p3=$!
storm reads reads & p4=$!
pfs_helper "$p1" "$p2" "$p3" "$p4"
pfs_wait_pid "$spid" $((SECS + 120)) || pfs_fail "pfs-stress did not end: a deadlock?"
case $PFS_STATUS in 0 | 3) ;; *) pfs_fail "pfs-stress exited $PFS_STATUS: $(tail -n 3 "$W/stress.err")" ;; esac
for p in $p1 $p2 $p3 $p4; do
	pfs_wait_pid "$p" 60 || pfs_fail "a control-file loop is stuck: a deadlock?"
done
pfs_pid_alive "$PFS_PID" || pfs_fail "the daemon died under the storm"
pfs_ok "the daemon survived $(awk "{ s += \$1 } END { print s }" "$W"/count.*) rounds of concurrent control-file use"
if grep -q BAD-STATS "$W/storm.reads"; then pfs_fail "stats was not valid JSON during the storm"; fi
pfs_ok "stats stayed valid JSON"
bad=$(grep -v -h -E '^(OK|ENOMEM|EINVAL|EAGAIN|EIO|ENOSPC)$' "$W"/storm.knobs "$W"/storm.policies "$W"/storm.flushes | sort | uniq -c)
[ -z "$bad" ] || pfs_fail "unexpected answers from control files: $bad"
pfs_ok "every control-file write answered OK or a clean errno"

# Calm again: the last write wins, and nothing is left over.
ctl_write fail_probability 0
ctl_write balloon 0
ctl_write mem_limit 32M
ctl_write policy retry
assert_eq 33554432 "$(ctl_read mem_limit)" "mem_limit reads back the last value written"
assert_eq 0 "$(ctl_read balloon)" "balloon reads back the last value written"
assert_eq retry "$(ctl_read policy | cut -d, -f1)" "policy reads back the last one switched to"
pfs_leak_check baseline 65536 "after the storm"
pfs_umount_clean
pfs_run 120 "$STRESS" verify --dir "$B" --journal "$W/journal" --json >"$W/verify.json" ||
	pfs_fail "verify: $(cat "$W/verify.json")"
assert_eq 0 "$(json_get "$W/verify.json" lost_after_fsync_bytes)" "nothing lost after fsync"
