#!/usr/bin/env bash
# mount.compare_quick: bench/compare --quick into a temp dir, then check the table's shape
# (tests/compare/check_shape.py) and the invariants (bench/compare exits 1 when one breaks:
# bytes lost after fsync, fsynced blocks torn, torn data after a clean unmount, or a policy
# not showing its character: enomem errors, abort crash, nofail loops without errors, retry
# retries with fewer errors than enomem; for the kernel-decided memory cgroup scenarios, that the
# allocator refused nothing). The memory cgroup and power-cut scenarios run where the machine
# allows (root, a memory cgroup, loop devices); elsewhere bench/compare skips them with a line.
#   quick.sh SOURCE_ROOT BUILD_ROOT
set -u
src=${1:?source root} build=${2:?build root}
if [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null 2>&1; then
  echo "SKIP: /dev/fuse or fusermount3 missing: cannot mount" >&2
  exit 77
fi
for t in python3 gnuplot; do
  command -v "$t" >/dev/null 2>&1 || { echo "FAIL: $t is not installed (scripts/deps.sh installs it)" >&2; exit 1; }
done
out=$(mktemp -d /tmp/pfs-compare-test.XXXXXX)
trap 'rm -rf "$out"' EXIT
rc=0
python3 "$src/bench/compare" --quick --build "$build" --out "$out" >"$out/table.md" 2>"$out/stderr.txt" || rc=$?
cat "$out/table.md"
tail -n 40 "$out/stderr.txt" >&2
if [ "$rc" -ne 0 ]; then
  echo "FAIL: bench/compare --quick exited $rc (1 = an invariant broke; see above)" >&2
  exit 1
fi
python3 "$src/tests/compare/check_shape.py" "$src" "$out" || exit 1
echo "PASS: bench/compare --quick: table shape and invariants hold"
