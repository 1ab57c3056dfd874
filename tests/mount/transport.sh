#!/usr/bin/env bash
# How requests reach the daemon (-o transport=auto|io_uring|dev_fuse):
#   - the refusal: transport=io_uring where the fuse module has io_uring
#     off (or the budget cannot hold one ring entry per CPU) is one line
#     saying why and how to enable it, exit 1, nothing mounted;
#   - the fallback: auto on /dev/fuse when io_uring is off, said once in
#     the log; io_uring when the kernel offers it; dev_fuse when asked;
#   - the worker pool is charged to the budget at mount (site request);
#   - data written through each transport reads back the same;
#   - ring_spin_us: workers that watch for the next request catch some
#     (ring_spin_hits) and watch in vain after the last one of a burst
#     (ring_spin_misses), neither by default; a value past 1000 is refused;
#   - ring_handoff: on hands answers off at idle priority, auto (the
#     default) samples the CPUs' idle time; a worker left waiting at idle
#     priority behind a busy loop is raised back by the guard; without
#     CAP_SYS_NICE and RLIMIT_NICE, on is refused in one line and auto runs
#     without it.
# Turning enable_uring on and off needs root; the previous value is put
# back on exit whatever happens.
. "$(dirname "$0")/lib.sh"
pfs_init "$@"
pfs_uring_take

# The refusal: one line, exit 1, nothing mounted.
refused() {
	local what=$1 want=$2 status
	shift 2
	# shellcheck disable=SC2086
	pfs_run 30 ${PFS_EXEC_WRAP:-} "$PFS_EXE" -f "$@" "$B" "$M" </dev/null >"$W/out" 2>"$W/err"
	status=$?
	if pfs_is_mounted "$M"; then
		pfs_fusermount_u "$M"
		pfs_fail "$what: the mount came up"
	fi
	assert_eq 1 "$status" "$what: exit status"
	assert_eq 1 "$(wc -l <"$W/err")" "$what: one line on stderr ($(head -c 600 "$W/err"))"
	assert_match "$want" "$(cat "$W/err")" "$what: the line says why"
}

# Mount, write and read back a file, and report the stats' transport.
roundtrip() {
	local name=$1
	shift
	pfs_mount "$@"
	head -c $((3 << 20)) /dev/urandom >"$W/$name.src"
	pfs_must cp "$W/$name.src" "$M/$name"
	pfs_must dd if=/dev/urandom of="$M/$name.small" bs=4096 count=64 conv=fsync status=none
	pfs_must cmp "$W/$name.src" "$M/$name"
	stats_snap "$name"
	TRANSPORT=$(stat_get "$name" transport)
	pfs_umount_clean
	cmp "$W/$name.src" "$B/$name" || pfs_fail "$name: the backing file differs after unmount"
}

pfs_uring_set N
refused "io_uring while the module has it off" "enable_uring is N.*echo 1 > $PFS_URING_PARAM" \
	-o transport=io_uring
roundtrip off_auto
assert_eq dev_fuse "$TRANSPORT" "auto with io_uring off: /dev/fuse"
grep -q "transport: /dev/fuse (io_uring unavailable: .*enable_uring is N" "$PFS_LOG" ||
	pfs_fail "auto with io_uring off: no log line saying why ($(cat "$PFS_LOG"))"
pfs_ok "auto with io_uring off says why in the log"

pfs_uring_set Y
refused "io_uring with a budget too small for a ring" "too small for the rings" \
	-o transport=io_uring,mem_limit=256K
roundtrip on_auto -o mem_limit=64M
assert_eq io_uring "$TRANSPORT" "auto with io_uring on: io_uring"
grep -q "transport: io_uring" "$PFS_LOG" || pfs_fail "auto with io_uring on: no log line"
# The pool was charged at mount: every worker's stack and buffer.
assert_ge "$(stat_get on_auto sites.request.live)" $((3 * (128 << 10))) \
	"the worker pool is charged to the request site"
roundtrip on_dev -o transport=dev_fuse,mem_limit=64M
assert_eq dev_fuse "$TRANSPORT" "transport=dev_fuse with io_uring on: /dev/fuse"
assert_ge "$(stat_get on_dev sites.request.live)" $((2 * (256 << 10))) \
	"the /dev/fuse pool is charged to the request site"
# A small budget: max_write shrinks until two entries per CPU fit in 1/8.
roundtrip on_small -o transport=io_uring,mem_limit=4M
assert_eq io_uring "$TRANSPORT" "transport=io_uring under mem_limit=4M"
grep -q "transport: io_uring (.* entries of 64 KiB," "$PFS_LOG" ||
	pfs_fail "mem_limit=4M: max_write did not shrink to 64 KiB ($(cat "$PFS_LOG"))"
pfs_ok "mem_limit=4M: the ring's max_write shrank to 64 KiB"
assert_ge 4194304 "$(stat_get on_small peak)" "mem_limit=4M holds with the pool in it"
assert_eq 0 "$(stat_get on_small ring_spin_hits)" "ring_spin_us=0 (the default): no watch caught"
assert_eq 0 "$(stat_get on_small ring_spin_misses)" "ring_spin_us=0 (the default): no watch missed"

# ring_spin_us: a worker watches its entry before it sleeps. The same data, and dd's
# synchronous writes find a watching worker (counted by the daemon, no clock involved);
# the gaps while the next command starts (a fork and an exec, over 500 µs) are misses.
roundtrip on_spin -o transport=io_uring,ring_spin_us=500
assert_eq io_uring "$TRANSPORT" "transport=io_uring with ring_spin_us=500"
assert_ge "$(stat_get on_spin ring_spin_hits)" 1 "requests a watching ring worker caught"
assert_ge "$(stat_get on_spin ring_spin_misses)" 1 "watches that ended with no request"
refused "ring_spin_us past its range" "ring_spin_us" -o transport=io_uring,ring_spin_us=5000

# ring_handoff=on: every answer at idle priority; the data is the same.
roundtrip on_handoff -o transport=io_uring,ring_handoff=on
assert_eq on "$(stat_get on_handoff ring_handoff)" "ring_handoff=on is in force (as root)"
assert_ge "$(stat_get on_handoff ring_handoffs)" 64 "dd's 64 synchronous writes were answered at idle priority"
# The guard: a busy loop on the writer's CPU. A worker that stayed at idle
# priority would wait behind it for most of a second per request; the main
# thread raises it back (ring_handoff_stalls) and the writes go on, well
# within the bound (20,000 synchronous writes).
pfs_mount -o transport=io_uring,ring_handoff=on
cpu=$(($(nproc) - 1))
taskset -c "$cpu" sh -c 'while :; do :; done' &
hog=$!
pfs_helper "$hog"
pfs_run 120 taskset -c "$cpu" dd if=/dev/zero of="$M/guard" bs=4096 count=20000 status=none ||
	pfs_fail "20,000 writes beside a busy loop on their CPU did not finish in 120 s"
kill "$hog"
wait "$hog" 2>/dev/null
stats_snap guard
pfs_umount_clean
assert_ge "$(stat_get guard ring_handoff_stalls)" 1 \
	"the guard raised a worker that waited behind the busy loop"
assert_eq 81920000 "$(stat -c %s "$B/guard")" "the writes beside the busy loop all landed"
roundtrip off_handoff -o transport=io_uring,ring_handoff=off
assert_eq 0 "$(stat_get off_handoff ring_handoffs)" "ring_handoff=off: no answer at idle priority"
assert_eq 0 "$(stat_get off_handoff ring_idle_samples)" "ring_handoff=off: no idle samples"
assert_eq 0 "$(stat_get off_handoff ring_handoff_stalls)" "ring_handoff=off: no handoff waited"
refused "ring_handoff=on with ring_spin_us" "not with ring_spin_us" \
	-o transport=io_uring,ring_handoff=on,ring_spin_us=50
refused "ring_handoff past its words" "expected auto, on or off" -o ring_handoff=always

# auto (the default): it samples /proc/stat every 50 ms while requests come.
pfs_mount -o transport=io_uring
pfs_must dd if=/dev/zero of="$M/auto" bs=4096 count=16 status=none
sleep 0.2
stats_snap handoff_auto
pfs_umount_clean
assert_eq auto "$(stat_get handoff_auto ring_handoff)" "ring_handoff=auto by default (as root)"
assert_ge "$(stat_get handoff_auto ring_idle_samples)" 1 "auto sampled the CPUs' idle time"
grep -q "transport: io_uring (.*handoff auto)" "$PFS_LOG" ||
	pfs_fail "the transport's log line does not name the handoff ($(cat "$PFS_LOG"))"
pfs_ok "the transport's log line names the handoff"

# Without CAP_SYS_NICE and with RLIMIT_NICE 0, a thread at idle priority could
# not come back: on is refused, auto runs without the handoff and says why.
PFS_EXEC_WRAP="prlimit --nice=0:0 setpriv --bounding-set=-sys_nice"
refused "ring_handoff=on without CAP_SYS_NICE" "ring_handoff=on: .*CAP_SYS_NICE or RLIMIT_NICE" \
	-o transport=io_uring,ring_handoff=on
roundtrip nocap_auto -o transport=io_uring
PFS_EXEC_WRAP=
assert_eq off "$(stat_get nocap_auto ring_handoff)" "auto without CAP_SYS_NICE: off"
grep -q "handoff off: .*CAP_SYS_NICE" "$PFS_LOG" ||
	pfs_fail "auto without CAP_SYS_NICE: the log does not say why ($(cat "$PFS_LOG"))"
pfs_ok "auto without CAP_SYS_NICE says why in the log"

pfs_ok "$PFS_CHECKS checks"
