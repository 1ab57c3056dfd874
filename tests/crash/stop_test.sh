#!/bin/bash
# mount.crash_cut_waits_for_every_thread: the power cut's stop (stop.sh,
# crash_stop_all) returns only once every thread of the process is stopped,
# so that nothing the daemon does can come after the cut. A bare kill -STOP
# returns at once, with a thread still inside a system call: that is how a
# daemon answered an fsync after the backing ext4 was shut down (seed 7025,
# README.md). pfs-stop-probe holds one thread in an uninterruptible call
# until this test releases it:
#   1. held: crash_stop_all must fail (1) after its bound and name the
#      thread still in state D; a helper that does not wait returns 0;
#   2. released: crash_stop_all must return 0 with every thread stopped,
#      and the held thread must not have run on (it writes a marker file
#      as soon as it gets back to user space).
#   stop_test.sh PFS_STOP_PROBE [sh|py]
# sh (default) tests stop.sh's crash_stop_all, which the crash matrix and
# power.sh use; py tests bench/comparison/compare_power.py's stop_all, which
# bench/compare --crash power uses, through the same steps.
# No FUSE mount: the probe stands for the daemon. No assertion looks at the
# clock; the bounds only turn a hang into a failure.
set -u -o pipefail
PROBE=${1:?usage: stop_test.sh PFS_STOP_PROBE [sh|py]}
IMPL=${2:-sh}
NAME=crash-cut-stop-$IMPL
. "$(dirname "$0")/stop.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)

# stop_under_test PID SECS: the implementation under test, with
# crash_stop_all's exit statuses and its "still in state X" lines.
stop_under_test() {
	case $IMPL in
	sh) crash_stop_all "$@" ;;
	py)
		python3 - "$SRC" "$@" <<'PY'
import os, sys
src, pid, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sys.path[:0] = [os.path.join(src, 'bench', 'comparison'), os.path.join(src, 'bench', 'common')]
import compare_power
r = compare_power.stop_all(pid, secs)
if r is True:
    sys.exit(0)
if r == 'gone':
    sys.exit(2)
for t in r:
    tid, state = t.split(' ', 1)
    print('thread %s still in state %s' % (tid, state.strip('()')), file=sys.stderr)
sys.exit(1)
PY
		;;
	*) fail "unknown implementation '$IMPL' (accepted: sh, py)" ;;
	esac
}

T=$(mktemp -d /tmp/pfs-stop-test.XXXXXX)
PID=""
say() { printf '%s: %s\n' "$NAME" "$*"; }
fail() {
	printf '%s: FAIL: %s\n' "$NAME" "$*" >&2
	exit 1
}
# Whatever happened: release the probe's child (a FIFO opened read-write
# never blocks), end the probe by its PID, remove the temp dir.
cleanup() {
	if [ -p "$T/fifo" ]; then
		exec 3<>"$T/fifo" && printf x >&3 && exec 3>&-
	fi
	if [ -n "$PID" ]; then
		kill -KILL "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
[ -x "$PROBE" ] || fail "$PROBE is not built"

mkfifo "$T/fifo" || fail "cannot make a FIFO in $T"
"$PROBE" "$T/fifo" "$T/marker" &
PID=$!

# The probe's second thread is inside clone(CLONE_VFORK) (state D) once its
# child has started; wait for that, bounded. A thread can pass through D for
# a moment on its way there (a page fault, the clone itself), so the same
# thread must be seen in D on 10 looks in a row (100 ms) before it counts.
held=0 dtid="" seen=0
for ((i = 0; i < 2000; i++)); do
	now=""
	for f in /proc/"$PID"/task/*/stat; do
		crash_thread_state "$f"
		if [ "$CRASH_STATE" = D ]; then
			now=${f%/stat}
			now=${now##*/}
		fi
	done
	if [ -n "$now" ] && [ "$now" = "$dtid" ]; then
		seen=$((seen + 1))
	else
		dtid=$now seen=0
		[ -n "$now" ] && seen=1
	fi
	if [ "$seen" -ge 10 ]; then
		held=1
		break
	fi
	sleep 0.01
done
[ "$held" = 1 ] || fail "the probe's thread never entered its uninterruptible call"

# 1. Held: no stop can complete; the helper must say so.
rc=0
stop_under_test "$PID" 2 2>"$T/why" || rc=$?
[ "$rc" = 1 ] || fail "crash_stop_all returned $rc with a thread held in state D (want 1: not stopped)"
grep -q 'still in state D' "$T/why" || fail "crash_stop_all did not name the thread in state D: $(cat "$T/why")"
[ ! -e "$T/marker" ] || fail "the held thread returned before it was released"
say "ok: with a thread inside an uninterruptible call the stop does not complete ($(head -n1 "$T/why" | sed 's/^ *//'))"

# 2. Released: the call returns, the thread stops before any user code.
exec 3<>"$T/fifo" && printf x >&3 && exec 3>&-
rc=0
stop_under_test "$PID" 60 || rc=$?
[ "$rc" = 0 ] || fail "crash_stop_all returned $rc after the thread was released (want 0)"
crash_all_stopped "$PID" || fail "crash_stop_all returned 0 but a thread of $PID is not stopped"
[ ! -e "$T/marker" ] || fail "the released thread ran on after the stop (it wrote $T/marker)"
say "ok: released, the thread stopped as its call returned, before it could do anything"

# The stop is only a pause: SIGCONT lets the thread on (it writes the marker).
kill -CONT "$PID"
for ((i = 0; i < 6000; i++)); do
	[ -s "$T/marker" ] && break
	sleep 0.01
done
[ -s "$T/marker" ] || fail "after SIGCONT the thread never got back to user space"
say "ok: after SIGCONT the thread went on"
say "PASS"
