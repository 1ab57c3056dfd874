#!/bin/bash
# CI smoke run of the fuzz harnesses: builds the tree with clang, libFuzzer,
# ASan and UBSan in its own build dir, then runs every target for a bounded
# time (suite 'fuzz'). Exit status: that of `meson test`.
# usage: tests/fuzz/fuzz_smoke.sh [BUILD_DIR] [SECONDS_PER_TARGET]
#   default: build-fuzz under the source root, 20 s per target.
# -fsanitize=fuzzer-no-link instruments the libraries too (alloc, loader,
# pfs-stress core), so libFuzzer sees coverage inside the parsers, not only
# in the harnesses; the ASan runtime supplies the coverage callbacks for the
# other programs of that build.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build-fuzz}
export PFS_FUZZ_SECONDS=${2:-${PFS_FUZZ_SECONDS:-20}}
command -v clang >/dev/null || { echo "fuzz_smoke: clang is needed (apt-get install clang)" >&2; exit 1; }
if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$src" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link -Dmount_tests=false
fi
meson compile -C "$build"
export ASAN_OPTIONS=detect_leaks=1
meson test -C "$build" --suite fuzz --print-errorlogs
