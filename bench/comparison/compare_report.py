"""Turn the cells' results into rows, check the invariants, write compare.{md,csv,json,png}."""

import csv
import json
import os
import statistics
import subprocess

import compare_cgroup
import compare_power

HERE = os.path.dirname(os.path.abspath(__file__))

# (key, Markdown header, kind). kind: 'data' = bytes for pfs-stress, app units for apps;
# 'count', 'ms', 'mbs', 'flag' (k of n runs).
COLUMNS = [
    ('app_errors', 'app errors', 'count'),
    ('lost_after_fsync', 'lost after fsync', 'data'),
    ('lost_after_write', 'lost after write', 'data'),
    ('refused', 'refused', 'data'),
    ('torn_or_corrupt', 'torn/corrupt', 'data'),
    ('hung', 'hung', 'flag'),
    ('crashed', 'crashed', 'flag'),
    ('write_p99_ms', 'p99 write ms', 'ms'),
    ('write_max_ms', 'max write ms', 'ms'),
    ('mb_per_s', 'throughput', 'rate'),
    ('loops', 'alloc loops', 'count'),
    ('caller_retries', 'caller retries', 'count'),
    ('enomem', 'ENOMEMs', 'count'),
]
CLASSES = ('intact', 'lost_after_fsync', 'lost_after_write', 'refused', 'torn_or_corrupt')
# ECANCELED: what FUSE over io_uring answers a request queued to a ring torn down with the daemon.
DEAD_ERRNOS = ('ENOTCONN', 'ECONNABORTED', 'ECANCELED')


# ---- one run -> flat metrics ------------------------------------------------

def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def verify_classes(v):
    """{class: (count, bytes)} from pfs-stress verify --json, whatever nesting it uses."""
    out = {}
    if not isinstance(v, dict):
        return out
    for name in CLASSES:
        cnt = byt = None
        for holder in (v.get('classes'), v):
            if isinstance(holder, dict) and isinstance(holder.get(name), dict):
                cnt = _num(holder[name].get('count', holder[name].get('blocks')))
                byt = _num(holder[name].get('bytes'))
                break
        if byt is None:
            for ck, bk in (('count', 'bytes'), ('counts', 'bytes')):
                if isinstance(v.get(bk), dict) and name in v[bk]:
                    byt = _num(v[bk][name])
                    cnt = _num((v.get(ck) or {}).get(name)) if isinstance(v.get(ck), dict) else None
        if byt is None and name + '_bytes' in v:  # pfs-stress: flat CLASS_blocks, CLASS_bytes
            byt = _num(v.get(name + '_bytes'))
            cnt = _num(v.get(name + '_blocks'))
        if byt is not None or cnt is not None:
            out[name] = (cnt, byt)
    return out


def _errors_without_dead(m):
    if not isinstance(m, dict):
        return 0
    return sum(n for k, n in m.items() if k not in DEAD_ERRNOS and _num(n))


def run_metrics(res):
    """Flat numbers of one run; None where the run did not produce the number."""
    m = {k: None for k, _h, _kind in COLUMNS}
    m.update({'scenario': res['scenario'], 'workload': res['workload'], 'policy': res['policy'],
              'rep': res['rep'], 'unit': 'bytes', 'torn_fsynced': None, 'intact': None,
              'enotconn': None, 'system_failures': None, 'injected_failures': None,
              'budget_failures': None, 'stall_max_ms': None, 'reserved': None, 'shutdown': None,
              'bypassed': None, 'write_enomem': None,
              'clean_unmount': res.get('clean_unmount'),
              'mount_failed': bool(res.get('mount_failed')), 'verify_rc': res.get('verify_rc'),
              'wrote_underneath': res.get('wrote_underneath', 0)})
    m['hung'] = bool(res.get('hung'))
    m['decided_by'] = res.get('decided_by', 'policy')
    m.update(compare_cgroup.run_metrics(res))
    m.update(compare_power.run_metrics(res))
    m['overran'] = bool(res.get('overran'))
    m['crashed'] = bool(res.get('crashed'))
    errors = 0
    if res['workload'] == 'pfs-stress':
        s = res.get('summary') or {}
        if s:
            errors += _errors_without_dead(s.get('write_errors'))
            errors += _errors_without_dead(s.get('fsync_errors'))
            errors += int(s.get('short_writes') or 0)
            m['enotconn'] = s.get('enotconn')
            we = s.get('write_errors')
            m['write_eio'] = _num(we.get('EIO')) if isinstance(we, dict) else None
            m['write_enomem'] = _num(we.get('ENOMEM')) if isinstance(we, dict) else None
            lat = s.get('write_latency_us') or {}
            if _num(lat.get('p99')) is not None:
                m['write_p99_ms'] = lat['p99'] / 1000.0
            if _num(lat.get('max')) is not None:
                m['write_max_ms'] = lat['max'] / 1000.0
            m['mb_per_s'] = _num(s.get('mb_per_s'))
            if s.get('hung'):
                m['hung'] = True
        cls = verify_classes(res.get('verify'))
        for name in CLASSES:
            if name in cls:
                m[name] = cls[name][1]
        v = res.get('verify') or {}
        m['torn_fsynced'] = _num(v.get('torn_fsynced')) if isinstance(v, dict) else None
    else:
        a = res.get('app') or {}
        m['unit'] = a.get('unit', '?')
        errors += int(a.get('errors') or 0)
        for name in CLASSES[1:]:
            m[name] = _num(a.get(name))
        m['intact'] = _num(a.get('acked'))
        if m['intact'] is not None and res.get('elapsed_s'):
            m['mb_per_s'] = m['intact'] / res['elapsed_s']  # the app's unit per second
        m['app_note'] = a.get('note')
    churn = res.get('churn')
    if isinstance(churn, dict):
        errors += _errors_without_dead(churn.get('errors_by_errno'))
        m['churn_errors'] = churn.get('errors')
    m['app_errors'] = errors if (res.get('summary') or res.get('app') or churn) else None
    st = res.get('stats') or {}
    tot = st.get('total') if isinstance(st, dict) else None
    if isinstance(tot, dict):
        for k in ('loops', 'caller_retries', 'enomem', 'system_failures', 'injected_failures',
                  'budget_failures', 'reserved', 'bypassed'):
            m[k] = _num(tot.get(k))
    if isinstance(st, dict) and 'shutdown' in st:
        m['shutdown'] = bool(st.get('shutdown'))
        if _num(tot.get('stall_ns_max')) is not None:
            m['stall_max_ms'] = tot['stall_ns_max'] / 1e6
    return m


# ---- aggregation --------------------------------------------------------------

def runs_by_cell(rows, order):
    """(key, runs) for each (scenario, workload, policy) key of order that has runs."""
    groups = {}
    for r in rows:
        groups.setdefault((r['scenario'], r['workload'], r['policy']), []).append(r)
    return [(key, groups[key]) for key in order if groups.get(key)]


def spread(vals):
    """Median, min, max and count of the numbers in vals (None skipped); None when none."""
    vals = [float(v) for v in vals if v is not None]
    if not vals:
        return None
    return {'median': statistics.median(vals), 'min': min(vals), 'max': max(vals), 'n': len(vals)}


def aggregate(rows, order):
    """Group runs by (scenario, workload, policy) in the given order; median and spread."""
    cells = []
    for key, runs in runs_by_cell(rows, order):
        cell = {'scenario': key[0], 'workload': key[1], 'policy': key[2], 'runs': len(runs),
                'unit': runs[0]['unit']}
        extra = ['torn_fsynced', 'enotconn', 'system_failures', 'injected_failures',
                 'budget_failures', 'stall_max_ms', 'intact', 'reserved', 'bypassed']
        for k in [c[0] for c in COLUMNS] + extra:
            if k in ('hung', 'crashed'):
                cell[k] = sum(1 for r in runs if r[k])
            else:
                cell[k] = spread(r.get(k) for r in runs)
        cell['mount_failed'] = sum(1 for r in runs if r['mount_failed'])
        cells.append(cell)
    return cells


def _med(cell, k):
    v = cell.get(k)
    return v['median'] if isinstance(v, dict) else None


# ---- invariants ---------------------------------------------------------------

def _finished(runs):
    """Runs that ran to their end: not hung, not crashed, mounted. Errors are counted over
    these only: a run that hung finished nothing, so it cannot show an error either."""
    return [r for r in runs if not (r['hung'] or r['crashed'] or r['mount_failed'])]


def _errors_finished(runs):
    """Median application errors over the finished runs, or None when none finished."""
    vals = [r['app_errors'] for r in _finished(runs) if r.get('app_errors') is not None]
    return statistics.median(vals) if vals else None


def invariants_check(rows, cells, policies, scenarios=None):
    """List of (ok, text); each text says what the check proves. Per run: the fsync promise and
    clean-unmount integrity, and no hang except where the scenario is built to make that policy
    hang (expect_hang). Per scenario: each policy shows its character, errors counted over the
    runs that finished."""
    out = []
    expect = {sc.name: set(sc.expect_hang) for sc in (scenarios or [])}
    # Runs that end in a crash on purpose (crash = daemon|power) lose what was not fsynced.
    crashing = {sc.name for sc in (scenarios or []) if getattr(sc, 'crash', 'none') != 'none'}
    for r in rows:
        where = '%s/%s/%s run %d' % (r['scenario'], r['workload'], r['policy'], r['rep'])
        if r['mount_failed']:
            out.append((False, '%s: the mount failed' % where))
            continue
        if r.get('wrote_underneath'):
            out.append((False, '%s: the mount vanished under the application (daemon exited '
                        'mid-run without a signal); %d entries were written into the bare '
                        'mountpoint directory, so the fsync checks of this run do not apply' %
                        (where, r['wrote_underneath'])))
            continue
        if r['lost_after_fsync'] is None:
            out.append((False, '%s: no verification result' % where))
        elif r['lost_after_fsync'] > 0:
            out.append((False, '%s: %s %s lost after fsync (the fsync promise broken)' %
                        (where, _int(r['lost_after_fsync']), r['unit'])))
        if r.get('torn_fsynced'):
            out.append((False, '%s: %d fsynced blocks torn or corrupt' % (where, r['torn_fsynced'])))
        if r['workload'] == 'pfs-stress' and r['verify_rc'] not in (0, None):
            out.append((False, '%s: pfs-stress verify exit status %s' % (where, r['verify_rc'])))
        if r['workload'] in ('sqlite', 'fio') and r['torn_or_corrupt']:
            out.append((False, '%s: %s %s torn or corrupt (committed/verified data)' %
                        (where, _int(r['torn_or_corrupt']), r['unit'])))
        if r['clean_unmount'] and r['torn_or_corrupt']:
            out.append((False, '%s: %s %s torn/corrupt after a clean unmount' %
                        (where, _int(r['torn_or_corrupt']), r['unit'])))
        if (r['hung'] and r['policy'] not in expect.get(r['scenario'], ()) and
                r.get('decided_by') != 'kernel'):
            out.append((False, '%s: hung, in a scenario not built to make %s hang (a hang is a '
                        'failure of the policy)' % (where, r['policy'])))
    runs_by = {}
    for r in rows:
        runs_by.setdefault((r['scenario'], r['workload'], r['policy']), []).append(r)
    by = {(c['scenario'], c['workload'], c['policy']): c for c in cells}
    order = []
    for c in cells:
        if c['workload'] == 'pfs-stress' and c['scenario'] not in order:
            order.append(c['scenario'])
    kernel = {r['scenario'] for r in rows if r.get('decided_by') == 'kernel'}
    for sc in [s for s in order if s in kernel]:
        # No budget, no injection: the policy is never asked, so it has no character to show;
        # what the runs show is the kernel's verdict (OOM kill, stall), the same for all.
        refused = [r for r in rows if r['scenario'] == sc and r.get('mount_failed') is False and
                   ((r.get('budget_failures') or 0) + (r.get('injected_failures') or 0)) > 0]
        out.append((not refused, '%s: decided by the kernel: the allocator refused nothing '
                    '(budget and injected failures 0 in every run%s)' %
                    (sc, '; not in ' + ', '.join('%s run %d' % (r['policy'], r['rep']) for r in refused)
                         if refused else '')))
    for sc in [s for s in order if s not in kernel]:
        get = lambda p: by.get((sc, 'pfs-stress', p))
        runs = lambda p: runs_by.get((sc, 'pfs-stress', p), [])
        hang_expected = expect.get(sc, set())
        en_err = _errors_finished(runs('enomem')) if get('enomem') else None
        if get('enomem'):
            out.append((en_err is not None and en_err > 0,
                        '%s: enomem shows application errors over its finished runs (median %s): '
                        'proves the scenario makes allocations fail where applications see them' %
                        (sc, _int(en_err))))
        ab = get('abort')
        if ab:
            out.append((ab['crashed'] * 2 > ab['runs'],
                        '%s: abort crashes the daemon (%d of %d runs): proves an allocation failed '
                        'and the abort verdict was carried out' % (sc, ab['crashed'], ab['runs'])))
        for p in ('nofail', 'too_small_to_fail'):
            c = get(p)
            if not c or p not in hang_expected:
                continue
            out.append((c['hung'] * 2 > c['runs'],
                        '%s: %s hangs when memory never returns (%d of %d runs hung): proves the '
                        'in-allocator loop has no way out but a free' % (sc, p, c['hung'], c['runs'])))
        nf = get('nofail')
        if nf and 'nofail' not in hang_expected:
            fin = _finished(runs('nofail'))
            worst = max((r['app_errors'] or 0) for r in fin) if fin else None
            out.append((bool(fin) and worst == 0,
                        '%s: nofail shows no application errors over %d finished runs (max %s): '
                        'proves its loop hides failures from applications' %
                        (sc, len(fin), _int(worst))))
            loops = _med(nf, 'loops') or 0
            out.append((loops > 0, '%s: nofail loops in the allocator (median %s loops): proves '
                        'the failures reached the policy' % (sc, _int(loops))))
        if nf and nf['crashed']:
            out.append((False, '%s: nofail crashed the daemon in %d runs' % (sc, nf['crashed'])))
        rt = get('retry')
        if rt:
            retries = _med(rt, 'caller_retries') or 0
            out.append((retries > 0, '%s: retry retries (median %s caller retries): proves callers '
                        'dropped their locks and tried again' % (sc, _int(retries))))
            re_ = _errors_finished(runs('retry'))
            if en_err:
                out.append((re_ is not None and re_ < en_err,
                            '%s: retry has fewer application errors than enomem over finished runs '
                            '(%s < %s): proves the retries recovered some failures' %
                            (sc, _int(re_), _int(en_err))))
        rm = get('retry_mayfail')
        if rm:
            out.append((rm['hung'] == 0,
                        '%s: retry_mayfail never hangs (%d of %d runs hung): proves its waits are '
                        'bounded by timeout_ms' % (sc, rm['hung'], rm['runs'])))
        sd = get('shutdown')
        if sd:
            # EIO from write() comes from the shutdown and from nothing else here, so the runs
            # that shut down and the runs whose writes got EIO must be the same runs. (A
            # failure with nothing dirty, e.g. once writeback has emptied the cache under a
            # balloon that never lets go, is an ENOMEM without a shutdown.)
            fin = _finished(runs('shutdown'))
            down = [r['rep'] for r in fin if r.get('shutdown')]
            eio = [r['rep'] for r in fin if (r.get('write_eio') or 0) > 0]
            out.append((bool(fin) and down == eio,
                        '%s: shutdown: writes got EIO in exactly the finished runs whose mount shut '
                        'down (%d of %d shut down): proves the shutdown, and only it, stops later '
                        'changes' % (sc, len(down), len(fin))))
        mp = get('mempool')
        if mp and (_med(mp, 'reserved') or 0) > 0 and sc not in crashing:
            lost = _med(mp, 'lost_after_write') or 0
            out.append((lost == 0,
                        '%s: mempool served %s allocations from its reserve and lost nothing '
                        'acknowledged: proves the reserve kept writeback going' %
                        (sc, _int(_med(mp, 'reserved')), )))
        wt = get('write_through')
        if wt:
            # Only write() is promised: creates and opens fail at once under it, as under enomem.
            fin = _finished(runs('write_through'))
            worst = max((r.get('write_enomem') or 0) for r in fin) if fin else None
            out.append((wt['hung'] == 0 and bool(fin) and worst == 0,
                        '%s: write_through: no write() got ENOMEM over %d finished runs (max %s) '
                        'and no run hung (%d of %d; %s pages written through, median): proves a '
                        'write that cannot get a page goes to the backing file instead of failing '
                        'or waiting' % (sc, len(fin), _int(worst), wt['hung'], wt['runs'],
                                        _int(_med(wt, 'bypassed')))))
    return out


# Metrics on which two policies can differ, with the least ratio that counts for timings.
DISTINCT_METRICS = [('app_errors', 'application errors'), ('lost_or_refused', 'bytes lost or refused'),
                    ('hung', 'hung runs'), ('crashed', 'crashed runs'), ('stall_max_ms', 'max stall ms')]


def _cell_range(cell, key):
    if key in ('hung', 'crashed'):
        frac = cell[key] / cell['runs'] if cell['runs'] else 0
        return frac, frac
    if key == 'lost_or_refused':
        parts = [cell.get(k) for k in ('lost_after_write', 'refused')]
        if all(not isinstance(v, dict) for v in parts):
            return None
        lo = sum(v['min'] for v in parts if isinstance(v, dict))
        hi = sum(v['max'] for v in parts if isinstance(v, dict))
        return lo, hi
    v = cell.get(key)
    return (v['min'], v['max']) if isinstance(v, dict) else None


def _differ(a, b, key):
    """Do two cells differ on key by more than their spread (their min-max ranges do not
    overlap)? Timings must also differ by 2x, so that jitter on a quiet cell is not a difference."""
    ra, rb = _cell_range(a, key), _cell_range(b, key)
    if ra is None or rb is None:
        return False
    lo, hi = (ra, rb) if ra[1] < rb[0] else (rb, ra) if rb[1] < ra[0] else (None, None)
    if lo is None:
        return False
    if key == 'stall_max_ms':
        return hi[0] >= 2 * max(lo[1], 1.0)
    return True


def distinct_check(cells, policies):
    """One (ok, text) per pair of policies: the first scenario and metric where they differ by
    more than the cells' spread, or the statement that they never do."""
    out = []
    stress = [c for c in cells if c['workload'] == 'pfs-stress']
    by = {(c['scenario'], c['policy']): c for c in stress}
    scen = []
    for c in stress:
        if c['scenario'] not in scen:
            scen.append(c['scenario'])
    for i, p in enumerate(policies):
        for q in policies[i + 1:]:
            found = None
            for sc in scen:
                a, b = by.get((sc, p)), by.get((sc, q))
                if not a or not b:
                    continue
                for key, label in DISTINCT_METRICS:
                    if _differ(a, b, key):
                        ra, rb = _cell_range(a, key), _cell_range(b, key)
                        found = '%s, %s: %s %s vs %s %s' % (sc, label, p, _range_text(ra), q, _range_text(rb))
                        break
                if found:
                    break
            out.append((found is not None, '%s and %s differ by more than the cells\' spread (%s)' %
                        (p, q, found or 'in no scenario on errors, lost/refused, hung, crashed or '
                         'max stall')))
    return out


def _range_text(r):
    return _int(r[0]) if r[0] == r[1] else '%s-%s' % (_int(r[0]), _int(r[1]))


def _int(v):
    if v is None:
        return '-'
    return str(int(v)) if float(v).is_integer() else '%.1f' % v


# ---- formatting -------------------------------------------------------------

def _human_bytes(v):
    if v is None:
        return '-'
    v = float(v)
    for unit, div in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if v >= div:
            return '%.1f %s' % (v / div, unit)
    return '%d B' % v


def _fmt(kind, v, unit):
    if v is None:
        return '-'
    if kind == 'data':
        return _human_bytes(v) if unit == 'bytes' else '%s %s' % (_int(v), unit)
    if kind == 'ms':
        return '%.1f' % v if v < 100 else '%d' % round(v)
    if kind == 'rate':
        return '%.1f MB/s' % v if unit == 'bytes' else '%.0f %s/s' % (v, unit)
    return _int(v)


def _cell_text(cell, key, kind):
    if kind == 'flag':
        n = cell[key]
        return '%d/%d' % (n, cell['runs']) if n else '0'
    v = cell.get(key)
    if not isinstance(v, dict):
        return '-'
    med = _fmt(kind, v['median'], cell['unit'])
    if v['n'] > 1 and v['min'] != v['max']:
        return '%s (%s–%s)' % (med, _fmt(kind, v['min'], cell['unit']), _fmt(kind, v['max'], cell['unit']))
    return med


def table_markdown(cells):
    head = ['scenario', 'workload', 'policy'] + [h for _k, h, _kind in COLUMNS]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for c in cells:
        row = [c['scenario'], c['workload'], c['policy']] + [_cell_text(c, k, kind) for k, _h, kind in COLUMNS]
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


def write_outputs(outdir, meta, scenarios, rows, cells, checks, results):
    os.makedirs(outdir, exist_ok=True)
    table = table_markdown(cells)
    with open(os.path.join(outdir, 'compare.md'), 'w', encoding='utf-8') as f:
        f.write('# pressurefs policy comparison\n\n')
        f.write('Command: `%s`  \n' % meta['command'])
        if meta.get('rerendered_by'):
            f.write('Table and plot re-rendered from its compare.json with: `%s`  \n' % meta['rerendered_by'])
        f.write('Date: %s; machine: %s; %d repeat(s) per cell, seed %d; hang after %d s without '
                'progress.\n\n' % (meta['date'], meta['machine'], meta['repeat'], meta['seed'], meta['hang_secs']))
        f.write('Cells read "median (min–max)" over the repeats; hung/crashed read "runs of runs". '
                'Data columns are bytes for pfs-stress and the application\'s unit for the others '
                '(throughput: acknowledged units per second). '
                'App errors exclude ENOTCONN/ECONNABORTED from a dead mount (counted under '
                'crashed/hung). Crashed: the daemon died by a signal, or exited by itself mid-run. '
                'ENOMEMs are the allocator\'s, including best-effort allocations (ALLOC_NORETRY: '
                'name hints, hash growth, control-file rendering) that never reach an application, '
                'which is why nofail can show a few.\n\n')
        f.write(table + '\n\n')
        over = ['%s/%s/%s run %d' % (r['scenario'], r['workload'], r['policy'], r['rep'])
                for r in rows if r.get('overran')]
        if over:
            f.write('Not hung but stopped: still making progress (slowly) long after their '
                    'duration, these runs were ended by killing the workload: %s.\n\n' % ', '.join(over))
        f.write('![comparison](compare.png)\n\n## Scenarios\n\n')
        for sc in scenarios:
            extra = ''
            if sc.balloon_schedule:
                steps = ' '.join('%g:%gM' % (t, b / 1048576) for t, b in sc.balloon_schedule)
                extra += '; balloon schedule `%s` (seconds:size)' % steps
            if sc.rlimit_headroom is not None:
                extra += '; RLIMIT_AS = VmSize + %d MiB' % (sc.rlimit_headroom >> 20)
            if sc.churn:
                extra += '; metadata churn beside pfs-stress'
            f.write('- **%s**: %s  \n  `-o %s` / pfs-stress `%s`%s\n' %
                    (sc.name, sc.description, sc.mount_options('POLICY'), ' '.join(sc.stress), extra))
        for title, text in (('Memory cgroup figures', compare_cgroup.table_markdown(rows)),
                            ('Crashes', compare_power.table_markdown(rows))):
            if text:
                f.write('\n## %s\n\n%s\n' % (title, text))
        f.write('\n## Invariants\n\n')
        for ok, text in checks:
            f.write('- %s %s\n' % ('PASS' if ok else '**FAIL**', text))
        if meta.get('distinct'):
            f.write('\nEvery pair of policies differing by more than the cells\' spread is a rule of '
                    'the full run; this run shows it without enforcing it:\n\n')
            for d in meta['distinct']:
                f.write('- %s %s\n' % ('yes' if d['ok'] else 'no', d['text']))
    keys = [k for k, _h, _kind in COLUMNS] + ['intact', 'torn_fsynced', 'enotconn', 'system_failures',
                                               'injected_failures', 'budget_failures', 'stall_max_ms']
    with open(os.path.join(outdir, 'compare.csv'), 'w', newline='', encoding='utf-8') as f:
        w = csv.writer(f)
        hdr = ['scenario', 'workload', 'policy', 'runs', 'unit']
        for k in keys:
            hdr += [k] if k in ('hung', 'crashed') else [k + '_median', k + '_min', k + '_max']
        w.writerow(hdr)
        for c in cells:
            row = [c['scenario'], c['workload'], c['policy'], c['runs'], c['unit']]
            for k in keys:
                if k in ('hung', 'crashed'):
                    row.append(c[k])
                else:
                    v = c.get(k)
                    row += [v['median'], v['min'], v['max']] if isinstance(v, dict) else ['', '', '']
            w.writerow(row)
    # One line per run as well: the spread behind every median.
    run_keys = ['scenario', 'workload', 'policy', 'rep', 'unit'] + keys + ['clean_unmount', 'verify_rc']
    with open(os.path.join(outdir, 'compare-runs.csv'), 'w', newline='', encoding='utf-8') as f:
        w = csv.writer(f)
        w.writerow(run_keys)
        for r in rows:
            w.writerow(['' if r.get(k) is None else r.get(k) for k in run_keys])
    with open(os.path.join(outdir, 'compare.json'), 'w', encoding='utf-8') as f:
        json.dump({'meta': meta, 'scenarios': [s.to_json() for s in scenarios], 'cells': cells,
                   'runs': rows, 'invariants': [{'ok': ok, 'text': t} for ok, t in checks],
                   'results': results}, f, indent=1, default=str)
    return table


def _plot_value(cell, key, scale):
    if key in ('hung', 'crashed'):
        return cell[key] / cell['runs'] if cell['runs'] else 0
    if key == 'lost_or_refused':
        parts = [_med(cell, k) for k in ('lost_after_write', 'refused')]
        if all(v is None for v in parts):
            return None
        return sum(v for v in parts if v is not None) * scale
    v = _med(cell, key)
    return v * scale if v is not None else None


def plot(outdir, cells, policies):
    """compare.png with gnuplot (bench/comparison/plot.gp): one panel per metric, a bar per
    policy; hung and crashed cells are also marked with a letter above their bars."""
    metrics = [('errors', 'app_errors', 1.0), ('lost', 'lost_or_refused', 1.0 / (1 << 20)),
               ('latency', 'write_max_ms', 1.0), ('mbps', 'mb_per_s', 1.0),
               ('hung', 'hung', 1.0), ('crashed', 'crashed', 1.0)]
    rows = [c for c in cells if c['workload'] == 'pfs-stress']
    scen = []
    for c in rows:
        if c['scenario'] not in scen:
            scen.append(c['scenario'])
    if not scen:
        return 'no pfs-stress cells to plot'
    by = {(c['scenario'], c['policy']): c for c in rows}
    for name, key, scale in metrics:
        with open(os.path.join(outdir, 'plot-%s.dat' % name), 'w', encoding='utf-8') as f:
            f.write('scenario ' + ' '.join(policies) + '\n')
            for s in scen:
                vals = []
                for p in policies:
                    c = by.get((s, p))
                    v = _plot_value(c, key, scale) if c else None
                    vals.append('%g' % v if v is not None else '0')
                f.write('%s %s\n' % (s, ' '.join(vals)))
    # scenario row, policy column (1-based), errors, mark, max write ms: where the letter goes.
    with open(os.path.join(outdir, 'plot-marks.dat'), 'w', encoding='utf-8') as f:
        for i, s in enumerate(scen):
            for j, p in enumerate(policies, 1):
                c = by.get((s, p))
                if not c or not (c['hung'] or c['crashed']):
                    continue
                mark = ('H' if c['hung'] else '') + ('C' if c['crashed'] else '')
                f.write('%d %d %g %s %g\n' % (i, j, _med(c, 'app_errors') or 0, mark,
                                              _med(c, 'write_max_ms') or 0))
        f.write('0 1 0 "" 0\n')  # never empty: gnuplot refuses an empty data file
    cmd = ['gnuplot', '-e', "datadir='%s'; out='%s'; npol=%d" %
           (outdir, os.path.join(outdir, 'compare.png'), len(policies)), os.path.join(HERE, 'plot.gp')]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 'gnuplot failed: %s' % e
    return None if r.returncode == 0 else 'gnuplot failed: ' + r.stderr.strip()[:300]
