# shellcheck shell=bash
# Helpers of the load tests, on top of tests/mount/lib.sh.

# stat_num SNAP KEY: an integer from a stats snapshot (fails the test if the
# key is missing).
stat_num() {
	local v
	v=$(stat_get "$1" "$2")
	[[ $v =~ ^[0-9]+$ ]] || pfs_fail "stats $1: $2 is '$v', expected a number"
	echo "$v"
}

# The daemon was built with ASan: its RSS says nothing about mem_limit, and
# valgrind cannot run it.
# (No `| grep -q`: under pipefail, grep quitting early makes ldd die of
# SIGPIPE and the pipeline fail at random.)
pfs_daemon_is_asan() {
	local out
	out=$(ldd "$PFS_EXE" 2>/dev/null)
	[[ $out == *libasan* ]] && return 0
	out=$(nm -D "$PFS_EXE" 2>/dev/null)
	[[ $out == *__asan_init* ]]
}

# kB of one /proc/PID/status field (VmRSS, VmHWM).
pfs_proc_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# pfs_leak_check SNAP_BEFORE SLACK_BYTES WHAT: write 1 to sync and
# drop_caches, then live bytes must be back within SLACK_BYTES of the
# baseline snapshot, and nothing cached or dirty.
pfs_leak_check() {
	local base live cached dirty
	ctl_write sync 1
	ctl_write drop_caches 1
	stats_snap after_drop
	base=$(stat_num "$1" live)
	live=$(stat_num after_drop live)
	cached=$(stat_num after_drop cached)
	dirty=$(stat_num after_drop dirty)
	assert_eq 0 "$dirty" "$3: nothing dirty after sync"
	assert_eq 0 "$cached" "$3: nothing cached after drop_caches"
	[ "$live" -le $((base + $2)) ] ||
		pfs_fail "$3: live bytes $live after sync+drop_caches, baseline $base (+ slack $2)"
	pfs_ok "$3: live bytes back near baseline ($live, baseline $base, slack $2)"
}
