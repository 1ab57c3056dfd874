"""A power cut below pressurefs: the backing directory on a loop-mounted ext4 image of its own.

A daemon crash loses the daemon's dirty pages only: the backing filesystem's page cache survives
it, so "lost after fsync" is never tested against a real loss of unsynced data. Here the backing
directory is an ext4 filesystem on a loop device made for the run, and the crash

  1. stops the daemon (SIGSTOP: from its point of view the cut is instantaneous; a reply it had
     not sent stays unsent),
  2. shuts the ext4 down at once without flushing anything (pfs-godown: FS_IOC_SHUTDOWN with
     FS_GOING_FLAGS_NOLOGFLUSH, as xfstests' godown does),
  3. kills the daemon (SIGKILL).
The caller then unmounts the dead FUSE mount, and remount() unmounts the image and mounts it
again (the journal is replayed), so the verifier sees what had reached the loop device: what an
fsync promise is about. Data the daemon had written back but nobody fsynced may be gone too.

Everything is undone by teardown() (unmount, losetup -d, remove the image), which is idempotent
and also run by power_teardown_all() after an interruption.
"""

import os
import shutil
import signal
import subprocess
import threading
import time

from fuse_mount import mounted

IMAGE_SIZE = 256 << 20   # sparse: only what the run writes takes disk space
CMD_TIMEOUT = 60

_active = []
_active_lock = threading.Lock()


def _run(cmd, timeout=CMD_TIMEOUT):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError('%s: exit %d: %s' % (' '.join(cmd), r.returncode,
                                                (r.stderr or r.stdout).strip()[:300]))
    return r.stdout


def available(godown, tmpdir=None):
    """(True, None) when this machine can run a power cut, else (False, why) for a clear skip
    line. Probes for real: a small image is attached to a loop device and detached."""
    if os.geteuid() != 0:
        return False, 'not root (mount and losetup need it)'
    if not os.path.exists('/dev/loop-control'):
        return False, '/dev/loop-control is missing (no loop device support)'
    for tool in ('losetup', 'mkfs.ext4', 'mount', 'umount'):
        if shutil.which(tool) is None:
            return False, '%s is not installed' % tool
    if not os.access(godown, os.X_OK):
        return False, '%s is not built' % godown
    probe = None
    dev = None
    try:
        import tempfile
        probe = tempfile.mkdtemp(prefix='pfs-power-probe-', dir=tmpdir)
        img = os.path.join(probe, 'img')
        with open(img, 'wb') as f:
            f.truncate(4 << 20)
        dev = _run(['losetup', '--find', '--show', img]).strip()
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        return False, 'cannot attach a loop device: %s' % e
    finally:
        if dev:
            subprocess.run(['losetup', '-d', dev], capture_output=True, timeout=CMD_TIMEOUT)
        if probe:
            shutil.rmtree(probe, ignore_errors=True)
    return True, None



STOP_SECS = 30


def _thread_states(pid):
    """{tid: state letter} of every thread of pid; None when pid is gone."""
    try:
        tids = os.listdir('/proc/%d/task' % pid)
    except FileNotFoundError:
        return None
    states = {}
    for tid in tids:
        try:
            with open('/proc/%d/task/%s/stat' % (pid, tid)) as f:
                line = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # the state follows the ')' that ends the command name (which may hold both)
        states[tid] = line[line.rindex(')') + 2:].split(' ', 1)[0]
    return states


def stop_all(pid, secs):
    """SIGSTOP pid and wait, at most secs, until every thread of it is stopped.

    kill() returns once the signal is queued, not once the process has stopped: a thread inside a
    system call stops only when the call returns, and until then the daemon may still answer. An
    answer sent after the backing ext4 was shut down is one no real power cut lets out: ext4 can
    return 0 from an fsync in flight across FS_IOC_SHUTDOWN although the shutdown aborted the
    transaction holding its data (tests/crash/README.md). The signal is sent again on every look,
    so a SIGCONT from elsewhere cannot leave it running. True once stopped, 'gone' when pid died,
    else one 'tid (state)' text per thread still running."""
    end = time.monotonic() + secs
    while True:
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            return 'gone'
        states = _thread_states(pid)
        if not states or all(st == 'Z' for st in states.values()):
            return 'gone'
        running = ['%s (%s)' % (tid, st) for tid, st in sorted(states.items())
                   if st not in ('T', 't', 'Z', 'X')]
        if not running:
            return True
        if time.monotonic() >= end:
            return running
        time.sleep(0.01)

class PowerBacking:
    """The backing directory of one run on an ext4 image of its own."""

    def __init__(self, godown, image, mountpoint, size=IMAGE_SIZE):
        self.godown = godown
        self.image = image
        self.mnt = mountpoint
        self.size = size
        self.dev = None
        self.log = []   # (what, detail) for the run's notes

    def setup(self):
        with _active_lock:
            _active.append(self)
        with open(self.image, 'wb') as f:
            f.truncate(self.size)
        # nodiscard: mkfs would otherwise punch the whole (sparse) image first.
        _run(['mkfs.ext4', '-q', '-F', '-E', 'nodiscard', self.image])
        self.dev = _run(['losetup', '--find', '--show', self.image]).strip()
        os.makedirs(self.mnt, exist_ok=True)
        _run(['mount', '-t', 'ext4', self.dev, self.mnt])
        self.log.append(('setup', '%s on %s, %d MiB ext4' % (self.image, self.dev, self.size >> 20)))

    def cut(self, daemon_pid):
        """The power cut: stop every thread of the daemon, shut the ext4 down unflushed, kill the
        daemon. Returns an error text or None. A daemon that does not stop in time is killed
        without the cut (a cut while one of its threads still runs could let an answer out after
        it, which no real power cut does)."""
        err = None
        stopped = stop_all(daemon_pid, STOP_SECS)
        if stopped == 'gone':
            self.log.append(('cut', 'the daemon was already gone'))
        elif stopped is not True:
            err = ('the daemon did not stop within %d s (%s): killed without a power cut'
                   % (STOP_SECS, '; '.join(stopped)))
            self.log.append(('cut', err))
        if err is None:
            try:
                _run([self.godown, '--nologflush', self.mnt], timeout=30)
                self.log.append(('cut', 'FS_IOC_SHUTDOWN nologflush on %s' % self.mnt))
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                err = str(e)
                self.log.append(('cut', 'godown failed: %s' % err))
        try:
            os.kill(daemon_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return err

    def remount(self):
        """After the FUSE mount is gone: unmount the shut-down ext4 and mount it again."""
        self._umount()
        _run(['mount', '-t', 'ext4', self.dev, self.mnt])
        self.log.append(('remount', 'journal replayed; verifying what reached %s' % self.dev))

    def _umount(self):
        for lazy in (False, True):
            if not mounted(self.mnt):
                return
            cmd = ['umount'] + (['-l'] if lazy else []) + [self.mnt]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=CMD_TIMEOUT)
            if r.returncode != 0:
                self.log.append(('umount', r.stderr.strip()[:200]))
                time.sleep(0.2)
        if mounted(self.mnt):
            raise RuntimeError('%s is still mounted' % self.mnt)

    def teardown(self, keep_image=False):
        """Unmount, detach the loop device, remove the image (unless keep_image: then it stays
        for a post-mortem, unmounted). Idempotent; None or the errors."""
        errs = []
        try:
            self._umount()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            errs.append(str(e))
        if self.dev and not mounted(self.mnt):
            r = subprocess.run(['losetup', '-d', self.dev], capture_output=True, text=True,
                               timeout=CMD_TIMEOUT)
            if r.returncode == 0:
                self.dev = None
            else:
                errs.append('losetup -d %s: %s' % (self.dev, r.stderr.strip()))
        if self.dev is None and not keep_image:
            try:
                os.unlink(self.image)
            except FileNotFoundError:
                pass
            except OSError as e:
                errs.append('%s: %s' % (self.image, e.strerror))
        if self.dev is None:
            with _active_lock:
                if self in _active:
                    _active.remove(self)
        return '; '.join(errs) or None


def power_teardown_all():
    with _active_lock:
        items = list(_active)
    return [e for e in (p.teardown() for p in items) if e]


# ---- report ----------------------------------------------------------------

def run_metrics(res):
    c = res.get('crash') or {}
    return {'crash_mode': c.get('mode'), 'crash_at_s': c.get('at_s'),
            'crash_skipped': c.get('skipped'), 'crash_error': c.get('error')}


def table_markdown(rows):
    """One line per run ended by a crash: when, how, and what it took. Empty string when no run
    was crashed."""
    runs = [r for r in rows if r.get('crash_mode')]
    if not runs:
        return ''
    head = ['scenario', 'policy', 'run', 'crash', 'at s', 'lost after fsync', 'lost after write',
            'intact', 'note']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]

    def b(v):
        return '-' if v is None else '%d B' % v if v < 1024 else '%.1f KiB' % (v / 1024.0) \
            if v < 1 << 20 else '%.1f MiB' % (v / 1048576.0)
    for r in runs:
        note = r.get('crash_skipped') or r.get('crash_error') or ''
        lines.append('| ' + ' | '.join([
            r['scenario'], r['policy'], str(r['rep']), r['crash_mode'], _fmt_s(r.get('crash_at_s')),
            b(r.get('lost_after_fsync')), b(r.get('lost_after_write')), b(r.get('intact')), note,
        ]) + ' |')
    return '\n'.join(lines)


def _fmt_s(v):
    return '-' if v is None else '%.1f' % v
