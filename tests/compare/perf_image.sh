#!/usr/bin/env bash
# mount.perf_scratch_image: bench/perf --scratch-image measures on a fresh ext4 of its own
# (journal on, a loop device with direct I/O) and leaves nothing behind: the report names the
# image, the metadata cell ran on it, and no mount or loop device of the run remains, also
# after a run it was asked to stop. A bad size and --workdir with it get one line and status 2.
#   perf_image.sh SOURCE_ROOT BUILD_ROOT
set -u
src=${1:?source root} build=${2:?build root}
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null 2>&1; then
  echo "SKIP: /dev/fuse or fusermount3 missing: cannot mount" >&2
  exit 77
fi
[ "$(id -u)" = 0 ] || { echo "SKIP: bench/perf runs as root" >&2; exit 77; }
for t in fio mkfs.ext4 losetup; do
  command -v "$t" >/dev/null 2>&1 || fail "$t is not installed (scripts/deps.sh installs it)"
done
if ! losetup --find >/dev/null 2>&1; then
  echo "SKIP: no free loop device on this machine" >&2
  exit 77
fi
out=$(mktemp -d /tmp/pfs-perf-image-test.XXXXXX)
trap 'rm -rf "$out"' EXIT
leftovers() { # what a run under $out's scratch left: loop devices and mounts of its image
  losetup --list --noheadings -O BACK-FILE 2>/dev/null | grep -F "$out/" || true
  findmnt -rno TARGET | grep -F "$out/" || true
}

# One line and status 2 for what it does not take.
for bad in "--scratch-image 12Q" "--scratch-image 1G --workdir $out/w"; do
  rc=0
  # shellcheck disable=SC2086
  python3 "$src/bench/perf" --build "$build" --out "$out/bad" $bad --targets backing \
    --workloads meta >"$out/bad.txt" 2>&1 || rc=$?
  [ "$rc" = 2 ] || fail "bench/perf $bad: exit $rc, wanted 2: $(cat "$out/bad.txt")"
  [ "$(wc -l <"$out/bad.txt")" = 1 ] || fail "bench/perf $bad: not one line: $(cat "$out/bad.txt")"
  echo "ok: bench/perf $bad: $(cat "$out/bad.txt")"
done

rc=0
python3 "$src/bench/perf" --build "$build" --scratch "$out" --scratch-image 1G --out "$out/r" \
  --targets backing,pfs-retry~dev_fuse --scale-targets backing --workloads meta --runs 1 --files 300 --cell-timeout 120 \
  >"$out/perf.txt" 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "bench/perf --scratch-image exited $rc: $(tail -n 20 "$out/perf.txt")"
python3 - "$out/r/perf.json" <<'PY' || exit 1
import json, sys
d = json.load(open(sys.argv[1]))
m = d["meta"]["machine"]
if "/dev/loop" not in m or "fresh 1G ext4 image" not in m:
    sys.exit("FAIL: the report does not say it measured on the image: " + m)
cells = [c for c in d.get("cells", []) if c.get("workload") == "meta" and not c.get("error")]
if len(cells) < 2:
    sys.exit("FAIL: %d meta cells measured, wanted backing and pfs-retry: %s" % (len(cells), d.get("cells")))
print("ok: measured on " + m.split("backing fs ")[1])
PY
[ -z "$(leftovers)" ] || fail "the run left behind: $(leftovers)"
echo "ok: no loop device or mount of the image remains"

# Stopped part-way (SIGTERM while it measures): it still removes the image.
python3 "$src/bench/perf" --build "$build" --scratch "$out" --scratch-image 1G --out "$out/s" \
  --targets backing,pfs-retry~dev_fuse --scale-targets backing --workloads meta --runs 20 --files 2000 --cell-timeout 120 \
  >"$out/stop.txt" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  grep -q 'pfs-perf-image' < <(losetup --list --noheadings -O BACK-FILE 2>/dev/null) && break
  sleep 0.1
done
sleep 2
kill -TERM "$pid"
for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
  kill -KILL "$pid"
  fail "bench/perf did not end within 60 s of SIGTERM"
fi
[ -z "$(leftovers)" ] || fail "the stopped run left behind: $(leftovers)"
echo "ok: a run stopped with SIGTERM removed its image too"
echo "PASS: bench/perf --scratch-image"
