#!/usr/bin/env bash
# mount.compare_crash: bench/compare --crash daemon and --crash power end every run part-way and
# still verify it: each run says how and when it was crashed, lost nothing after fsync, tore no
# fsynced block, and compare.md has the crash table. Short runs of two policies; the policies'
# character checks are not asked for here (a run cut at 60% of 3 s may not show it), the fsync
# promise is. The power part runs a memory cgroup scenario too, so the two kinds of real
# pressure are proven together; it is left out, with a line, where loop devices are missing.
#   crash.sh SOURCE_ROOT BUILD_ROOT
set -u
src=${1:?source root} build=${2:?build root}
if [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null 2>&1; then
  echo "SKIP: /dev/fuse or fusermount3 missing: cannot mount" >&2
  exit 77
fi
out=$(mktemp -d /tmp/pfs-compare-crash.XXXXXX)
trap 'rm -rf "$out"' EXIT

# check DIR MODE: every run of DIR/compare.json was crashed the MODE way and kept the promise.
check() {
  python3 - "$1" "$2" <<'PY'
import json, sys
out, mode = sys.argv[1], sys.argv[2]
data = json.load(open(out + '/compare.json'))
runs = {(r['scenario'], r['policy'], r['rep']): r for r in data['runs']}
if not data['results']:
    sys.exit('FAIL: %s: no runs' % mode)
for res in data['results']:
    key = (res['scenario'], res['policy'], res['rep'])
    m = runs[key]
    where = '%s %s/%s' % (mode, key[0], key[1])
    c = res.get('crash')
    if not c or c.get('mode') != mode or c.get('skipped'):
        sys.exit('FAIL: %s: not crashed by --crash %s: %s' % (where, mode, c))
    if m['lost_after_fsync'] != 0 or m['torn_fsynced'] not in (0, None) or m['verify_rc'] != 0:
        sys.exit('FAIL: %s: lost after fsync %s, torn fsynced %s, verify rc %s' %
                 (where, m['lost_after_fsync'], m['torn_fsynced'], m['verify_rc']))
    if m['crashed'] or m['hung']:
        sys.exit('FAIL: %s: a crash we made is reported as crashed/hung' % where)
    if mode == 'power' and not any(s == 'remount' for s, _ in res['power']['log']):
        sys.exit('FAIL: %s: the image was not mounted again before verify' % where)
    if res['scenario'].startswith('cgroup-') and not (res.get('cgroup') or {}).get('figures'):
        sys.exit('FAIL: %s: no memory cgroup figures' % where)
if '## Crashes' not in open(out + '/compare.md').read():
    sys.exit('FAIL: %s: compare.md has no crash table' % mode)
print('PASS: --crash %s: %d runs crashed part-way, 0 bytes lost after fsync' % (mode, len(data['results'])))
PY
}

python3 "$src/bench/compare" --build "$build" --crash daemon --scenarios steady-squeeze \
  --policies retry,enomem --duration 3 --repeat 1 --out "$out/daemon" >/dev/null 2>"$out/daemon.err"
rc=$?
tail -n 8 "$out/daemon.err" >&2
[ "$rc" -le 1 ] || { echo "FAIL: bench/compare --crash daemon exited $rc" >&2; exit 1; }
check "$out/daemon" daemon || exit 1

scen=steady-squeeze
if why=$(python3 - "$src/bench/comparison" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import compare_cgroup
version, where = compare_cgroup.detect()
print(where)
sys.exit(0 if version else 1)
PY
); then
  scen=steady-squeeze,cgroup-squeeze
else
  echo "memory cgroup scenario left out: $why"
fi
python3 "$src/bench/compare" --build "$build" --crash power --scenarios "$scen" \
  --policies retry,enomem --duration 3 --repeat 1 --out "$out/power" >/dev/null 2>"$out/power.err"
rc=$?
tail -n 8 "$out/power.err" >&2
if [ "$rc" = 2 ] && grep -q -- '--crash power: ' "$out/power.err"; then
  echo "power part left out: $(grep -- '--crash power: ' "$out/power.err")"
  exit 0
fi
[ "$rc" -le 1 ] || { echo "FAIL: bench/compare --crash power exited $rc" >&2; exit 1; }
check "$out/power" power || exit 1
