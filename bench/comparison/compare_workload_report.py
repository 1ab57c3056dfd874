"""The workload runs of compare_workload.py as rows, cells (median and spread over repeats),
invariants (the program's promise held), a Markdown table, CSV files and a plot."""

import csv
import os
import subprocess

from compare_report import runs_by_cell, spread
from compare_workload import COUNTS

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- rows, cells, invariants --------------------------------------------------------

def is_command(res):
    return res.get('kind') == 'command'


def metrics(res):
    chk = res.get('check') or {}
    counts = chk.get('counts') or {}
    tot = ((res.get('stats') or {}).get('total') or {}) if isinstance(res.get('stats'), dict) else {}
    m = {'scenario': res['scenario'], 'workload': res['workload'], 'policy': res['policy'],
         'rep': res['rep'], 'kind': 'command',
         'unit': chk.get('unit') or (res.get('command') or {}).get('unit') or 'records',
         'verdict': 'not run' if res.get('mount_failed') else chk.get('verdict', 'unchecked'),
         'check_rc': chk.get('rc'), 'check_reason': chk.get('reason'),
         'workload_status': res.get('workload_status'), 'workload_signal': res.get('workload_signal'),
         'stopped_by': res.get('stopped_by'), 'hung': bool(res.get('hung')),
         'hung_reason': res.get('hung_reason'), 'crashed': bool(res.get('crashed')),
         'mount_failed': bool(res.get('mount_failed')), 'clean_unmount': res.get('clean_unmount'),
         'elapsed_s': res.get('elapsed_s'), 'crash_fired': bool(res.get('crash'))}
    for k in COUNTS:
        m[k] = counts.get(k)
    for k in ('enomem', 'loops', 'caller_retries'):
        v = tot.get(k)
        m[k] = v if isinstance(v, (int, float)) else None
    return m


def aggregate(rows, order):
    cells = []
    for key, runs in runs_by_cell(rows, order):
        c = {'scenario': key[0], 'workload': key[1], 'policy': key[2], 'runs': len(runs),
             'unit': runs[0]['unit'], 'kind': 'command'}
        for v in ('held', 'broken', 'check failed', 'unchecked', 'not run'):
            c[v] = sum(1 for r in runs if r['verdict'] == v)
        for k in ('hung', 'crashed', 'mount_failed'):
            c[k] = sum(1 for r in runs if r[k])
        for k in COUNTS + ('enomem', 'loops', 'caller_retries'):
            c[k] = spread(r.get(k) for r in runs)
        c['workload_status'] = sorted({str(r['workload_status']) if r['workload_signal'] is None
                                       else r['workload_signal'] for r in runs if not r['mount_failed']})
        c['reasons'] = [_run_reason(r) for r in runs if _run_reason(r)]
        cells.append(c)
    return cells


def _where(r):
    return '%s/%s/%s run %d' % (r['scenario'], r['workload'], r['policy'], r['rep'])


def _run_reason(r):
    """Why a run is not a plain 'held', in one line; None when it is."""
    if r['mount_failed']:
        return '%s: the mount failed' % _where(r)
    parts = []
    if r['verdict'] == 'broken':
        parts.append('the promise broke (check exit 1%s)' % (
            ': %s %s lost' % (int_text(r['lost']), r['unit']) if r.get('lost') is not None else ''))
    elif r['verdict'] == 'check failed':
        parts.append(r.get('check_reason') or 'the check failed')
    if r['hung']:
        parts.append('hung: %s' % (r.get('hung_reason') or ''))
    return '%s: %s' % (_where(r), '; '.join(parts)) if parts else None


def invariants(rows):
    """(ok, text) per run: the check ran and the program's promise held."""
    out = []
    for r in rows:
        if r['mount_failed']:
            out.append((False, '%s: the mount failed' % _where(r)))
        elif r['verdict'] == 'broken':
            out.append((False, _run_reason(r)))
        elif r['verdict'] == 'held':
            out.append((True, '%s: the promise held (%s intact, %s lost, %s refused %s)' %
                        (_where(r), int_text(r['intact']), int_text(r['lost']), int_text(r['refused']), r['unit'])))
    return out


def check_failures(rows):
    return [r for r in rows if r['verdict'] == 'check failed']


# ---- table, CSV, plot ---------------------------------------------------------------

def int_text(v):
    if v is None:
        return '-'
    return str(int(v)) if float(v).is_integer() else '%.1f' % v


def _spread(c, k):
    v = c.get(k)
    if not isinstance(v, dict):
        return '-'
    if v['n'] > 1 and v['min'] != v['max']:
        return '%s (%s–%s)' % (int_text(v['median']), int_text(v['min']), int_text(v['max']))
    return int_text(v['median'])


def promise_text(c):
    n = c['runs']
    parts = []
    for v, label in (('held', 'held'), ('broken', 'BROKEN'), ('check failed', 'CHECK FAILED'),
                     ('unchecked', 'unchecked'), ('not run', 'not run')):
        if c[v] == n:
            return label
        if c[v]:
            parts.append('%s %d/%d' % (label, c[v], n))
    return ', '.join(parts)


HEADER = ['scenario', 'workload', 'policy', 'promise', 'intact', 'lost', 'refused', 'unit',
          'workload exit', 'hung', 'crashed', 'ENOMEMs', 'alloc loops', 'caller retries']


def table_markdown(cells):
    lines = ['| ' + ' | '.join(HEADER) + ' |', '|' + '---|' * len(HEADER)]
    for c in cells:
        flag = lambda k: '%d/%d' % (c[k], c['runs']) if c[k] else '0'  # noqa: E731
        row = [c['scenario'], c['workload'], c['policy'], promise_text(c), _spread(c, 'intact'),
               _spread(c, 'lost'), _spread(c, 'refused'), c['unit'],
               ', '.join(c['workload_status']) or '-', flag('hung'), flag('crashed'),
               _spread(c, 'enomem'), _spread(c, 'loops'), _spread(c, 'caller_retries')]
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


def write_csv(outdir, cells, rows):
    keys = COUNTS + ('enomem', 'loops', 'caller_retries')
    with open(os.path.join(outdir, 'compare-workload.csv'), 'w', newline='', encoding='utf-8') as f:
        w = csv.writer(f)
        hdr = ['scenario', 'workload', 'policy', 'runs', 'unit', 'held', 'broken', 'check_failed',
               'hung', 'crashed']
        for k in keys:
            hdr += [k + '_median', k + '_min', k + '_max']
        w.writerow(hdr)
        for c in cells:
            row = [c['scenario'], c['workload'], c['policy'], c['runs'], c['unit'], c['held'],
                   c['broken'], c['check failed'], c['hung'], c['crashed']]
            for k in keys:
                v = c.get(k)
                row += [v['median'], v['min'], v['max']] if isinstance(v, dict) else ['', '', '']
            w.writerow(row)
    run_keys = ['scenario', 'workload', 'policy', 'rep', 'unit', 'verdict', 'check_rc', 'intact',
                'lost', 'refused', 'workload_status', 'workload_signal', 'stopped_by', 'hung',
                'crashed', 'clean_unmount', 'enomem', 'loops', 'caller_retries', 'elapsed_s']
    with open(os.path.join(outdir, 'compare-workload-runs.csv'), 'w', newline='', encoding='utf-8') as f:
        w = csv.writer(f)
        w.writerow(run_keys)
        for r in rows:
            w.writerow(['' if r.get(k) is None else r.get(k) for k in run_keys])


def plot(outdir, cells, png):
    """png: intact, lost and refused per cell (median), one bar group per scenario/policy;
    hung or crashed cells are marked in their label."""
    if not cells:
        return 'no workload cells to plot'
    dat = os.path.join(outdir, 'plot-workload.dat')
    with open(dat, 'w', encoding='utf-8') as f:
        f.write('# label intact lost refused\n')
        for c in cells:
            label = '%s/%s' % (c['scenario'], c['policy'])
            if len({x['workload'] for x in cells}) > 1:
                label = c['workload'] + ':' + label
            marks = [m for m, k in (('HUNG', 'hung'), ('CRASHED', 'crashed'), ('BROKEN', 'broken'))
                     if c.get(k)]
            if marks:
                label += '(' + ','.join(marks) + ')'
            vals = [c[k]['median'] if isinstance(c.get(k), dict) else 0 for k in COUNTS]
            f.write('"%s" %s\n' % (label, ' '.join('%g' % v for v in vals)))
    unit = cells[0]['unit']
    cmd = ['gnuplot', '-e', "dat='%s'; out='%s'; unit='%s'; n=%d" % (dat, png, unit, len(cells)),
           os.path.join(HERE, 'workload.gp')]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 'gnuplot failed: %s' % e
    return None if r.returncode == 0 else 'gnuplot failed: ' + r.stderr.strip()[:300]


def markdown_section(cells, rows, specs):
    """The workload table with what it means, for compare.md."""
    out = ['## Your workload\n']
    for s in specs:
        out.append('- **%s**: `%s`, checked by `%s`' % (s['name'], s['cmd'] if isinstance(s['cmd'], str)
                                                        else ' '.join(s['cmd']), s.get('check') or '(none)'))
    out.append('\nPromise: the check\'s exit status per run (0 held, 1 BROKEN, other CHECK FAILED). '
               'Intact, lost and refused come from the last JSON line the check printed, in its unit '
               '(median, min–max over the repeats). Workload exit: its exit status per run (a '
               'signal name when killed); hung: no write by its process group for --hang-secs.\n')
    fired = [r for r, _res in rows if r.get('crash_fired')]
    if fired:
        out.append('In %d of %d runs the daemon was crashed on purpose at two thirds of the duration '
                   '(--crash daemon: dirty pages dropped); the crashed column counts only crashes '
                   'nobody asked for.\n' % (len(fired), len(rows)))
    out.append(table_markdown(cells) + '\n')
    reasons = [x for c in cells for x in c['reasons']]
    if reasons:
        out.append('Runs that were not a plain "held":\n')
        out += ['- ' + x for x in reasons]
        out.append('')
    tails = [(r, res) for r, res in rows if res.get('workload_stderr_tail') and r['verdict'] != 'held']
    for r, res in tails[:8]:
        out.append('stderr tail of %s:\n\n```\n%s\n```\n' % (_where(r), res['workload_stderr_tail']))
    return '\n'.join(out)
