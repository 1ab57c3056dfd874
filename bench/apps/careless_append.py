#!/usr/bin/env python3
"""A careless appender, and its checker: the program Ts'o had in mind, which never expects write()
to fail. Copy it as the start of your own workload (docs/workloads.md describes the contract).

  careless_append.py run     as bench/compare --workload: appends 4 KiB records to
                             $PFS_MNT/append.log for $PFS_DURATION seconds; ignores what write()
                             returns and never fsyncs, like many loggers and spoolers
  careless_append.py check   as bench/compare --check: reads $PFS_BACKING/append.log and prints
                             {"intact": N, "lost": N, "refused": N, "unit": "records", ...}

The program itself ignores every error. So that the check can count what it lost, it keeps a
journal of what each write() told it in $PFS_STATE (outside the mount): the measurement, not the
program's logic. Its promise, the only one a program that ignores errors and never fsyncs can keep:
the log holds no garbled record (a torn or overwritten one that a reader of the log would choke
on). Records that are simply missing are its loss, counted, not a broken promise:
  refused  write() failed or was short and the program went on (Ts'o's lost data)
  lost     write() succeeded but the record is not in the backing file (e.g. the daemon crashed
           before writing it back: nothing was fsynced)
Exit status of check: 0 promise held, 1 broken (garbled records), 2 the check could not run.
"""

import hashlib
import json
import os
import struct
import sys
import time

RECORD = 4096
MAGIC = b'PFSREC01'
HEAD = struct.Struct('<8sQQ')  # magic, sequence number, seed


def record(seed, seq):
    head = HEAD.pack(MAGIC, seq, seed)
    fill = hashlib.sha256(b'%d:%d' % (seed, seq)).digest()
    return head + (fill * (RECORD // len(fill)))[:RECORD - len(head)]


def run():
    mnt, seed = os.environ['PFS_MNT'], int(os.environ.get('PFS_SEED', '1'))
    duration = float(os.environ.get('PFS_DURATION', '10'))
    journal = open(os.path.join(os.environ['PFS_STATE'], 'careless.journal'), 'w', buffering=1)
    fd = os.open(os.path.join(mnt, 'append.log'), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    end = time.monotonic() + duration
    seq = 0
    while time.monotonic() < end:
        rec = record(seed, seq)
        try:
            n = os.write(fd, rec)  # the careless part: whatever this returns, go on
            journal.write('%s %d\n' % ('ok' if n == len(rec) else 'short', seq))
        except OSError as e:
            journal.write('err %d %s\n' % (seq, e.strerror))
            if e.errno == 107:  # ENOTCONN: the mount is gone, nothing more can land
                break
        seq += 1
    try:
        os.close(fd)
    except OSError:
        pass
    return 0


def scan(path, seed):
    """{seq: True} for every whole record in the file, and the number of garbled records: a
    block that carries the magic but not the bytes that record should hold."""
    present, garbled = {}, 0
    with open(path, 'rb') as f:
        data = f.read()
    pos = data.find(MAGIC)
    while pos >= 0:
        chunk = data[pos:pos + RECORD]
        _, seq, rseed = HEAD.unpack_from(chunk.ljust(HEAD.size, b'\0'))
        if rseed == seed and chunk == record(seed, seq):
            present[seq] = True
            pos = data.find(MAGIC, pos + RECORD)
        else:
            garbled += 1
            pos = data.find(MAGIC, pos + 1)
    return present, garbled


def check():
    seed = int(os.environ.get('PFS_SEED', '1'))
    path = os.path.join(os.environ['PFS_BACKING'], 'append.log')
    told_ok, told_err = [], []
    with open(os.path.join(os.environ['PFS_STATE'], 'careless.journal')) as f:
        for line in f:
            word, _, rest = line.partition(' ')
            (told_ok if word == 'ok' else told_err).append(int(rest.split()[0]))
    present, garbled = scan(path, seed) if os.path.exists(path) else ({}, 0)
    out = {'intact': len(present), 'lost': sum(1 for s in told_ok if s not in present),
           'refused': sum(1 for s in told_err if s not in present), 'unit': 'records',
           'written': len(told_ok), 'errors': len(told_err), 'garbled': garbled}
    print(json.dumps(out))
    return 1 if garbled else 0


if __name__ == '__main__':
    verbs = {'run': run, 'check': check}
    if len(sys.argv) != 2 or sys.argv[1] not in verbs:
        print('usage: careless_append.py run|check (environment: see docs/workloads.md)', file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(verbs[sys.argv[1]]())
    except (KeyError, OSError, ValueError) as e:
        print('careless_append.py %s: %s' % (sys.argv[1], e), file=sys.stderr)
        sys.exit(2)
