#!/usr/bin/env python3
"""The reading of a comparison, generated from its compare.json: what each scenario did to each
policy, the invariants, and a verdict chosen by the rule written next to it. Every figure comes
from the JSON, so the reading cannot contradict the table beside it.

    compare_reading.py COMPARE_JSON > compare-reading.md
"""

import json
import statistics
import sys

RULE = [
    'never lose fsynced data (lost after fsync is 0 in every run)',
    'never hang and never crash (0 hung and 0 crashed runs; a hang in a scenario built to make '
    'looping policies hang still counts: memory that never returns is a condition a write path '
    'meets)',
    'then the fewest application errors (sum over scenarios of the median, finished runs only)',
    'then the smallest max stall (the largest median max write latency over scenarios)',
]
RULE_NOTE = ('Scenarios decided by the kernel (decided_by = kernel: no allocation ever fails in the '
             'allocator, so no policy is asked) are left out of every step.')


def _n(v):
    if v is None:
        return '-'
    return '{:,}'.format(int(v)) if float(v).is_integer() else '{:,.1f}'.format(v)


def _med(cell, key):
    v = cell.get(key)
    return v['median'] if isinstance(v, dict) else None


def _mib(v):
    if v is None:
        return '-'
    for unit, div in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if v >= div:
            return '%.1f %s' % (v / div, unit)
    return '%d B' % v


def load(path):
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _finished_errors(runs):
    vals = [r['app_errors'] for r in runs
            if not (r['hung'] or r['crashed'] or r['mount_failed']) and r.get('app_errors') is not None]
    return statistics.median(vals) if vals else None


def policy_record(data, policy):
    """Everything the rule needs about one policy, with the rows that show it."""
    # A scenario decided by the kernel (the OOM killer, a stall) never asks the policy: its runs
    # say nothing about the policy, so the rule leaves them out.
    runs = [r for r in data['runs'] if r['policy'] == policy and r['workload'] == 'pfs-stress'
            and r.get('decided_by') != 'kernel']
    expect = {s['name']: set(s.get('expect_hang') or []) for s in data.get('scenarios', [])}
    scen = []
    for r in runs:
        if r['scenario'] not in scen:
            scen.append(r['scenario'])
    rec = {'policy': policy, 'fsync_lost': [], 'hung': [], 'hung_expected': [], 'crashed': [],
           'errors': 0.0, 'errors_rows': [], 'stall': 0.0, 'stall_row': None, 'no_finish': []}
    for sc in scen:
        rs = [r for r in runs if r['scenario'] == sc]
        if any((r['lost_after_fsync'] or 0) > 0 for r in rs):
            rec['fsync_lost'].append('%s/%s (%s bytes)' % (sc, policy, _n(max(r['lost_after_fsync'] or 0 for r in rs))))
        nh = sum(1 for r in rs if r['hung'])
        if nh:
            (rec['hung_expected'] if policy in expect.get(sc, ()) else rec['hung']).append(
                '%s/%s (%d of %d runs)' % (sc, policy, nh, len(rs)))
        nc = sum(1 for r in rs if r['crashed'])
        if nc:
            rec['crashed'].append('%s/%s (%d of %d runs)' % (sc, policy, nc, len(rs)))
        e = _finished_errors(rs)
        if e is None:
            rec['no_finish'].append(sc)
        else:
            rec['errors'] += e
            if e:
                rec['errors_rows'].append('%s/%s: %s' % (sc, policy, _n(e)))
        stalls = [r['write_max_ms'] for r in rs if r.get('write_max_ms') is not None]
        if stalls:
            m = statistics.median(stalls)
            if m > rec['stall']:
                rec['stall'], rec['stall_row'] = m, '%s/%s: %s ms' % (sc, policy, _n(m))
    return rec


def verdict(data):
    """(winner record or None, ordered list of (record, reason it lost))."""
    pols = data['meta'].get('policies') or sorted({r['policy'] for r in data['runs']})
    recs = [policy_record(data, p) for p in pols]
    out, alive = [], []
    for rec in recs:
        if rec['fsync_lost']:
            out.append((rec, 'lost fsynced data: ' + '; '.join(rec['fsync_lost'])))
        elif rec['crashed']:
            out.append((rec, 'crashed: ' + '; '.join(rec['crashed'])))
        elif rec['hung'] or rec['hung_expected']:
            rows = rec['hung'] + ['%s, the scenario built to make it hang' % h for h in rec['hung_expected']]
            out.append((rec, 'hung: ' + '; '.join(rows)))
        else:
            alive.append(rec)
    alive.sort(key=lambda r: (r['errors'], r['stall']))
    for rec in alive[1:]:
        w = alive[0]
        if rec['errors'] > w['errors']:
            why = 'more application errors than %s (%s against %s)' % (w['policy'], _n(rec['errors']), _n(w['errors']))
        else:
            why = 'as few errors as %s but a longer max stall (%s against %s)' % (
                w['policy'], rec['stall_row'] or '-', w['stall_row'] or '-')
        out.append((rec, why))
    return (alive[0] if alive else None), out, recs


def scenario_lines(data):
    lines = []
    cells = [c for c in data['cells'] if c['workload'] == 'pfs-stress']
    runs = data['runs']
    scen = []
    for c in cells:
        if c['scenario'] not in scen:
            scen.append(c['scenario'])
    desc = {s['name']: s['description'] for s in data.get('scenarios', [])}
    for sc in scen:
        parts = []
        for c in [c for c in cells if c['scenario'] == sc]:
            p = c['policy']
            rs = [r for r in runs if r['scenario'] == sc and r['policy'] == p and r['workload'] == 'pfs-stress']
            bits = []
            if c['hung']:
                bits.append('hung in %d of %d runs' % (c['hung'], c['runs']))
            if c['crashed']:
                bits.append('crashed in %d of %d runs' % (c['crashed'], c['runs']))
            e = _finished_errors(rs)
            bits.append('%s application errors' % _n(e) if e is not None else 'no run finished')
            lw = _med(c, 'lost_after_write')
            if lw:
                bits.append('%s lost after write' % _mib(lw))
            rf = _med(c, 'refused')
            if rf:
                bits.append('%s refused' % _mib(rf))
            st = _med(c, 'write_max_ms')
            if st is not None:
                bits.append('max write %s ms' % _n(st))
            parts.append('%s: %s' % (p, ', '.join(bits)))
        lines.append('- **%s** (%s): %s.' % (sc, desc.get(sc, ''), '; '.join(parts)))
    return lines


def render(data):
    meta = data['meta']
    inv = data.get('invariants', [])
    failed = [i['text'] for i in inv if not i['ok']]
    out = ['Generated from compare.json by `scripts/update-results compare` '
           '(`bench/comparison/compare_reading.py`); command `%s`, %s, %s repeat(s) per cell. '
           'Errors are medians over the runs that finished (a hung run finished nothing).' %
           (meta.get('command', '?'), meta.get('date', '?'), meta.get('repeat', '?')), '']
    out.append('### What each scenario did')
    out.append('')
    out += scenario_lines(data)
    out.append('')
    out.append('### Invariants')
    out.append('')
    out.append('%d of %d invariants hold.' % (len(inv) - len(failed), len(inv)) +
               (' Broken: ' + '; '.join(failed) + '.' if failed else ''))
    distinct = meta.get('distinct')
    if distinct is None:
        distinct = [i for i in inv if 'differ by more than' in i['text']]
    nd = [d['text'] for d in distinct if not d['ok']]
    if distinct:
        out.append('')
        out.append('Pairs of policies that differ by more than the cells\' spread in some scenario: '
                   '%d of %d%s.' % (len(distinct) - len(nd), len(distinct),
                                    (' Not separated: ' + '; '.join(t.split(' differ')[0] for t in nd)) if nd else ''))
    out.append('')
    out.append('### Verdict')
    out.append('')
    out.append('The rule, applied in order:')
    out.append('')
    for i, r in enumerate(RULE, 1):
        out.append('%d. %s;' % (i, r))
    out.append('')
    out.append(RULE_NOTE)
    out.append('')
    win, losers, recs = verdict(data)
    if win:
        cond = ('its applications must handle ENOMEM from write() and fsync() (%s)' %
                '; '.join(win['errors_rows'])) if win['errors'] else 'applications saw no error'
        out.append('**Verdict: `%s`** for a filesystem\'s write path, under the pressure these '
                   'scenarios apply: it never lost fsynced data, never hung or crashed, and had the '
                   'fewest application errors of those that did not (%s in total), with a longest '
                   'stall of %s. Condition: %s.' %
                   (win['policy'], _n(win['errors']), win['stall_row'] or '-', cond))
    else:
        out.append('**Verdict: no policy passes the first two steps of the rule in this run.**')
    # The condition under which the answer changes: applications that cannot take an error.
    calm = sorted([r for r in recs if not r['fsync_lost'] and not r['crashed'] and r is not win],
                  key=lambda r: (r['errors'], r['stall']))
    if win and calm and calm[0]['errors'] < win['errors']:
        alt = calm[0]
        out.append('')
        out.append('If the applications above cannot handle an error at all, `%s` shows fewer (%s '
                   'in total) at the price the rule refuses: %s.' %
                   (alt['policy'], _n(alt['errors']),
                    'hung in ' + '; '.join(alt['hung'] + alt['hung_expected'])
                    if (alt['hung'] or alt['hung_expected']) else
                    'a longest stall of %s' % (alt['stall_row'] or '-')))
    out.append('')
    out.append('Evidence, policy by policy:')
    out.append('')
    for rec, why in losers:
        out.append('- `%s`: out, %s.' % (rec['policy'], why))
    if win:
        out.append('- `%s`: chosen; error rows: %s.' % (win['policy'], '; '.join(win['errors_rows']) or 'none'))
    return '\n'.join(out) + '\n'


def main(argv):
    if len(argv) != 2:
        print('usage: compare_reading.py COMPARE_JSON', file=sys.stderr)
        return 2
    try:
        data = load(argv[1])
    except (OSError, ValueError) as e:
        print('compare_reading: %s: %s' % (argv[1], e), file=sys.stderr)
        return 2
    sys.stdout.write(render(data))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
