#!/bin/bash
# The daemon's RSS stays within the bound README.md states:
#
#   VmHWM <= mem_limit + 4 MiB + T x 196 KiB   (T <= 16: at most + 7.1 MiB)
#
# T: FUSE worker threads (at most 16; counted here, generously, as every
# thread but main). The 4 MiB cover the binary, libc, libfuse and the
# daemon's own threads. Each worker adds its libfuse receive buffer, touched
# only as far as the largest request it read (max_write 128 KiB + header =
# 132 KiB: the buffer is mmapped, fs/memtune.c) and its stack (64 KiB). The
# page cache itself stays inside mem_limit: with fs/memtune.c's single
# malloc arena a freed page is reused by any thread instead of staying in
# the arena of the thread that allocated it.
#
# Three writes on one mount: 1 GiB sequential in 128 KiB blocks (as
# bench/perf's seqwrite), 16 parallel writers in 128 KiB blocks (every
# worker busy), then 1 MiB blocks (requests as large as the kernel sends).
# After each one VmHWM is compared with the bound. A memory bound, not a
# timing: no clock is looked at.
# usage: rss.sh PRESSUREFS PFS_MOUNT_IO [MEM_LIMIT_MIB]
. "$(dirname "$0")/../mount/lib.sh"
. "$(dirname "$0")/lib_load.sh"
pfs_init "$(realpath -e "$1")" "$(realpath -e "$2")"
MEM_MB=${3:-16}
PFS_NAME="load-rss[${MEM_MB}M]"
BASE_KB=$((4 * 1024))
PER_WORKER_KB=196

pfs_daemon_is_asan && pfs_skip "ASan build: shadow memory makes RSS say nothing about mem_limit"

# meson test sets MALLOC_PERTURB_, which makes malloc fill every block it
# hands out: each worker's 1 MiB receive buffer would be touched in full
# whatever the request size. Measure the daemon as it runs for users.
unset MALLOC_PERTURB_
pfs_mount -o "policy=retry,mem_limit=${MEM_MB}M"

# The most threads the daemon had at once, sampled while it writes (a
# worker that ends keeps nothing, so the peak count is what matters).
pfs_threads_sample() {
	local max=0 n
	while pfs_pid_alive "$PFS_PID"; do
		n=$(pfs_proc_kb "$PFS_PID" Threads)
		[[ $n =~ ^[0-9]+$ ]] && [ "$n" -gt "$max" ] && max=$n && echo "$max" >"$W/threads.max"
		sleep 0.05
	done
}
echo 1 >"$W/threads.max"
pfs_threads_sample &
pfs_helper $!

# rss_check WHAT: VmHWM against the bound.
rss_check() {
	local hwm threads now workers bound heap
	hwm=$(pfs_proc_kb "$PFS_PID" VmHWM)
	threads=$(cat "$W/threads.max")
	now=$(pfs_proc_kb "$PFS_PID" Threads)
	[ "$now" -gt "$threads" ] && threads=$now
	workers=$((threads - 1))
	bound=$((MEM_MB * 1024 + BASE_KB + workers * PER_WORKER_KB))
	stats_snap "after-$1"
	heap=$(awk '/\[heap\]/ { h = 1; next } /^[0-9a-f]+-/ { h = 0 } h && /^Rss:/ { s += $2 } END { print s + 0 }' \
		"/proc/$PFS_PID/smaps")
	pfs_say "$1: VmHWM ${hwm} kB (mem_limit + $((hwm - MEM_MB * 1024)) kB), heap ${heap} kB," \
		"allocator peak $(($(stat_num "after-$1" peak) / 1024)) kB, $threads threads"
	[ "$hwm" -le "$bound" ] ||
		pfs_fail "$1: daemon VmHWM ${hwm} kB > mem_limit ${MEM_MB} MiB + 4 MiB + $workers x $PER_WORKER_KB kB = $bound kB"
	pfs_ok "$1: VmHWM ${hwm} kB <= bound ${bound} kB"
}

# dd_write FILE BLOCK COUNT: a bounded write, synced at the end.
dd_write() {
	pfs_run 240 dd if=/dev/zero of="$1" bs="$2" count="$3" conv=fsync status=none ||
		pfs_fail "dd of=$1 bs=$2 count=$3 failed"
}

dd_write "$M/seq" 128K 8192
rss_check "1 GiB sequential, 128 KiB blocks"
rm -f "$M/seq"

pids=()
for i in $(seq 16); do
	pfs_run 240 dd if=/dev/zero of="$M/par.$i" bs=128K count=256 conv=fsync status=none &
	pids+=($!)
	pfs_helper $!
done
for p in "${pids[@]}"; do
	wait "$p" || pfs_fail "parallel writer $p failed (status $?)"
done
rss_check "16 parallel writers, 128 KiB blocks"
rm -f "$M"/par.*

dd_write "$M/big" 1M 512
rss_check "512 MiB sequential, 1 MiB blocks"

stats_snap final
[ "$(stat_num final live)" -le $((MEM_MB * 1024 * 1024)) ] ||
	pfs_fail "allocator live bytes $(stat_num final live) above mem_limit"
pfs_umount_clean
