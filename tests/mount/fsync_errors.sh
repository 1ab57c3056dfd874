#!/bin/bash
# Proves what fsync's errors mean on a real mount, through the kernel, with
# descriptors held open across the failure (the README's "What fsync()
# means"):
#   - a backing write error (ENOSPC from a full 2 MiB tmpfs under the mount)
#     met by a writeback no fsync asked for is reported once to each of two
#     descriptors open at the time, even though their fsync then writes the
#     data; one opened after the failure but before anyone was told hears
#     of it too; one opened after it was reported does not;
#   - an error met while no descriptor was open goes to the next fsync;
#   - a background writeback whose buffer allocation failed, and that wrote
#     the data on its next pass, is no error: fsync returns 0.
# usage: fsync_errors.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
[ "$(id -u)" = 0 ] || pfs_fail "this test mounts a small tmpfs and must run as root"

mount -t tmpfs -o size=2M,mode=755 pfs-test "$B" || pfs_fail "cannot mount a tmpfs on $B"
PFS_EXTRA_MOUNTS+=("$B")
pfs_mount -o policy=enomem,writeback_ms=600000

# One pfs-mount-io session keeps the descriptors open between steps.
coproc IO { exec "$PFS_IO" session; }
IO_HELPER=$IO_PID # bash unsets IO_PID once the coprocess ends
pfs_helper "$IO_HELPER"
# io COMMAND...: send one line, the answer (OK or an errno name) in $ANS.
io() {
	printf '%s\n' "$*" >&"${IO[1]}" || pfs_fail "pfs-mount-io session is gone ('$*')"
	read -r -t "$PFS_OP_TIMEOUT" ANS <&"${IO[0]}" || pfs_fail "pfs-mount-io session did not answer '$*'"
}
# io_expect WANT WHAT COMMAND...
io_expect() {
	local want=$1 what=$2
	shift 2
	io "$@"
	assert_eq "$want" "$ANS" "$what"
}
# write_4m SLOT: 4 MiB through descriptor SLOT, 256 KiB a write.
write_4m() {
	local i
	for ((i = 0; i < 16; i++)); do
		io write "$1" $((i << 18)) 262144
		[ "$ANS" = OK ] || pfs_fail "write $i through descriptor $1: $ANS"
	done
	pfs_ok "4 MiB acknowledged through descriptor $1 (the backing fs holds 2)"
}
# A writeback that is not an fsync, and that cannot finish: the disk is full.
background_writeback_fails() {
	local before
	stats_snap "$1.before"
	before=$(stat_get "$1.before" writeback_errors)
	ctl_try sync 1 >/dev/null
	stats_snap "$1.after"
	assert_gt "$(stat_get "$1.after" writeback_errors)" "$before" "$1: the writeback failed"
}

# ---- no descriptor open at the failure: the next fsync hears of it ----
io_expect OK "open a" open 0 "$M/a"
write_4m 0
io_expect OK "close a" close 0
background_writeback_fails nofd
mount -o remount,size=16M "$B" || pfs_fail "cannot grow the tmpfs"
io_expect OK "open a after the failure" open 1 "$M/a"
io_expect ENOSPC "an error nobody was told of goes to the next fsync" fsync 1
io_expect OK "and only once" fsync 1
io_expect OK "close a" close 1
assert_eq "" "$(ctl_read dirty)" "a is written back"

# ---- descriptors open at the failure: each is told once ----
rm -f "$M/a" || pfs_fail "rm a"
mount -o remount,size=2M "$B" || pfs_fail "cannot shrink the tmpfs again"
io_expect OK "open b (descriptor 1)" open 1 "$M/b"
io_expect OK "open b (descriptor 2)" open 2 "$M/b"
write_4m 1
background_writeback_fails open
io_expect OK "open b after the failure, before anyone was told (descriptor 3)" open 3 "$M/b"
mount -o remount,size=16M "$B" || pfs_fail "cannot grow the tmpfs"
io_expect ENOSPC "descriptor 1 is told, though its fsync wrote the data" fsync 1
assert_eq "" "$(ctl_read dirty)" "b is written back"
io_expect OK "descriptor 1 is told once" fsync 1
io_expect ENOSPC "descriptor 2, open at the failure too, is told" fsync 2
io_expect OK "descriptor 2 is told once" fsync 2
io_expect ENOSPC "descriptor 3 hears of the error nobody had been told of" fsync 3
io_expect OK "open b after the error was reported (descriptor 4)" open 4 "$M/b"
io_expect OK "descriptor 4 is not told of old news" fsync 4
for s in 1 2 3 4; do io_expect OK "close descriptor $s" close $s; done

# ---- a writeback that could not get its buffer, and wrote later ----
io_expect OK "open c" open 5 "$M/c"
io_expect OK "write c" write 5 0 300000
ctl_write fail_sites writeback
ctl_write fail_times 1
ctl_write fail_probability 100
stats_snap c.before
ctl_write writeback_ms 50
for ((i = 0; i < 600; i++)); do
	[ -z "$(ctl_read dirty)" ] && break
	sleep 0.1
done
assert_eq "" "$(ctl_read dirty)" "the writeback thread wrote c back"
stats_snap c.after
assert_gt "$(stat_get c.after sites.writeback.injected_failures)" \
	"$(stat_get c.before sites.writeback.injected_failures)" "its first buffer allocation failed"
io_expect OK "fsync after the data reached the disk: no error" fsync 5
io_expect OK "close c" close 5
ctl_write fail_probability 0

eval "exec ${IO[1]}>&-"
pfs_wait_pid "$IO_HELPER" 10 || pfs_fail "pfs-mount-io session did not end"
pfs_umount_clean
printf '' >"$W/c"
"$PFS_IO" write "$W/c" 0 300000 >/dev/null
assert_file_eq "$W/c" "$B/c" "c is in the backing file"
printf '' >"$W/b"
for ((i = 0; i < 16; i++)); do "$PFS_IO" write "$W/b" $((i << 18)) 262144 >/dev/null; done
assert_file_eq "$W/b" "$B/b" "every byte of b is in the backing file"
