# shellcheck shell=bash
# Stopping a process for a power cut, sourced by matrix.sh, power.sh and
# stop_test.sh.
#
# kill -STOP returns once the signal is queued, not once the process has
# stopped: one thread takes the signal and only then asks the others to
# stop, and a thread inside a system call stops only when the call returns.
# Until every thread is stopped the daemon may still answer a request, and
# an answer sent after the backing fs was shut down is one no real power
# cut lets out: ext4 can return 0 from an fsync that was in flight across
# FS_IOC_SHUTDOWN although the shutdown aborted the transaction holding its
# data (see README.md, "the power mode's lost page"). So the cut waits until
# every thread is stopped; a call in flight then ends on the live fs first.

# crash_thread_state STATFILE: CRASH_STATE = the state letter of one
# /proc/.../stat, read without a fork (the field after the ")" that ends the
# command name, which may hold spaces and parentheses); empty if the thread
# is gone.
CRASH_STATE=""
crash_thread_state() {
	local line
	CRASH_STATE=""
	read -r line 2>/dev/null <"$1" || return 0
	line=${line##*) }
	CRASH_STATE=${line%% *}
}

# crash_all_stopped PID: every thread of PID is stopped (T or t) or gone
# (Z, X). 1 otherwise, or when PID is gone altogether.
crash_all_stopped() {
	local f seen=0
	for f in /proc/"$1"/task/*/stat; do
		crash_thread_state "$f"
		[ -n "$CRASH_STATE" ] || continue
		seen=1
		case $CRASH_STATE in T | t | Z | X) ;; *) return 1 ;; esac
	done
	[ "$seen" = 1 ]
}

# crash_stop_all PID SECS: SIGSTOP PID and wait (at most SECS seconds)
# until every one of its threads is stopped. The signal is sent again on
# every look, so that a SIGCONT from elsewhere cannot leave it running (the
# kernel continues the stopped members of a process group that becomes
# orphaned; a matrix started with nohup in the background once sat here
# with the daemon running again).
# 0: stopped. 2: PID is gone (or died meanwhile). 1: some thread did not
# stop in time; one line per such thread (tid, name, state) on stderr. The
# process stays stopped either way.
crash_stop_all() {
	local pid=$1 end=$((SECONDS + $2)) f
	kill -STOP "$pid" 2>/dev/null || return 2
	while :; do
		[ -d /proc/"$pid" ] || return 2
		# Dead but not yet reaped.
		crash_thread_state /proc/"$pid"/stat
		[ "$CRASH_STATE" = Z ] && return 2
		crash_all_stopped "$pid" && return 0
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.01
		kill -STOP "$pid" 2>/dev/null || return 2
	done
	for f in /proc/"$pid"/task/*/stat; do
		crash_thread_state "$f"
		case $CRASH_STATE in T | t | Z | X | '') ;;
		*) sed -n 's/^\([0-9]*\) (\(.*\)) .*/  thread \1 (\2) still in state '"$CRASH_STATE"'/p' "$f" >&2 ;;
		esac
	done
	return 1
}
