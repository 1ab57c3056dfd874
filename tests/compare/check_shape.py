#!/usr/bin/env python3
"""Check the shape of bench/compare's outputs in OUT: compare.md/csv/json/png present, one table
row per quick scenario x policy with every required column, the JSON invariants all passed, and
the stdout table equals the one in compare.md.   check_shape.py SOURCE_ROOT OUT"""

import csv
import json
import os
import sys

REQUIRED = ['scenario', 'workload', 'policy', 'app errors', 'lost after fsync', 'lost after write',
            'refused', 'torn/corrupt', 'hung', 'crashed', 'p99 write ms', 'max write ms', 'throughput',
            'alloc loops', 'caller retries', 'ENOMEMs']
POLICIES = ['nofail', 'retry', 'enomem', 'abort']


def fail(msg):
    print('FAIL: ' + msg, file=sys.stderr)
    sys.exit(1)


def main():
    src, out = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.path.join(src, 'bench', 'comparison'))
    sys.dont_write_bytecode = True
    import compare_scenario
    quick = [n for n, s in compare_scenario.scenario_list(os.path.join(src, 'bench', 'comparison', 'scenarios')).items()
             if s.quick]
    if len(quick) < 3:
        fail('fewer than 3 quick scenarios: %s' % quick)
    for fn in ('compare.md', 'compare.csv', 'compare.json', 'compare.png'):
        p = os.path.join(out, fn)
        if not os.path.isfile(p) or os.path.getsize(p) == 0:
            fail('%s missing or empty' % fn)
    with open(os.path.join(out, 'compare.png'), 'rb') as f:
        if f.read(8) != b'\x89PNG\r\n\x1a\n':
            fail('compare.png is not a PNG')
    with open(os.path.join(out, 'compare.md'), encoding='utf-8') as f:
        md = f.read()
    rows = [ln for ln in md.splitlines() if ln.startswith('| ')]
    if not rows:
        fail('no table in compare.md')
    header = [c.strip() for c in rows[0].strip('|').split('|')]
    for col in REQUIRED:
        if col not in header:
            fail('column %r missing from the table header %s' % (col, header))
    body = [[c.strip() for c in r.strip('|').split('|')] for r in rows[1:]]
    if any(len(r) != len(header) for r in body):
        fail('a table row does not have %d cells' % len(header))
    seen = {(r[0], r[2]) for r in body if r[1] == 'pfs-stress'}
    want = {(s, p) for s in quick for p in POLICIES}
    if seen != want:
        fail('table rows %s, expected every quick scenario x policy %s' % (sorted(seen), sorted(want)))
    table = [ln for ln in md.splitlines() if ln.startswith('|')]
    with open(os.path.join(out, 'table.md'), encoding='utf-8') as f:
        if f.read().strip() != '\n'.join(table).strip():
            fail('the table printed on stdout differs from compare.md')
    with open(os.path.join(out, 'compare.csv'), encoding='utf-8', newline='') as f:
        recs = list(csv.DictReader(f))
    if len(recs) != len(body):
        fail('compare.csv has %d rows, the table %d' % (len(recs), len(body)))
    for col in ('app_errors_median', 'lost_after_fsync_median', 'lost_after_write_median', 'hung',
                'crashed', 'write_max_ms_median', 'loops_median', 'caller_retries_median', 'enomem_median'):
        if col not in recs[0]:
            fail('compare.csv lacks column %s' % col)
    with open(os.path.join(out, 'compare.json'), encoding='utf-8') as f:
        data = json.load(f)
    if len(data.get('runs', [])) != len(want):
        fail('compare.json has %d runs, expected %d' % (len(data.get('runs', [])), len(want)))
    bad = [i['text'] for i in data.get('invariants', []) if not i['ok']]
    if bad:
        fail('invariants broken: ' + '; '.join(bad))
    if not data.get('invariants'):
        fail('no invariant was checked')
    for r in data['runs']:
        if r['lost_after_fsync'] is None:
            fail('run %s/%s has no verification result' % (r['scenario'], r['policy']))
    print('shape ok: %d rows, %d invariants passed' % (len(body), len(data['invariants'])))


if __name__ == '__main__':
    main()
