#!/usr/bin/env python3
"""With the kernel's write-back cache on, a WRITE from the kernel's own
writeback is answered all or nothing (the seed 5154 bug, README.md).

The kernel ignores the count of such a WRITE: a short count drops the rest
of the request with no error for anyone. For N = 1, 2, 3, ...: write 64 KiB
to a new file (it stays in the kernel's cache), arm the fail-the-Nth
countdown (control file fail_nth), fsync, disarm, write the daemon's cache
back (control file sync). Then either fsync failed (the application was
told), or the backing file holds every byte. Stop at the first N whose
countdown never fired.

usage: kernel_cache.py MOUNT BACKING
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mount"))
from pfsctl import Ctl  # noqa: E402

MAX_N = 200

mnt, backing = sys.argv[1], sys.argv[2]
data = bytes((i * 7 + 3) & 0xFF for i in range(64 * 1024))
ctl = Ctl(mnt)
ctl_write, ctl_read = ctl.write, ctl.read

failed = 0
for n in range(1, MAX_N + 1):
    name = "f%d" % n
    fd = os.open(os.path.join(mnt, name), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    if os.write(fd, data) != len(data):
        print("FAIL: N=%d: a short write() into the kernel's cache" % n)
        sys.exit(1)
    ctl_write("fail_nth", "%d" % n)
    try:
        os.fsync(fd)
        err = 0
    except OSError as e:
        err = e.errno
    fired = "fired" in ctl_read("fail_nth").split()
    ctl_write("fail_nth", "0")
    os.close(fd)
    ctl_write("sync", "1")
    with open(os.path.join(backing, name), "rb") as f:
        got = f.read()
    if err == 0 and got != data:
        print("FAIL: N=%d: fsync returned 0 but the backing file holds %d of %d bytes%s"
              % (n, sum(1 for a, b in zip(got, data) if a == b), len(data),
                 " (the allocation failure was never reported)" if fired else ""))
        sys.exit(1)
    if err:
        failed += 1
    os.unlink(os.path.join(mnt, name))
    if not fired:
        print("ok: N=1..%d: every fsync either failed (%d did) or found all 64 KiB in the "
              "backing file; the countdown did not fire at N=%d" % (n - 1, failed, n))
        if failed == 0:
            print("FAIL: no allocation failure ever reached fsync: the test proved nothing")
            sys.exit(1)
        sys.exit(0)
print("FAIL: the countdown still fired at N=%d" % MAX_N)
sys.exit(1)
