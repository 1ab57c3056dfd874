"""One cell of the comparison: one scenario, one policy, one workload, one repeat.

Fresh backing dir and mountpoint; mount `pressurefs -f` in the background; apply the scenario's
rlimit and balloon schedule; run the workload (pfs-stress, or a real application) with the seed
every policy shares; snapshot .pressurefs/stats every second; a watchdog calls the run HUNG when
the workload makes no progress for hang_secs and then kills the daemon (kill -9 frees the
workload from its FUSE wait); unmount always; verify the backing dir.

Only processes started here are ever signalled, by PID (or by the process group of a workload
started in its own session). Every mount is undone and every temp dir removed, also when an
exception (Ctrl-C) unwinds through cell_run().
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import compare_cgroup
import compare_power
from fuse_mount import fuse_unmount, fusermount_lazy, mounted

HERE = os.path.dirname(os.path.abspath(__file__))
MOUNT_WAIT_SECS = 10.0
UNMOUNT_TRIES = 10


class Tools:
    """Where the built programs live."""

    def __init__(self, build):
        self.build = build
        self.daemon = os.path.join(build, 'daemon', 'pressurefs')
        self.stress = os.path.join(build, 'bench', 'pfs-stress')
        self.apps = os.path.join(os.path.dirname(HERE), 'apps')  # bench/apps
        self.churn = os.path.join(HERE, 'compare_churn.py')
        self.godown = os.path.join(build, 'bench', 'pfs-godown')

    def missing(self):
        return [p for p in (self.daemon, self.stress) if not os.access(p, os.X_OK)]


def _pid_alive(proc):
    return proc is not None and proc.poll() is None


def _kill(proc, sig=signal.SIGKILL):
    if _pid_alive(proc):
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass


def _killpg(proc, sig=signal.SIGKILL):
    """The workload runs in its own session: its group is ours alone."""
    if proc is None:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _vmsize(pid):
    with open('/proc/%d/status' % pid, encoding='utf-8') as f:
        for line in f:
            if line.startswith('VmSize:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError('no VmSize for pid %d' % pid)


def _group_signature(pgid):
    """(pid, wchar) of every process in the group: changes while the workload writes.
    Not rchar: fio's status thread reads /proc while its job is stuck in the mount."""
    sig = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name, encoding='utf-8') as f:
                fields = f.read().rsplit(')', 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            wchar = 0
            with open('/proc/%s/io' % name, encoding='utf-8') as f:
                for line in f:
                    if line.startswith('wchar:'):
                        wchar = int(line.split()[1])
            sig.append((int(name), wchar))
        except (OSError, IndexError, ValueError):
            continue
    return tuple(sorted(sig))


def _dir_signature(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for fn in files:
            try:
                total += os.stat(os.path.join(root, fn)).st_size
            except OSError:
                pass
    return total


def _load_json(path):
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _json_from_text(text):
    """The last JSON object printed in text (pfs-stress prints its summary last)."""
    start = text.rfind('\n{')
    start = 0 if start < 0 and text.startswith('{') else start + 1
    try:
        return json.loads(text[start:])
    except ValueError:
        return None


class _Snapshotter(threading.Thread):
    """Reads .pressurefs/stats once a second. The read may block on a hung daemon: this is a
    daemon thread, and kill -9 of the daemon ends the read with ENOTCONN."""

    def __init__(self, mnt, path_out):
        super().__init__(daemon=True)
        self.src = os.path.join(mnt, '.pressurefs', 'stats')
        self.path_out = path_out
        self.stop = threading.Event()
        self.last = None
        self.count = 0
        self.errors = 0
        self.series = []  # (t, live, dirty, loops, caller_retries, enomem)
        self.t0 = time.monotonic()

    def run(self):
        while not self.stop.is_set():
            try:
                with open(self.src, encoding='utf-8') as f:
                    text = f.read()
                snap = json.loads(text)
                self.last = snap
                self.count += 1
                tot = snap.get('total', {})
                self.series.append((round(time.monotonic() - self.t0, 2), snap.get('live'),
                                    snap.get('dirty'), tot.get('loops'),
                                    tot.get('caller_retries'), tot.get('enomem')))
                with open(self.path_out, 'w', encoding='utf-8') as f:
                    f.write(text)
            except (OSError, ValueError):
                self.errors += 1
            self.stop.wait(1.0)


class _Balloon(threading.Thread):
    """Writes the scenario's balloon sizes to .pressurefs/balloon on schedule."""

    def __init__(self, mnt, schedule, t0):
        super().__init__(daemon=True)
        self.dst = os.path.join(mnt, '.pressurefs', 'balloon')
        self.schedule = schedule
        self.t0 = t0
        self.stop = threading.Event()
        self.log = []

    def run(self):
        for at, size in self.schedule:
            delay = self.t0 + at - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                return
            try:
                with open(self.dst, 'w', encoding='utf-8') as f:
                    f.write('%d\n' % size)
                self.log.append((at, size, 'ok'))
            except OSError as e:
                self.log.append((at, size, e.strerror))


# Every live cell registers here so that a signal handler (Ctrl-C) can undo it.
_active = []
_active_lock = threading.Lock()


def cells_abort_all():
    """Kill what the active cells started and unmount them (called on Ctrl-C/SIGTERM)."""
    with _active_lock:
        cells = list(_active)
    for cell in cells:
        cell.teardown(emergency=True)
    for err in compare_power.power_teardown_all() + compare_cgroup.groups_remove_all():
        print('compare: cleanup: %s' % err, file=sys.stderr)


class Cell:
    def __init__(self, tools, scenario, policy, workload, rep, seed, duration, hang_secs, rundir):
        self.tools = tools
        self.sc = scenario
        self.policy = policy
        self.workload = workload
        self.rep = rep
        self.seed = seed
        self.duration = duration
        self.hang_secs = hang_secs
        self.rundir = rundir
        self.tmp = None
        self.daemon = None
        self.work = None
        self.churn = None
        self.threads = []
        self.killed_by_us = False
        # None, 'daemon' or 'power': --crash, else a subclass's own setting (compare_workload's
        # cell, set by bench/pressurefs-run), else the scenario's.
        self.crash_mode = self.crash_override or self.crash_mode or \
            (scenario.crash if scenario.crash != 'none' else None)
        self.crash_due = None
        self.group = None   # compare_cgroup.MemoryGroup around the daemon
        self.power = None   # compare_power.PowerBacking under the backing dir
        self.res = {
            'scenario': scenario.name, 'policy': policy, 'workload': workload, 'rep': rep,
            'seed': seed, 'duration': duration, 'notes': [],
            'decided_by': scenario.decided_by,
        }

    # ---- helpers ----
    def note(self, text):
        self.res['notes'].append(text)

    def _log(self, name):
        return open(os.path.join(self.rundir, name), 'wb')

    # ---- phases ----
    def mount(self):
        self.tmp = tempfile.mkdtemp(prefix='pfs-cmp-')
        self.backing = os.path.join(self.tmp, 'backing')
        self.mnt = os.path.join(self.tmp, 'mnt')
        self.stats_file = os.path.join(self.tmp, 'stats-final.json')
        os.mkdir(self.backing)
        os.mkdir(self.mnt)
        if self.crash_mode == 'power':
            self.power = compare_power.PowerBacking(self.tools.godown, os.path.join(self.tmp, 'backing.img'),
                                                    self.backing)
            self.power.setup()
        opts = self.sc.mount_options(self.policy) + ',stats_file=' + self.stats_file + self.mount_extra
        self.res['mount_options'] = opts
        env = dict(os.environ)
        env.update(self.sc.daemon_env)
        cmd = [self.tools.daemon, '-f', '-o', opts, self.backing, self.mnt]
        if self.sc.daemon_stack:
            # prlimit execs the daemon: the PID stays the daemon's.
            cmd = ['prlimit', '--stack=%d' % self.sc.daemon_stack, '--'] + cmd
        if self.sc.cgroup_limit is not None:
            self.group = compare_cgroup.MemoryGroup(self.cgroup_version, self.cgroup_parent)
            self.group.create()
            self.group.configure(self.sc.cgroup_limit, self.sc.cgroup_oom)
            self.res['cgroup'] = {'path': self.group.path, 'version': self.group.version,
                                  'limit': self.sc.cgroup_limit, 'oom': self.sc.cgroup_oom}
            cmd = self.group.exec_prefix() + cmd
        self.res['daemon_cmd'] = ' '.join(cmd)
        self.daemon = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log('daemon.out'),
                                       stderr=self._log('daemon.err'), env=env)
        deadline = time.monotonic() + MOUNT_WAIT_SECS
        while time.monotonic() < deadline:
            if mounted(self.mnt):
                return True
            if not _pid_alive(self.daemon):
                break
            time.sleep(0.05)
        self.res['mount_failed'] = True
        self.note('mount failed: ' + self._daemon_stderr_tail())
        return False

    def _daemon_stderr_tail(self):
        try:
            with open(os.path.join(self.rundir, 'daemon.err'), encoding='utf-8', errors='replace') as f:
                lines = f.read().strip().splitlines()
            return ' | '.join(lines[-3:]) if lines else '(no stderr)'
        except OSError:
            return '(no stderr)'

    def _warm_up(self):
        """Before the cap: a short pfs-stress run in a side directory, so libfuse has started
        the worker threads (stack + 1 MiB request buffer each) the real run will use; then
        sync. Without it the cap is spent on libfuse's threads, not on the page cache."""
        cmd = [self.tools.stress, 'run', '--dir', os.path.join(self.mnt, 'warmup'),
               '--journal', os.path.join(self.tmp, 'warmup.journal'), '--duration', '1',
               '--files', '8', '--file-size', '256K', '--quiet']
        threads = self.sc.stress[self.sc.stress.index('--threads'):][:2] if '--threads' in self.sc.stress else []
        cmd += threads
        try:
            subprocess.run(cmd, cwd=self.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=30)
            with open(os.path.join(self.mnt, '.pressurefs', 'sync'), 'w', encoding='utf-8') as f:
                f.write('1\n')
        except (OSError, subprocess.TimeoutExpired) as e:
            self.note('warm-up before the rlimit failed: %s' % e)

    def apply_rlimit(self):
        if self.sc.rlimit_headroom is None:
            return
        self._warm_up()
        vm = _vmsize(self.daemon.pid)
        cap = vm + self.sc.rlimit_headroom
        cmd = ['prlimit', '--pid', str(self.daemon.pid), '--as=%d:%d' % (cap, cap)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        self.res['rlimit_as'] = {'vmsize': vm, 'cap': cap, 'rc': r.returncode}
        if r.returncode != 0:
            self.note('prlimit failed: ' + r.stderr.strip())

    def _ctl_write(self, name, value):
        with open(os.path.join(self.mnt, '.pressurefs', name), 'w', encoding='utf-8') as f:
            f.write(value + '\n')

    def apply_cgroup_budget(self):
        """cgroup_budget: mem_limit = the group's limit - what the daemon holds outside the
        budget - headroom. Outside the budget: the group's usage after a warm-up, written back
        and with clean pages dropped, less the page cache charged to it (reclaimable) and less
        what the budget has charged by then (the worker pool, inode records: the new mem_limit
        holds them). Charged bytes may exceed the group's usage (stacks and buffers count whole
        in the budget, in the group only where touched), hence the floor at 0; subtracting them
        also keeps the figure steady when malloc touches every block (MALLOC_PERTURB_)."""
        if self.group is None or self.sc.cgroup_headroom is None:
            return
        self._warm_up()
        try:
            self._ctl_write('sync', '1')
            self._ctl_write('drop_caches', '1')
            usage, cache = self.group.usage(), self.group.file_cache()
            with open(os.path.join(self.mnt, '.pressurefs', 'stats'), encoding='utf-8') as f:
                charged = int(json.load(f).get('charged', 0))
        except (OSError, ValueError) as e:
            self.note('cgroup budget not set: %s' % e)
            return
        overhead = max(usage - cache - charged, 0)
        budget = self.sc.cgroup_limit - overhead - self.sc.cgroup_headroom
        if budget < 1 << 20:
            self.note('the daemon\'s overhead (%d KiB) leaves less than 1 MiB of the group\'s '
                      'limit for the budget: mem_limit=1M' % (overhead >> 10))
            budget = 1 << 20
        try:
            self._ctl_write('mem_limit', str(budget))
        except OSError as e:
            self.note('writing mem_limit=%d failed: %s' % (budget, e.strerror))
            return
        self.res['cgroup'].update({'usage_after_warmup': usage, 'cache_after_warmup': cache,
                                   'charged_after_warmup': charged, 'overhead': overhead,
                                   'budget': budget})

    def crash_now(self):
        """End the run the scenario's way: a daemon crash (the crash control file, kill -9 if
        it does not die) or a power cut below pressurefs (compare_power)."""
        info = {'mode': self.crash_mode, 'at_s': round(time.monotonic() - self.watch_t0, 2)}
        self.res['crash'] = info
        if not _pid_alive(self.daemon):
            info['skipped'] = 'the daemon was already gone'
            return
        self.killed_by_us = True
        if self.crash_mode == 'power':
            err = self.power.cut(self.daemon.pid)
            info['how'] = 'SIGSTOP until every thread stopped, FS_IOC_SHUTDOWN(NOLOGFLUSH) of the backing ext4, SIGKILL'
            if err:
                info['error'] = err
                self.note('power cut: ' + err)
            return
        r = subprocess.run(['timeout', '-k', '2', '10', 'sh', '-c', 'echo 1 > "$0"',
                            os.path.join(self.mnt, '.pressurefs', 'crash')],
                           capture_output=True, text=True)
        info['how'] = 'wrote 1 to .pressurefs/crash'
        try:
            self.daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            info['how'] += '; still alive 10 s later (write exit %d): kill -9' % r.returncode
            _kill(self.daemon)

    def start_workload(self):
        d = str(self.duration)
        s = str(self.seed)
        if self.workload == 'pfs-stress':
            self.journal = os.path.join(self.tmp, 'journal')
            self.summary = os.path.join(self.tmp, 'summary.json')
            cmd = [self.tools.stress, 'run', '--dir', self.mnt, '--journal', self.journal,
                   '--duration', d, '--seed', s, '--summary', self.summary, '--quiet'] + self.sc.stress
            self.progress = lambda: os.path.getsize(self.journal) if os.path.exists(self.journal) else -1
        else:
            self.state = os.path.join(self.tmp, 'state')
            os.mkdir(self.state)
            script = os.path.join(self.tools.apps, self.workload + '.sh')
            cmd = [script, 'run', os.path.join(self.mnt, 'app'), self.state, s, d]
            self.progress = lambda: (_dir_signature(self.state), _group_signature(self.work.pid))
        self.res['workload_cmd'] = ' '.join(cmd)
        self.work = subprocess.Popen(cmd, cwd=self.tmp, stdin=subprocess.DEVNULL,
                                     stdout=self._log('workload.out'), stderr=self._log('workload.err'),
                                     start_new_session=True)
        if self.sc.churn:
            self.churn_out = os.path.join(self.tmp, 'churn.json')
            ccmd = [sys.executable, self.tools.churn, '--dir', os.path.join(self.mnt, 'churn'),
                    '--duration', d, '--seed', s, '--out', self.churn_out]
            self.churn = subprocess.Popen(ccmd, cwd=self.tmp, stdin=subprocess.DEVNULL,
                                          stdout=self._log('churn.out'), stderr=self._log('churn.err'),
                                          start_new_session=True)

    def watch(self):
        """Wait for the workload; call it hung after hang_secs without progress."""
        t0 = self.watch_t0 = time.monotonic()
        if self.crash_mode:
            self.crash_due = t0 + self.sc.crash_at * self.duration
        last_sig = None
        last_move = t0
        hard_deadline = t0 + self.duration + max(3 * self.hang_secs, 30)
        procs = [p for p in (self.work, self.churn) if p is not None]
        while any(_pid_alive(p) for p in procs):
            now = time.monotonic()
            if self.crash_due is not None and now >= self.crash_due and 'crash' not in self.res:
                self.crash_now()
            sig = self.progress()
            if sig != last_sig:
                last_sig, last_move = sig, now
            elif now - last_move > self.hang_secs:
                self.hang('no workload progress for %.0f s (daemon %s)' %
                          (now - last_move, 'alive' if _pid_alive(self.daemon) else 'dead'))
                break
            if self.churn is not None and not _pid_alive(self.work) and \
                    now > t0 + self.duration + self.hang_secs:
                self.hang('metadata churn stuck %.0f s after the run' % (now - t0 - self.duration))
                break
            if now > hard_deadline:
                # Still moving, only slowly (e.g. cp -a meeting ENOMEM after ENOMEM, each after
                # the retry policy's back-off): not a hang. Stop the workload, keep the daemon.
                self.res['overran'] = True
                self.note('workload still making progress %.0f s after its duration: stopped '
                          '(SIGKILL to its process group)' % (now - t0 - self.duration))
                for p in procs:
                    _killpg(p)
                break
            time.sleep(0.2)
        self.res['elapsed_s'] = round(time.monotonic() - t0, 2)
        # After kill -9 of the daemon, ENOTCONN frees the workload; bound it anyway.
        for p in procs:
            try:
                p.wait(timeout=max(self.hang_secs, 5))
            except subprocess.TimeoutExpired:
                self.note('workload pid %d did not end after the daemon was killed: SIGKILL' % p.pid)
                _killpg(p)
                p.wait(timeout=10)
        self.res['workload_rc'] = self.work.returncode

    def hang(self, why):
        self.res['hung'] = True
        self.res['hung_reason'] = why
        if _pid_alive(self.daemon):
            self.killed_by_us = True
            _kill(self.daemon)
            if self.group is not None:
                try:
                    self.daemon.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    self.note('killed daemon stuck at the cgroup limit: limit lifted')
                    self.group.release()

    def unmount(self):
        """fusermount3 -u (retried while busy); then wait for the daemon to finish its flush."""
        for t in self.threads:
            t.stop.set()
        for t in self.threads:
            t.join(timeout=3)
        daemon_alive_before = _pid_alive(self.daemon)
        # Not lazily yet: a mount still busy here is the daemon's to end (or the hang's).
        fuse_unmount(self.mnt, tries=UNMOUNT_TRIES, pause=0.3, lazy=False, timeout=30)
        if self.daemon is not None:
            try:
                self.daemon.wait(timeout=max(self.hang_secs, 10))
            except subprocess.TimeoutExpired:
                self.hang('daemon did not exit within %d s of unmount (flush stuck)' % max(self.hang_secs, 10))
                self.daemon.wait(timeout=10)
            rc = self.daemon.returncode
            self.res['daemon_rc'] = rc
            if rc is not None and rc < 0 and not self.killed_by_us:
                self.res['crashed'] = True
                self.res['crash_signal'] = signal.Signals(-rc).name
            elif rc is not None and not self.killed_by_us and not daemon_alive_before:
                # Gone before we unmounted, without a signal (e.g. libfuse's session loop
                # ended when it could not allocate a request buffer): the mount died mid-run.
                self.res['crashed'] = True
                self.res['crash_signal'] = 'exit(%d) mid-run' % rc
                self.note('daemon exited by itself during the run (status %d): %s' %
                          (rc, self._daemon_stderr_tail()))
            elif rc not in (0, None) and not self.killed_by_us:
                self.note('daemon exited with status %d: %s' % (rc, self._daemon_stderr_tail()))
            self.res['clean_unmount'] = bool(daemon_alive_before and rc == 0 and not self.res.get('hung'))
        if mounted(self.mnt):
            self.note('still mounted after fusermount3 -u: lazy unmount')
            fusermount_lazy(self.mnt, timeout=30)
        if not mounted(self.mnt):
            # A mount that vanished mid-run (the daemon exited and libfuse unmounted) leaves
            # the bare directory underneath: whatever the workload opened after that went
            # there, with fsyncs that pressurefs never saw. Say so rather than blame it.
            try:
                under = os.listdir(self.mnt)
            except OSError:
                under = []
            if under:
                self.res['wrote_underneath'] = len(under)
                self.note('the workload wrote %d entries into the bare mountpoint directory after '
                          'the mount vanished: %s' % (len(under), ', '.join(sorted(under)[:8])))

    def after_unmount(self):
        """The group's own figures; after a power cut, the image mounted again."""
        if self.group is not None:
            fig = self.group.figures()
            self.res['cgroup']['figures'] = fig
            if self.res.get('crashed') and fig.get('oom_kill'):
                self.res['crash_signal'] = 'OOM killer (%s)' % self.res.get('crash_signal')
                self.note('the kernel\'s OOM killer ended the daemon (memory cgroup oom_kill %d)' %
                          fig['oom_kill'])
        if self.power is not None:
            self.res['power'] = {'log': self.power.log}
            try:
                self.power.remount()
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
                self.note('the image did not mount again after the power cut: %s; nothing verified' % e)
                return False
        return True

    def collect(self, snap):
        final = _load_json(self.stats_file) if self.res.get('clean_unmount') else None
        stats = final or snap.last
        self.res['stats_source'] = 'stats_file' if final else ('last snapshot' if snap.last else 'none')
        self.res['snapshots'] = snap.count
        self.res['stats'] = stats
        if snap.series:
            with open(os.path.join(self.rundir, 'stats-series.json'), 'w', encoding='utf-8') as f:
                json.dump(snap.series, f)
        if self.workload == 'pfs-stress':
            summary = _load_json(self.summary)
            if summary is None:
                with open(os.path.join(self.rundir, 'workload.out'), encoding='utf-8', errors='replace') as f:
                    summary = _json_from_text(f.read())
            self.res['summary'] = summary
            cmd = [self.tools.stress, 'verify', '--dir', self.backing, '--journal', self.journal, '--json']
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            self.res['verify_rc'] = r.returncode
            self.res['verify'] = _json_from_text(r.stdout) or _load_json_text(r.stdout)
            if self.res['verify'] is None:
                self.note('verify printed no JSON (rc %d): %s' % (r.returncode, r.stderr.strip()[:300]))
            with open(os.path.join(self.rundir, 'verify.json'), 'w', encoding='utf-8') as f:
                f.write(r.stdout)
            if r.stderr:
                with open(os.path.join(self.rundir, 'verify.err'), 'w', encoding='utf-8') as f:
                    f.write(r.stderr)
            if self.keep_journal:
                shutil.copy(self.journal, os.path.join(self.rundir, 'journal'))
        else:
            script = os.path.join(self.tools.apps, self.workload + '.sh')
            r = subprocess.run([script, 'check', os.path.join(self.backing, 'app'), self.state],
                               capture_output=True, text=True, timeout=600)
            self.res['app'] = _load_json_text(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else None
            if self.res['app'] is None:
                self.note('app check printed no JSON (rc %d): %s' % (r.returncode, r.stderr.strip()[:300]))
        if self.churn is not None:
            self.res['churn'] = _load_json(self.churn_out)

    def teardown(self, emergency=False):
        """Kill what we started (by PID), unmount, remove the temp dir. Idempotent."""
        if emergency:
            for p in (self.work, self.churn):
                _killpg(p)
            _kill(self.daemon)
        if self.tmp is None:
            return
        fuse_unmount(self.mnt, tries=1, pause=0, timeout=30)
        for p in (self.work, self.churn, self.daemon):
            if _pid_alive(p):
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    if p is self.daemon:
                        _kill(p)
                    else:
                        _killpg(p)
                    try:
                        p.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        pass
        if self.power is not None:
            err = self.power.teardown(keep_image=self.keep_temp)
            if err:
                self.note('power-cut image: ' + err)
        if self.group is not None:
            err = self.group.remove()
            if err:
                self.note('memory cgroup not removed: ' + err)
        for m in (self.mnt, self.backing):
            if mounted(m):
                # Never rm -r through a live mount.
                self.note('mount %s could not be removed; temp dir %s left' % (m, self.tmp))
                return
        if self.keep_temp:
            self.note('temp dir kept: %s%s' % (self.tmp, '' if self.power is None else
                                               ' (the backing dir is in backing.img: mount -o loop)'))
            self.res['temp_dir'] = self.tmp
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None

    mount_extra = ''      # appended to -o (a workload run as another user needs ',allow_other')
    keep_journal = False  # --keep-journals: copy each journal next to its result
    keep_temp = False     # --keep-temp: leave backing dir and journal for a post-mortem
    crash_override = None  # --crash: daemon or power for every scenario
    crash_mode = None      # a subclass's default, when neither --crash nor the scenario says
    cgroup_version = None  # compare_cgroup.detect(): where memory groups are made
    cgroup_parent = None

    def run(self):
        os.makedirs(self.rundir, exist_ok=True)
        with _active_lock:
            _active.append(self)
        snap = None
        try:
            try:
                if not self.mount():
                    return self.res
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
                # The power-cut image or the memory cgroup could not be made.
                self.res['mount_failed'] = True
                self.note('set-up failed: %s' % e)
                return self.res
            self.res['daemon_pid'] = self.daemon.pid
            self.apply_rlimit()
            self.apply_cgroup_budget()
            snap = _Snapshotter(self.mnt, os.path.join(self.rundir, 'stats-last.json'))
            snap.start()
            self.threads.append(snap)
            self.start_workload()
            if self.sc.balloon_schedule:
                bal = _Balloon(self.mnt, self.sc.balloon_schedule, time.monotonic())
                bal.start()
                self.threads.append(bal)
            self.watch()
            self.unmount()
            if not self.after_unmount():
                return self.res
            if self.sc.balloon_schedule:
                self.res['balloon_log'] = bal.log
            self.collect(snap)
            return self.res
        finally:
            self.teardown(emergency=True)
            with _active_lock:
                _active.remove(self)
            with open(os.path.join(self.rundir, 'result.json'), 'w', encoding='utf-8') as f:
                json.dump(self.res, f, indent=1, default=str)


def _load_json_text(text):
    try:
        return json.loads(text)
    except ValueError:
        return None
