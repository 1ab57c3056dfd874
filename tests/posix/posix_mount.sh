#!/bin/bash
# Runs one POSIX conformance executable, or the exerciser, on a real
# pressurefs mount (mounted with allow_other,default_permissions so that the
# tests acting as another user can reach it), unmounts cleanly and checks
# the backing dir.
#
# usage: posix_mount.sh PRESSUREFS PFS_MOUNT_IO run TEST_EXE [-o OPTS | -O OPTS]
#        posix_mount.sh PRESSUREFS PFS_MOUNT_IO fsx PFS_FSX [-o OPTS | -O OPTS] [pfs-fsx options]
# -o adds to allow_other,default_permissions; -O replaces them.
#
# fsx mode: the exerciser's --remount-cmd asks this script (through a FIFO)
# to unmount and mount the same backing dir again, so every mount and daemon
# stays under lib.sh's bounded, always-clean-up control; each daemon must
# exit 0 after its unmount. After the run the backing files must equal the
# exerciser's model: each daemon wrote everything back before it exited
# (lib.sh waits for that exit, not only for fusermount3).
. "$(dirname "$0")/../mount/lib.sh"
pfs_init "$@"
MODE=${3:?mode: run or fsx}
EXE=${4:?executable}
shift 4
OPTS=allow_other,default_permissions
if [ "${1:-}" = -o ]; then
	OPTS=$OPTS,${2:?mount options}
	shift 2
elif [ "${1:-}" = -O ]; then # the whole option string, without the defaults above
	OPTS=${2:?mount options}
	shift 2
fi
PFS_NAME="posix[$(basename "$EXE")]"

posix_run_tests() {
	mkdir "$M/t" || pfs_fail "mkdir in the mount"
	chmod 755 "$M/t"
	PFS_POSIX_DIR=$M/t PFS_POSIX_BACKING=$B/t PFS_POSIX_CTL=$M/.pressurefs \
		pfs_run 280 "$EXE"
	local rc=$?
	[ "$rc" = 0 ] || pfs_fail "$(basename "$EXE") failed on the mount (status $rc; options $OPTS)"
	pfs_ok "$(basename "$EXE") passes on the mount (options $OPTS)"
	pfs_umount_clean
	pfs_ok "daemon exited 0 after the unmount"
	assert_eq "" "$(ls -A "$B/t")" "the backing dir keeps nothing the tests removed"
}

posix_run_fsx() {
	local req=$W/remount.req rep=$W/remount.rep line remounts=0 rc f fsx_pid
	mkfifo "$req" "$rep" || pfs_fail "mkfifo"
	# Both ends held open here, so neither side blocks in open(); every
	# read is bounded.
	exec 3<>"$req" 4<>"$rep"
	local client=$W/remount
	cat >"$client" <<EOF
#!/bin/bash
# Asks posix_mount.sh to remount; bounded wait for its answer.
echo remount >'$req' || exit 1
read -r -t $((PFS_EXIT_TIMEOUT + PFS_MOUNT_TIMEOUT + 30)) ans <'$rep' || exit 1
[ "\$ans" = ok ]
EOF
	chmod +x "$client"

	# Bounded (below meson's 600 s) and, if still running, ended by the
	# clean-up before it unmounts.
	timeout -k 5 540 "$EXE" --file "$M/fsx" --remount-cmd "$client" --save-model "$W/model" "$@" &
	fsx_pid=$!
	pfs_helper "$fsx_pid"
	while pfs_pid_alive "$fsx_pid"; do
		read -r -t 1 -u 3 line || continue
		pfs_umount_clean
		pfs_mount -o "$OPTS"
		remounts=$((remounts + 1))
		echo ok >&4
	done
	wait "$fsx_pid"
	rc=$?
	[ "$rc" = 0 ] || pfs_fail "pfs-fsx failed (status $rc) on the mount (options $OPTS)"
	pfs_ok "pfs-fsx matched its model through $remounts remounts (options $OPTS)"
	pfs_umount_clean
	pfs_ok "daemon exited 0 after the last unmount"
	for f in "$W"/model*; do
		assert_file_eq "$f" "$B/fsx${f#"$W"/model}" "backing file fsx${f#"$W"/model} equals the model after unmount"
	done
}

pfs_mount -o "$OPTS"
case $MODE in
run) posix_run_tests ;;
fsx) posix_run_fsx "$@" ;;
*) pfs_fail "unknown mode $MODE" ;;
esac
