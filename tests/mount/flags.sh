#!/bin/bash
# Proves the libfuse-style flags and signals: -d keeps the daemon in the
# foreground without -f and prints debug output; -s (single-threaded)
# serves reads and writes; SIGTERM and SIGHUP unmount cleanly, write every
# dirty byte back and exit 0; the libfuse options ro, fsname= and subtype=
# reach the mount (writes get EROFS, reads and control reads work). Only
# the main thread can take SIGTERM and SIGHUP.
# usage: flags.sh PRESSUREFS PFS_MOUNT_IO
#
# libfuse leaves a signal alone that was ignored when the daemon started
# (nohup's SIGHUP): the daemon then rightly stays. So when this test itself
# runs with SIGHUP ignored (started under nohup), it runs again with SIGHUP
# back to its default, which a shell cannot do for itself.
sighup_ignored() {
	local mask
	mask=$(awk '/^SigIgn:/ {print $2}' /proc/$$/status)
	[ $((0x$mask & 1)) -ne 0 ]
}
if sighup_ignored && [ -z "${PFS_FLAGS_HUP_RESET:-}" ]; then
	PFS_FLAGS_HUP_RESET=1 exec env --default-signal=HUP "$0" "$@"
fi
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"

head -c 700000 /dev/urandom >"$W/data"

PFS_FOREGROUND_FLAG=-d pfs_mount -o policy=enomem
pfs_must cp "$W/data" "$M/d"
assert_file_eq "$W/data" "$M/d" "-d: data reads back"
pfs_pid_alive "$PFS_PID" || pfs_fail "-d without -f did not stay in the foreground"
pfs_ok "-d stays in the foreground"
[ "$(grep -vc '^+ ' "$PFS_LOG")" -gt 5 ] || pfs_fail "-d printed no debug output"
pfs_ok "-d prints debug output"
pfs_umount_clean

pfs_mount -s -o policy=retry
pfs_must cp "$W/data" "$M/s"
pfs_must dd if="$W/data" of="$M/s" bs=4096 seek=1000 conv=notrunc status=none
cp "$W/data" "$W/model"
dd if="$W/data" of="$W/model" bs=4096 seek=1000 conv=notrunc status=none
assert_file_eq "$W/model" "$M/s" "-s: data reads back"
pfs_umount_clean
assert_file_eq "$W/model" "$B/s" "-s: data in the backing file after unmount"

# Which threads may take SIGHUP and SIGTERM (bits 0 and 14 of SigBlk):
# prints the threads, other than the main one, that do not block them,
# and the main thread if it blocks one.
exit_signal_takers() {
	local pid=$1 t blk
	for t in /proc/"$pid"/task/*; do
		blk=$(awk '/^SigBlk:/ { print $2 }' "$t/status" 2>/dev/null) || continue
		[ -n "$blk" ] || continue
		if [ "${t##*/}" = "$pid" ]; then
			(((16#$blk & 0x4001) == 0)) || echo "main thread blocks them ($blk)"
		else
			(((16#$blk & 0x4001) == 0x4001)) || echo "$(cat "$t/comm") ${t##*/} ($blk)"
		fi
	done
}

# Not SIGINT: a shell without job control starts background jobs with
# SIGINT ignored, and libfuse leaves an ignored signal alone.
for sig in TERM HUP; do
	pfs_mount -o policy=retry,writeback_ms=600000
	pid=$PFS_PID
	pfs_must cp "$W/data" "$M/sig$sig"
	# Taken by a worker, the signal cuts a request short with EINTR and
	# leaves the main thread to find the exit flag by polling: only the
	# main thread, waiting for exactly that, may take it.
	takers=$(exit_signal_takers "$pid")
	[ -z "$takers" ] || pfs_fail "SIG$sig: threads other than the main one can take it:" $takers
	pfs_ok "SIG$sig: only the main thread can take it"
	kill -"$sig" "$pid"
	pfs_wait_pid "$pid" "$PFS_EXIT_TIMEOUT" || pfs_fail "SIG$sig: the daemon did not exit"
	pfs_forget_pid "$pid"
	assert_eq 0 "$PFS_STATUS" "SIG$sig: the daemon exits 0"
	pfs_is_mounted "$M" && pfs_fail "SIG$sig: still mounted after the daemon exited"
	pfs_forget_mount "$M"
	pfs_ok "SIG$sig: unmounted"
	assert_file_eq "$W/data" "$B/sig$sig" "SIG$sig: dirty data written back before exit"
done

# A file still open when the daemon is told to go: its RELEASE never comes
# (the kernel drops it with the connection), so the daemon frees the handle
# itself; nothing it allocated is left at exit (alloc_destroy says so, and
# LeakSanitizer fails the exit in the sanitizer build).
pfs_mount -o policy=retry,writeback_ms=600000
pid=$PFS_PID
exec 7>"$M/held" || pfs_fail "cannot open $M/held"
printf 'held open\n' >&7
kill -TERM "$pid"
pfs_wait_pid "$pid" "$PFS_EXIT_TIMEOUT" || pfs_fail "held file: the daemon did not exit"
pfs_forget_pid "$pid"
exec 7>&-
assert_eq 0 "$PFS_STATUS" "held file: the daemon exits 0"
pfs_forget_mount "$M"
grep -q 'still allocated' "$PFS_LOG" && pfs_fail "held file: the daemon left memory allocated at exit: $(grep 'still allocated' "$PFS_LOG")"
assert_eq "held open" "$(cat "$B/held")" "held file: its data written back before exit"
pfs_ok "a file open at exit: its handle freed, nothing left allocated"

printf 'kept\n' >"$B/ro_file"
pfs_mount -o ro,fsname=pfs-test-fs,subtype=pfstest,policy=enomem
line=$(awk -v m="$M" '$2 == m' /proc/self/mounts)
assert_match '^pfs-test-fs [^ ]+ fuse\.pfstest ro,' "$line" "ro, fsname= and subtype= reach /proc/mounts"
assert_eq kept "$(pfs_run 10 cat "$M/ro_file")" "ro: reads work"
assert_eq EROFS "$(pfs_run 10 "$PFS_IO" write "$M/ro_file" 0 10)" "ro: writing a file gets EROFS"
assert_eq EROFS "$(pfs_run 10 "$PFS_IO" write "$M/new" 0 10)" "ro: creating a file gets EROFS"
assert_eq enomem "$(ctl_read policy)" "ro: control files are readable"
pfs_umount_clean
assert_eq kept "$(cat "$B/ro_file")" "ro: the backing file is unchanged"
