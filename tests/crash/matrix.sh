#!/bin/bash
# The crash matrix (issue 6): pfs-stress writes on a mount and the daemon
# dies at a random moment, many times over, each iteration with its own
# seed. Three ways to die, chosen by the seed:
#   kill9  kill -9 of the daemon (by the PID this script started), with
#          random policy, budget, page size, writeback age and dirty limit,
#          and in one run of three the kernel's write-back cache on;
#   ctl    1 written to .pressurefs/crash (drop dirty pages, abort);
#   abort  policy=abort with injection: fail_probability=100 and
#          fail_interval=N make the Nth eligible allocation fail, and the
#          policy aborts the daemon right there, inside the write path;
#   power  a power cut below pressurefs: the backing dir is an ext4 image
#          on a loop device of its own; the daemon is stopped (SIGSTOP, and
#          a wait until every one of its threads is stopped: stop.sh),
#          the ext4 is shut down without flushing (pfs-godown:
#          FS_IOC_SHUTDOWN, NOLOGFLUSH), the daemon is killed, and the
#          image is unmounted and mounted again before anything is checked.
#          What the backing fs had not handed to the device is lost, so
#          lost after write may include data written back but not fsynced;
#          lost after fsync must still be 0. Random policy (nofail, retry,
#          enomem, abort), budget, page size, writeback age and dirty limit.
#          Needs root and loop devices: without them power iterations are
#          left out with a line saying why (skip, 77, if power is all).
# After each death: the dead mount is unmounted; `pfs-stress verify` on the
# backing dir exits 0 (zero bytes lost after fsync, no fsynced block torn);
# every file of the backing dir reads; a fresh mount of the same backing
# dir works (every file reads back through it identical to the backing
# file, a new file is written, fsynced and survives a clean unmount).
#
# ctl mode also checks that the bytes the verifier counts as lost after
# write are exactly the bytes `dirty` listed just before the crash. How
# "just before" is made exact:
#   - page_size=4K = the stress block size, so a dirty range covers whole
#     blocks each rewritten since its last writeback (no clean neighbours
#     inside a dirty page);
#   - writeback_ms=600000 and dirty_limit=256M: nothing is written back but
#     by fsync, so the cache changes only when the writer acts;
#   - the writer is stopped with SIGSTOP, and `dirty` is read only once
#     every one of its threads is in state T: a thread inside a write() or
#     fsync() on the mount stops only after the daemon answered, so then no
#     request is in flight; the listing is read twice and must be equal;
#   - crash is written, then SIGCONT: a write the daemon had acknowledged
#     before the stop is journaled now (pfs-stress records after the call
#     returns), so the journal holds every acknowledgement the cache had.
# Then lost_after_write bytes == the sum of the listed lengths, and no
# block is torn.
#
# usage: matrix.sh PRESSUREFS PFS_MOUNT_IO PFS_STRESS [--iterations N]
#            [--seed S] [--modes kill9,ctl,abort,power] [--duration SECS]
#            [--file-size SIZE] [--files N] [--threads N]
#            [--kernel-cache-every N]   (kill9 runs with writeback_cache=1:
#                                        one in N, default 3, 0 = never)
#            [--godown PATH]            (default: pfs-godown beside pfs-stress)
# Iteration i uses seed S+i; the seed alone picks the mode and every
# parameter, so `--seed SEED --iterations 1` replays one iteration (the
# moment of death is drawn from the seed too; the machine's timing is not).
. "$(dirname "$0")/../mount/lib.sh"
. "$(dirname "$0")/stop.sh"
STRESS=$(realpath -e "${3:?usage: matrix.sh PRESSUREFS PFS_MOUNT_IO PFS_STRESS [options]}") ||
	{ echo "matrix.sh: pfs-stress $3 is missing" >&2; exit 1; }
pfs_init "$(realpath -e "$1")" "$(realpath -e "$2")"
shift 3
[ -x "$STRESS" ] || pfs_fail "pfs-stress $STRESS is not built"

ITERATIONS=20
SEED=1000
MODES=kill9,ctl,abort,power
DURATION=2
FILE_SIZE=256K
FILES=8
THREADS=4
KERNEL_CACHE_EVERY=3
GODOWN=$(dirname "$STRESS")/pfs-godown
while [ $# -gt 0 ]; do
	case $1 in
	--iterations) ITERATIONS=$2 ;;
	--seed) SEED=$2 ;;
	--modes) MODES=$2 ;;
	--duration) DURATION=$2 ;;
	--file-size) FILE_SIZE=$2 ;;
	--files) FILES=$2 ;;
	--threads) THREADS=$2 ;;
	--kernel-cache-every) KERNEL_CACHE_EVERY=$2 ;;
	--godown) GODOWN=$2 ;;
	*) pfs_fail "unknown argument '$1'" ;;
	esac
	shift 2 || pfs_fail "$1 needs a value"
done
IFS=, read -r -a MODE_LIST <<<"$MODES"
PFS_NAME="crash-matrix"

# power_why: empty when a power cut can run here, else why not.
power_why() {
	local t=$PFS_T/power-probe
	[ "$(id -u)" = 0 ] || { echo "not root (mount -o loop needs it)"; return; }
	[ -e /dev/loop-control ] || { echo "/dev/loop-control is missing"; return; }
	command -v mkfs.ext4 >/dev/null || { echo "mkfs.ext4 is not installed"; return; }
	[ -x "$GODOWN" ] || { echo "$GODOWN is not built"; return; }
	mkdir -p "$t/m" && truncate -s 16M "$t/img" && mkfs.ext4 -q -F "$t/img" 2>/dev/null ||
		{ echo "cannot make an ext4 image"; return; }
	pfs_run 30 mount -o loop -t ext4 "$t/img" "$t/m" 2>/dev/null ||
		{ echo "cannot mount an ext4 image on a loop device"; return; }
	pfs_run 30 umount "$t/m"
	rm -rf --one-file-system "$t"
}
case ",$MODES," in
*,power,*)
	why=$(power_why)
	if [ -n "$why" ]; then
		[ "$MODES" = power ] && pfs_skip "no power cut on this machine: $why"
		pfs_say "power iterations left out: $why"
		keep=()
		for m in "${MODE_LIST[@]}"; do [ "$m" = power ] || keep+=("$m"); done
		MODE_LIST=("${keep[@]}")
	fi
	;;
esac

# Totals over all iterations (printed at the end).
T_LOST_FSYNC=0 T_LOST_WRITE=0 T_INTACT=0 T_REFUSED=0 T_DIRTY=0 T_WRITES=0
declare -A T_MODE=()
ABORT_FALLBACKS=0

# The iteration's own generator (an LCG in shell arithmetic), so that one
# seed gives one set of parameters. Not bash's RANDOM: a $(...) subshell
# reseeds it, and its algorithm differs between bash versions.
RNG=1
rng_seed() { RNG=$(($1 % 2147483648)); }
# rand N: R = 0..N-1 (no subshell: it advances RNG).
rand() {
	RNG=$(((RNG * 1103515245 + 12345) % 2147483648))
	R=$(((RNG >> 8) % $1))
}
# pick VAR CHOICE...: VAR = one of the choices.
pick() {
	local var=$1
	shift
	rand $#
	shift "$R"
	printf -v "$var" '%s' "$1"
}

# json_int FILE KEY: an integer from the verifier's or the writer's JSON.
json_int() { json_get "$1" "$2"; }

# The writer's threads are all stopped (state T or t) — none is inside a
# request to the mount.
stress_all_stopped() {
	local st f
	for f in /proc/"$1"/task/*/stat; do
		st=$(awk '{ print $3 }' "$f" 2>/dev/null) || continue
		case $st in T | t) ;; *) return 1 ;; esac
	done
	return 0
}

# One iteration. Globals: IT (number), S (seed).
crash_iteration() {
	local bdir=$PFS_T/b.$IT journal=$W/journal.$IT mode opts page wb dl fsync_every
	local kill_ms interval policy mem wbc R stress_pid dpid want verify_json rc i dirty_bytes
	local img=$PFS_T/img.$IT
	local verify_flags=()
	rng_seed "$S"
	mode=${MODE_LIST[$((S % ${#MODE_LIST[@]}))]}
	rand 29
	fsync_every=$((4 + R))
	rand $((DURATION * 1000 - 400 > 100 ? DURATION * 1000 - 400 : 100))
	kill_ms=$((200 + R))
	case $mode in
	ctl)
		page=4K wb=600000 dl=256M
		opts="policy=retry,page_size=$page,writeback_ms=$wb,dirty_limit=$dl"
		;;
	kill9)
		pick page 4K 16K 64K 1M
		pick wb 1 50 500 600000
		pick dl 0 128K 1M 256M
		pick policy retry enomem nofail
		pick mem 0 4M 16M
		# nofail under a tight budget may stall for good: that is what
		# it does, but the writer would then only time out.
		[ "$policy" = nofail ] && mem=0
		# One run in three with the kernel's own write-back cache too.
		# Its pages are acknowledged before the daemon sees them, and a
		# write-back the daemon refuses (ENOMEM) leaves them clean: one
		# fsync reports the error, the next returns 0 with the data
		# gone (Linux's errseq rule). So those runs are verified with
		# --fsync-promise errseq; pressurefs' own cache keeps the strict
		# promise (see the README of tests/crash).
		rand 3000
		wbc=$((KERNEL_CACHE_EVERY > 0 && R % (KERNEL_CACHE_EVERY > 0 ? KERNEL_CACHE_EVERY : 1) == 0))
		[ "$wbc" = 1 ] && verify_flags=(--fsync-promise errseq)
		opts="policy=$policy,mem_limit=$mem,page_size=$page,writeback_ms=$wb,dirty_limit=$dl"
		opts+=",writeback_cache=$wbc"
		;;
	abort)
		pick page 4K 64K
		pick wb 1 50 200
		rand 600
		interval=$((20 + R))
		opts="policy=abort,page_size=$page,writeback_ms=$wb,fail_probability=100"
		opts+=",fail_interval=$interval,fail_seed=$S"
		;;
	power)
		pick page 4K 16K 64K 1M
		pick wb 1 50 500 600000
		pick dl 0 128K 1M 256M
		# The policy from the seed itself, so consecutive power
		# iterations cycle through all four (the LCG's first draws
		# for neighbouring seeds are too alike).
		local policies=(retry enomem nofail abort)
		policy=${policies[$(((S / ${#MODE_LIST[@]}) % 4))]}
		pick mem 0 4M 16M
		[ "$policy" = nofail ] && mem=0
		opts="policy=$policy,mem_limit=$mem,page_size=$page,writeback_ms=$wb,dirty_limit=$dl"
		;;
	*) pfs_fail "unknown mode '$mode' (kill9, ctl, abort, power)" ;;
	esac
	pfs_say "iteration $IT seed=$S mode=$mode -o $opts fsync_every=$fsync_every crash_at=${kill_ms}ms${verify_flags[*]:+ verify ${verify_flags[*]}}"
	T_MODE[$mode]=$((${T_MODE[$mode]:-0} + 1))

	mkdir -p "$bdir"
	if [ "$mode" = power ]; then
		# mount -o loop attaches with autoclear: unmounting detaches the device.
		truncate -s 256M "$img" && mkfs.ext4 -q -F -E nodiscard "$img" ||
			pfs_fail "seed $S: cannot make the ext4 image"
		PFS_EXTRA_MOUNTS+=("$bdir")
		pfs_run 30 mount -o loop -t ext4 "$img" "$bdir" || pfs_fail "seed $S: cannot mount the ext4 image"
	fi
	pfs_mount_at "$bdir" "$M" -o "$opts"
	dpid=$PFS_PID
	"$STRESS" run --dir "$M" --journal "$journal" --threads "$THREADS" --files "$FILES" \
		--file-size "$FILE_SIZE" --block 4K --duration "$DURATION" \
		--fsync-every "$fsync_every" --seed "$S" --on-error retry --stall-secs 30 \
		--quiet --summary "$W/summary.$IT" >/dev/null 2>"$W/stress.$IT.err" &
	stress_pid=$!
	pfs_helper "$stress_pid"
	sleep "$(printf '%d.%03d' $((kill_ms / 1000)) $((kill_ms % 1000)))"

	case $mode in
	kill9)
		kill -KILL "$dpid" 2>/dev/null || pfs_fail "seed $S: the daemon was gone before kill -9"
		want=137
		;;
	ctl)
		kill -STOP "$stress_pid" 2>/dev/null || pfs_fail "seed $S: pfs-stress ended before the crash"
		for ((i = 0; i < 100; i++)); do
			stress_all_stopped "$stress_pid" && break
			sleep 0.1
		done
		stress_all_stopped "$stress_pid" || pfs_fail "seed $S: pfs-stress threads did not stop in 10 s"
		pfs_run 30 cat "$M/.pressurefs/dirty" >"$W/dirty.$IT.a" || pfs_fail "seed $S: cannot read dirty"
		pfs_run 30 cat "$M/.pressurefs/dirty" >"$W/dirty.$IT" || pfs_fail "seed $S: cannot read dirty"
		cmp -s "$W/dirty.$IT.a" "$W/dirty.$IT" ||
			pfs_fail "seed $S: dirty changed while every writer was stopped"
		got=$(pfs_run 30 "$PFS_IO" put "$M/.pressurefs/crash" 1)
		[ "$got" != OK ] || pfs_fail "seed $S: writing crash returned OK (the daemon should die)"
		kill -CONT "$stress_pid"
		want=134
		;;
	abort)
		# The Nth allocation aborts the daemon; wait for it (bounded by
		# the run). If the run made fewer allocations, fall back to
		# kill -9 and say so: the iteration still checks the rest.
		for ((i = 0; i < (DURATION + 5) * 10; i++)); do
			pfs_pid_alive "$dpid" || break
			sleep 0.1
		done
		want=134
		if pfs_pid_alive "$dpid"; then
			pfs_say "seed $S: abort did not fire within the run, kill -9 instead"
			ABORT_FALLBACKS=$((ABORT_FALLBACKS + 1))
			kill -KILL "$dpid"
			want=137
		fi
		;;
	power)
		# Every thread of the daemon stopped first (stop.sh), so that
		# nothing it answers comes after the cut; then the cut; then
		# the kill.
		want=137
		rc=0
		crash_stop_all "$dpid" 30 || rc=$?
		case $rc in
		0) ;;
		2)
			[ "$policy" = abort ] || pfs_fail "seed $S: the daemon was gone before the power cut"
			want=134 # policy=abort aborted first: the cut still takes the backing fs
			;;
		*) pfs_fail "seed $S: the daemon's threads did not all stop in 30 s: no clean cut" ;;
		esac
		pfs_run 30 "$GODOWN" --nologflush "$bdir" || pfs_fail "seed $S: pfs-godown $bdir failed"
		# Still stopped through the cut, or it was no clean one.
		[ "$want" = 134 ] || crash_all_stopped "$dpid" ||
			pfs_fail "seed $S: a thread of the daemon ran on after the cut"
		kill -KILL "$dpid" 2>/dev/null
		;;
	esac

	pfs_wait_pid "$dpid" 30 || pfs_fail "seed $S: the daemon is still alive after the crash"
	pfs_forget_pid "$dpid"
	[ "$PFS_STATUS" = "$want" ] ||
		pfs_fail "seed $S ($mode): daemon exit status $PFS_STATUS, expected $want"
	# The writer sees ENOTCONN and stops; its watchdog bounds a hang.
	pfs_wait_pid "$stress_pid" $((DURATION + 60)) || {
		kill -KILL "$stress_pid"
		pfs_fail "seed $S: pfs-stress did not end after the daemon died"
	}
	rc=$PFS_STATUS
	case $rc in 0 | 3) ;; *) pfs_fail "seed $S: pfs-stress run exited $rc: $(tail -n 3 "$W/stress.$IT.err")" ;; esac
	pfs_umount_at "$M" ""
	if [ "$mode" = power ]; then
		# What reached the loop device, as the journal replay leaves it.
		pfs_run 60 umount "$bdir" || pfs_fail "seed $S: cannot unmount the shut-down ext4"
		pfs_run 60 mount -o loop -t ext4 "$img" "$bdir" || pfs_fail "seed $S: the image does not mount after the power cut"
	fi

	# Zero bytes lost after fsync, no fsynced block torn.
	verify_json=$W/verify.$IT.json
	pfs_run 120 "$STRESS" verify --dir "$bdir" --journal "$journal" "${verify_flags[@]}" --json >"$verify_json"
	rc=$?
	[ "$rc" = 0 ] || pfs_fail "seed $S ($mode): pfs-stress verify exited $rc: $(cat "$verify_json")"
	local lost_fsync lost_write intact refused torn_fsynced torn
	lost_fsync=$(json_int "$verify_json" lost_after_fsync_bytes)
	lost_write=$(json_int "$verify_json" lost_after_write_bytes)
	intact=$(json_int "$verify_json" intact_bytes)
	refused=$(json_int "$verify_json" refused_bytes)
	torn_fsynced=$(json_int "$verify_json" torn_fsynced)
	torn=$(json_int "$verify_json" torn_or_corrupt_bytes)
	[ "$lost_fsync" = 0 ] || pfs_fail "seed $S: $lost_fsync bytes lost after fsync"
	[ "$torn_fsynced" = 0 ] || pfs_fail "seed $S: $torn_fsynced fsynced blocks torn"

	if [ "$mode" = ctl ]; then
		dirty_bytes=$(awk '{ s += $3 } END { print s + 0 }' "$W/dirty.$IT")
		[ "$lost_write" = "$dirty_bytes" ] ||
			pfs_fail "seed $S: lost after write $lost_write bytes, dirty listed $dirty_bytes just before the crash"
		[ "$torn" = 0 ] || pfs_fail "seed $S: $torn bytes torn with 4K pages"
		T_DIRTY=$((T_DIRTY + dirty_bytes))
	fi

	# The backing dir is readable with ordinary tools.
	pfs_run 60 find "$bdir" -type f -exec cat {} + >/dev/null ||
		pfs_fail "seed $S: a file of the backing dir does not read"

	# A fresh mount on the same backing dir works.
	pfs_mount_at "$bdir" "$M" -o policy=retry
	local f n=0
	for f in "$bdir"/f*.dat; do
		[ -e "$f" ] || continue
		pfs_run 60 cmp -s "$f" "$M/${f##*/}" || pfs_fail "seed $S: ${f##*/} reads back differently through a fresh mount"
		n=$((n + 1))
	done
	# A power cut takes files whose creation nothing made durable (policy=abort
	# may die before the first fsync); verify has already held the promise.
	[ "$n" -gt 0 ] || [ "$mode" = power ] || pfs_fail "seed $S: no stress file in the backing dir"
	head -c 12345 /dev/urandom >"$W/after.$IT"
	pfs_must cp "$W/after.$IT" "$M/after"
	[ "$(pfs_fsync "$M/after")" = OK ] || pfs_fail "seed $S: fsync on the fresh mount failed"
	pfs_umount_at "$M" "$PFS_PID"
	[ "$PFS_STATUS" = 0 ] || pfs_fail "seed $S: the fresh mount's daemon exited $PFS_STATUS"
	cmp -s "$W/after.$IT" "$bdir/after" || pfs_fail "seed $S: a file written on the fresh mount is not in the backing dir"

	T_LOST_FSYNC=$((T_LOST_FSYNC + lost_fsync))
	T_LOST_WRITE=$((T_LOST_WRITE + lost_write))
	T_INTACT=$((T_INTACT + intact))
	T_REFUSED=$((T_REFUSED + refused))
	T_WRITES=$((T_WRITES + $(json_int "$W/summary.$IT" writes_ok)))
	pfs_ok "seed $S ($mode): survived; lost_after_fsync=0 lost_after_write=$lost_write intact=$intact refused=$refused files_read_back=$n$([ "$mode" = ctl ] && echo " dirty_listed=$dirty_bytes")"
	# Keep only what a failure needs.
	if [ "$mode" = power ]; then
		pfs_run 60 umount "$bdir" || pfs_fail "seed $S: cannot unmount the ext4 image"
		PFS_EXTRA_MOUNTS=("${PFS_EXTRA_MOUNTS[@]/$bdir/}")
		rm -f "$img"
	fi
	rm -rf --one-file-system "$bdir" "$journal" "$W"/*."$IT" "$W"/*."$IT".* "$PFS_T"/daemon.*.err "$PFS_T"/daemon.*.out
}

for ((IT = 0; IT < ITERATIONS; IT++)); do
	S=$((SEED + IT))
	crash_iteration
done

modes_seen=""
for m in "${!T_MODE[@]}"; do modes_seen+="$m=${T_MODE[$m]} "; done
pfs_say "SUMMARY iterations=$ITERATIONS survived=$ITERATIONS (${modes_seen% }) abort_fallbacks=$ABORT_FALLBACKS" \
	"writes_acked=$T_WRITES lost_after_fsync_bytes=$T_LOST_FSYNC lost_after_write_bytes=$T_LOST_WRITE" \
	"(ctl: dirty_listed_bytes=$T_DIRTY, equal per iteration) intact_bytes=$T_INTACT refused_bytes=$T_REFUSED"
