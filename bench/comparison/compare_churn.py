#!/usr/bin/env python3
"""Metadata churn beside the workload: create, open, stat, readdir, rename, unlink, big reads.

Used by scenarios with `churn = yes` (metadata-only): pfs-stress opens its files once, so on its
own it meets the inode/handle/readdir/request sites only at the start. This keeps them busy and
counts every error the application is told, per errno name. JSON on --out at the end.

Each round also reads a 512 KiB file with O_DIRECT in 128 KiB reads: every one reaches the daemon
as a 128 KiB read, whose reply buffer (site `request`) is larger than a cache page. That is the
buffer too_small_to_fail lets fail and nofail does not (everything else here is smaller than a
page), so the scenario tells those two policies apart.

  compare_churn.py --dir DIR --duration SECS --seed S --out FILE
"""

import argparse
import errno
import json
import mmap
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
    big = os.path.join(args.dir, 'big')
    big_data = bytes(rng.getrandbits(8) for _ in range(BIG_SIZE))
    # Made before the clock matters; a failure here is an error the
    # application was told like any other, and the reads then count ENOENT.
    for _ in range(3):
        try:
            _write_file(big, big_data, sync=True)
            break
        except OSError as e:
            record(e)
    dbuf = mmap.mmap(-1, BIG_READ)  # page-aligned, as O_DIRECT wants
    while not stop[0] and time.monotonic() < end:
        i += 1
        name = os.path.join(args.dir, 'c%05d' % (i % 200))
        steps = (
            lambda: _write_file(name, payload),
            lambda: os.stat(name),
            lambda: _read_small(name),
            lambda: os.listdir(args.dir),
            lambda: os.rename(name, name + '.r'),
            lambda: os.unlink(name + '.r') if rng.random() < 0.7 else None,
            lambda: _read_direct(big, dbuf),
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


BIG_SIZE = 512 * 1024
BIG_READ = 128 * 1024


def _read_direct(path, buf):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        off = 0
        while off < BIG_SIZE:
            n = os.preadv(fd, [buf], off)
            if n <= 0:
                break
            off += n
    finally:
        os.close(fd)


def _write_file(path, data, sync=False):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        done = 0
        while done < len(data):
            done += os.write(fd, data[done:])
        if sync:
            os.fsync(fd)
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
