"""bench/perf workloads: what runs on a mounted target, and what each one measures.

Every workload runs through the target's workdir (the backing directory as the target shows it).
prepare() makes data sets directly in the backing directory, once per session, outside any timing;
run() returns {metric: value} plus an 'extra' dict of facts that are not timed (RSS, daemon stats).
fio runs with ioengine=psync (one blocking syscall per block, what most programs do),
fallocate=none (so that no target pre-allocates and others not), invalidate=0 (bench/perf drops
the caches itself for the cold cells) and a fixed random seed (the same offsets on every target).
"""

import json
import os
import subprocess
import time

from perf_targets import RssSampler, caches_drop, size_format

TARBALL_SOURCE = '/usr/include'


class WorkloadError(Exception):
    """The workload ran and failed (an I/O error, a dead daemon, a timeout): recorded, not fatal."""


class WorkloadHung(WorkloadError):
    """The workload gave no result within its time limit and was killed."""


# --cell-timeout: an upper bound on any one workload run, in seconds (None: sized by the work)
CELL_TIMEOUT = [None]


def one_line(text, limit=240):
    """Several lines of tool output as one report line: the first lines, joined."""
    lines = [x.strip() for x in (text or '').strip().splitlines() if x.strip()]
    out = ' | '.join(lines)
    return out if len(out) <= limit else out[:limit - 3] + '...'


class Metric:
    def __init__(self, key, unit, higher_better=True, label=None):
        self.key, self.unit, self.higher_better = key, unit, higher_better
        self.label = label or key


def fio_run(name, path, args, timeout, directory=False):
    """directory: path is a directory and each job writes its own file in it."""
    where = ('--directory=' + path) if directory else ('--filename=' + path)
    cmd = ['fio', '--output-format=json', '--name=' + name, where,
           '--ioengine=psync', '--fallocate=none', '--invalidate=0', '--randrepeat=1',
           '--randseed=20100801'] + args
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WorkloadHung(f'fio {name}: no result within {timeout}s (killed)')
    text = r.stdout
    start = text.find('{')
    try:
        job = json.loads(text[start:])['jobs'][0] if start >= 0 else None
    except (ValueError, KeyError, IndexError):
        job = None
    if job is None:
        raise WorkloadError(f'fio {name} exit {r.returncode}: '
                            + one_line(r.stderr or text))
    if job.get('error'):
        err = job['error']
        raise WorkloadError(f'fio {name}: error {err} ({os.strerror(err)}): '
                            + one_line(r.stderr, 160))
    return job


def daemon_usage(pid):
    """(CPU seconds, context switches) the daemon has used so far, all its threads together;
    None without a daemon. Per operation, these tell transports apart where throughput on a
    shared machine cannot: how much CPU a request costs, and how often the daemon sleeps."""
    if not pid:
        return None
    try:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        # utime and stime (fields 14 and 15 of proc(5); after the comm, 12 and 13)
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
        switches = 0
        for tid in os.listdir(f'/proc/{pid}/task'):
            with open(f'/proc/{pid}/task/{tid}/status') as f:
                for line in f:
                    # voluntary_ctxt_switches and nonvoluntary_ctxt_switches
                    if 'ctxt_switches:' in line:
                        switches += int(line.split()[1])
        return cpu, switches
    except (OSError, IndexError, ValueError):
        return None


def _cap(seconds):
    return min(seconds, CELL_TIMEOUT[0]) if CELL_TIMEOUT[0] else seconds


def _timeout_for(size, runtime=0):
    # Bounded, and generous: 5 MB/s is far below anything healthy.
    return _cap(120 + runtime * 2 + size // (5 << 20))


def _workdir_sub(target, name):
    path = os.path.join(target.workdir, name)
    os.makedirs(path, exist_ok=True)
    return path


class Workload:
    """Base: name, the metrics it reports, the backing names its data sets keep."""
    name = ''
    title = ''
    metrics = []
    cold = False       # bench/perf drops the caches after the mount, before run()
    scaling = False    # runs on the scaling targets only
    keep = ()          # prepared data in the backing dir, kept between cells
    profile = False    # worth profiling the daemon during run()

    def prepare(self, ctx, params):
        pass

    def run(self, target, ctx, params):
        raise NotImplementedError


class SeqWrite(Workload):
    profile = True

    def __init__(self, size, name=None, scaling=False):
        self.size = size
        self.name = name or 'seqwrite'
        self.scaling = scaling
        self.title = f'sequential write {size_format(size)}, 128 KiB blocks, end_fsync=1'
        self.metrics = [Metric('MBps', 'MB/s', label=self.name + ' MB/s')]

    def run(self, target, ctx, params):
        path = os.path.join(_workdir_sub(target, 'w'), 'seq.dat')
        sampler = RssSampler(target.pid).start() if target.is_fuse else None
        try:
            job = fio_run(self.name, path, ['--rw=write', '--bs=128k', f'--size={self.size}',
                                            '--end_fsync=1'], _timeout_for(self.size))
        finally:
            extra = sampler.stop() if sampler else {}
        return {'MBps': job['write']['bw_bytes'] / 1e6, 'extra': extra}


class RandWrite(Workload):
    profile = True

    def __init__(self, size, runtime, jobs=1):
        self.size, self.runtime, self.jobs = size, runtime, jobs
        self.name = 'randwrite' if jobs == 1 else f'randwrite{jobs}'
        if jobs == 1:
            self.title = (f'random 4 KiB writes for {runtime}s in a {size_format(size)} file, '
                          'end_fsync=1')
        else:
            self.title = (f'random 4 KiB writes for {runtime}s, {jobs} jobs, each in its own '
                          f'{size_format(size // jobs)} file, end_fsync=1')
        self.metrics = [Metric('iops', 'IOPS', label=self.name + ' IOPS')]

    def run(self, target, ctx, params):
        if self.jobs == 1:
            path = os.path.join(_workdir_sub(target, 'w'), 'rand.dat')
            extra = []
        else:
            path = _workdir_sub(target, 'w')
            extra = [f'--numjobs={self.jobs}', '--group_reporting']
        before = daemon_usage(target.pid)
        job = fio_run(self.name, path, ['--rw=randwrite', '--bs=4k',
                                        f'--size={self.size // self.jobs}',
                                        '--time_based', f'--runtime={self.runtime}',
                                        '--norandommap', '--end_fsync=1'] + extra,
                      _timeout_for(self.size, self.runtime), directory=self.jobs > 1)
        ios = job['write']['total_ios']
        extra = {'ios': ios}
        after = daemon_usage(target.pid)
        if before and after and ios:
            extra['daemon_cpu_us_per_op'] = (after[0] - before[0]) * 1e6 / ios
            extra['daemon_cs_per_op'] = (after[1] - before[1]) / ios
        if ios and job.get('ctx') is not None:
            extra['client_cs_per_op'] = job['ctx'] / ios
        return {'iops': job['write']['iops'], 'extra': extra}


class _ReadWorkload(Workload):
    cold = True
    keep = ('rd',)

    def __init__(self, size):
        self.size = size

    def data_path(self, root):
        return os.path.join(root, 'rd', f'data-{size_format(self.size)}.dat')

    def prepare(self, ctx, params):
        path = self.data_path(ctx.backing)
        if os.path.exists(path) and os.path.getsize(path) == self.size:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fio_run('layout', path, ['--rw=write', '--bs=1m', f'--size={self.size}',
                                 '--end_fsync=1'], _timeout_for(self.size))


class SeqRead(_ReadWorkload):
    name = 'seqread'

    def __init__(self, size):
        super().__init__(size)
        self.title = (f'sequential read of a {size_format(size)} file, 128 KiB blocks: cold '
                      '(fresh mount, caches dropped), then warm (read again)')
        self.metrics = [Metric('cold_MBps', 'MB/s', label='seqread cold MB/s'),
                        Metric('warm_MBps', 'MB/s', label='seqread warm MB/s')]

    def run(self, target, ctx, params):
        path = self.data_path(target.workdir)
        out = {}
        for key in ('cold_MBps', 'warm_MBps'):
            job = fio_run('seqread', path, ['--rw=read', '--bs=128k', f'--size={self.size}'],
                          _timeout_for(self.size))
            out[key] = job['read']['bw_bytes'] / 1e6
        return out


class RandRead(_ReadWorkload):
    name = 'randread'

    def __init__(self, size, runtime):
        super().__init__(size)
        self.runtime = runtime
        self.title = (f'random 4 KiB reads for {runtime}s in the same {size_format(size)} '
                      'file: cold, then warm')
        self.metrics = [Metric('cold_iops', 'IOPS', label='randread cold IOPS'),
                        Metric('warm_iops', 'IOPS', label='randread warm IOPS')]

    def run(self, target, ctx, params):
        path = self.data_path(target.workdir)
        out = {}
        for key in ('cold_iops', 'warm_iops'):
            job = fio_run('randread', path, ['--rw=randread', '--bs=4k', f'--size={self.size}',
                                             '--time_based', f'--runtime={self.runtime}',
                                             '--norandommap'],
                          _timeout_for(self.size, self.runtime))
            out[key] = job['read']['iops']
        return out


def _meta(ctx, args, timeout):
    try:
        r = subprocess.run([ctx.meta_tool] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WorkloadHung(f'pfs-perf-meta {args[0]}: no result within {timeout}s (killed)')
    if r.returncode != 0:
        raise WorkloadError(one_line(r.stderr) or f'pfs-perf-meta exit {r.returncode}')
    return json.loads(r.stdout)


class Meta(Workload):
    name = 'meta'
    profile = True

    def __init__(self, files, file_size=1024):
        self.files, self.file_size = files, file_size
        self.title = (f'create (with {file_size} bytes written), stat, unlink of {files} '
                      'files in one directory (pfs-perf-meta, three timed phases)')
        self.metrics = [Metric('create_ps', 'files/s', label='create/s'),
                        Metric('stat_ps', 'files/s', label='stat/s'),
                        Metric('unlink_ps', 'files/s', label='unlink/s')]

    def run(self, target, ctx, params):
        d = _workdir_sub(target, 'w')
        j = _meta(ctx, ['files', d, str(self.files), str(self.file_size)],
                  _cap(120 + self.files // 20))
        n = j['files']
        return {'create_ps': n / j['create_s'], 'stat_ps': n / j['stat_s'],
                'unlink_ps': n / j['unlink_s']}


class Tar(Workload):
    name = 'tar'

    def __init__(self):
        self.title = f'tar -x of a tarball of {TARBALL_SOURCE} (no sync)'
        self.metrics = [Metric('seconds', 's', higher_better=False, label='tar x s')]
        self.tarball = None
        self.tar_bytes = 0

    def prepare(self, ctx, params):
        self.tarball = os.path.join(ctx.scratch, 'source-tree.tar')
        if not os.path.exists(self.tarball):
            r = subprocess.run(['tar', '-C', os.path.dirname(TARBALL_SOURCE), '-cf',
                                self.tarball, os.path.basename(TARBALL_SOURCE)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=600)
            if r.returncode not in (0, 1):   # 1: a file changed while read, harmless here
                raise WorkloadError('tar -c failed: ' + one_line(r.stderr))
        self.tar_bytes = os.path.getsize(self.tarball)
        self.title = (f'tar -x of a tarball of {TARBALL_SOURCE} '
                      f'({self.tar_bytes / 1e6:.0f} MB), no sync')

    def run(self, target, ctx, params):
        d = _workdir_sub(target, 'w')
        t0 = time.monotonic()
        try:
            r = subprocess.run(['tar', '-xf', self.tarball, '-C', d], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=_cap(900))
        except subprocess.TimeoutExpired:
            raise WorkloadHung(f'tar -x: no result within {_cap(900)}s (killed)')
        secs = time.monotonic() - t0
        if r.returncode != 0:
            raise WorkloadError('tar -x failed: ' + one_line(r.stderr))
        return {'seconds': secs}


class Lookup(Workload):
    cold = True
    scaling = True

    def __init__(self, files):
        self.files = files
        label = f'{files // 1000}k' if files >= 1000 and files % 1000 == 0 else str(files)
        self.name = f'lookup-{label}'
        self.dirname = f'scan-{files}'
        self.keep = (self.dirname,)
        self.title = (f'cold readdir of a directory of {files} files, then stat of every name '
                      '(fresh mount, caches dropped)')
        self.metrics = [Metric('readdir_ps', 'entries/s', label=f'readdir {label}/s'),
                        Metric('lookup_ps', 'lookups/s', label=f'lookup {label}/s')]

    def prepare(self, ctx, params):
        d = os.path.join(ctx.backing, self.dirname)
        os.makedirs(d, exist_ok=True)
        if len(os.listdir(d)) != self.files:
            _meta(ctx, ['populate', d, str(self.files)], 600)

    def run(self, target, ctx, params):
        j = _meta(ctx, ['scan', os.path.join(target.workdir, self.dirname)],
                  _cap(120 + self.files // 100))
        if j['entries'] != self.files:
            raise WorkloadError(f'listed {j["entries"]} entries, expected {self.files}')
        return {'readdir_ps': j['entries'] / max(j['readdir_s'], 1e-9),
                'lookup_ps': j['entries'] / max(j['stat_s'], 1e-9)}


def workloads_build(names, p):
    """Workload objects for the names given (groups: scale-write, scale-lookup)."""
    out = []
    for name in names:
        if name == 'seqwrite':
            out.append(SeqWrite(p['size']))
        elif name == 'randwrite':
            out.append(RandWrite(p['rand_size'], p['time']))
        elif name == 'randwrite4':
            out.append(RandWrite(p['rand_size'], p['time'], jobs=4))
        elif name == 'seqread':
            out.append(SeqRead(p['size']))
        elif name == 'randread':
            out.append(RandRead(p['size'], p['time']))
        elif name == 'meta':
            out.append(Meta(p['files']))
        elif name == 'tar':
            out.append(Tar())
        elif name == 'scale-write':
            out += [SeqWrite(s, name=f'write-{size_format(s)}', scaling=True)
                    for s in p['scale_sizes']]
        elif name == 'scale-lookup':
            out += [Lookup(n) for n in p['scale_files']]
        elif name in ('census', 'alloc'):
            continue   # not per target: bench/perf runs them once
        else:
            raise ValueError(f"unknown workload '{name}'")
    return out


WORKLOAD_NAMES = ['seqwrite', 'randwrite', 'randwrite4', 'seqread', 'randread', 'meta', 'tar', 'scale-write',
                  'scale-lookup', 'census', 'alloc']


def caches_cold(target):
    """Make the next access cold: kernel caches dropped, the daemon's clean pages dropped."""
    ok = caches_drop()
    return target.cache_drop() and ok
