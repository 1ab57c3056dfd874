#!/bin/bash
# Runs one libFuzzer target for a bounded time (suite 'fuzz').
# usage: run_fuzzer.sh FUZZER SEED_CORPUS_DIR ARTIFACT_DIR SECONDS
# The seed corpus in the source tree is only read; new inputs go to a temp
# dir that is removed. A crashing input is kept in ARTIFACT_DIR and its
# path printed: copy it to tests/fuzz/corpus/<target>/crash-<what> so that
# unit.fuzz_corpus_<target> replays it from then on.
set -u
fuzzer=$1 seeds=$2 artifacts=$3 secs=${4:-20}
[ -n "${PFS_FUZZ_SECONDS:-}" ] && secs=$PFS_FUZZ_SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/pfs-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts" || exit 1
# ASan's leak check at exit and UBSan aborting on the first report make
# every finding a crash that libFuzzer saves.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# -timeout: one input may not take 10 s; the outer timeout bounds the run.
# New inputs go to $work/corpus (the log stays outside it: libFuzzer reads
# every file of its corpus dirs). A finding exits 1, not libFuzzer's 77,
# which meson would count as a skip.
mkdir -p "$work/corpus"
timeout -k 10 $((secs + 60)) "$fuzzer" -max_total_time="$secs" -timeout=10 \
	-rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 -error_exitcode=1 \
	-timeout_exitcode=1 -artifact_prefix="$artifacts/" "$work/corpus" "$seeds" 2>"$work/log"
rc=$?
[ "$rc" = 77 ] && rc=1
tail -n 25 "$work/log"
if [ "$rc" != 0 ]; then
	echo "run_fuzzer: $(basename "$fuzzer") failed (status $rc); crashing inputs:" >&2
	ls -l "$artifacts" >&2
fi
exit "$rc"
