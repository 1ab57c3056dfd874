"""A memory cgroup of its own around the daemon: the kernel's memory controller as the pressure.

Under a memory cgroup malloc() does not fail: the limit bites at page fault, as reclaim, stalls
or the OOM killer, and the backing filesystem's page cache that the daemon dirties is charged to
its group too. A scenario says which question it asks (compare_scenario: cgroup_limit,
cgroup_oom, cgroup_budget, decided_by).

Both cgroup versions, one small class each way:
  v1  MOUNT/memory/NAME: memory.limit_in_bytes, memory.oom_control (1 = the kernel stalls the
      group instead of killing), figures from memory.failcnt, memory.max_usage_in_bytes,
      memory.oom_control (oom_kill, under_oom), memory.stat;
  v2  MOUNT/NAME (memory enabled in the parent's cgroup.subtree_control): memory.max, or
      memory.high for "stall instead of kill", figures from memory.events, memory.pressure,
      memory.peak, memory.stat.
A group is named pressurefs-<pid>-<n>, created for one run and removed after it; a name that
already exists is never reused or touched. Every group this process created is remembered, so
groups_remove_all() can remove what a failure left behind.
"""

import errno
import os
import time

FS_ROOT = '/sys/fs/cgroup'
OOM_MODES = ('kill', 'disabled')

_created = []   # MemoryGroup objects not yet removed
_counter = [0]


# ---- file handling (pure; unit-tested against a fake tree) ------------------

def parse_keyed(text):
    """'key value' lines (memory.stat, memory.events, memory.oom_control) -> {key: int}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def parse_pressure(text):
    """PSI lines ('some avg10=0.12 avg60=0.00 avg300=0.00 total=123') ->
    {'some': {'avg10': 0.12, ..., 'total_us': 123}, 'full': {...}}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0] not in ('some', 'full'):
            continue
        rec = {}
        for item in parts[1:]:
            k, sep, v = item.partition('=')
            if not sep:
                continue
            try:
                if k == 'total':
                    rec['total_us'] = int(v)
                else:
                    rec[k] = float(v)
            except ValueError:
                pass
        out[parts[0]] = rec
    return out


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def _write(path, value):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(value)


def _int_file(path):
    text = _read(path).strip()
    return None if text == 'max' else int(text)


def detect(fs_root=FS_ROOT):
    """Where a memory group can be made: ('v2', dir) or ('v1', dir), or (None, why).
    v2 is preferred: its mount (fs_root itself, or fs_root/unified on a hybrid machine) must
    list memory in cgroup.subtree_control, so a child gets the controller without this
    process enabling it in a group it did not create."""
    why = []
    for d in (fs_root, os.path.join(fs_root, 'unified')):
        ctl = os.path.join(d, 'cgroup.controllers')
        if not os.path.isfile(ctl):
            continue
        try:
            controllers = _read(ctl).split()
            subtree = _read(os.path.join(d, 'cgroup.subtree_control')).split()
        except OSError as e:
            why.append('cgroup v2 at %s unreadable: %s' % (d, e.strerror))
            continue
        if 'memory' not in controllers:
            why.append('cgroup v2 at %s has no memory controller (controllers: %s)' %
                       (d, ' '.join(controllers) or 'none'))
        elif 'memory' not in subtree:
            why.append('cgroup v2 at %s does not enable memory for its children '
                       '(cgroup.subtree_control: %s)' % (d, ' '.join(subtree) or 'empty'))
        elif not os.access(d, os.W_OK):
            why.append('cgroup v2 at %s is not writable' % d)
        else:
            return 'v2', d
    v1 = os.path.join(fs_root, 'memory')
    if os.path.isfile(os.path.join(v1, 'memory.limit_in_bytes')):
        if os.access(v1, os.W_OK):
            return 'v1', v1
        why.append('cgroup v1 memory controller at %s is not writable' % v1)
    else:
        why.append('no cgroup v1 memory controller at %s' % v1)
    return None, '; '.join(why)


class MemoryGroup:
    """One group, created by create(); every other method reads or writes its own files only."""

    def __init__(self, version, parent):
        if version not in ('v1', 'v2'):
            raise ValueError("cgroup version '%s' (v1 or v2)" % version)
        self.version = version
        self.parent = parent
        self.path = None
        self.limit = None
        self.oom = None

    # ---- life cycle ----
    def create(self):
        """mkdir pressurefs-<pid>-<n>, the first n whose name is free."""
        while True:
            _counter[0] += 1
            name = 'pressurefs-%d-%d' % (os.getpid(), _counter[0])
            path = os.path.join(self.parent, name)
            try:
                os.mkdir(path)
            except FileExistsError:
                continue  # not ours: leave it alone
            self.path = path
            _created.append(self)
            return path

    def configure(self, limit, oom='kill'):
        """The limit and what the kernel does at it: kill (the OOM killer) or disabled (the
        group's tasks stall until memory is freed: v1 memory.oom_control = 1, v2 memory.high
        with memory.max left at max)."""
        if oom not in OOM_MODES:
            raise ValueError("cgroup_oom '%s' (accepted: %s)" % (oom, ', '.join(OOM_MODES)))
        self.limit, self.oom = limit, oom
        if self.version == 'v1':
            _write(self._f('memory.limit_in_bytes'), '%d\n' % limit)
            if oom == 'disabled':
                _write(self._f('memory.oom_control'), '1\n')
        elif oom == 'disabled':
            _write(self._f('memory.high'), '%d\n' % limit)
        else:
            _write(self._f('memory.max'), '%d\n' % limit)

    def procs_file(self):
        """Write a PID here to move that process into the group."""
        return self._f('cgroup.procs')

    def exec_prefix(self):
        """A command prefix that joins the group, then execs the rest (the PID stays the same),
        so the daemon is charged from its first page on."""
        return ['sh', '-c', 'echo $$ > "$0" && exec "$@"', self.procs_file()]

    def pids(self):
        try:
            return [int(p) for p in _read(self.procs_file()).split()]
        except (OSError, ValueError):
            return []

    def release(self):
        """Lift the limit so a task stalled at it can run (and die when killed)."""
        if self.path is None:
            return
        try:
            if self.version == 'v1':
                if self.oom == 'disabled':
                    _write(self._f('memory.oom_control'), '0\n')
                _write(self._f('memory.limit_in_bytes'), '-1\n')
            else:
                _write(self._f('memory.high'), 'max\n')
                _write(self._f('memory.max'), 'max\n')
        except OSError:
            pass

    def remove(self, wait_s=10.0):
        """rmdir once no task is left (bounded wait; the caller has ended them). None when
        removed, else why not."""
        if self.path is None:
            return None
        self.release()
        deadline = time.monotonic() + wait_s
        err = None
        while True:
            try:
                os.rmdir(self.path)
                err = None
                break
            except FileNotFoundError:
                err = None
                break
            except OSError as e:
                err = '%s: %s (tasks %s)' % (self.path, e.strerror, self.pids() or 'none')
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        if err is None:
            if self in _created:
                _created.remove(self)
            self.path = None
        return err

    # ---- figures ----
    def usage(self):
        return _int_file(self._f('memory.usage_in_bytes' if self.version == 'v1' else 'memory.current'))

    def file_cache(self):
        """Page cache charged to the group (v1 memory.stat cache, v2 file)."""
        st = parse_keyed(_read(self._f('memory.stat')))
        return st.get('cache' if self.version == 'v1' else 'file', 0)

    def figures(self):
        """The group's own account of the run (missing files are left out)."""
        f = {'version': self.version, 'limit': self.limit, 'oom': self.oom}
        try:
            f['usage'] = self.usage()
        except (OSError, ValueError):
            pass
        if self.version == 'v1':
            for key, name in (('failcnt', 'memory.failcnt'), ('max_usage', 'memory.max_usage_in_bytes')):
                try:
                    f[key] = _int_file(self._f(name))
                except (OSError, ValueError):
                    pass
            try:
                oc = parse_keyed(_read(self._f('memory.oom_control')))
                f['oom_kill'] = oc.get('oom_kill')
                f['under_oom'] = oc.get('under_oom')
            except OSError:
                pass
        else:
            try:
                f['events'] = parse_keyed(_read(self._f('memory.events')))
                f['oom_kill'] = f['events'].get('oom_kill')
            except OSError:
                pass
            try:
                f['pressure'] = parse_pressure(_read(self._f('memory.pressure')))
            except OSError:
                pass
            try:
                f['max_usage'] = _int_file(self._f('memory.peak'))
            except (OSError, ValueError):
                pass
        try:
            st = parse_keyed(_read(self._f('memory.stat')))
            keys = ('rss', 'cache', 'dirty', 'writeback') if self.version == 'v1' else \
                ('anon', 'file', 'file_dirty', 'file_writeback')
            f['stat'] = {k: st[k] for k in keys if k in st}
        except OSError:
            pass
        return f

    def _f(self, name):
        if self.path is None:
            raise RuntimeError('the memory group was not created (or is removed)')
        return os.path.join(self.path, name)


def groups_remove_all():
    """Remove every group this process created and still holds; returns the errors."""
    errs = []
    for g in list(_created):
        e = g.remove(wait_s=5.0)
        if e:
            errs.append(e)
    return errs


def figures_summary(fig):
    """One short line for the table and the progress log."""
    if not isinstance(fig, dict):
        return '-'
    parts = []
    if fig.get('max_usage') is not None:
        parts.append('peak %.1f MiB' % (fig['max_usage'] / 1048576.0))
    if fig.get('failcnt') is not None:
        parts.append('failcnt %d' % fig['failcnt'])
    ev = fig.get('events') or {}
    for k in ('high', 'max', 'oom'):
        if ev.get(k):
            parts.append('%s %d' % (k, ev[k]))
    if fig.get('oom_kill'):
        parts.append('OOM kills %d' % fig['oom_kill'])
    some = (fig.get('pressure') or {}).get('some')
    if some and some.get('total_us') is not None:
        parts.append('stalled %.1f s' % (some['total_us'] / 1e6))
    return ', '.join(parts) or '-'


# ---- report ----------------------------------------------------------------

def run_metrics(res):
    """The group's figures of one run as flat numbers for compare.json/csv (None: no group)."""
    cg = res.get('cgroup') or {}
    fig = cg.get('figures') or {}
    ev = fig.get('events') or {}
    some = ((fig.get('pressure') or {}).get('some') or {})
    return {
        'cgroup_version': cg.get('version'), 'cgroup_limit': cg.get('limit'),
        'cgroup_overhead': cg.get('overhead'), 'cgroup_budget': cg.get('budget'),
        'cgroup_failcnt': fig.get('failcnt'), 'cgroup_max_usage': fig.get('max_usage'),
        'cgroup_oom_kills': fig.get('oom_kill'), 'cgroup_events_high': ev.get('high'),
        'cgroup_events_max': ev.get('max'), 'cgroup_pressure_some_us': some.get('total_us'),
    }


def _mib(v):
    return '-' if v is None else '%.1f MiB' % (v / 1048576.0)


def _n(v):
    return '-' if v is None else str(v)


def table_markdown(rows):
    """One line per run that had a memory group: what the kernel's controller saw. Empty
    string when no run had one."""
    runs = [r for r in rows if r.get('cgroup_version')]
    if not runs:
        return ''
    head = ['scenario', 'policy', 'run', 'cgroup', 'limit', 'daemon overhead', 'mem_limit set',
            'peak usage', 'failcnt (v1)', 'events high/max (v2)', 'OOM kills', 'stalled (v2 PSI some)',
            'outcome']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in runs:
        hi, mx = r.get('cgroup_events_high'), r.get('cgroup_events_max')
        psi = r.get('cgroup_pressure_some_us')
        outcome = 'hung' if r.get('hung') else ('crashed' if r.get('crashed') else 'ran')
        lines.append('| ' + ' | '.join([
            r['scenario'], r['policy'], str(r['rep']), r['cgroup_version'], _mib(r.get('cgroup_limit')),
            _mib(r.get('cgroup_overhead')), _mib(r.get('cgroup_budget')) if r.get('cgroup_budget') else 'none',
            _mib(r.get('cgroup_max_usage')), _n(r.get('cgroup_failcnt')),
            '-' if hi is None and mx is None else '%s/%s' % (_n(hi), _n(mx)),
            _n(r.get('cgroup_oom_kills')), '-' if psi is None else '%.2f s' % (psi / 1e6), outcome,
        ]) + ' |')
    return '\n'.join(lines)
