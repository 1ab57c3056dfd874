#!/usr/bin/env python3
"""Check the shape of bench/compare's outputs in OUT: compare.md/csv/json/png present, one table
row per quick scenario x policy with every required column (scenarios the machine cannot run are
listed as skipped, each with its line on stderr), the JSON invariants all passed, the stdout
table equals the one in compare.md, and the memory cgroup and power-cut runs carry their own
figures (the group's, the crash's) in compare.json and their own tables in compare.md.
  check_shape.py SOURCE_ROOT OUT"""

import csv
import json
import os
import sys

REQUIRED = ['scenario', 'workload', 'policy', 'app errors', 'lost after fsync', 'lost after write',
            'refused', 'torn/corrupt', 'hung', 'crashed', 'p99 write ms', 'max write ms', 'throughput',
            'alloc loops', 'caller retries', 'ENOMEMs']
POLICIES = ['nofail', 'retry', 'enomem', 'abort', 'mempool', 'retry_mayfail', 'too_small_to_fail', 'shutdown',
            'write_through']


def fail(msg):
    print('FAIL: ' + msg, file=sys.stderr)
    sys.exit(1)


def main():
    src, out = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.path.join(src, 'bench', 'comparison'))
    sys.dont_write_bytecode = True
    import compare_scenario
    scen = compare_scenario.scenario_list(os.path.join(src, 'bench', 'comparison', 'scenarios'))
    quick = [n for n, s in scen.items() if s.quick]
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
    with open(os.path.join(out, 'compare.json'), encoding='utf-8') as f:
        data = json.load(f)
    skipped = data.get('meta', {}).get('skipped_scenarios') or []
    with open(os.path.join(out, 'stderr.txt'), encoding='utf-8') as f:
        err = f.read()
    for name in skipped:
        if 'compare: skipping %s: ' % name not in err:
            fail('scenario %s skipped without a line saying why' % name)
    quick = [n for n in quick if n not in skipped]
    # The main table: the first run of '|' lines (the cgroup and crash tables follow it).
    lines = md.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.startswith('| ')), None)
    table = []
    for ln in lines[first if first is not None else len(lines):]:
        if not ln.startswith('|'):
            break
        table.append(ln)
    rows = [ln for ln in table if ln.startswith('| ')]
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
    _check_real_pressure(scen, quick, data, md)
    print('shape ok: %d rows, %d invariants passed%s' % (len(body), len(data['invariants']),
                                                          '; skipped: ' + ', '.join(skipped) if skipped else ''))


def _check_real_pressure(scen, quick, data, md):
    """Memory cgroup runs carry the group's figures; crashed runs say how and when."""
    cg = [n for n in quick if scen[n].cgroup_limit is not None]
    crash = [n for n in quick if scen[n].crash != 'none']
    for r in data['results']:
        name = r['scenario']
        if name in cg:
            fig = (r.get('cgroup') or {}).get('figures') or {}
            if fig.get('max_usage') is None or (fig.get('version') == 'v1' and fig.get('failcnt') is None) or \
                    (fig.get('version') == 'v2' and fig.get('events') is None):
                fail('%s/%s: no memory cgroup figures in compare.json: %s' % (name, r['policy'], r.get('cgroup')))
            if fig['max_usage'] > r['cgroup']['limit'] + (1 << 20):
                fail('%s/%s: the group peaked at %d bytes, above its limit %d: the daemon was not in it' %
                     (name, r['policy'], fig['max_usage'], r['cgroup']['limit']))
            if scen[name].cgroup_headroom is not None and not r['cgroup'].get('budget'):
                fail('%s/%s: cgroup_budget set no mem_limit' % (name, r['policy']))
        if name in crash and 'crash' not in r and not r.get('hung') and not r.get('crashed'):
            fail('%s/%s: neither crashed by the scenario nor dead before it' % (name, r['policy']))
        if name in crash and scen[name].crash == 'power' and 'crash' in r and 'skipped' not in r['crash']:
            if not any(step == 'remount' for step, _ in (r.get('power') or {}).get('log', [])):
                fail('%s/%s: the image was not mounted again before verify' % (name, r['policy']))
    if cg and '## Memory cgroup figures' not in md:
        fail('compare.md has no memory cgroup table')
    if crash and not any('crash' in r for r in data['results'] if r['scenario'] in crash):
        fail('no run of %s was ended by its crash' % ', '.join(crash))
    if crash and '## Crashes' not in md:
        fail('compare.md has no crash table')


if __name__ == '__main__':
    main()
