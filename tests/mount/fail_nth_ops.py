#!/usr/bin/env python3
"""The fail-the-Nth-allocation loop over the daemon's operations, on a
real mount (SQLite's OOM test, as tests/harness/oom_loop.h runs it for the
libraries).

For each operation (create+write, lookup, readdir, rename, setattr, a
control-file render, a policy switch) and each mode (transient: only the
Nth allocation attempt fails; persistent: every later one too), for
N = 1, 2, 3, ...:
    make the operation's fresh state, write everything back, drop clean
    pages; arm the countdown (control file fail_nth); run the operation
    through the mount; disarm;
    the operation succeeded or failed with ENOMEM, nothing else;
    its own consistency check (the mount and the backing dir agree; a
    rename is all or nothing; an attribute is old or new);
    nothing acknowledged is lost: every byte a write() returned is in the
    backing file after a sync;
    undo it; the allocator's live bytes come back to the baseline taken
    before the loop (bounded wait: the kernel's FORGET and RELEASE come
    asynchronously);
    stop at the first N whose countdown never fired.
Reaching MAX_N without such an N fails.

Under a policy that loops (nofail) "every later one" would never end, so
persistent there means N+64: the operation must outlast 65 failed attempts
in a row.

usage: fail_nth_ops.py MOUNT BACKING POLICY
Prints one line per operation and mode; exit status 1 on the first
violation, with a line saying what.
"""
import errno
import json
import os
import sys
import time

from pfsctl import Ctl

MAX_N = 400
LEAK_WAIT_S = 20

mnt, backing, policy = sys.argv[1], sys.argv[2], sys.argv[3]


def die(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


ctl = Ctl(mnt)
ctl_write, ctl_read = ctl.write, ctl.read


def live():
    s = json.loads(ctl_read("stats"))
    return s["total"]["live"], {k: v["live"] for k, v in s["sites"].items()}


def quiesce():
    """Nothing dirty, nothing clean cached: live bytes are records only."""
    ctl_write("sync", "1")
    ctl_write("drop_caches", "1")


def wait_for_baseline(base, what):
    deadline = time.monotonic() + LEAK_WAIT_S
    while True:
        quiesce()
        now, sites = live()
        if now == base[0]:
            return
        if time.monotonic() > deadline:
            grew = {k: sites[k] - base[1].get(k, 0) for k in sites if sites[k] != base[1].get(k, 0)}
            die("%s: live bytes %d, baseline %d: leaked by site %s" % (what, now, base[0], grew))
        time.sleep(0.05)


def attempt(fn, *args):
    """None on success, 'ENOMEM' on a clean failure; anything else fails the test."""
    try:
        fn(*args)
        return None
    except OSError as e:
        if e.errno == errno.ENOMEM:
            return "ENOMEM"
        die("%s%r: %s (only success or ENOMEM is clean)" % (fn.__name__, args, os.strerror(e.errno)))


def m(*p):
    return os.path.join(mnt, "fn", *p)


def b(*p):
    return os.path.join(backing, "fn", *p)


def exists(p):
    return os.path.lexists(p)


DATA = bytes((i * 7 + 3) & 0xFF for i in range(10000))


class Create:
    """open(O_CREAT|O_EXCL) + write + close: what write() returned is kept."""
    name = "create+write"

    def setup(self, i):
        self.p = "c%d" % i
        self.acked = 0

    def run(self):
        fd = os.open(m(self.p), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            self.acked = os.write(fd, DATA)
        finally:
            os.close(fd)

    def check(self, rc):
        if exists(m(self.p)) != exists(b(self.p)):
            die("create: the mount and the backing dir disagree on %s" % self.p)
        if self.acked:
            ctl_write("sync", "1")
            with open(b(self.p), "rb") as f:
                got = f.read()
            if got[: self.acked] != DATA[: self.acked]:
                die("create: %d acknowledged bytes, the backing file holds %d that match" % (
                    self.acked, len(os.path.commonprefix([got, DATA[: self.acked]]))))

    def undo(self):
        if exists(m(self.p)):
            os.unlink(m(self.p))


class Lookup:
    """stat of a name the kernel has never seen (made in the backing dir)."""
    name = "lookup"

    def setup(self, i):
        self.p = "l%d" % i
        with open(b(self.p), "wb") as f:
            f.write(b"x" * 123)

    def run(self):
        st = os.stat(m(self.p))
        if st.st_size != 123:
            die("lookup: size %d, expected 123" % st.st_size)

    def check(self, rc):
        if os.stat(m(self.p)).st_size != 123:
            die("lookup: after the run, stat no longer sees the file")

    def undo(self):
        os.unlink(m(self.p))


class Readdir:
    """listdir of a directory of 40 entries: all or ENOMEM, never a short list."""
    name = "readdir"
    names = sorted("e%02d" % k for k in range(40))

    def prepare(self):
        os.makedirs(b("dir"), exist_ok=True)
        for n in self.names:
            open(b("dir", n), "w").close()
        os.listdir(m("dir"))  # the kernel learns the entries once

    def setup(self, i):
        pass

    def run(self):
        got = sorted(os.listdir(m("dir")))
        if got != self.names:
            die("readdir: %d entries listed, expected %d" % (len(got), len(self.names)))

    def check(self, rc):
        pass

    def undo(self):
        pass


class Rename:
    """rename: afterwards exactly one of the names, with the data."""
    name = "rename"

    def setup(self, i):
        self.src, self.dst = "r%d" % i, "r%d.new" % i
        with open(m(self.src), "wb") as f:
            f.write(DATA)

    def run(self):
        os.rename(m(self.src), m(self.dst))

    def check(self, rc):
        there = [p for p in (self.src, self.dst) if exists(m(p))]
        if len(there) != 1 or (rc is None and there != [self.dst]):
            die("rename (%s): names on the mount afterwards: %s" % (rc or "ok", there))
        if [p for p in (self.src, self.dst) if exists(b(p))] != there:
            die("rename: the backing dir disagrees with the mount")
        ctl_write("sync", "1")
        with open(b(there[0]), "rb") as f:
            if f.read() != DATA:
                die("rename: the data changed")

    def undo(self):
        for p in (self.src, self.dst):
            if exists(m(p)):
                os.unlink(m(p))


class Setattr:
    """chmod, truncate (grow), utime: each is the old or the new value."""
    name = "setattr"

    def prepare(self):
        with open(m("attr"), "wb") as f:
            f.write(b"a" * 100)
        os.chmod(m("attr"), 0o600)
        os.utime(m("attr"), ns=(10**18, 10**18))

    def setup(self, i):
        self.i = i
        os.chmod(m("attr"), 0o600)
        os.utime(m("attr"), ns=(10**18, 10**18))
        os.truncate(m("attr"), 100)
        self.rcs = []

    def run(self):
        t = 2 * 10**18
        # utime last: a truncate that changes the size sets the mtime.
        self.rcs = [attempt(os.chmod, m("attr"), 0o640),
                    attempt(os.truncate, m("attr"), 5000),
                    attempt(lambda: os.utime(m("attr"), ns=(t, t)))]

    def check(self, rc):
        # The backing file, once written back: what the daemon did.
        ctl_write("sync", "1")
        st = os.stat(b("attr"))
        mode, mtime, size = st.st_mode & 0o777, st.st_mtime_ns, st.st_size
        if self.rcs[0] is None and mode != 0o640 or mode not in (0o600, 0o640):
            die("setattr: mode %o after chmod %s" % (mode, self.rcs[0] or "ok"))
        if self.rcs[1] is None and size != 5000 or size not in (100, 5000):
            die("setattr: size %d after truncate %s" % (size, self.rcs[1] or "ok"))
        if self.rcs[2] is None and mtime != 2 * 10**18:
            die("setattr: backing mtime %d after utime ok" % mtime)

    def undo(self):
        pass


class CtlRender:
    """read stats and dirty (with something dirty): whole JSON, or ENOMEM."""
    name = "control-file render"

    def prepare(self):
        pass

    def setup(self, i):
        pass

    def run(self):
        json.loads(ctl_read("stats"))
        ctl_read("dirty")
        ctl_read("mem_limit")

    def check(self, rc):
        pass

    def undo(self):
        pass


class PolicySwitch:
    """write the policy file (the same policy again): takes effect or ENOMEM."""
    name = "policy switch"

    def __init__(self, spec):
        self.spec = spec

    def setup(self, i):
        pass

    def run(self):
        ctl_write("policy", self.spec)

    def check(self, rc):
        now = ctl_read("policy").strip()
        if now.split(",")[0] != self.spec.split(",")[0]:
            die("policy switch: the policy file reads '%s'" % now)

    def undo(self):
        pass


def fired_state():
    return ctl_read("fail_nth").split()[1]


def loop(op, mode, spec):
    if hasattr(op, "prepare"):
        op.prepare()
    quiesce()
    time.sleep(0.1)
    base = live()
    runs = enomem = ok = 0
    for n in range(1, MAX_N + 1):
        op.setup(n)
        quiesce()
        ctl_write("fail_nth", "%d%s" % (n, mode))
        rc = attempt(op.run)
        ctl_write("fail_nth", "0")
        state = fired_state()
        runs += 1
        if rc == "ENOMEM":
            enomem += 1
        else:
            ok += 1
        op.check(rc)
        op.undo()
        wait_for_baseline(base, "%s, %s mode, N=%d (%s)" % (op.name, mode or "transient", n, rc or "ok"))
        if state != "fired":
            if rc is not None:
                die("%s: ENOMEM with the countdown not fired (N=%d)" % (op.name, n))
            print("%-20s %-12s N=1..%d: %d ok, %d ENOMEM; no leak, nothing acknowledged lost" % (
                op.name, "persistent" if mode else "transient", n, ok, enomem), flush=True)
            return runs, enomem
    die("%s: the countdown still fired at N=%d" % (op.name, MAX_N))


def main():
    persistent = "+64" if policy.startswith("nofail") else "+"
    spec = ctl_read("policy").strip()
    os.makedirs(m(), exist_ok=True)
    total_enomem = 0
    ops = [Create(), Lookup(), Readdir(), Rename(), Setattr(), CtlRender(), PolicySwitch(spec)]
    for op in ops:
        for mode in ("", persistent):
            _, e = loop(op, mode, spec)
            total_enomem += e
    print("ENOMEM seen in total: %d" % total_enomem)


main()
