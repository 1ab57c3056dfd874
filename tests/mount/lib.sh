# shellcheck shell=bash
# Shared library of the real-mount tests. Every test script does
#
#	. "$(dirname "$0")/lib.sh"
#	pfs_init "$@"          # $1 = the daemon, $2 = the pfs-mount-io helper
#
# and then mounts with pfs_mount. What this library promises:
#   - skip (exit 77) only when /dev/fuse or fusermount3 is missing;
#   - every mount made through pfs_mount, and every FUSE mount found under
#     the test's temp root however it was made, is unmounted on exit,
#     whatever happened (fusermount3 -u, then -uz as the last resort), and
#     every daemon pfs_mount started is waited for (bounded), then ended by
#     its PID; helpers registered with pfs_helper are ended first;
#   - every temp dir is removed (rm --one-file-system: never through a
#     mount that refused to go);
#   - every wait is bounded: nothing here can hang a CI job.
# No assertion looks at the clock: bounds only turn a hang into a failure.

set -u -o pipefail

PFS_MOUNT_TIMEOUT=${PFS_MOUNT_TIMEOUT:-20} # seconds until a mount must be up
PFS_EXIT_TIMEOUT=${PFS_EXIT_TIMEOUT:-90}   # seconds a daemon may take to flush and exit
PFS_OP_TIMEOUT=${PFS_OP_TIMEOUT:-60}	   # default bound of one command on the mount

PFS_NAME=$(basename "$0" .sh)
PFS_T=""		# the test's temp root
PFS_MOUNTS=()		# mountpoints made by pfs_mount (cleanup unmounts them)
PFS_PIDS=()		# daemon PIDs started by pfs_mount (cleanup ends them)
PFS_HELPERS=()		# background jobs using the mount (cleanup ends them first)
PFS_EXTRA_MOUNTS=()	# other mounts a test made (a small tmpfs...): unmounted last
PFS_PID=""		# the last daemon started
PFS_LOG=""		# its stderr
PFS_STATUS=""		# exit status of the last daemon pfs_umount/pfs_wait_pid waited for
PFS_NMOUNT=0
PFS_CHECKS=0

pfs_say() { printf '%s: %s\n' "$PFS_NAME" "$*"; }

pfs_skip() {
	printf '%s: SKIP: %s\n' "$PFS_NAME" "$*"
	exit 77
}

# Show the daemon logs, then fail (the EXIT trap cleans up).
pfs_fail() {
	printf '%s: FAIL: %s\n' "$PFS_NAME" "$*" >&2
	local f
	# daemon.san.*: sanitizer logs of daemons that daemonized (no stderr).
	for f in "$PFS_T"/daemon.*.err "$PFS_T"/daemon.san.*; do
		[ -s "$f" ] || continue
		# A sanitizer report: its head says what and where.
		if grep -q -E '^==[0-9]+==ERROR|runtime error:' "$f"; then
			printf -- '--- %s (sanitizer report)\n' "${f##*/}" >&2
			grep -m1 -A110 -E '^==[0-9]+==ERROR|runtime error:' "$f" >&2
		else
			printf -- '--- %s (last 30 lines)\n' "${f##*/}" >&2
			tail -n 30 "$f" >&2
		fi
	done
	exit 1
}

pfs_ok() {
	PFS_CHECKS=$((PFS_CHECKS + 1))
	printf '%s: ok: %s\n' "$PFS_NAME" "$*"
}

# ---- set-up and clean-up ----

pfs_check_env() {
	[ -e /dev/fuse ] || pfs_skip "/dev/fuse is missing"
	local fm
	# command -v also names a file it found without the x bit: check it.
	if ! fm=$(command -v fusermount3 2>/dev/null) || [ ! -x "$fm" ]; then
		pfs_skip "fusermount3 is not installed"
	fi
	# Present but unusable is a failure, not a skip.
	[ -c /dev/fuse ] || pfs_fail "/dev/fuse is not a character device"
	# PFS_TEST_TRANSPORT=io_uring (scripts/run-tests' second pass): every
	# mount asks for FUSE over io_uring, which the kernel must offer.
	if [ "${PFS_TEST_TRANSPORT:-}" = io_uring ]; then
		local p=/sys/module/fuse/parameters/enable_uring
		[ -e "$p" ] || pfs_skip "transport=io_uring: this kernel has no FUSE over io_uring ($p is missing)"
		[ "$(cat "$p")" = Y ] || pfs_skip "transport=io_uring: $p is N (scripts/run-tests turns it on as root)"
	fi
}

pfs_init() {
	[ $# -ge 2 ] || { echo "usage: $0 PRESSUREFS PFS_MOUNT_IO [args]" >&2; exit 2; }
	PFS_EXE=$1
	PFS_IO=$2
	pfs_check_env
	[ -x "$PFS_EXE" ] || pfs_fail "daemon $PFS_EXE is not built"
	[ -x "$PFS_IO" ] || pfs_fail "helper $PFS_IO is not built"
	PFS_PY=$(command -v /usr/bin/python3 || command -v python3) ||
		pfs_fail "python3 is needed to parse the stats JSON"
	PFS_SRC=$(cd "$(dirname "$0")" && pwd)
	PFS_T=$(mktemp -d "${TMPDIR:-/tmp}/pfs-$PFS_NAME.XXXXXX") || pfs_fail "mktemp"
	chmod 755 "$PFS_T"	# other users (the EACCES test) must reach the mount
	B=$PFS_T/backing
	M=$PFS_T/mnt
	W=$PFS_T/work		# models and journals: never inside the mount
	mkdir -p "$B" "$M" "$W"
	chmod 755 "$B" "$M"
	trap pfs_cleanup EXIT
	trap 'exit 143' TERM
	trap 'exit 130' INT
	trap 'exit 129' HUP
	ulimit -c 0		# abort tests must not leave cores in the build dir
	cd "$PFS_T" || pfs_fail "cd $PFS_T"
}

# Mounted? Looks at /proc only, so it cannot hang on a stuck daemon.
pfs_is_mounted() {
	awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

# Running (a zombie is not): one read of /proc, so the shell reaping the
# child between two checks cannot make a dead daemon look alive.
pfs_pid_alive() {
	local state
	state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ]
}

# Wait (bounded) for a daemon we started to exit; PFS_STATUS = its status.
# Returns 1 if it is still running after $2 seconds.
pfs_wait_pid() {
	local pid=$1 secs=${2:-$PFS_EXIT_TIMEOUT} i
	for ((i = 0; ; i++)); do
		pfs_pid_alive "$pid" || break
		((i < secs * 10)) || return 1
		sleep 0.1
	done
	wait "$pid" 2>/dev/null
	PFS_STATUS=$?
	return 0
}

pfs_forget_pid() {
	local p keep=()
	for p in "${PFS_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PFS_PIDS=("${keep[@]}")
}

# pfs_helper PID...: a background job the test started that uses the mount
# (a writer, a loop): cleanup ends it before unmounting, so it neither keeps
# the mount busy nor outlives the test.
pfs_helper() { PFS_HELPERS+=("$@"); }

# The FUSE mounts under $1 (/proc only: cannot hang).
pfs_fuse_mounts_under() {
	awk -v t="$1/" '$3 ~ /^fuse/ && index($2, t) == 1 { print $2 }' /proc/self/mounts
}

pfs_forget_mount() {
	local m keep=()
	for m in "${PFS_MOUNTS[@]}"; do [ "$m" = "$1" ] || keep+=("$m"); done
	PFS_MOUNTS=("${keep[@]}")
}

# pfs_mount_at BACKING MNT [daemon args...]: start the daemon in the
# foreground (-f) as a background job, wait until MNT is mounted. Sets
# PFS_PID and PFS_LOG. Fails the test if the mount does not come up.
pfs_mount_at() {
	local b=$1 m=$2 i
	shift 2
	PFS_NMOUNT=$((PFS_NMOUNT + 1))
	PFS_LOG=$PFS_T/daemon.$PFS_NMOUNT.err
	# PFS_DAEMON_FLAGS: extra flags for every mount of a test (-s ...).
	# PFS_FOREGROUND_FLAG: "-f" unless a test proves another flag (-d)
	# keeps the daemon in the foreground.
	local fg=${PFS_FOREGROUND_FLAG--f}
	# shellcheck disable=SC2086
	# PFS_TEST_TRANSPORT comes first: a test's own transport= wins.
	set -- ${PFS_TEST_TRANSPORT:+-o transport=$PFS_TEST_TRANSPORT} ${PFS_DAEMON_FLAGS:-} $fg "$@"
	echo "+ $PFS_EXE $* $b $m" >"$PFS_LOG"
	pfs_say "mount: ${PFS_EXE##*/} $*"
	# PFS_EXEC_WRAP: commands that set something up and exec the daemon
	# (prlimit, setpriv), so $! is still the daemon.
	${PFS_EXEC_WRAP:-} "$PFS_EXE" "$@" "$b" "$m" </dev/null >"$PFS_T/daemon.$PFS_NMOUNT.out" 2>>"$PFS_LOG" &
	PFS_PID=$!
	PFS_PIDS+=("$PFS_PID")
	PFS_MOUNTS+=("$m")
	for ((i = 0; i < PFS_MOUNT_TIMEOUT * 10; i++)); do
		if pfs_is_mounted "$m"; then
			return 0
		fi
		if ! pfs_pid_alive "$PFS_PID"; then
			pfs_wait_pid "$PFS_PID" 1
			pfs_forget_pid "$PFS_PID"
			pfs_fail "daemon exited with status $PFS_STATUS before $m was mounted (args: $*)"
		fi
		sleep 0.1
	done
	pfs_fail "$m not mounted after ${PFS_MOUNT_TIMEOUT}s (args: $*)"
}

# pfs_mount [daemon args...]: mount $B on $M.
pfs_mount() { pfs_mount_at "$B" "$M" "$@"; }

# Unmount (bounded retries while the mount is busy); 0 when it is gone.
pfs_fusermount_u() {
	local m=$1 i
	for ((i = 0; i < 20; i++)); do
		pfs_is_mounted "$m" || return 0
		timeout -k 2 10 fusermount3 -u "$m" 2>>"$PFS_T/fusermount.err" && return 0
		sleep 0.5
	done
	pfs_is_mounted "$m" && return 1
	return 0
}

# pfs_umount_at MNT [PID]: clean unmount; waits (bounded) for the daemon to
# flush and exit; PFS_STATUS = its exit status. Fails the test on a timeout.
pfs_umount_at() {
	local m=$1 pid=${2-$PFS_PID}
	pfs_fusermount_u "$m" || pfs_fail "fusermount3 -u $m failed: $(tail -n 3 "$PFS_T/fusermount.err")"
	pfs_forget_mount "$m"
	[ -n "$pid" ] || return 0
	pfs_wait_pid "$pid" "$PFS_EXIT_TIMEOUT" ||
		pfs_fail "daemon $pid still running ${PFS_EXIT_TIMEOUT}s after unmounting $m"
	pfs_forget_pid "$pid"
}

pfs_umount() { pfs_umount_at "$M" "$PFS_PID"; }

# Unmount and require the clean exit status 0.
pfs_umount_clean() {
	pfs_umount
	[ "$PFS_STATUS" = 0 ] || pfs_fail "daemon exited with status $PFS_STATUS after a clean unmount"
}

pfs_cleanup() {
	local rc=$? m p i
	trap - EXIT TERM INT HUP
	set +e
	cd / || true
	for p in "${PFS_HELPERS[@]}"; do
		pfs_pid_alive "$p" || continue
		kill -TERM "$p" 2>/dev/null
		pfs_wait_pid "$p" 5 && continue
		kill -KILL "$p" 2>/dev/null
		pfs_wait_pid "$p" 5
	done
	# A mount the test made by hand (or a daemon that should have refused
	# to mount) is ours too if it is under the temp root.
	[ -n "$PFS_T" ] && mapfile -t -O "${#PFS_MOUNTS[@]}" PFS_MOUNTS < <(pfs_fuse_mounts_under "$(realpath -e "$PFS_T" 2>/dev/null || echo "$PFS_T")")
	for m in "${PFS_MOUNTS[@]}"; do
		pfs_is_mounted "$m" || continue
		for ((i = 0; i < 6; i++)); do
			timeout -k 2 10 fusermount3 -u "$m" 2>/dev/null && break
			pfs_is_mounted "$m" || break
			sleep 0.5
		done
		if pfs_is_mounted "$m"; then
			echo "$PFS_NAME: cleanup: $m busy, lazy unmount" >&2
			timeout -k 2 10 fusermount3 -uz "$m" 2>/dev/null || timeout -k 2 10 umount -l "$m"
		fi
	done
	for p in "${PFS_PIDS[@]}"; do
		pfs_wait_pid "$p" 30 && continue
		echo "$PFS_NAME: cleanup: daemon $p did not exit, SIGTERM" >&2
		kill -TERM "$p" 2>/dev/null
		kill -CONT "$p" 2>/dev/null
		pfs_wait_pid "$p" 10 && continue
		echo "$PFS_NAME: cleanup: daemon $p did not exit, SIGKILL" >&2
		kill -KILL "$p" 2>/dev/null
		pfs_wait_pid "$p" 10
	done
	for m in "${PFS_MOUNTS[@]}"; do
		pfs_is_mounted "$m" && timeout -k 2 10 fusermount3 -uz "$m" 2>/dev/null
	done
	for m in "${PFS_EXTRA_MOUNTS[@]}"; do
		pfs_is_mounted "$m" && { timeout -k 2 10 umount "$m" || timeout -k 2 10 umount -l "$m"; }
	done
	if [ -n "$PFS_T" ] && [ -d "$PFS_T" ]; then
		if [ -n "${PFS_KEEP:-}" ]; then
			echo "$PFS_NAME: PFS_KEEP set, leaving $PFS_T" >&2
		else
			rm -rf --one-file-system "$PFS_T"
		fi
	fi
	if [ "$rc" = 0 ]; then
		echo "$PFS_NAME: PASS ($PFS_CHECKS checks)"
	fi
	exit "$rc"
}

# ---- another user ----

# pfs_use_nobody: NOBODY_UID, NOBODY_GID, and $PFS_T/io, a copy of the IO
# helper that nobody can run whatever the build dir's modes are. The caller
# checks it runs as root (skip or fail, as it sees fit).
pfs_use_nobody() {
	NOBODY_UID=$(id -u nobody) || pfs_fail "no user nobody"
	NOBODY_GID=$(id -g nobody) || pfs_fail "no group for nobody"
	install -m 755 "$PFS_IO" "$PFS_T/io" || pfs_fail "install $PFS_IO"
}

# as_nobody CMD...: run CMD as nobody (bounded).
as_nobody() {
	pfs_run 30 setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups "$@"
}

# ---- bounded commands ----

# pfs_run SECS CMD...: run CMD with a bound (SIGKILL 5 s after SIGTERM).
pfs_run() {
	local secs=$1
	shift
	timeout -k 5 "$secs" "$@"
}

# pfs_must CMD...: run with the default bound, fail the test if it fails.
pfs_must() {
	pfs_run "$PFS_OP_TIMEOUT" "$@" || pfs_fail "command failed (status $?): $*"
}

# ---- assertions ----

assert_eq() { # expected actual what
	[ "$1" = "$2" ] || pfs_fail "$3: expected '$1', got '$2'"
	pfs_ok "$3"
}

assert_ne() { # unexpected actual what
	[ "$1" != "$2" ] || pfs_fail "$3: got '$2', expected anything else"
	pfs_ok "$3"
}

assert_gt() { # a b what: a > b (integers)
	[ "$1" -gt "$2" ] 2>/dev/null || pfs_fail "$3: expected $1 > $2"
	pfs_ok "$3 ($1 > $2)"
}

assert_ge() {
	[ "$1" -ge "$2" ] 2>/dev/null || pfs_fail "$3: expected $1 >= $2"
	pfs_ok "$3 ($1 >= $2)"
}

assert_lt() {
	[ "$1" -lt "$2" ] 2>/dev/null || pfs_fail "$3: expected $1 < $2"
	pfs_ok "$3 ($1 < $2)"
}

assert_file_eq() { # expected-file actual-file what
	local out
	out=$(pfs_run "$PFS_OP_TIMEOUT" cmp -- "$1" "$2" 2>&1) || pfs_fail "$3: $out"
	pfs_ok "$3"
}

assert_match() { # extended-regex string what
	[[ $2 =~ $1 ]] || pfs_fail "$3: '$2' does not match /$1/"
	pfs_ok "$3"
}

# ---- control directory ----

PFS_CTL_NAME=.pressurefs

ctl_path() { printf '%s/%s/%s' "${CTL_MNT:-$M}" "$PFS_CTL_NAME" "$1"; }

# ctl_read FILE: its content (trailing newline stripped by $(...)).
ctl_read() {
	pfs_run "$PFS_OP_TIMEOUT" cat -- "$(ctl_path "$1")" || pfs_fail "cannot read control file $1"
}

# ctl_write FILE VALUE: the way a user does it (echo > file); fails the test
# if the write fails.
ctl_write() {
	local err
	err=$(pfs_run "$PFS_OP_TIMEOUT" bash -c 'printf "%s\n" "$2" > "$1"' _ "$(ctl_path "$1")" "$2" 2>&1) ||
		pfs_fail "writing '$2' to control file $1 failed: $err"
}

# ctl_try FILE VALUE: write without O_TRUNC, print OK or the errno name.
ctl_try() {
	pfs_run "$PFS_OP_TIMEOUT" "$PFS_IO" put "$(ctl_path "$1")" "$2"
}

# ---- statistics ----

# json_get FILE KEY.PATH: one value of a JSON file ("" if the key is missing:
# the assertions then fail with the key's name).
json_get() {
	"$PFS_PY" - "$1" "$2" <<'EOF'
import json, sys
try:
    v = json.load(open(sys.argv[1]))
except Exception as e:
    print("JSON-ERROR:%s" % e)
    sys.exit(0)
for k in sys.argv[2].split("."):
    if isinstance(v, dict) and k in v:
        v = v[k]
    else:
        print("MISSING:" + sys.argv[2])
        sys.exit(0)
if isinstance(v, bool):
    print(int(v))
elif isinstance(v, (dict, list)):
    print(json.dumps(v, sort_keys=True))
else:
    print(v)
EOF
}

# stats_snap NAME: copy the stats file to $W/NAME.json (one consistent read).
stats_snap() {
	pfs_run "$PFS_OP_TIMEOUT" cat -- "$(ctl_path stats)" >"$W/$1.json" || pfs_fail "cannot read stats"
	"$PFS_PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$W/$1.json" 2>/dev/null ||
		pfs_fail "stats is not valid JSON: $(head -c 400 "$W/$1.json")"
}

# stat_get SNAP KEY.PATH
stat_get() { json_get "$W/$1.json" "$2"; }

# pfs_check SUBCOMMAND ARGS...: the checks in pfs_check.py.
pfs_check() { "$PFS_PY" "$PFS_SRC/pfs_check.py" "$@"; }

# ---- data helpers ----

# fsync a file through the mount; prints OK or the errno name.
pfs_fsync() { pfs_run "$PFS_OP_TIMEOUT" "$PFS_IO" fsync "$1"; }

# pfs_dd_at SRC SRC_OFF LEN DST DST_OFF: copy bytes into DST at DST_OFF
# without truncating it (one write() per 64 KiB block).
pfs_dd_at() {
	pfs_run "$PFS_OP_TIMEOUT" dd if="$1" of="$4" bs=65536 iflag=skip_bytes,count_bytes \
		oflag=seek_bytes skip="$2" count="$3" seek="$5" conv=notrunc status=none
}

# pfs_uring_take: this test switches the fuse module's enable_uring itself
# (root only; skips where the kernel has no FUSE over io_uring) and picks each
# mount's transport; the value the parameter had comes back on exit, whatever
# happens. pfs_uring_set Y|N switches it.
PFS_URING_PARAM=/sys/module/fuse/parameters/enable_uring
pfs_uring_take() {
	PFS_TEST_TRANSPORT=
	[ -e "$PFS_URING_PARAM" ] ||
		pfs_skip "this kernel has no FUSE over io_uring ($PFS_URING_PARAM is missing)"
	[ "$(id -u)" = 0 ] || pfs_skip "switching $PFS_URING_PARAM needs root"
	PFS_URING_PREV=$(cat "$PFS_URING_PARAM")
	trap 'pfs_uring_restore; pfs_cleanup' EXIT
}
# Keeps the exit status for pfs_cleanup, which reads it from $?.
pfs_uring_restore() {
	local rc=$?
	echo "$PFS_URING_PREV" >"$PFS_URING_PARAM"
	return $rc
}
pfs_uring_set() {
	echo "$1" >"$PFS_URING_PARAM" || pfs_fail "cannot write $1 to $PFS_URING_PARAM"
}
