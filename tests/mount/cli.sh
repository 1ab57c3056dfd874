#!/bin/bash
# Proves the command line contract: every kind of bad input (unknown option,
# malformed, negative, overflowing, out-of-range or empty value, unknown
# policy, a file that is not a plugin, a bad policy argument, an argument of
# another policy, a missing backing dir or mountpoint) exits with status 1,
# prints exactly one stderr line starting with "pressurefs: ", and leaves
# nothing mounted (with -f and daemonizing). --help exits 0 and names every
# option and policy; -V prints the version. And the good forms: -o given
# several times adds up; a policy plugin given by path loads.
# usage: cli.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"

# Anything that did mount by mistake is cleaned up by the EXIT trap.
PFS_MOUNTS+=("$M")

printf 'not a plugin\n' >"$W/notaplugin.so"
printf 'x\n' >"$W/afile"

# bad_input WHAT ARGS...: the daemon with ARGS must refuse.
bad_input() {
	local what=$1 status lines
	shift
	pfs_run 30 "$PFS_EXE" "$@" </dev/null >"$W/out" 2>"$W/err"
	status=$?
	if pfs_is_mounted "$M"; then
		pfs_fusermount_u "$M"
		pfs_fail "$what: the mount came up (args: $*)"
	fi
	mountpoint -q "$M" && pfs_fail "$what: mountpoint -q says mounted"
	[ "$status" = 1 ] || pfs_fail "$what: exit status $status, expected 1 (args: $*; stderr: $(head -c 500 "$W/err"))"
	lines=$(wc -l <"$W/err")
	[ "$lines" = 1 ] || pfs_fail "$what: $lines stderr lines, expected exactly 1: $(head -c 800 "$W/err")"
	grep -q '^pressurefs: ' "$W/err" || pfs_fail "$what: stderr does not start with 'pressurefs: ': $(cat "$W/err")"
	pfs_ok "$what -> $(cat "$W/err")"
}

bad_input "unknown option" -f -o foo=1 "$B" "$M"
bad_input "unknown flag option" -f -o frobnicate "$B" "$M"
bad_input "malformed size" -f -o mem_limit=12Q "$B" "$M"
bad_input "negative size" -f -o mem_limit=-1 "$B" "$M"
bad_input "overflowing size" -f -o mem_limit=99999999999999999999 "$B" "$M"
bad_input "overflowing size with suffix" -f -o mem_limit=99999999999G "$B" "$M"
bad_input "empty value" -f -o mem_limit= "$B" "$M"
bad_input "malformed balloon" -f -o balloon=lots "$B" "$M"
bad_input "probability out of range" -f -o fail_probability=101 "$B" "$M"
bad_input "negative probability" -f -o fail_probability=-1 "$B" "$M"
bad_input "interval zero" -f -o fail_interval=0 "$B" "$M"
bad_input "malformed seed" -f -o fail_seed=abc "$B" "$M"
bad_input "unknown site" -f -o fail_sites=cache_page+bogus "$B" "$M"
bad_input "page size not a power of two" -f -o page_size=3000 "$B" "$M"
bad_input "page size too large" -f -o page_size=2M "$B" "$M"
bad_input "page size too small" -f -o page_size=1K "$B" "$M"
bad_input "malformed writeback_ms" -f -o writeback_ms=soon "$B" "$M"
bad_input "malformed clean_limit" -f -o clean_limit=lots "$B" "$M"
bad_input "malformed direct_writeback" -f -o direct_writeback=2 "$B" "$M"
bad_input "bad ctldir" -f -o ctldir=bogus "$B" "$M"
bad_input "bad writeback_cache" -f -o writeback_cache=2 "$B" "$M"
bad_input "unknown policy" -f -o policy=bogus "$B" "$M"
bad_input "empty policy" -f -o policy= "$B" "$M"
bad_input "non-plugin path" -f -o policy="$W/notaplugin.so" "$B" "$M"
bad_input "missing plugin path" -f -o policy="$W/missing.so" "$B" "$M"
bad_input "bad policy argument" -f -o policy=retry,retries=abc "$B" "$M"
bad_input "policy argument out of range" -f -o policy=retry,retries=-1 "$B" "$M"
bad_input "argument of another policy" -f -o policy=enomem,retries=3 "$B" "$M"
bad_input "argument of another policy (nofail)" -f -o policy=nofail,backoff_ms=2 "$B" "$M"
bad_input "argument of the default policy's neighbour" -f -o wait_ms=5 "$B" "$M"
bad_input "missing backing dir" -f "$W/nonexistent" "$M"
bad_input "backing dir is a file" -f "$W/afile" "$M"
bad_input "missing mountpoint" -f "$B" "$W/nonexistent"
bad_input "no mountpoint argument" -f "$B"
bad_input "unknown option, daemonizing" -o foo=1 "$B" "$M"
bad_input "unknown policy, daemonizing" -o policy=bogus "$B" "$M"
bad_input "two -o, the second bad" -f -o policy=enomem -o mem_limit=12Q "$B" "$M"
bad_input "duplicated policy argument" -f -o policy=retry,retries=3,retries=4 "$B" "$M"
bad_abi=$(dirname "$PFS_EXE")/../tests/policies/bad_abi.so
if [ -f "$bad_abi" ]; then
	bad_input "wrong-ABI plugin" -f -o policy="$bad_abi" "$B" "$M"
fi
bad_input "a value with a newline still gives one line" -f -o "mem_limit=1
2" "$B" "$M"

grep -q "policy 'bogus'" <(pfs_run 30 "$PFS_EXE" -f -o policy=bogus "$B" "$M" 2>&1) ||
	pfs_fail "unknown policy message does not name it"
out=$(pfs_run 30 "$PFS_EXE" -f -o policy=bogus "$B" "$M" 2>&1)
for p in abort enomem mempool nofail retry retry_mayfail shutdown too_small_to_fail write_through; do
	grep -q "$p" <<<"$out" || pfs_fail "unknown policy message does not list '$p': $out"
done
pfs_ok "unknown policy message lists the available policies"

# --help and -V
for h in --help -h; do
	pfs_run 30 "$PFS_EXE" "$h" </dev/null >"$W/help" 2>&1
	status=$?
	[ "$status" = 0 ] || pfs_fail "$h exits with $status"
	pfs_is_mounted "$M" && pfs_fail "$h mounted something"
	for word in policy mem_limit balloon fail_probability fail_interval fail_times fail_space \
		fail_sites fail_seed fail_verbose page_size dirty_limit clean_limit writeback_ms ctldir stats_file \
		writeback_cache killpriv direct_writeback allow_other nofail retry enomem abort retries backoff_ms stall_warn_ms \
		mempool reserve retry_mayfail timeout_ms reclaim_kb too_small_to_fail threshold shutdown write_through \
		wait_ms; do
		grep -q -- "$word" "$W/help" || pfs_fail "$h does not mention '$word'"
	done
	pfs_ok "$h exits 0 and mentions every option, policy and policy argument"
done
# The crash control file kills the daemon only; the backing filesystem keeps
# its page cache, so calling it a power loss would promise a test it is not.
grep -q 'crash .*a daemon crash' "$W/help" || pfs_fail "--help does not call crash a daemon crash"
grep -qi 'power loss' "$W/help" && pfs_fail "--help still calls crash a power loss"
pfs_ok "--help calls the crash control file a daemon crash, not a power loss"
pfs_run 30 "$PFS_EXE" -V </dev/null >"$W/version" 2>&1
status=$?
assert_eq 0 "$status" "-V exits 0"
grep -q '^pressurefs 0\.1\.0' "$W/version" || pfs_fail "-V: $(cat "$W/version")"
pfs_ok "-V prints 'pressurefs 0.1.0'"
pfs_run 30 "$PFS_EXE" --version </dev/null >"$W/version" 2>&1
grep -q '^pressurefs 0\.1\.0' "$W/version" || pfs_fail "--version: $(cat "$W/version")"
pfs_ok "--version prints 'pressurefs 0.1.0'"
grep -qF "$M" /proc/mounts && pfs_fail "/proc/mounts has an entry for $M"
pfs_ok "nothing mounted at the end"

# -o several times: all of them apply.
pfs_mount -o policy=enomem -o mem_limit=8M -o fail_seed=9
assert_eq enomem "$(ctl_read policy)" "-o twice: the first -o applies"
assert_eq 8388608 "$(ctl_read mem_limit)" "-o twice: the second -o applies"
assert_eq 9 "$(ctl_read fail_seed)" "-o three times: the third -o applies"
pfs_umount_clean

# A plugin by path (the build tree's; an installed layout has no such path).
plugin=$(readlink -f "$(dirname "$PFS_EXE")/../policies/retry.so")
if [ -f "$plugin" ]; then
	pfs_mount -o "policy=$plugin,retries=5"
	assert_match '^retry,retries=5' "$(ctl_read policy)" "policy given by path loads with its arguments"
	pfs_umount_clean
else
	pfs_say "note: no build-tree plugin next to $PFS_EXE, policy-by-path not checked"
fi
