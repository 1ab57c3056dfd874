#!/usr/bin/env python3
"""A careful appender, and its checker: the same 4 KiB records as careless_append.py, written the
way a database's log is. Copy it as the start of your own workload (docs/workloads.md).

  careful_append.py run     as bench/compare --workload: appends records to $PFS_MNT/append.log for
                            $PFS_DURATION seconds (or until SIGTERM); finishes short writes,
                            retries ENOMEM/EAGAIN/EINTR with a growing back-off, fsyncs every 8
                            records, and counts a record as kept only once an fsync after it has
                            returned 0. When an fsync fails, the records since the last good one are
                            written again (the failed fsync may have dropped them) and fsynced again.
                            It gives up (exit 1) when one write or fsync fails RETRIES times.
  careful_append.py check   as bench/compare --check: reads $PFS_BACKING/append.log, prints
                            {"intact": N, "lost": N, "refused": N, "unit": "records", ...}

Its promise: every record acknowledged by a successful fsync is in the backing file, whole.
  lost     acknowledged by fsync, missing or garbled afterwards: the promise broken (exit 1)
  refused  records it gave up on, or written but never fsynced before it stopped
What the program was told goes to $PFS_STATE/careful.journal, outside the mount.
Exit status of check: 0 promise held, 1 broken, 2 the check could not run.
"""

import errno
import hashlib
import json
import os
import signal
import struct
import sys
import time

RECORD = 4096
MAGIC = b'PFSREC01'
HEAD = struct.Struct('<8sQQ')  # magic, sequence number, seed
FSYNC_EVERY = 8
RETRIES = 50
TRANSIENT = (errno.ENOMEM, errno.EAGAIN, errno.EINTR, errno.ENOSPC)


def record(seed, seq):
    head = HEAD.pack(MAGIC, seq, seed)
    fill = hashlib.sha256(b'%d:%d' % (seed, seq)).digest()
    return head + (fill * (RECORD // len(fill)))[:RECORD - len(head)]


class GiveUp(Exception):
    pass


def retrying(what, call):
    """call() until it succeeds; transient errors are retried after 1, 2, 4 ... 100 ms."""
    for attempt in range(RETRIES):
        try:
            return call()
        except OSError as e:
            if e.errno not in TRANSIENT and what != 'fsync':
                raise GiveUp('%s: %s' % (what, e.strerror)) from None
            last = e
        time.sleep(min(0.001 * (1 << attempt), 0.1))
    raise GiveUp('%s failed %d times: %s' % (what, RETRIES, last.strerror))


def write_fully(fd, buf):
    while buf:
        n = retrying('write', lambda: os.write(fd, buf))
        buf = buf[n:]  # a short write: the rest goes next


def run():
    mnt, seed = os.environ['PFS_MNT'], int(os.environ.get('PFS_SEED', '1'))
    duration = float(os.environ.get('PFS_DURATION', '10'))
    journal = open(os.path.join(os.environ['PFS_STATE'], 'careful.journal'), 'w', buffering=1)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))  # finish the batch, then leave
    fd = os.open(os.path.join(mnt, 'append.log'), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    end = time.monotonic() + duration
    pending, seq, status = [], 0, 0
    try:
        while time.monotonic() < end and not stop:
            write_fully(fd, record(seed, seq))
            journal.write('written %d\n' % seq)
            pending.append(seq)
            seq += 1
            if len(pending) >= FSYNC_EVERY:
                sync(fd, seed, pending, journal)
        sync(fd, seed, pending, journal)
    except GiveUp as e:
        print('careful_append.py: giving up: %s' % e, file=sys.stderr)
        status = 1
    os.close(fd)
    return status


def sync(fd, seed, pending, journal):
    for _ in range(RETRIES):
        try:
            os.fsync(fd)
            break
        except OSError as e:
            # The failed fsync may have dropped these records' pages: write them again.
            journal.write('fsync-failed %s\n' % e.strerror)
            for seq in pending:
                write_fully(fd, record(seed, seq))
    else:
        raise GiveUp('fsync failed %d times' % RETRIES)
    for seq in pending:
        journal.write('durable %d\n' % seq)
    pending.clear()


def scan(path, seed):
    """The sequence numbers of the whole records in the file (a record written twice counts once),
    and the number of garbled records (the magic, but not the bytes that record should hold)."""
    present, garbled = set(), 0
    with open(path, 'rb') as f:
        data = f.read()
    pos = data.find(MAGIC)
    while pos >= 0:
        chunk = data[pos:pos + RECORD]
        _, seq, rseed = HEAD.unpack_from(chunk.ljust(HEAD.size, b'\0'))
        if rseed == seed and chunk == record(seed, seq):
            present.add(seq)
            pos = data.find(MAGIC, pos + RECORD)
        else:
            garbled += 1
            pos = data.find(MAGIC, pos + 1)
    return present, garbled


def check():
    seed = int(os.environ.get('PFS_SEED', '1'))
    path = os.path.join(os.environ['PFS_BACKING'], 'append.log')
    written, durable = set(), set()
    with open(os.path.join(os.environ['PFS_STATE'], 'careful.journal')) as f:
        for line in f:
            word, _, rest = line.partition(' ')
            if word in ('written', 'durable'):
                (written if word == 'written' else durable).add(int(rest))
    present, garbled = scan(path, seed) if os.path.exists(path) else (set(), 0)
    lost = len(durable - present)
    out = {'intact': len(present), 'lost': lost, 'refused': len(written - durable - present),
           'unit': 'records', 'durable': len(durable), 'garbled': garbled}
    print(json.dumps(out))
    return 1 if lost else 0


if __name__ == '__main__':
    verbs = {'run': run, 'check': check}
    if len(sys.argv) != 2 or sys.argv[1] not in verbs:
        print('usage: careful_append.py run|check (environment: see docs/workloads.md)', file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(verbs[sys.argv[1]]())
    except (KeyError, OSError, ValueError) as e:
        print('careful_append.py %s: %s' % (sys.argv[1], e), file=sys.stderr)
        sys.exit(2)
