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
