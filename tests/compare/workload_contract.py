#!/usr/bin/env python3
"""The own-workload contract (docs/workloads.md) on real mounts, one case per meson test:
  workload_contract.py SOURCE_ROOT BUILD_ROOT CASE
Each case runs bench/pressurefs-run or bench/compare --workload with small shell workloads and
checkers and asserts what the contract promises. Exit 0 pass, 1 fail, 77 skip (no /dev/fuse)."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

SRC, BUILD = sys.argv[1], sys.argv[2]
RUN = os.path.join(SRC, 'bench', 'pressurefs-run')
COMPARE = os.path.join(SRC, 'bench', 'compare')
APPS = os.path.join(SRC, 'bench', 'apps')
TMP = None


class Fail(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Fail(what)


def run(argv, timeout=300, env=None):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=e)
    print('$ %s\n-> exit %d\n%s%s' % (' '.join(argv)[:300], r.returncode, r.stdout[-1500:], r.stderr[-1500:]))
    return r


def pfs_run(*args, env=None, timeout=300):
    out = tempfile.mkdtemp(dir=TMP)
    r = run([sys.executable, RUN, '--build', BUILD, '--out', out] + list(args), env=env, timeout=timeout)
    try:
        with open(os.path.join(out, 'result.json'), encoding='utf-8') as f:
            res = json.load(f)
    except OSError:
        res = None
    return r, res


def compare(*args, timeout=600):
    out = tempfile.mkdtemp(dir=TMP)
    r = run([sys.executable, COMPARE, '--build', BUILD, '--out', out, '--repeat', '1'] + list(args),
            timeout=timeout)
    data = None
    if os.path.exists(os.path.join(out, 'compare.json')):
        with open(os.path.join(out, 'compare.json'), encoding='utf-8') as f:
            data = json.load(f)
    return r, data, out


def cleaned_up(res):
    """The run left no mount, no temp dir and no process of the workload's group behind."""
    cmd = res.get('daemon_cmd', '').split()
    mnt = cmd[-1] if cmd else None
    with open('/proc/self/mountinfo', encoding='utf-8') as f:
        expect(mnt and (' %s ' % mnt) not in f.read(), 'mount %s left behind' % mnt)
    expect(not os.path.exists(os.path.dirname(mnt)), 'temp dir %s left behind' % os.path.dirname(mnt))
    pgid = res.get('workload_pid')
    left = []
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open('/proc/%s/stat' % name, encoding='utf-8') as f:
                    fields = f.read().rsplit(')', 1)[1].split()
                if fields[2] == str(pgid) and fields[0] != 'Z':  # a zombie holds no file
                    left.append(name)
            except (OSError, IndexError):
                pass
    expect(pgid and not left, 'processes %s of the workload group %s left behind' % (left, pgid))


def one_line(r):
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    expect(len(lines) == 1, 'expected one line on stderr, got %d: %r' % (len(lines), r.stderr))
    return lines[0]


# ---- cases ----------------------------------------------------------------------------

def case_held_after_writeback():
    """A workload writes 1 MiB without fsync in its working directory and exits; the check,
    after the unmount, finds every byte in PFS_BACKING, sees the environment the contract names
    and prints the JSON line: HELD, exit 0."""
    work = ('test "$PWD" = "$PFS_MNT" && test "$PFS_SEED" = 7 && test "$PFS_DURATION" = 2 && '
            'test -d "$PFS_STATE" && head -c 1048576 /dev/zero | tr "\\0" x > data')
    check = ('test "$PWD" = "$PFS_BACKING" && test "$PFS_WORKLOAD_STATUS" = 0 && '
             'test "$(tr -d x < data | wc -c)" = 0 && test "$(wc -c < data)" = 1048576 && '
             'echo not json && echo \'{"intact": 1, "lost": 0, "refused": 0, "unit": "files"}\' && '
             'echo trailing words')
    r, res = pfs_run('--policy', 'retry', '--scenario', 'steady-squeeze', '--seed', '7', '--duration', '2',
                     '--check', check, '--', 'sh', '-c', work)
    expect(r.returncode == 0, 'exit %d, expected 0 (held)' % r.returncode)
    expect(re.search(r'HELD .*1 intact, 0 lost, 0 refused files; workload exit 0', r.stdout),
           'no HELD verdict line with the counts: %r' % r.stdout)
    cleaned_up(res)


def case_check_reports_loss():
    """A check that counts a loss and exits 1 makes the verdict BROKEN (exit 1) with its counts,
    in the verdict line and as a JUnit failure."""
    junit = os.path.join(TMP, 'loss.xml')
    r, res = pfs_run('--duration', '1', '--junit', junit,
                     '--check', 'echo \'{"intact": 5, "lost": 3, "refused": 2, "unit": "rows"}\'; exit 1',
                     '--', 'sh', '-c', 'echo row > t')
    expect(r.returncode == 1, 'exit %d, expected 1 (broken)' % r.returncode)
    expect('BROKEN' in r.stdout and '5 intact, 3 lost, 2 refused rows' in r.stdout,
           'no BROKEN line with the counts: %r' % r.stdout)
    case = ET.parse(junit).getroot().find('.//testcase')
    expect(case is not None and case.find('failure') is not None, 'no JUnit failure for the loss')
    expect('3 lost' in case.find('failure').text, 'the JUnit failure does not give the loss')
    cleaned_up(res)


def case_check_crash_is_no_verdict():
    """A check killed by a signal is neither held nor broken: exit 3 and one line naming it."""
    r, res = pfs_run('--duration', '1', '--check', 'echo about to crash >&2; kill -SEGV $$',
                     '--', 'sh', '-c', 'echo a > a')
    expect(r.returncode == 3, 'exit %d, expected 3 (the check could not be carried out)' % r.returncode)
    line = one_line(r)
    expect('SIGSEGV' in line and 'about to crash' in line, 'the line does not say what happened: %r' % line)
    cleaned_up(res)


def case_workload_hang_in_mount():
    """nofail under a balloon that never deflates: the workload blocks in the mount. The watchdog
    calls it hung (no write by its group for --hang-secs), kills the daemon and the group, the
    check still runs, and the verdict is HUNG, exit 1; nothing is left behind."""
    r, res = pfs_run('--policy', 'nofail', '--scenario', 'balloon-hold', '--duration', '30',
                     '--hang-secs', '3', '--check', os.path.join(APPS, 'careful_append.py') + ' check',
                     '--', os.path.join(APPS, 'careful_append.py'), 'run')
    expect(r.returncode == 1, 'exit %d, expected 1 (hung)' % r.returncode)
    expect('HUNG' in r.stdout, 'no HUNG verdict: %r' % r.stdout)
    expect(res['stopped_by'] == 'hang watchdog', 'stopped by %s' % res.get('stopped_by'))
    expect(res['check']['verdict'] == 'held', 'careful_append lost fsynced records: %s' % res['check'])
    cleaned_up(res)


def case_workload_ignoring_sigterm_is_killed():
    """A workload (and a child it started) that ignores SIGTERM and keeps writing is SIGKILLed
    KILL_GRACE after the SIGTERM at PFS_DURATION + TERM_GRACE; the check sees status 137."""
    work = 'trap "" TERM; (trap "" TERM; while :; do date >> child.log; sleep 0.2; done) & ' \
           'while :; do date >> log; sleep 0.2; done'
    r, res = pfs_run('--duration', '1', '--check', 'test "$PFS_WORKLOAD_STATUS" = 137',
                     '--', 'sh', '-c', work, timeout=120)
    expect(r.returncode == 0, 'exit %d, expected 0 (check saw 137)' % r.returncode)
    expect(res['stopped_by'] == 'SIGKILL' and res['workload_signal'] == 'SIGKILL',
           'stopped by %s, signal %s' % (res.get('stopped_by'), res.get('workload_signal')))
    cleaned_up(res)


def case_workload_exit_status_kept():
    """bench/compare keeps each run's exit status and stderr tail in compare.json, passes the
    status to the check, and with no JSON line from the check reports no counts."""
    r, data, out = compare('--workload', 'echo boom-123 >&2; exit 7',
                           '--check', 'test "$PFS_WORKLOAD_STATUS" = 7', '--workload-name', 'exits7',
                           '--scenarios', 'random-injection', '--policies', 'enomem', '--duration', '1')
    expect(r.returncode == 0, 'exit %d, expected 0' % r.returncode)
    res = data['results'][0]
    expect(res['workload_status'] == 7, 'workload_status %s' % res.get('workload_status'))
    expect('boom-123' in res['workload_stderr_tail'], 'stderr tail %r' % res.get('workload_stderr_tail'))
    row = data['workload_runs'][0]
    expect(row['verdict'] == 'held' and row['workload'] == 'exits7' and row['intact'] is None,
           'row %s' % row)
    expect('| random-injection | exits7 | enomem | held |' in r.stdout, 'no table row on stdout')
    cleaned_up(res)


def case_bad_usage_one_line():
    """Bad flags and a missing workload or checker: exit 2, one line, nothing run."""
    bad = [
        [COMPARE, '--check', 'true'],
        [COMPARE, '--workload', '/nonexistent/prog'],
        [COMPARE, '--workload', 'true', '--check', './no-such-check'],
        [COMPARE, '--workload', 'true', '--check', 'no-such-program-anywhere --flag'],
        [COMPARE, '--shard', '3/2'],
        [COMPARE, '--shard', 'one/two'],
        [COMPARE, '--workload', 'true', '--unit', 'two words'],
        [COMPARE, '--merge', os.path.join(TMP, 'nothing-here')],
        [RUN],
        [RUN, '--bogus-flag', '--', 'true'],
        [RUN, '--scenario', 'no-such-scenario', '--', 'true'],
        [RUN, '--check', '/nonexistent/check', '--', 'true'],
        [RUN, '--', '/nonexistent/workload'],
    ]
    for argv in bad:
        r = run([sys.executable] + argv + ['--build', BUILD] if argv[0] == COMPARE else [sys.executable] + argv)
        expect(r.returncode == 2, '%s: exit %d, expected 2' % (' '.join(argv[1:]), r.returncode))
        one_line(r)


def case_failing_checker_one_line():
    """A checker that fails in every run: bench/compare exits 3 with one line for the lot."""
    r, data, out = compare('--workload', 'true', '--check', 'echo cannot read it >&2; exit 5',
                           '--scenarios', 'random-injection', '--policies', 'enomem,retry', '--duration', '1')
    expect(r.returncode == 3, 'exit %d, expected 3' % r.returncode)
    lines = [ln for ln in r.stderr.splitlines() if 'the check failed' in ln]
    expect(len(lines) == 1 and 'exit status 5' in lines[0] and 'cannot read it' in lines[0] and
           '2 of 2 runs' in lines[0], 'expected one line for both runs: %r' % lines)


def case_shard_merge_rebuilds_whole():
    """Three shards run disjoint cells whose union is the whole matrix; --merge rebuilds one
    table, JSON and JUnit with every cell."""
    args = ['--workload', 'echo x > f', '--check', 'test -s f && echo \'{"intact": 1, "lost": 0, "refused": 0}\'',
            '--scenarios', 'random-injection,steady-squeeze', '--policies', 'enomem,nofail', '--duration', '1']
    outs, seen = [], []
    for k in (1, 2, 3):
        r, data, out = compare(*(args + ['--shard', '%d/3' % k]))
        expect(r.returncode == 0, 'shard %d/3 exit %d' % (k, r.returncode))
        seen += [(x['scenario'], x['policy']) for x in data['results']]
        outs.append(out)
    expect(sorted(seen) == sorted(set(seen)) and len(seen) == 4, 'shards overlap or miss cells: %s' % seen)
    merged = tempfile.mkdtemp(dir=TMP)
    junit = os.path.join(merged, 'junit.xml')
    r = run([sys.executable, COMPARE, '--out', merged, '--junit', junit, '--merge'] + outs)
    expect(r.returncode == 0, 'merge exit %d' % r.returncode)
    with open(os.path.join(merged, 'compare.json'), encoding='utf-8') as f:
        data = json.load(f)
    cells = {(c['scenario'], c['policy']) for c in data['workload_cells']}
    expect(cells == set(seen), 'merged cells %s, expected %s' % (cells, set(seen)))
    expect(len(re.findall(r'^\| (random-injection|steady-squeeze) \|', r.stdout, re.M)) == 4,
           'merged table does not have 4 rows')
    expect(ET.parse(junit).getroot().find('testsuite').get('tests') == '4', 'JUnit does not have 4 cases')
    expect(os.path.getsize(os.path.join(merged, 'compare.png')) > 0, 'no plot')
    r = run([sys.executable, COMPARE, '--out', merged, '--merge', outs[0], outs[0]])
    expect(r.returncode == 2 and 'both' in one_line(r), 'merging a shard twice was not refused')


def case_careless_loses_refused_records():
    """The careless appender under random-injection: enomem refuses records it never writes
    again (refused > 0) while its log stays readable; nofail refuses none."""
    app = os.path.join(APPS, 'careless_append.py')
    r, data, out = compare('--workload', app + ' run', '--check', app + ' check',
                           '--scenarios', 'random-injection', '--policies', 'enomem,nofail', '--duration', '3')
    expect(r.returncode == 0, 'exit %d' % r.returncode)
    rows = {x['policy']: x for x in data['workload_runs']}
    expect(rows['enomem']['refused'] and rows['enomem']['refused'] > 0,
           'enomem refused nothing: %s' % rows['enomem'])
    expect(rows['nofail']['refused'] == 0, 'nofail refused records: %s' % rows['nofail'])
    expect(all(x['verdict'] == 'held' for x in rows.values()), 'a garbled record: %s' % rows)


def case_careful_keeps_fsynced_records():
    """The careful appender under a squeezed budget and enomem: every record acknowledged by
    fsync is in the backing file (its check exits 0) and records were written."""
    app = os.path.join(APPS, 'careful_append.py')
    r, res = pfs_run('--policy', 'enomem', '--scenario', 'steady-squeeze', '--duration', '3',
                     '--check', app + ' check', '--', app, 'run')
    expect(r.returncode == 0, 'exit %d, expected 0 (held)' % r.returncode)
    counts = res['check']['counts']
    expect(counts['intact'] > 0 and counts['lost'] == 0, 'counts %s' % counts)


def case_crash_daemon_keeps_fsynced_records():
    """--crash daemon crashes the daemon (crash control file) at two thirds of the duration while
    the careful appender runs: the daemon dies by SIGABRT, the check still runs, and every record
    acknowledged by fsync is in the backing file."""
    app = os.path.join(APPS, 'careful_append.py')
    r, res = pfs_run('--policy', 'retry', '--scenario', 'steady-squeeze', '--duration', '3', '--crash', 'daemon',
                     '--check', app + ' check', '--', app, 'run')
    expect(r.returncode == 0, 'exit %d, expected 0 (held)' % r.returncode)
    expect(res.get('crash', {}).get('mode') == 'daemon' and res.get('daemon_rc') == -6,
           'no crash: crash %s, daemon exit %s' % (res.get('crash'), res.get('daemon_rc')))
    counts = res['check']['json']
    expect(counts['durable'] > 0 and counts['lost'] == 0, 'counts %s' % counts)
    cleaned_up(res)


def case_sqlite_integrity_check():
    """A program nobody here wrote: sqlite3 commits transactions (synchronous=FULL); the check is
    PRAGMA integrity_check plus every acknowledged commit present."""
    if not shutil.which('sqlite3'):
        print('SKIP: sqlite3 is not installed')
        sys.exit(77)
    work = ('i=0; end=$(( $(date +%s) + PFS_DURATION )); while [ "$(date +%s)" -lt $end ]; do i=$((i+1)); '
            'sqlite3 app.db "PRAGMA synchronous=FULL; CREATE TABLE IF NOT EXISTS t(i INTEGER PRIMARY KEY, b BLOB); '
            'INSERT INTO t VALUES($i, randomblob(20000));" 2>>"$PFS_STATE/errors" '
            '&& echo $i >> "$PFS_STATE/acked" || echo $i >> "$PFS_STATE/refused"; done')
    check = ('test "$(sqlite3 app.db "PRAGMA integrity_check")" = ok || exit 1; '
             'have=$(sqlite3 app.db "SELECT count(*) FROM t WHERE i IN ($(paste -sd, "$PFS_STATE/acked"))"); '
             'acked=$(wc -l < "$PFS_STATE/acked"); refused=$(cat "$PFS_STATE/refused" 2>/dev/null | wc -l); '
             'echo "{\\"intact\\": $have, \\"lost\\": $((acked - have)), \\"refused\\": $refused, \\"unit\\": \\"commits\\"}"; '
             'test "$have" = "$acked"')
    r, res = pfs_run('--policy', 'retry', '--scenario', 'steady-squeeze', '--duration', '3',
                     '--check', check, '--', 'sh', '-c', work)
    expect(r.returncode == 0, 'exit %d, expected 0 (held)' % r.returncode)
    expect(res['check']['counts']['intact'] > 0, 'no commit: %s' % res['check'])


def case_runs_as_sudo_user():
    """Run as root through sudo (SUDO_UID set): the workload and the check run as that user, and
    the files the workload creates in the mount belong to it."""
    work = 'id -u > who'
    check = 'test "$(id -u)" = 65534 && test "$(cat who)" = 65534 && test "$(stat -c %u who)" = 65534'
    if os.geteuid() != 0:
        print('SKIP: not root: nothing to demote')
        sys.exit(77)
    r, res = pfs_run('--duration', '1', '--check', check, '--', 'sh', '-c', work,
                     env={'SUDO_UID': '65534', 'SUDO_GID': '65534'})
    expect(r.returncode == 0, 'exit %d, expected 0 (held)' % r.returncode)
    expect(res['user'] == {'uid': 65534, 'gid': 65534, 'via_sudo': True}, 'user %s' % res.get('user'))
    cleaned_up(res)


def main():
    global TMP
    if not os.path.exists('/dev/fuse') or not shutil.which('fusermount3'):
        print('SKIP: /dev/fuse or fusermount3 missing: cannot mount')
        return 77
    name = 'case_' + sys.argv[3]
    fn = globals().get(name)
    if fn is None:
        print('unknown case %s' % sys.argv[3], file=sys.stderr)
        return 2
    TMP = tempfile.mkdtemp(prefix='pfs-wl-test.')
    os.chmod(TMP, 0o755)
    try:
        fn()
    except Fail as e:
        print('FAIL: %s: %s' % (sys.argv[3], e), file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print('PASS: %s: %s' % (sys.argv[3], ' '.join(fn.__doc__.split())))
    return 0


if __name__ == '__main__':
    sys.exit(main())
