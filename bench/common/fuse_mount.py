"""Mount points, for bench/compare and bench/perf: find one in /proc/self/mountinfo without
touching the mount (a stat of a dead FUSE mount can block), and unmount a FUSE mount with
fusermount3 (retried while busy, lazily as the last resort)."""

import os
import subprocess
import time


def mountinfo_find(path):
    """The /proc/self/mountinfo entry for mount point path: dict(dev=(major, minor), fstype,
    opts, super_opts) or None."""
    path = os.path.realpath(path)
    with open('/proc/self/mountinfo', encoding='utf-8') as f:
        lines = f.read().splitlines()
    found = None
    for line in lines:
        left, _, right = line.partition(' - ')
        fields = left.split()
        if len(fields) < 6:
            continue
        mnt = fields[4].replace('\\040', ' ')
        if mnt != path:
            continue
        major, minor = (int(x) for x in fields[2].split(':'))
        rfields = right.split()
        found = {'dev': (major, minor), 'opts': fields[5],
                 'fstype': rfields[0] if rfields else '',
                 'super_opts': rfields[2] if len(rfields) > 2 else ''}
    return found  # the last entry wins: it is the one on top


def mounted(path):
    return mountinfo_find(path) is not None


def fusermount_lazy(mnt, timeout=60):
    """fusermount3 -uz: detach mnt now, whoever still uses it."""
    subprocess.run(['fusermount3', '-uz', mnt], capture_output=True, timeout=timeout)


def fuse_unmount(mnt, tries, pause, lazy=True, timeout=60):
    """fusermount3 -u mnt, up to tries times while it stays mounted (it fails while busy),
    pause seconds apart; then, with lazy, fusermount3 -uz if it is still mounted.
    True when mnt is no longer mounted."""
    for attempt in range(tries):
        if not mounted(mnt):
            break
        r = subprocess.run(['fusermount3', '-u', mnt], capture_output=True, timeout=timeout)
        if r.returncode == 0:
            break
        if attempt + 1 < tries:
            time.sleep(pause)
    if lazy and mounted(mnt):
        fusermount_lazy(mnt, timeout)
    return not mounted(mnt)
