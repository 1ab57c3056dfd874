"""Your own program as the workload: run a command under one scenario and policy, check it, and
turn what its checker printed into rows, a table, a plot and invariants (docs/workloads.md).

The contract, per cell (policy x scenario x repeat):
  - a fresh backing dir, mounted as in every cell (compare_run.Cell.mount);
  - CMD runs as the invoking user (SUDO_UID when root through sudo, else the current user), in a
    session and process group of its own, cwd = the mount, with PFS_MNT, PFS_SEED, PFS_DURATION and
    PFS_STATE (a directory outside the mount that the check sees too) in its environment;
  - a watchdog calls it hung when no process of its group writes anything (wchar in /proc/PID/io)
    and none starts for hang_secs: the daemon is killed (which frees the group from its FUSE
    waits), then the group;
  - at PFS_DURATION + TERM_GRACE the group gets SIGTERM, KILL_GRACE later SIGKILL; the whole group
    is gone before the unmount;
  - unmount, wait for the daemon to exit (everything written back), then the check runs as the
    same user with PFS_BACKING (the backing dir), PFS_STATE, PFS_SEED, PFS_DURATION and
    PFS_WORKLOAD_STATUS (the exit status, 128+N for signal N). Its exit status is the verdict:
    0 held, 1 broken, anything else = the check failed. The last stdout line that parses as a
    JSON object {"intact": N, "lost": N, "refused": N, "unit": "records"} gives the columns.
"""

import json
import os
import pwd
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

import compare_run

HERE = os.path.dirname(os.path.abspath(__file__))
TERM_GRACE = 5.0     # seconds after PFS_DURATION before SIGTERM
KILL_GRACE = 5.0     # seconds after SIGTERM before SIGKILL
GROUP_GONE_SECS = 10.0
CHECK_TIMEOUT = 600
TAIL_LINES = 20
COUNTS = ('intact', 'lost', 'refused')
EXIT_HELD, EXIT_BROKEN, EXIT_USAGE, EXIT_NOT_RUN = 0, 1, 2, 3


class Workload:
    """CMD and its check: each a shell command string (bench/compare) or an argv list."""

    def __init__(self, name, cmd, check=None, unit='records'):
        self.name = name
        self.cmd = absolute_program(cmd)
        self.check = absolute_program(check) if check else None
        self.unit = unit

    @staticmethod
    def argv(cmd):
        return ['/bin/sh', '-c', cmd] if isinstance(cmd, str) else list(cmd)

    def to_json(self):
        return {'name': self.name, 'cmd': self.cmd, 'check': self.check, 'unit': self.unit}


def default_name(cmd):
    """The program's base name, without an extension: 'careless_append' for
    'bench/apps/careless_append.py run'."""
    words = _words(cmd)
    if not words:
        return 'workload'
    if os.path.basename(words[0]) in ('python3', 'python', 'sh', 'bash', 'env') and len(words) > 1:
        words = words[1:]
    return os.path.splitext(os.path.basename(words[0]))[0] or 'workload'


def _words(cmd):
    try:
        words = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    except ValueError:
        return []
    while words and '=' in words[0] and not words[0].startswith(('/', '.')):
        words = words[1:]  # NAME=VALUE prefixes of a shell command
    return words


def absolute_program(cmd):
    """cmd with a relative program path (./app, bench/apps/x.py) made absolute: the command runs
    in the mount (the check in the backing dir), not where the user typed it."""
    if not isinstance(cmd, str):
        argv = list(cmd)
        if argv and '/' in argv[0] and not os.path.isabs(argv[0]):
            argv[0] = os.path.abspath(argv[0])
        return argv
    m = re.match(r'^(\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)([A-Za-z0-9_.+/-]+)(?=\s|$)', cmd)
    if not m or '/' not in m.group(2) or m.group(2).startswith('/'):
        return cmd
    return m.group(1) + shlex.quote(os.path.abspath(m.group(2))) + cmd[m.end(2):]


def command_problem(what, cmd):
    """One line saying why cmd cannot run (its program not found or not executable), or None."""
    words = _words(cmd)
    if not words:
        return '%s: empty command (or unbalanced quotes): %r' % (what, cmd)
    prog = words[0]
    if '/' in prog:
        if not os.path.exists(prog):
            return '%s: %s does not exist' % (what, prog)
        if not os.access(prog, os.X_OK) or os.path.isdir(prog):
            return '%s: %s is not an executable file' % (what, prog)
        return None
    if shutil.which(prog) is None and prog not in _SHELL_WORDS:
        return '%s: %s is not a program on PATH' % (what, prog)
    return None


_SHELL_WORDS = {'cd', 'exec', 'set', 'export', 'true', 'false', ':', 'test', '[', 'for', 'while',
                'if', 'case', '{', '(', 'eval', 'ulimit', 'umask', '.'}


class User:
    """Whom the workload and the check run as: SUDO_UID's user when root via sudo."""

    def __init__(self):
        self.uid = os.getuid()
        self.gid = os.getgid()
        self.demote = False
        sudo_uid = os.environ.get('SUDO_UID')
        if os.geteuid() == 0 and sudo_uid and sudo_uid.isdigit() and int(sudo_uid) != 0:
            self.uid = int(sudo_uid)
            pw = pwd.getpwuid(self.uid)
            self.gid = int(os.environ.get('SUDO_GID') or pw.pw_gid)
            self.name, self.home = pw.pw_name, pw.pw_dir
            self.groups = os.getgrouplist(pw.pw_name, self.gid)
            self.demote = True

    def popen_kwargs(self):
        if not self.demote:
            return {}
        return {'user': self.uid, 'group': self.gid, 'extra_groups': self.groups}

    def env(self, env):
        if self.demote:
            env.update(HOME=self.home, USER=self.name, LOGNAME=self.name)
        return env

    def give(self, path):
        if self.demote:
            os.chown(path, self.uid, self.gid)

    def to_json(self):
        return {'uid': self.uid, 'gid': self.gid, 'via_sudo': self.demote}


def exit_status(rc):
    """Popen's returncode as a shell reports it: N, or 128+N for signal N."""
    return 128 - rc if rc is not None and rc < 0 else rc


def _signal_name(rc):
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return 'signal %d' % -rc


def group_pids(pgid):
    """Live (not zombie) processes whose process group is pgid."""
    out = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name, encoding='utf-8') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != 'Z':
            out.append(int(name))
    return out


def tail(path, lines=TAIL_LINES):
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            return '\n'.join(f.read().rstrip('\n').splitlines()[-lines:])
    except OSError:
        return ''


def last_json(text):
    """The last line of text that parses as a JSON object, or None."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith('{'):
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict):
                return v
    return None


class WorkloadCell(compare_run.Cell):
    """One cell whose workload is the user's command (see the module comment)."""

    user = None        # a User, set by the driver
    crash_mode = None  # 'daemon': write 1 to .pressurefs/crash at two thirds of the duration

    def __init__(self, tools, scenario, policy, spec, rep, seed, duration, hang_secs, rundir):
        super().__init__(tools, scenario, policy, spec.name, rep, seed, duration, hang_secs, rundir)
        self.spec = spec
        self.res['kind'] = 'command'
        self.res['command'] = spec.to_json()
        if self.user is None:
            WorkloadCell.user = User()
        self.res['user'] = self.user.to_json()
        if self.user.demote:
            self.mount_extra = ',allow_other'

    def mount(self):
        if not super().mount():
            return False
        if self.user.demote:
            # The user must reach the mount and the backing dir through the temp dir, and own
            # the mount's root (chowned through the mount, so the daemon's view agrees).
            os.chmod(self.tmp, 0o711)
            self.user.give(self.mnt)
        self.state = os.path.join(self.tmp, 'state')
        os.mkdir(self.state)
        self.user.give(self.state)
        return True

    def _env(self):
        env = dict(os.environ)
        env.update(PFS_SEED=str(self.seed), PFS_DURATION=str(self.duration), PFS_STATE=self.state)
        return self.user.env(env)

    def start_workload(self):
        env = self._env()
        env['PFS_MNT'] = self.mnt
        argv = Workload.argv(self.spec.cmd)
        self.res['workload_cmd'] = ' '.join(shlex.quote(a) for a in argv)
        self.progress = lambda: compare_run._group_signature(self.work.pid)
        self.work = subprocess.Popen(argv, cwd=self.mnt, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log('workload.out'), stderr=self._log('workload.err'),
                                     start_new_session=True, **self.user.popen_kwargs())
        self.res['workload_pid'] = self.work.pid  # = its process group
        if self.sc.churn:  # part of the scenario's pressure, as beside pfs-stress
            self.churn_out = os.path.join(self.tmp, 'churn.json')
            ccmd = [sys.executable, self.tools.churn, '--dir', os.path.join(self.mnt, 'churn'),
                    '--duration', str(self.duration), '--seed', str(self.seed), '--out', self.churn_out]
            self.churn = subprocess.Popen(ccmd, cwd=self.tmp, stdin=subprocess.DEVNULL,
                                          stdout=self._log('churn.out'), stderr=self._log('churn.err'),
                                          start_new_session=True)

    def watch(self):
        t0 = time.monotonic()
        term_at = t0 + self.duration + TERM_GRACE
        crash_at = t0 + self.duration * 2.0 / 3 if self.crash_mode else None
        termed = None
        last_sig, last_move = None, t0
        self.res['stopped_by'] = 'exit'
        while self.work.poll() is None:
            now = time.monotonic()
            sig = self.progress()
            if sig != last_sig:
                last_sig, last_move = sig, now
            elif now - last_move > self.hang_secs:
                self.hang('no write and no new process in the workload\'s process group for '
                          '%.0f s (daemon %s)' % (now - last_move,
                                                  'alive' if compare_run._pid_alive(self.daemon) else 'dead'))
                self.res['stopped_by'] = 'hang watchdog'
                break
            if crash_at is not None and now >= crash_at:
                crash_at = None
                self.crash_daemon(now - t0)
            if termed is None and now >= term_at:
                compare_run._killpg(self.work, signal.SIGTERM)
                termed = now
                self.res['stopped_by'] = 'SIGTERM'
                self.note('still running %.0f s after PFS_DURATION: SIGTERM to its process group' % TERM_GRACE)
            elif termed is not None and now >= termed + KILL_GRACE:
                self.res['stopped_by'] = 'SIGKILL'
                self.note('still running %.0f s after SIGTERM: SIGKILL to its process group' % KILL_GRACE)
                break
            time.sleep(0.2)
        self.res['elapsed_s'] = round(time.monotonic() - t0, 2)
        self._end_group()
        if self.churn is not None:
            try:
                self.churn.wait(timeout=max(self.hang_secs, 5))
            except subprocess.TimeoutExpired:
                self.note('metadata churn still running after the workload: SIGKILL')
                compare_run._killpg(self.churn)
                self.churn.wait(timeout=10)
        rc = self.work.returncode
        self.res['workload_rc'] = rc
        self.res['workload_status'] = exit_status(rc)
        if rc is not None and rc < 0:
            self.res['workload_signal'] = _signal_name(rc)
        self.res['workload_stderr_tail'] = tail(os.path.join(self.rundir, 'workload.err'))

    def crash_daemon(self, at):
        """A daemon crash while the workload runs: dirty pages are dropped and the daemon dies
        (the crash control file). In a thread: the write may not return before the death."""
        self.killed_by_us = True  # our doing, not the policy's: not counted as 'crashed'
        self.res['crash'] = {'mode': 'daemon', 'at_s': round(at, 2)}

        def fire():
            try:
                with open(os.path.join(self.mnt, '.pressurefs', 'crash'), 'w', encoding='utf-8') as f:
                    f.write('1\n')
            except OSError as e:
                self.res['crash']['write'] = e.strerror
        threading.Thread(target=fire, daemon=True).start()

    def _end_group(self):
        """SIGKILL whatever is left of the group and wait until none of it is alive: no process
        of the workload may hold the mount when it is unmounted."""
        pgid = self.work.pid
        deadline = time.monotonic() + GROUP_GONE_SECS
        left = group_pids(pgid)
        if left and self.work.poll() is not None:
            self.note('the workload exited, leaving %d processes in its group: SIGKILL' % len(left))
        while True:
            compare_run._killpg(self.work, signal.SIGKILL)
            try:
                self.work.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            left = group_pids(pgid)
            if not left and self.work.poll() is not None:
                return
            if time.monotonic() > deadline:
                break
        # Killed but still there: stuck in a FUSE request the daemon does not answer.
        if compare_run._pid_alive(self.daemon):
            self.hang('the workload\'s process group did not end within %.0f s of SIGKILL' % GROUP_GONE_SECS)
        try:
            self.work.wait(timeout=GROUP_GONE_SECS)
        except subprocess.TimeoutExpired:
            pass
        left = group_pids(pgid)
        if left:
            self.res['group_left'] = left
            self.note('processes %s of the workload\'s group are still alive' % left)

    def collect(self, snap):
        final = compare_run._load_json(self.stats_file) if self.res.get('clean_unmount') else None
        self.res['stats'] = final or snap.last
        self.res['stats_source'] = 'stats_file' if final else ('last snapshot' if snap.last else 'none')
        self.res['snapshots'] = snap.count
        self.res['check'] = self.run_check()
        if self.churn is not None:
            self.res['churn'] = compare_run._load_json(self.churn_out)

    def run_check(self):
        out = {'verdict': 'unchecked', 'rc': None, 'counts': None}
        if not self.spec.check:
            # No checker: the program's own exit status is its verdict.
            st = self.res.get('workload_status')
            out['verdict'] = 'held' if st == 0 else 'broken'
            out['reason'] = 'no --check: the workload\'s exit status (%s) is the verdict' % st
            return out
        env = self._env()
        env.update(PFS_BACKING=self.backing, PFS_WORKLOAD_STATUS=str(self.res.get('workload_status')))
        argv = Workload.argv(self.spec.check)
        out['cmd'] = ' '.join(shlex.quote(a) for a in argv)
        try:
            with self._log('check.out') as fo, self._log('check.err') as fe:
                r = subprocess.run(argv, cwd=self.backing, env=env, stdin=subprocess.DEVNULL, stdout=fo,
                                   stderr=fe, timeout=CHECK_TIMEOUT, start_new_session=True,
                                   **self.user.popen_kwargs())
            out['rc'] = r.returncode
        except subprocess.TimeoutExpired:
            out['rc'] = 'timeout'
        except OSError as e:
            out['rc'] = 'could not start: %s' % e.strerror
        with open(os.path.join(self.rundir, 'check.out'), encoding='utf-8', errors='replace') as f:
            text = f.read()
        out['stderr_tail'] = tail(os.path.join(self.rundir, 'check.err'))
        out['json'] = last_json(text)
        if out['rc'] == 0:
            out['verdict'] = 'held'
        elif out['rc'] == 1:
            out['verdict'] = 'broken'
        else:
            out['verdict'] = 'check failed'
            why = ('killed by %s' % _signal_name(out['rc'])) if isinstance(out['rc'], int) and out['rc'] < 0 \
                else ('exit status %s' % out['rc'] if isinstance(out['rc'], int) else out['rc'])
            last = out['stderr_tail'].splitlines()[-1] if out['stderr_tail'] else '(no stderr)'
            out['reason'] = 'the check failed (%s): %s' % (why, last)
        counts = out['json']
        if isinstance(counts, dict):
            vals = {k: counts.get(k) for k in COUNTS}
            bad = [k for k, v in vals.items() if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0)]
            if bad:
                self.note('the check\'s JSON lacks a count >= 0 for %s: %s' % (', '.join(bad), json.dumps(counts)[:200]))
            out['counts'] = {k: (None if k in bad else v) for k, v in vals.items()}
            out['unit'] = str(counts.get('unit') or self.spec.unit)
        elif out['verdict'] != 'check failed':
            self.note('the check printed no JSON line with intact/lost/refused')
        return out


def run_one(tools, scenario, policy, spec, rep, seed, duration, hang_secs, rundir):
    return WorkloadCell(tools, scenario, policy, spec, rep, seed, duration, hang_secs, rundir).run()


# ---- rows, cells, invariants --------------------------------------------------------

def is_command(res):
    return res.get('kind') == 'command'


def metrics(res):
    chk = res.get('check') or {}
    counts = chk.get('counts') or {}
    tot = ((res.get('stats') or {}).get('total') or {}) if isinstance(res.get('stats'), dict) else {}
    m = {'scenario': res['scenario'], 'workload': res['workload'], 'policy': res['policy'],
         'rep': res['rep'], 'kind': 'command',
         'unit': chk.get('unit') or (res.get('command') or {}).get('unit') or 'records',
         'verdict': 'not run' if res.get('mount_failed') else chk.get('verdict', 'unchecked'),
         'check_rc': chk.get('rc'), 'check_reason': chk.get('reason'),
         'workload_status': res.get('workload_status'), 'workload_signal': res.get('workload_signal'),
         'stopped_by': res.get('stopped_by'), 'hung': bool(res.get('hung')),
         'hung_reason': res.get('hung_reason'), 'crashed': bool(res.get('crashed')),
         'mount_failed': bool(res.get('mount_failed')), 'clean_unmount': res.get('clean_unmount'),
         'elapsed_s': res.get('elapsed_s'), 'crash_fired': bool(res.get('crash'))}
    for k in COUNTS:
        m[k] = counts.get(k)
    for k in ('enomem', 'loops', 'caller_retries'):
        v = tot.get(k)
        m[k] = v if isinstance(v, (int, float)) else None
    return m


def aggregate(rows, order):
    groups = {}
    for r in rows:
        groups.setdefault((r['scenario'], r['workload'], r['policy']), []).append(r)
    cells = []
    for key in order:
        runs = groups.get(key)
        if not runs:
            continue
        c = {'scenario': key[0], 'workload': key[1], 'policy': key[2], 'runs': len(runs),
             'unit': runs[0]['unit'], 'kind': 'command'}
        for v in ('held', 'broken', 'check failed', 'unchecked', 'not run'):
            c[v] = sum(1 for r in runs if r['verdict'] == v)
        for k in ('hung', 'crashed', 'mount_failed'):
            c[k] = sum(1 for r in runs if r[k])
        for k in COUNTS + ('enomem', 'loops', 'caller_retries'):
            vals = [float(r[k]) for r in runs if r.get(k) is not None]
            c[k] = {'median': statistics.median(vals), 'min': min(vals), 'max': max(vals),
                    'n': len(vals)} if vals else None
        c['workload_status'] = sorted({str(r['workload_status']) if r['workload_signal'] is None
                                       else r['workload_signal'] for r in runs if not r['mount_failed']})
        c['reasons'] = [_run_reason(r) for r in runs if _run_reason(r)]
        cells.append(c)
    return cells


def _where(r):
    return '%s/%s/%s run %d' % (r['scenario'], r['workload'], r['policy'], r['rep'])


def _run_reason(r):
    """Why a run is not a plain 'held', in one line; None when it is."""
    if r['mount_failed']:
        return '%s: the mount failed' % _where(r)
    parts = []
    if r['verdict'] == 'broken':
        parts.append('the promise broke (check exit 1%s)' % (
            ': %s %s lost' % (_int(r['lost']), r['unit']) if r.get('lost') is not None else ''))
    elif r['verdict'] == 'check failed':
        parts.append(r.get('check_reason') or 'the check failed')
    if r['hung']:
        parts.append('hung: %s' % (r.get('hung_reason') or ''))
    return '%s: %s' % (_where(r), '; '.join(parts)) if parts else None


def invariants(rows):
    """(ok, text) per run: the check ran and the program's promise held."""
    out = []
    for r in rows:
        if r['mount_failed']:
            out.append((False, '%s: the mount failed' % _where(r)))
        elif r['verdict'] == 'broken':
            out.append((False, _run_reason(r)))
        elif r['verdict'] == 'held':
            out.append((True, '%s: the promise held (%s intact, %s lost, %s refused %s)' %
                        (_where(r), _int(r['intact']), _int(r['lost']), _int(r['refused']), r['unit'])))
    return out


def check_failures(rows):
    return [r for r in rows if r['verdict'] == 'check failed']


# ---- table, CSV, plot ---------------------------------------------------------------

def _int(v):
    if v is None:
        return '-'
    return str(int(v)) if float(v).is_integer() else '%.1f' % v


def _spread(c, k):
    v = c.get(k)
    if not isinstance(v, dict):
        return '-'
    if v['n'] > 1 and v['min'] != v['max']:
        return '%s (%s–%s)' % (_int(v['median']), _int(v['min']), _int(v['max']))
    return _int(v['median'])


def promise_text(c):
    n = c['runs']
    parts = []
    for v, label in (('held', 'held'), ('broken', 'BROKEN'), ('check failed', 'CHECK FAILED'),
                     ('unchecked', 'unchecked'), ('not run', 'not run')):
        if c[v] == n:
            return label
        if c[v]:
            parts.append('%s %d/%d' % (label, c[v], n))
    return ', '.join(parts)


HEADER = ['scenario', 'workload', 'policy', 'promise', 'intact', 'lost', 'refused', 'unit',
          'workload exit', 'hung', 'crashed', 'ENOMEMs', 'alloc loops', 'caller retries']


def table_markdown(cells):
    lines = ['| ' + ' | '.join(HEADER) + ' |', '|' + '---|' * len(HEADER)]
    for c in cells:
        flag = lambda k: '%d/%d' % (c[k], c['runs']) if c[k] else '0'  # noqa: E731
        row = [c['scenario'], c['workload'], c['policy'], promise_text(c), _spread(c, 'intact'),
               _spread(c, 'lost'), _spread(c, 'refused'), c['unit'],
               ', '.join(c['workload_status']) or '-', flag('hung'), flag('crashed'),
               _spread(c, 'enomem'), _spread(c, 'loops'), _spread(c, 'caller_retries')]
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


def write_csv(outdir, cells, rows):
    import csv
    keys = COUNTS + ('enomem', 'loops', 'caller_retries')
    with open(os.path.join(outdir, 'compare-workload.csv'), 'w', newline='', encoding='utf-8') as f:
        w = csv.writer(f)
        hdr = ['scenario', 'workload', 'policy', 'runs', 'unit', 'held', 'broken', 'check_failed',
               'hung', 'crashed']
        for k in keys:
            hdr += [k + '_median', k + '_min', k + '_max']
        w.writerow(hdr)
        for c in cells:
            row = [c['scenario'], c['workload'], c['policy'], c['runs'], c['unit'], c['held'],
                   c['broken'], c['check failed'], c['hung'], c['crashed']]
            for k in keys:
                v = c.get(k)
                row += [v['median'], v['min'], v['max']] if isinstance(v, dict) else ['', '', '']
            w.writerow(row)
    run_keys = ['scenario', 'workload', 'policy', 'rep', 'unit', 'verdict', 'check_rc', 'intact',
                'lost', 'refused', 'workload_status', 'workload_signal', 'stopped_by', 'hung',
                'crashed', 'clean_unmount', 'enomem', 'loops', 'caller_retries', 'elapsed_s']
    with open(os.path.join(outdir, 'compare-workload-runs.csv'), 'w', newline='', encoding='utf-8') as f:
        w = csv.writer(f)
        w.writerow(run_keys)
        for r in rows:
            w.writerow(['' if r.get(k) is None else r.get(k) for k in run_keys])


def plot(outdir, cells, png):
    """png: intact, lost and refused per cell (median), one bar group per scenario/policy;
    hung or crashed cells are marked in their label."""
    if not cells:
        return 'no workload cells to plot'
    dat = os.path.join(outdir, 'plot-workload.dat')
    with open(dat, 'w', encoding='utf-8') as f:
        f.write('# label intact lost refused\n')
        for c in cells:
            label = '%s/%s' % (c['scenario'], c['policy'])
            if len({x['workload'] for x in cells}) > 1:
                label = c['workload'] + ':' + label
            marks = [m for m, k in (('HUNG', 'hung'), ('CRASHED', 'crashed'), ('BROKEN', 'broken'))
                     if c.get(k)]
            if marks:
                label += '(' + ','.join(marks) + ')'
            vals = [c[k]['median'] if isinstance(c.get(k), dict) else 0 for k in COUNTS]
            f.write('"%s" %s\n' % (label, ' '.join('%g' % v for v in vals)))
    unit = cells[0]['unit']
    cmd = ['gnuplot', '-e', "dat='%s'; out='%s'; unit='%s'; n=%d" % (dat, png, unit, len(cells)),
           os.path.join(HERE, 'workload.gp')]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 'gnuplot failed: %s' % e
    return None if r.returncode == 0 else 'gnuplot failed: ' + r.stderr.strip()[:300]


def markdown_section(cells, rows, specs):
    """The workload table with what it means, for compare.md."""
    out = ['## Your workload\n']
    for s in specs:
        out.append('- **%s**: `%s`, checked by `%s`' % (s['name'], s['cmd'] if isinstance(s['cmd'], str)
                                                        else ' '.join(s['cmd']), s.get('check') or '(none)'))
    out.append('\nPromise: the check\'s exit status per run (0 held, 1 BROKEN, other CHECK FAILED). '
               'Intact, lost and refused come from the last JSON line the check printed, in its unit '
               '(median, min–max over the repeats). Workload exit: its exit status per run (a '
               'signal name when killed); hung: no write by its process group for --hang-secs.\n')
    fired = [r for r, _res in rows if r.get('crash_fired')]
    if fired:
        out.append('In %d of %d runs the daemon was crashed on purpose at two thirds of the duration '
                   '(--crash daemon: dirty pages dropped); the crashed column counts only crashes '
                   'nobody asked for.\n' % (len(fired), len(rows)))
    out.append(table_markdown(cells) + '\n')
    reasons = [x for c in cells for x in c['reasons']]
    if reasons:
        out.append('Runs that were not a plain "held":\n')
        out += ['- ' + x for x in reasons]
        out.append('')
    tails = [(r, res) for r, res in rows if res.get('workload_stderr_tail') and r['verdict'] != 'held']
    for r, res in tails[:8]:
        out.append('stderr tail of %s:\n\n```\n%s\n```\n' % (_where(r), res['workload_stderr_tail']))
    return '\n'.join(out)
