#!/usr/bin/env python3
"""Metadata churn beside the workload: create, open, stat, readdir, rename, unlink.

Used by scenarios with `churn = yes` (metadata-only): pfs-stress opens its files once, so on its
own it meets the inode/handle/readdir/request sites only at the start. This keeps them busy and
counts every error the application is told, per errno name. JSON on --out at the end.

  compare_churn.py --dir DIR --duration SECS --seed S --out FILE
"""

import argparse
import errno
import json
import os
import random
import signal
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dir', required=True)
    ap.add_argument('--duration', type=float, required=True)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--out', required=True)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    res = {'ops': 0, 'errors': 0, 'errors_by_errno': {}, 'enotconn': False}
    stop = [False]

    def on_term(signum, frame):
        stop[0] = True
    signal.signal(signal.SIGTERM, on_term)

    def record(e):
        res['errors'] += 1
        name = errno.errorcode.get(e.errno, str(e.errno))
        res['errors_by_errno'][name] = res['errors_by_errno'].get(name, 0) + 1
        # ECANCELED: FUSE over io_uring ends a request queued to a dying ring with it.
        if e.errno in (errno.ENOTCONN, errno.ECONNABORTED, errno.ECANCELED):
            res['enotconn'] = True
            stop[0] = True

    try:
        os.makedirs(args.dir, exist_ok=True)
    except OSError as e:
        record(e)
    end = time.monotonic() + args.duration
    i = 0
    payload = bytes(rng.getrandbits(8) for _ in range(512))
    while not stop[0] and time.monotonic() < end:
        i += 1
        name = os.path.join(args.dir, 'c%05d' % (i % 200))
        steps = (
            lambda: _write_small(name, payload),
            lambda: os.stat(name),
            lambda: _read_small(name),
            lambda: os.listdir(args.dir),
            lambda: os.rename(name, name + '.r'),
            lambda: os.unlink(name + '.r') if rng.random() < 0.7 else None,
        )
        for step in steps:
            res['ops'] += 1
            try:
                step()
            except OSError as e:
                record(e)
                if stop[0]:
                    break
    with open(args.out + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(res, f)
    os.rename(args.out + '.tmp', args.out)
    return 0


def _write_small(path, payload):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, payload)
    finally:
        os.close(fd)


def _read_small(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.read(fd, 4096)
    finally:
        os.close(fd)


if __name__ == '__main__':
    sys.exit(main())
