"""bench/perf: FUSE request census (kernel tracepoints) and daemon profiles (linux-perf).

The census counts, per FUSE opcode, the requests the kernel sends to one connection while a short
workload runs: `perf stat -a -e fuse:fuse_request_send --filter 'connection == C && opcode == N'`.
It needs no help from the daemon, so it works the same for libfuse's examples and pressurefs, and
answers the issue's hint: does the kernel ask for security.capability (GETXATTR) before each write?

The profile samples the daemon's PID (user and kernel stacks, cpu-clock: this VM has no hardware
counters) with `perf record -g` during a workload and keeps the top self-time symbols.
"""

import os
import re
import signal
import subprocess

from perf_workloads import WorkloadError, one_line

# Opcodes from the kernel's fuse_request_send tracepoint (include/uapi/linux/fuse.h).
OPCODES = [('LOOKUP', 1), ('FORGET', 2), ('GETATTR', 3), ('SETATTR', 4), ('MKNOD', 8),
           ('UNLINK', 10), ('OPEN', 14), ('READ', 15), ('WRITE', 16), ('STATFS', 17),
           ('RELEASE', 18), ('FSYNC', 20), ('SETXATTR', 21), ('GETXATTR', 22), ('FLUSH', 25),
           ('OPENDIR', 27), ('READDIR', 28), ('RELEASEDIR', 29), ('ACCESS', 34), ('CREATE', 35),
           ('BATCH_FORGET', 42), ('READDIRPLUS', 44), ('LSEEK', 46)]
CENSUS_FILES = 1000

def perf_available():
    try:
        r = subprocess.run(['perf', 'list', 'fuse:*'], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False, 'perf not found (apt-get install linux-perf)'
    if 'fuse:fuse_request_send' not in r.stdout:
        return False, 'no fuse:fuse_request_send tracepoint in this kernel'
    return True, ''


def _census_one(target, name, argv, units, unit_name, timeout=300):
    """Run argv under perf stat counting this connection's requests by opcode; counts per unit
    (per write() call, per file) so that targets with different request sizes compare."""
    conn = target.connection_id()
    cmd = ['perf', 'stat', '-a', '-x', ',']
    for _, code in OPCODES:
        cmd += ['-e', 'fuse:fuse_request_send', '--filter',
                f'connection == {conn} && opcode == {code}']
    cmd += ['-e', 'fuse:fuse_request_send', '--filter', f'connection == {conn}']
    try:
        r = subprocess.run(cmd + ['--'] + argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WorkloadError(f'census {name}: no result within {timeout}s')
    counts = []
    for line in r.stderr.splitlines():
        fields = line.split(',')
        if len(fields) > 2 and fields[2] == 'fuse:fuse_request_send':
            try:
                counts.append(int(fields[0]))
            except ValueError:
                counts.append(0)
    if len(counts) != len(OPCODES) + 1:
        raise WorkloadError(f'census {name}: perf stat gave {len(counts)} counts: '
                            + one_line(r.stderr))
    if r.returncode != 0:
        tool_err = '\n'.join(x for x in r.stderr.splitlines()
                             if 'fuse:fuse_request_send' not in x)
        raise WorkloadError(f'census {name}: exit {r.returncode}: ' + one_line(tool_err))
    ops = {op: counts[i] for i, (op, _) in enumerate(OPCODES) if counts[i]}
    return {'unit': unit_name, 'units': units, 'ops': ops, 'total': counts[-1],
            'per_unit': {op: n / units for op, n in ops.items()},
            'requests_per_unit': counts[-1] / units,
            'getxattr_per_unit': ops.get('GETXATTR', 0) / units}


def census_run(target, ctx, size):
    """Requests per write() for 4 KiB random and 128 KiB sequential writes (end_fsync=1), and
    per file for the meta cycle (create + 1 KiB write, stat, unlink)."""
    d = os.path.join(target.workdir, 'w')
    os.makedirs(d, exist_ok=True)
    fio = ['fio', '--output-format=json', '--filename=' + os.path.join(d, 'census.dat'),
           '--ioengine=psync', '--fallocate=none', '--randrepeat=1', '--end_fsync=1']
    nseq = size // (128 << 10)
    out = {
        'randwrite-4k': _census_one(target, 'randwrite', fio + [
            '--name=census-rand', '--rw=randwrite', '--bs=4k', f'--size={size}',
            '--number_ios=4096'], 4096, 'write()'),
        'seqwrite-128k': _census_one(target, 'seqwrite', fio + [
            '--name=census-seq', '--rw=write', '--bs=128k', f'--size={size}'], nseq,
            'write()'),
    }
    meta_dir = os.path.join(d, 'meta')
    os.makedirs(meta_dir, exist_ok=True)
    out['meta'] = _census_one(target, 'meta', [ctx.meta_tool, 'files', meta_dir,
                                               str(CENSUS_FILES), '1024'],
                              CENSUS_FILES, 'file')
    return out


class Profiler:
    """perf record -g on one PID while a workload runs; report() keeps the top symbols."""

    def __init__(self, pid, data_path, freq=999):
        self.data_path = data_path
        self.proc = subprocess.Popen(['perf', 'record', '-F', str(freq), '-g', '-p', str(pid),
                                      '-o', data_path], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def report(self, text_path, limit=25):
        """Write the full flat report to text_path; return the top `limit` (percent, dso, sym)."""
        try:
            r = subprocess.run(['perf', 'report', '-i', self.data_path, '--stdio',
                                '--no-children', '--sort', 'dso,symbol', '-g', 'none',
                                '--percent-limit', '0.3'], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            return []
        with open(text_path, 'w') as f:
            f.write(r.stdout)
        top = []
        for line in r.stdout.splitlines():
            s = line.strip()
            if not s or s.startswith('#') or '%' not in s.split()[0]:
                continue
            parts = s.split(None, 2)
            if len(parts) < 3:
                continue
            try:
                pct = float(parts[0].rstrip('%'))
            except ValueError:
                continue
            sym = re.split(r'\s{2,}', parts[2])[0].strip()
            top.append({'percent': pct, 'dso': parts[1], 'symbol': sym})
            if len(top) >= limit:
                break
        return top

    def callers(self, text_path, symbols):
        """Caller chains (kernel stacks are exact; user stacks need frame pointers)."""
        try:
            r = subprocess.run(['perf', 'report', '-i', self.data_path, '--stdio',
                                '--no-children', '--sort', 'symbol', '-G',
                                '--percent-limit', '2'], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            return
        with open(text_path, 'w') as f:
            f.write(r.stdout)
