"""bench/perf targets: the filesystems measured, and how each is mounted.

A target is one of
  backing                       the backing directory itself (the physical limit here)
  passthrough_ll[-xattr]        libfuse's low-level example (-xattr: with its -o xattr)
  passthrough                   libfuse's high-level example
  pfs-POLICY[@LIMIT][+wbc][+kp0][+buf][~TRANSPORT]
                                pressurefs with policy POLICY, mem_limit=LIMIT when given,
                                writeback_cache=1 with +wbc, killpriv=0 with +kp0 (the kernel then
                                asks GETXATTR(security.capability) before every write),
                                direct_writeback=0 with +buf (every writeback through the backing
                                fs's page cache), transport=TRANSPORT with ~io_uring or ~dev_fuse
                                (default auto: io_uring, which bench/perf turns on for the run)
  fuse-null                     bench/performance/perf_null.c: a FUSE daemon that stores nothing and answers
                                at once, the ceiling of the FUSE transport (seqwrite only)
  ANY-FUSE-TARGET+kp2           the same daemon with bench/performance/perf_killpriv_shim.so preloaded: an
                                experiment that sets FUSE_HANDLE_KILLPRIV_V2 in FUSE_INIT
Every FUSE target runs in the foreground (-f) as a child of bench/perf, so its PID is known (RSS
sampling, profiling) and it is ended by that PID only. Every FUSE target is mounted with the same
kernel-visible mount options: none beyond libfuse's defaults (rw,nosuid,nodev,relatime,
user_id=0,group_id=0), no allow_other, no default_permissions; what differs is what each daemon
asks for in FUSE_INIT, which the report lists.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

from fuse_mount import fuse_unmount, mountinfo_find

EXAMPLES = '/usr/share/doc/libfuse3-dev/examples'
# libfuse's own build defines these from config.h; the Debian examples' Makefile does not, and
# without them passthrough has no xattr, fallocate, copy_file_range or utimens operations.
PT_DEFINES = ['-DHAVE_SETXATTR', '-DHAVE_POSIX_FALLOCATE', '-DHAVE_COPY_FILE_RANGE',
              '-DHAVE_UTIMENSAT']
MOUNT_WAIT_S = 15
EXIT_WAIT_S = 300       # pressurefs writes every dirty page back after the unmount
HUNG_EXIT_WAIT_S = 10
POLICIES = ['nofail', 'retry', 'enomem', 'abort']


class PerfError(Exception):
    """A set-up step failed: the message says which and why."""


def _run(cmd, timeout=120, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, **kw)


def size_parse(text):
    """'64M' -> 67108864 (powers of 1024, as pressurefs reads them)."""
    m = re.fullmatch(r'(\d+)([KMGT]?)(i?B)?', text.strip(), re.I)
    if not m:
        raise ValueError(f"size '{text}': expected e.g. 65536, 64K, 64M or 1G")
    mult = {'': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}[m.group(2).upper()]
    return int(m.group(1)) * mult


def size_format(n):
    for unit, mult in (('G', 1 << 30), ('M', 1 << 20), ('K', 1 << 10)):
        if n >= mult and n % mult == 0:
            return f'{n // mult}{unit}'
    return str(n)


def caches_drop():
    """Write back and drop the kernel's page, dentry and inode caches (global; root only)."""
    os.sync()
    try:
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('3\n')
        return True
    except OSError:
        return False


class RssSampler:
    """Samples VmRSS of a PID every interval seconds; VmHWM at stop() is the kernel's own peak."""

    def __init__(self, pid, interval=0.05):
        self.pid, self.interval = pid, interval
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _status(self):
        out = {}
        try:
            with open(f'/proc/{self.pid}/status') as f:
                for line in f:
                    if line.startswith(('VmRSS:', 'VmHWM:')):
                        out[line.split(':')[0]] = int(line.split()[1])
        except OSError:
            pass
        return out

    def _loop(self):
        while not self._stop.is_set():
            rss = self._status().get('VmRSS')
            if rss is not None:
                self.peak_kib = max(self.peak_kib, rss)
                self.samples += 1
            self._stop.wait(self.interval)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        hwm = self._status().get('VmHWM', 0)
        self._stop.set()
        self._thread.join(timeout=5)
        return {'rss_peak_mib': self.peak_kib / 1024.0, 'hwm_mib': hwm / 1024.0,
                'rss_samples': self.samples}


class Context:
    """Where everything lives for one bench/perf session."""

    def __init__(self, scratch, build, logs, verbose=False):
        self.scratch = scratch
        self.backing = os.path.join(scratch, 'backing')
        self.mnt = os.path.join(scratch, 'mnt')
        self.tools = os.path.join(scratch, 'tools')
        self.build = build
        self.logs = logs
        self.verbose = verbose
        for d in (self.backing, self.mnt, self.tools, self.logs):
            os.makedirs(d, exist_ok=True)
        self.pressurefs = os.path.join(build, 'daemon', 'pressurefs') if build else None
        self.examples = {}
        self.killpriv_shim = None
        self.null_binary = None

    def log(self, msg):
        if self.verbose:
            print('perf: ' + msg, flush=True)

    def examples_compile(self, cc='cc'):
        """Build passthrough_ll and passthrough from Debian's examples into the scratch dir."""
        flags = _run(['pkg-config', '--cflags', '--libs', 'fuse3'])
        if flags.returncode != 0:
            raise PerfError('pkg-config fuse3 failed (apt-get install libfuse3-dev): '
                            + flags.stderr.strip())
        fuse_flags = flags.stdout.split()
        builds = {
            'passthrough_ll': ['-O2', '-g'],
            'passthrough': ['-O2', '-g', '-I' + EXAMPLES] + PT_DEFINES,
        }
        for name, extra in builds.items():
            src = os.path.join(EXAMPLES, name + '.c')
            if not os.path.exists(src):
                raise PerfError(f'{src} missing (apt-get install libfuse3-dev)')
            out = os.path.join(self.tools, name)
            cmd = [cc] + extra + ['-o', out, src] + fuse_flags
            r = _run(cmd, timeout=300)
            if r.returncode != 0:
                raise PerfError(f'compiling {name} failed: {r.stderr.strip()[-400:]}')
            self.examples[name] = {'binary': out, 'cmd': ' '.join(cmd)}
        return self.examples


# Only sequential writes: on random 4 KiB writes fuse-null measured about half of
# passthrough_ll's IOPS (the kernel sent nothing but WRITE requests, and the cause was not
# found), so it is no ceiling there.
NULL_WORKLOADS = ('seqwrite',)


def null_compile(ctx, cc='cc'):
    """bench/pfs-perf-null from the build dir; else build bench/performance/perf_null.c into the scratch
    dir."""
    built = os.path.join(ctx.build, 'bench', 'pfs-perf-null') if ctx.build else None
    if built and os.access(built, os.X_OK):
        ctx.null_binary = built
        return built
    flags = _run(['pkg-config', '--cflags', '--libs', 'fuse3'])
    if flags.returncode != 0:
        raise PerfError('pkg-config fuse3 failed (apt-get install libfuse3-dev): '
                        + flags.stderr.strip())
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'perf_null.c')
    out = os.path.join(ctx.tools, 'perf_null')
    r = _run([cc, '-O2', '-std=gnu11', '-o', out, src] + flags.stdout.split(), timeout=120)
    if r.returncode != 0:
        raise PerfError('compiling bench/performance/perf_null.c failed: ' + r.stderr[-300:])
    ctx.null_binary = out
    return out


def killpriv_shim_compile(ctx, cc='cc'):
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'perf_killpriv_shim.c')
    out = os.path.join(ctx.tools, 'perf_killpriv_shim.so')
    r = _run([cc, '-O2', '-shared', '-fPIC', '-o', out, src, '-ldl'], timeout=120)
    if r.returncode != 0:
        raise PerfError('compiling bench/performance/perf_killpriv_shim.c failed: ' + r.stderr[-300:])
    ctx.killpriv_shim = out
    return out


class Target:
    """One filesystem to measure. mount() leaves it ready at self.workdir, which shows the
    backing directory's contents; unmount() always leaves nothing mounted and no child alive."""

    def __init__(self, spec, ctx, pfs_extra=''):
        self.spec = spec
        self.ctx = ctx
        self.proc = None
        self.mountinfo = None
        self.log_path = None
        self.mount_seen = None
        self.pfs_extra = pfs_extra
        self.policy = None
        self.mem_limit = 0
        self.wbc = False
        self.kp0 = False
        self.buffered = False
        self.transport = None       # pressurefs: None = auto
        self.transport_seen = None  # pressurefs: what the stats said after the mount
        self.xattr = False
        self.kp2 = spec.endswith('+kp2')
        if self.kp2:
            spec = spec[:-len('+kp2')]
        if spec == 'backing' and self.kp2:
            raise PerfError('+kp2 needs a FUSE target')
        if spec == 'backing':
            self.kind = 'backing'
        elif spec == 'fuse-null':
            self.kind = 'null'
        elif spec in ('passthrough_ll', 'passthrough_ll-xattr', 'passthrough'):
            self.kind = 'libfuse'
            self.xattr = spec.endswith('-xattr')
        else:
            m = re.fullmatch(r'pfs-([A-Za-z0-9_./-]+?)(?:@(\w+))?(\+wbc)?(\+kp0)?(\+buf)?'
                             r'(?:~(io_uring|dev_fuse))?', spec)
            if not m:
                raise PerfError(f"unknown target '{spec}' (backing, passthrough_ll, "
                                "passthrough_ll-xattr, passthrough, fuse-null, "
                                "pfs-POLICY[@LIMIT][+wbc][+kp0][+buf][~io_uring|~dev_fuse])")
            self.kind = 'pressurefs'
            self.policy = m.group(1)
            self.mem_limit = size_parse(m.group(2)) if m.group(2) else 0
            self.wbc = bool(m.group(3))
            self.kp0 = bool(m.group(4))
            self.buffered = bool(m.group(5))
            self.transport = m.group(6)

    @property
    def is_fuse(self):
        return self.kind != 'backing'

    @property
    def pressured(self):
        return self.mem_limit > 0

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def workdir(self):
        """The path through which this target shows ctx.backing."""
        if self.kind == 'backing':
            return self.ctx.backing
        if self.spec.startswith('passthrough') and not self.spec.startswith('passthrough_ll'):
            # The high-level example mirrors the whole root file system.
            return self.ctx.mnt + self.ctx.backing
        return self.ctx.mnt

    def command(self):
        ctx = self.ctx
        if self.kind == 'null':
            return [ctx.null_binary, '-f', ctx.mnt]
        if self.kind == 'libfuse':
            name = 'passthrough_ll' if self.spec.startswith('passthrough_ll') else 'passthrough'
            binary = ctx.examples[name]['binary']
            if name == 'passthrough_ll':
                opts = 'source=' + ctx.backing + (',xattr' if self.xattr else '')
                return [binary, '-f', '-o', opts, ctx.mnt]
            return [binary, '-f', ctx.mnt]
        opts = ['policy=' + self.policy]
        if self.mem_limit:
            opts.append('mem_limit=' + size_format(self.mem_limit))
        if self.wbc:
            opts.append('writeback_cache=1')
        if self.kp0:
            opts.append('killpriv=0')
        if self.buffered:
            opts.append('direct_writeback=0')
        if self.transport:
            opts.append('transport=' + self.transport)
        if self.pfs_extra:
            opts.append(self.pfs_extra)
        return [ctx.pressurefs, '-f', '-o', ','.join(opts), ctx.backing, ctx.mnt]

    def mount(self):
        if not self.is_fuse:
            return
        if mountinfo_find(self.ctx.mnt):
            raise PerfError(f'{self.ctx.mnt} is still mounted')
        cmd = self.command()
        self.log_path = os.path.join(self.ctx.logs, self.spec.replace('/', '_') + '.log')
        logf = open(self.log_path, 'a')
        logf.write(f'\n=== {time.strftime("%H:%M:%S")} {" ".join(cmd)}\n')
        logf.flush()
        env = dict(os.environ)
        if self.kp2:
            env['LD_PRELOAD'] = self.ctx.killpriv_shim
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     start_new_session=True, env=env)
        logf.close()
        deadline = time.monotonic() + MOUNT_WAIT_S
        while time.monotonic() < deadline:
            self.mountinfo = mountinfo_find(self.ctx.mnt)
            if self.mountinfo and self.mountinfo['fstype'].startswith('fuse'):
                self.mount_seen = (f"{self.mountinfo['fstype']} {self.mountinfo['opts']} "
                                   f"{self.mountinfo['super_opts']}")
                if self.kind == 'pressurefs':
                    st = self.stats() or {}
                    self.transport_seen = st.get('transport')
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        status = self.proc.poll()
        self.unmount()
        raise PerfError(f'{self.spec} did not mount within {MOUNT_WAIT_S}s '
                        f'(exit status {status}); see {self.log_path}: {self.log_tail()}')

    def log_tail(self, n=3):
        try:
            with open(self.log_path) as f:
                return ' | '.join(f.read().strip().splitlines()[-n:])
        except (OSError, TypeError):
            return ''

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def connection_id(self):
        """The kernel's dev_t of this FUSE connection, as the fuse tracepoints print it."""
        if not self.mountinfo:
            return None
        major, minor = self.mountinfo['dev']
        return (major << 20) | minor

    def unmount(self, hung=False):
        """Unmount and wait (bounded) for our daemon to exit; its exit status or None.
        hung: the workload got no answer in time, so do not wait long for a flush either."""
        if not self.is_fuse or self.proc is None:
            return None
        fuse_unmount(self.ctx.mnt, tries=20, pause=0.25)
        try:
            status = self.proc.wait(timeout=HUNG_EXIT_WAIT_S if hung else EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                status = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                status = self.proc.wait(timeout=10)
        self.proc = None
        return status

    # -- pressurefs control directory ------------------------------------------------------

    def _ctl(self, name):
        return os.path.join(self.ctx.mnt, '.pressurefs', name)

    def cache_drop(self):
        """Drop the daemon's clean cached pages (pressurefs only)."""
        if self.kind != 'pressurefs':
            return True
        try:
            with open(self._ctl('drop_caches'), 'w') as f:
                f.write('1\n')
            return True
        except OSError:
            return False

    def stats(self):
        if self.kind != 'pressurefs' or not self.alive:
            return None
        try:
            with open(self._ctl('stats')) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def describe(self):
        d = {'target': self.spec, 'kind': self.kind, 'kp2': self.kp2}
        if self.is_fuse:
            d['command'] = (('LD_PRELOAD=perf_killpriv_shim.so ' if self.kp2 else '')
                            + ' '.join(self.command()))
            d['mount'] = self.mount_seen
        if self.kind == 'pressurefs':
            d.update(policy=self.policy, mem_limit=self.mem_limit, writeback_cache=self.wbc,
                     killpriv=not self.kp0, direct_writeback=not self.buffered,
                     transport=self.transport or 'auto', transport_seen=self.transport_seen)
        return d


def backing_clean(ctx, keep=()):
    """Remove everything in the backing dir but prepared data sets (rd/, scan-N/) and the names
    in keep."""
    for name in os.listdir(ctx.backing):
        if name in keep or name == 'rd' or name.startswith('scan-'):
            continue
        path = os.path.join(ctx.backing, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass
