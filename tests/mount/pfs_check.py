#!/usr/bin/env python3
"""Checks of the real-mount tests that are clumsy in shell.

  pfs_check.py dirty-covers DIRTY_FILE INO SIZE NAME
      the `dirty` listing has well-formed "INO OFFSET LENGTH PATH" lines and
      the ranges of INO cover [0, SIZE) with PATH == NAME.
  pfs_check.py crash-check MODEL BACKING INO DIRTY_FILE
      every byte where BACKING differs from MODEL (the content the
      application last wrote), including bytes past BACKING's end, lies in a
      range `dirty` listed for INO before the crash. Prints how many bytes
      differ and how many were listed.
  pfs_check.py stats-keys STATS_JSON
      the stats JSON has every key the spec promises, with numbers where
      numbers belong, and peak >= live.
Exit status 0 when the check holds, 1 (with a message) when it does not.
"""
import sys


def dirty_ranges(path, ino=None):
    ranges = []
    with open(path) as f:
        for line in f.read().splitlines():
            parts = line.split(" ", 3)
            if len(parts) != 4 or not all(p.isdigit() for p in parts[:3]):
                sys.exit("malformed dirty line %r" % line)
            i, off, length = int(parts[0]), int(parts[1]), int(parts[2])
            if ino is None or i == ino:
                ranges.append((off, off + length, parts[3]))
    return sorted(ranges)


def dirty_covers(dirty, ino, size, name):
    ranges = dirty_ranges(dirty, int(ino))
    pos = 0
    for a, b, path in ranges:
        if path != name:
            sys.exit("dirty path %r, expected %r" % (path, name))
        if a > pos:
            break
        pos = max(pos, b)
    if pos < int(size):
        sys.exit("dirty ranges of inode %s cover only [0, %d) of [0, %s)" % (ino, pos, size))


def crash_check(model, backing, ino, dirty):
    ranges = dirty_ranges(dirty, int(ino))
    want = open(model, "rb").read()
    try:
        have = open(backing, "rb").read()
    except FileNotFoundError:
        have = b""
    bad = 0
    outside = []
    n = max(len(want), len(have))
    for base in range(0, n, 4096):
        if want[base:base + 4096] == have[base:base + 4096]:
            continue
        for i in range(base, min(base + 4096, n)):
            w = want[i] if i < len(want) else None
            h = have[i] if i < len(have) else None
            if w == h:
                continue
            # A backing file longer than the model is a difference too:
            # stale bytes must have been listed as well.
            bad += 1
            if not any(a <= i < b for a, b, _ in ranges):
                outside.append(i)
    listed = sum(b - a for a, b, _ in ranges)
    print("differing=%d listed=%d outside=%d" % (bad, listed, len(outside)))
    if outside:
        sys.exit("%d differing bytes outside the dirty ranges, first at %d (ranges %r)"
                 % (len(outside), outside[0], [(a, b) for a, b, _ in ranges][:10]))


COUNTERS = ["calls", "bytes", "frees", "live", "peak", "budget_failures", "injected_failures",
            "system_failures", "loops", "caller_retries", "enomem", "aborts", "stalls",
            "stall_ns_total", "stall_ns_max"]
SITES = ["cache_page", "inode", "handle", "writeback", "readdir", "request", "other"]
TOP_NUMBERS = ["mem_limit", "balloon", "charged", "live", "peak", "cached", "dirty",
               "writeback_errors", "pages_written", "written_direct", "throttled_writes", "throttled_us",
               "fills", "fill_bytes"]


def stats_keys(path):
    import json
    d = json.load(open(path))
    missing = []
    for k in TOP_NUMBERS:
        if not isinstance(d.get(k), int):
            missing.append(k)
    for k in ["policy", "policy_args"]:
        if not isinstance(d.get(k), str):
            missing.append(k)
    if d.get("transport") not in ("io_uring", "dev_fuse"):
        missing.append("transport")
    for c in COUNTERS:
        if not isinstance(d.get("total", {}).get(c), int):
            missing.append("total." + c)
    for site in SITES:
        for c in COUNTERS:
            if not isinstance(d.get("sites", {}).get(site, {}).get(c), int):
                missing.append("sites.%s.%s" % (site, c))
    if not isinstance(d.get("stall_histogram_ms"), dict) or not d["stall_histogram_ms"]:
        missing.append("stall_histogram_ms")
    if missing:
        sys.exit("stats lacks or mistypes: " + ", ".join(missing))
    if d["peak"] < d["live"] or d["total"]["peak"] < d["total"]["live"]:
        sys.exit("peak < live")


def main(argv):
    if len(argv) == 6 and argv[1] == "dirty-covers":
        dirty_covers(*argv[2:])
    elif len(argv) == 6 and argv[1] == "crash-check":
        crash_check(*argv[2:])
    elif len(argv) == 3 and argv[1] == "stats-keys":
        stats_keys(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
