"""bench/perf report: medians, spreads and ratios; perf.md, perf.json and perf.png.

Every cell is summarised by its median over the runs and its spread, (max - min) / median.
A ratio is always "how many times as fast": value / baseline for throughputs, baseline / value
for times, so that > 1 is better everywhere.
"""

import json
import os
import statistics
import subprocess

BASE_LL = 'passthrough_ll'
BASE_FS = 'backing'
POLICY_SPREAD_MAX = 0.05   # the issue: four policies within 5% with plenty of memory
WRITE_TARGET = 1.5         # the issue: writes at least 1.5x passthrough_ll
READ_META_TARGET = 1.0     # the issue: reads and metadata at least 1x passthrough_ll
RANDWRITE4_TARGET = 1.2    # the io_uring issue: 4-job random writes at least 1.2x
CREATE_TARGET = 1.2        # the io_uring issue: create+write+close at least 1.2x
# The io_uring issue: the write targets hold with mem_limit=64M too.
LIMITED_CHECKS = (('seqwrite', 'MBps', 'sequential write'),
                  ('randwrite', 'iops', 'random 4 KiB write'),
                  ('randwrite4', 'iops', 'random 4 KiB write, 4 jobs'),
                  ('meta', 'create_ps', 'create'))
# 16 colours that stay apart (gnuplot's default set repeats after 8)
PALETTE = ['#4d4d4d', '#1b9e77', '#7fc97f', '#d95f02', '#e6ab02', '#7570b3', '#e7298a',
           '#a6761d', '#fdbf6f', '#66a61e', '#1f78b4', '#fb9a99', '#b15928', '#6a3d9a',
           '#a6cee3', '#000000']


def summarise(results):
    """{workload: {metric: {target: {median, min, max, spread, n, values, errors}}}}"""
    out = {}
    for wl in results['workloads']:
        per_metric = out.setdefault(wl['name'], {})
        for m in wl['metrics']:
            per_target = per_metric.setdefault(m['key'], {})
            for cell in results['cells']:
                if cell['workload'] != wl['name']:
                    continue
                s = per_target.setdefault(cell['target'], {'values': [], 'errors': []})
                if cell.get('error'):
                    s['errors'].append(cell['error'])
                elif m['key'] in cell['values']:
                    s['values'].append(cell['values'][m['key']])
            for s in per_target.values():
                v = s['values']
                s['n'] = len(v)
                if v:
                    med = statistics.median(v)
                    s.update(median=med, min=min(v), max=max(v),
                             spread=(max(v) - min(v)) / med if med else 0.0)
                else:
                    s.update(median=None, min=None, max=None, spread=None)
    return out


def ratio(summary, wl, metric, target, base, higher_better=True):
    cells = summary.get(wl, {}).get(metric, {})
    a = cells.get(target, {}).get('median')
    b = cells.get(base, {}).get('median')
    if not a or not b:
        return None
    return a / b if higher_better else b / a


def _fmt(v, unit=''):
    if v is None:
        return '–'
    if abs(v) >= 100:
        s = f'{v:,.0f}'
    elif abs(v) >= 10:
        s = f'{v:.1f}'
    else:
        s = f'{v:.2f}'
    return s + unit


def _metrics(results, scaling):
    for wl in results['workloads']:
        if bool(wl.get('scaling')) != scaling:
            continue
        for m in wl['metrics']:
            yield wl, m


def _targets_for(results, scaling):
    names = results['scale_targets'] if scaling else results['main_targets']
    return [t for t in results['targets'] if t['target'] in names]


def _cell_text(s):
    if not s or (s.get('median') is None and not s.get('errors')):
        return '–'
    if s.get('median') is None:
        return 'failed (' + str(len(s['errors'])) + ')'
    text = _fmt(s['median'])
    if s['n'] > 1:
        text += f' ±{s["spread"] * 100:.0f}%'
    if s['n'] < runs_wanted[0]:
        text += f' (n={s["n"]})'
    if s['errors']:
        text += f' ({len(s["errors"])} failed)'
    return text


runs_wanted = [1]   # set by markdown(): cells with fewer runs say n=


def _table(results, summary, scaling):
    cols = list(_metrics(results, scaling))
    if not cols:
        return []
    head = '| target | ' + ' | '.join(f'{m["label"]}' for _, m in cols) + ' |'
    lines = [head, '|---' * (len(cols) + 1) + '|']
    for t in _targets_for(results, scaling):
        row = [_cell_text(summary[wl['name']][m['key']].get(t['target'])) for wl, m in cols]
        lines.append(f'| {t["target"]} | ' + ' | '.join(row) + ' |')
    return lines


def _ratio_table(results, summary, scaling):
    cols = list(_metrics(results, scaling))
    names = [t['target'] for t in results['targets']]
    if not cols or (BASE_LL not in names and BASE_FS not in names):
        return []
    lines = ['| target | ' + ' | '.join(m['label'] for _, m in cols) + ' |',
             '|---' * (len(cols) + 1) + '|']
    for t in _targets_for(results, scaling):
        if t['target'] in (BASE_LL, BASE_FS):
            continue
        row = []
        for wl, m in cols:
            a = ratio(summary, wl['name'], m['key'], t['target'], BASE_LL, m['higher_better'])
            b = ratio(summary, wl['name'], m['key'], t['target'], BASE_FS, m['higher_better'])
            row.append(f'{_fmt(a, "x")} / {_fmt(b, "x")}')
        lines.append(f'| {t["target"]} | ' + ' | '.join(row) + ' |')
    return lines if len(lines) > 2 else []


def targets_check(results, summary):
    """The targets, each with the measured figure and met / not met."""
    checks = []
    def plain(t):
        # The default daemon: no kernel write-back cache, killpriv on, the default transport
        # (~dev_fuse targets are the comparison, not the goal).
        return (t['kind'] == 'pressurefs' and not t.get('writeback_cache') and not t.get('kp2')
                and t.get('killpriv', True) and t.get('direct_writeback', True)
                and t.get('transport', 'auto') != 'dev_fuse'
                and t['target'] in results['main_targets'])
    pfs_free = [t['target'] for t in results['targets'] if plain(t) and not t.get('mem_limit')]
    pfs_limited = [t['target'] for t in results['targets'] if plain(t) and t.get('mem_limit')]
    if not pfs_free:
        return checks
    want = [('seqwrite', 'MBps', WRITE_TARGET, 'sequential write'),
            ('randwrite', 'iops', WRITE_TARGET, 'random 4 KiB write'),
            ('randwrite4', 'iops', RANDWRITE4_TARGET, 'random 4 KiB write, 4 jobs'),
            ('seqread', 'cold_MBps', READ_META_TARGET, 'sequential read, cold'),
            ('seqread', 'warm_MBps', READ_META_TARGET, 'sequential read, warm'),
            ('randread', 'cold_iops', READ_META_TARGET, 'random read, cold'),
            ('randread', 'warm_iops', READ_META_TARGET, 'random read, warm'),
            ('meta', 'create_ps', CREATE_TARGET, 'create'),
            ('meta', 'stat_ps', READ_META_TARGET, 'stat'),
            ('meta', 'unlink_ps', READ_META_TARGET, 'unlink'),
            ('tar', 'seconds', READ_META_TARGET, 'tar -x')]
    hb = {(wl['name'], m['key']): m['higher_better'] for wl in results['workloads']
          for m in wl['metrics']}
    for wl in results['workloads']:
        if wl['name'].startswith('lookup-'):
            want += [(wl['name'], 'readdir_ps', READ_META_TARGET, wl['name'] + ' readdir'),
                     (wl['name'], 'lookup_ps', READ_META_TARGET, wl['name'] + ' lookup')]
    for wl, key, goal, what in want:
        if (wl, key) not in hb:
            continue
        tnames = pfs_free if not wl.startswith('lookup-') else \
            [t for t in results['scale_targets'] if t in pfs_free]
        rs = {t: ratio(summary, wl, key, t, BASE_LL, hb[(wl, key)]) for t in tnames}
        got = [r for r in rs.values() if r is not None]
        if not got:
            continue
        worst = min(got)
        checks.append({'check': f'{what}: >= {goal}x passthrough_ll', 'workload': wl,
                       'metric': key, 'goal': goal, 'ratios': rs, 'worst': worst,
                       'met': worst >= goal})
    goals = {(wl, key): goal for wl, key, goal, _ in want}
    for wl, key, what in LIMITED_CHECKS:
        if (wl, key) not in hb or not pfs_limited:
            continue
        rs = {t: ratio(summary, wl, key, t, BASE_LL, hb[(wl, key)]) for t in pfs_limited}
        got = [r for r in rs.values() if r is not None]
        if not got:
            continue
        goal = goals[(wl, key)]
        checks.append({'check': f'{what} under a mem_limit: >= {goal}x passthrough_ll',
                       'workload': wl, 'metric': key, 'goal': goal, 'ratios': rs,
                       'worst': min(got), 'met': min(got) >= goal})
    # Policies within 5% of each other when memory is plentiful.
    if len(pfs_free) > 1:
        for wl_name, per_metric in summary.items():
            for key, per_target in per_metric.items():
                cells = [per_target.get(t, {}) for t in pfs_free]
                meds = [c.get('median') for c in cells if c.get('median')]
                if len(meds) < 2:
                    continue
                spread = max(meds) / min(meds) - 1
                # The same policy's own run-to-run spread: a difference
                # between policies smaller than that is not resolved.
                noise = sorted(c['spread'] for c in cells
                               if c.get('median') and c.get('spread') is not None)
                noise = noise[len(noise) // 2] if noise else None
                own = {t: (per_target[t]['median'], per_target[t].get('spread'))
                       for t in pfs_free if per_target.get(t, {}).get('median')}
                checks.append({'check': f'policies within 5%: {wl_name} {key}',
                               'workload': wl_name, 'metric': key, 'goal': POLICY_SPREAD_MAX,
                               'policy_spread': spread, 'noise': noise, 'policies': own,
                               'met': spread <= POLICY_SPREAD_MAX})
    return checks


def _rss_lines(results):
    rows = {}
    for cell in results['cells']:
        wl = cell['workload']
        if not (wl == 'seqwrite' or wl.startswith('write-')):
            continue
        if 'rss_peak_mib' not in cell.get('extra', {}):
            continue
        rows.setdefault((cell['target'], wl), []).append(cell['extra'])
    if not rows:
        return []
    limits = {t['target']: t.get('mem_limit', 0) for t in results['targets']}
    lines = ['| target | workload | mem_limit | peak VmRSS (sampled 20/s) | VmHWM | '
             'VmHWM - mem_limit |', '|---|---|---|---|---|---|']
    for (t, wl), extras in rows.items():
        hwm = max(e['hwm_mib'] for e in extras)
        peak = max(e['rss_peak_mib'] for e in extras)
        lim = limits.get(t, 0) / (1 << 20)
        over = f'{hwm - lim:.1f} MiB' if lim else '–'
        lines.append(f'| {t} | {wl} | {f"{lim:.0f} MiB" if lim else "none"} | {peak:.1f} MiB | '
                     f'{hwm:.1f} MiB | {over} |')
    return lines


def _cost_lines(results):
    """What one random write costs the daemon, median over runs: on a shared machine these
    move less than throughput does, and they show where a transport loses (CPU per request, or
    sleeping and waking once per request)."""
    rows = {}
    for cell in results['cells']:
        e = cell.get('extra', {})
        if cell.get('error') or 'daemon_cpu_us_per_op' not in e:
            continue
        rows.setdefault((cell['target'], cell['workload']), []).append(e)

    def med(extras, key):
        v = sorted(x[key] for x in extras if x.get(key) is not None)
        return v[len(v) // 2] if v else None

    if not rows:
        return []
    lines = ['| target | workload | daemon CPU µs per write | daemon context switches per write | '
             'fio context switches per write | runs |', '|---|---|---|---|---|---|']
    for (t, wl), extras in rows.items():
        cpu, dcs, ccs = (med(extras, k) for k in ('daemon_cpu_us_per_op', 'daemon_cs_per_op',
                                                   'client_cs_per_op'))
        lines.append(f'| {t} | {wl} | {cpu:.1f} | {dcs:.2f} | '
                     f'{"–" if ccs is None else f"{ccs:.2f}"} | {len(extras)} |')
    return lines


def _census_lines(results):
    census = results.get('census') or {}
    if not census:
        return []
    lines = ['| target | workload | requests per unit | GETXATTR per unit | requests by opcode '
             '(per unit) |', '|---|---|---|---|---|']
    for t, per in census.items():
        if 'error' in per:
            lines.append(f'| {t} | – | failed: {per["error"]} | | |')
            continue
        for wl, c in per.items():
            ops = sorted(c['per_unit'].items(), key=lambda kv: -kv[1])
            ops_text = ', '.join(f'{op} {v:.2f}' for op, v in ops if v >= 0.005)
            lines.append(f'| {t} | {wl} ({c["units"]} x {c["unit"]}) | '
                         f'{c["requests_per_unit"]:.2f} | {c["getxattr_per_unit"]:.2f} | '
                         f'{ops_text} |')
    return lines


def _pfs_stats_lines(results):
    """Allocator outcomes per pressured cell: why a pressured run failed or slowed."""
    rows = []
    for cell in results['cells']:
        st = cell.get('pfs_stats')
        if not st or not cell['target'].count('@'):
            continue
        rows.append(f'| {cell["target"]} | {cell["workload"]} | {cell["run"]} | '
                    f'{st.get("peak", "–")} | {st.get("budget_failures", "–")} | '
                    f'{st.get("enomem", "–")} | {st.get("loops", "–")} | '
                    f'{st.get("caller_retries", "–")} | {st.get("stall_ns_max", "–")} | '
                    f'{"failed: " + cell["error"][:60] if cell.get("error") else "ok"} |')
    if not rows:
        return []
    return ['| target | workload | run | peak bytes | budget failures | ENOMEM | loops | '
            'caller retries | max stall ns | result |',
            '|---|---|---|---|---|---|---|---|---|---|'] + rows


def markdown(results, summary, checks):
    meta = results['meta']
    runs_wanted[0] = meta['runs']
    L = ['# pressurefs performance: bench/perf', '',
         f'Generated {meta["finished"]} by `{meta["command"]}` on {meta["machine"]}.',
         f'Runs per cell: {meta["runs"]}; each cell is the median, ±spread = (max - min) / '
         f'median. Load average at start {meta["load_start"]}, at end {meta["load_end"]}.',
         f'Sizes: {meta["sizes"]}.'
         + (f' {meta["contend"]} busy-looping processes ran beside every cell (--contend).'
            if meta.get('contend') else '')
         + (f' {meta["skipped_cells"]} cells were not run (--stop-after).'
            if meta.get('skipped_cells') else ''),
         (f'pressurefs measured: built {meta["daemon"]["built"]}, daemon+cache sources sha256 '
          f'{meta["daemon"]["sources_sha256"]}.' if meta.get('daemon') else ''), '',
         '## Targets and how they were mounted', '',
         'Every FUSE target: foreground child of bench/perf, default kernel mount options '
         '(`' + meta.get('mount_opts', '?') + '`), no allow_other, no default_permissions, '
         'multi-threaded libfuse loop, the open-file limit bench/perf was started with; a fresh '
         'mount for every cell.', '',
         '| target | command | /proc/self/mountinfo (type, mount opts, super opts) |',
         '|---|---|---|']
    for t in results['targets']:
        L.append(f'| {t["target"]} | `{t.get("command", "(the backing directory itself)")}` | '
                 f'{t.get("mount") or "–"} |')
    L += ['', 'libfuse examples compiled at bench time: '
          + '; '.join(f'`{v["cmd"]}`' for v in results.get('examples', {}).values()), '']
    L += ['## Workloads', '']
    for wl in results['workloads']:
        L.append(f'- **{wl["name"]}**: {wl["title"]}')
    L += ['', '## Results (median ±spread)', ''] + _table(results, summary, False)
    rt = _ratio_table(results, summary, False)
    if rt:
        L += ['', '## Ratios: x passthrough_ll / x backing fs (> 1 is faster)', ''] + rt
    if checks:
        L += ['', '## The targets', '', '| target | measured | met |', '|---|---|---|']
        for c in checks:
            if 'policy_spread' in c:
                got = f'{c["policy_spread"] * 100:.1f}% between fastest and slowest policy'
                if c.get('noise') is not None:
                    got += (f' (one policy\'s own run-to-run spread, median over the '
                            f'policies: {c["noise"] * 100:.0f}%)')
                if c.get('policies'):
                    got += '; each policy, median ±its own spread: ' + ', '.join(
                        f'{t.replace("pfs-", "")} {_fmt(m)}'
                        + (f' ±{sp * 100:.0f}%' if sp is not None else '')
                        for t, (m, sp) in c['policies'].items())
            else:
                got = 'worst ' + _fmt(c['worst'], 'x') + ' (' + ', '.join(
                    f'{t.replace("pfs-", "")} {_fmt(r, "x")}' for t, r in c['ratios'].items()) \
                    + ')'
            L.append(f'| {c["check"]} | {got} | {"yes" if c["met"] else "**no**"} |')
    st = _table(results, summary, True)
    if st:
        L += ['', '## Scaling (median ±spread)', ''] + st
        srt = _ratio_table(results, summary, True)
        if srt:
            L += ['', 'Ratios x passthrough_ll / x backing:', ''] + srt
    rl = _rss_lines(results)
    if rl:
        L += ['', '## Daemon memory during the sequential writes (max over runs)', ''] + rl
    kl = _cost_lines(results)
    if kl:
        L += ['', '## What a random write costs the daemon (median over runs)', ''] + kl
    cl = _census_lines(results)
    if cl:
        L += ['', '## FUSE requests the kernel sent (fuse:fuse_request_send tracepoint)', '',
              'Counted by the kernel per FUSE connection (perf stat on '
              '`fuse:fuse_request_send`, filtered by connection and opcode) while 4096 random '
              '4 KiB writes, a 128 KiB sequential write (both end_fsync=1) and the meta cycle '
              f'of {results.get("census_files", 1000)} files ran. GETXATTR per write() = 1.00 '
              'means the kernel asked the daemon for security.capability before every '
              'write().', ''] + cl
    al = results.get('alloc') or {}
    if al:
        L += ['', '## Allocator fast path (bench/alloc-bench, ns per allocate+free pair)', '']
        if al.get('error'):
            L.append(f'not measured: {al["error"]}')
        else:
            L += ['Ratio as alloc-bench reports it (its median over interleaved repetitions, '
                  'so it need not equal the quotient of the two medians).', '',
                  '| block | threads | malloc+free | alloc_malloc+alloc_free | ratio | '
                  'within 1.2x |', '|---|---|---|---|---|---|']
            for c in al.get('cells', []):
                L.append(f'| {c["size"]} B | {c["threads"]} | {c["malloc_ns"]:.1f} ns | '
                         f'{c["alloc_ns"]:.1f} ns | {c["ratio"]:.2f}x | '
                         f'{"yes" if c["ratio"] <= 1.2 else "**no**"} |')
    pl = _pfs_stats_lines(results)
    if pl:
        L += ['', '## Allocator outcomes under pressure (pressurefs stats after each cell)', '']
        L += pl
    profiles = results.get('profiles') or {}
    if profiles:
        L += ['', '## Daemon profiles (perf record -g -p PID, cpu-clock, self time)', '']
        for key, top in profiles.items():
            L += [f'**{key}**: ' + (', '.join(
                f'{p["symbol"].replace("[.] ", "").replace("[k] ", "k:")} {p["percent"]:.1f}%'
                for p in top[:12]) or 'no samples (perf recorded none for this daemon)'), '']
    errs = [c for c in results['cells'] if c.get('error')]
    if errs:
        L += ['', '## Failed cells', '']
        for c in errs:
            L.append(f'- {c["target"]} {c["workload"]} run {c["run"]}: {c["error"]}')
    L.append('')
    return '\n'.join(L)


def plot(results, summary, out_dir):
    """perf.png: ratio to passthrough_ll per workload; write MB/s by size; lookups/s by files."""
    cols = list(_metrics(results, False))
    targets = [t['target'] for t in _targets_for(results, False)]
    if not cols or BASE_LL not in targets:
        base = BASE_FS if BASE_FS in targets else None
    else:
        base = BASE_LL
    ratio_dat = os.path.join(out_dir, 'perf-ratio.dat')
    with open(ratio_dat, 'w') as f:
        f.write('metric ' + ' '.join(f'"{t}"' for t in targets) + '\n')
        for wl, m in cols:
            row = [ratio(summary, wl['name'], m['key'], t, base, m['higher_better'])
                   if base else None for t in targets]
            f.write(f'"{m["label"]}" ' + ' '.join('?' if r is None else f'{r:.4f}'
                                                  for r in row) + '\n')
    scale_w = [(wl, m) for wl, m in _metrics(results, True) if wl['name'].startswith('write-')]
    scale_l = [(wl, m) for wl, m in _metrics(results, True)
               if wl['name'].startswith('lookup-') and m['key'] == 'lookup_ps']
    stargets = [t['target'] for t in _targets_for(results, True)]

    def series(path, items, xval):
        with open(path, 'w') as f:
            f.write('x ' + ' '.join(f'"{t}"' for t in stargets) + '\n')
            for wl, m in items:
                meds = [summary[wl['name']][m['key']].get(t, {}).get('median') for t in stargets]
                f.write(f'{xval(wl)} ' + ' '.join('?' if v is None else f'{v:.2f}'
                                                  for v in meds) + '\n')

    sw_dat = os.path.join(out_dir, 'perf-scale-write.dat')
    sl_dat = os.path.join(out_dir, 'perf-scale-lookup.dat')
    sizes = {wl['name']: wl.get('size', 0) for wl in results['workloads']}
    files = {wl['name']: wl.get('files', 0) for wl in results['workloads']}
    series(sw_dat, scale_w, lambda wl: sizes[wl['name']] / (1 << 20))
    series(sl_dat, scale_l, lambda wl: files[wl['name']])
    png = os.path.join(out_dir, 'perf.png')
    n = len(targets)

    def lt_of(t):
        # the same colour for a target in every panel
        return (targets.index(t) if t in targets else n + stargets.index(t)) % len(PALETTE) + 1

    gp = [
        "set terminal pngcairo noenhanced size 2000,1100 font 'sans,9'",
        f"set output '{png}'",
        "set datafile missing '?'",
    ] + [f"set linetype {i + 1} lc rgb '{c}'" for i, c in enumerate(PALETTE)] + [
        "set multiplot",
    ]
    if cols and base:
        gp += [
            "set origin 0,0.42", "set size 1,0.58",
            f"set title 'throughput relative to {base} (median of runs; >1 is faster)'",
            "set style data histogram", "set style histogram clustered gap 1",
            "set style fill solid 0.85 border -1", "set boxwidth 0.9",
            "set xtics rotate by -30 nomirror", "set grid ytics", "set key outside right top",
            "set logscale y 2", "set yrange [0.0625:*]",
            f"plot for [i=2:{n + 1}] '{ratio_dat}' using i:xtic(1) title columnheader(i)",
            "unset logscale y", "set yrange [*:*]", "unset style",
        ]
    gp += ["set style data linespoints", "set xtics norotate", "set key inside top right"]
    if not (cols and base) and not scale_w and not scale_l:
        return 'no figure to plot (no throughput workload ran)'
    if scale_w:
        gp += ["set origin 0,0", "set size 0.5,0.42", "set logscale x 2", "set logscale y 10",
               "set title 'sequential write MB/s by file size (MiB)'",
               "plot " + ', '.join(f"'{sw_dat}' using 1:{i + 2} title columnheader({i + 2}) "
                                   f"lt {lt_of(t)}" for i, t in enumerate(stargets)),
               "unset logscale"]
    if scale_l:
        gp += ["set origin 0.5,0", "set size 0.5,0.42", "set logscale x 10",
               "set logscale y 10", "set title 'cold lookups/s by files in the directory'",
               "plot " + ', '.join(f"'{sl_dat}' using 1:{i + 2} title columnheader({i + 2}) "
                                   f"lt {lt_of(t)}" for i, t in enumerate(stargets)),
               "unset logscale"]
    gp.append("unset multiplot")
    gp_path = os.path.join(out_dir, 'perf.gp')
    with open(gp_path, 'w') as f:
        f.write('\n'.join(gp) + '\n')
    try:
        r = subprocess.run(['gnuplot', gp_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f'gnuplot failed: {e}'
    if r.returncode != 0:
        return 'gnuplot failed: ' + r.stderr.strip()[-300:]
    return None


def summary_markdown(md_text, link_dir):
    """The part of perf.md a README shows: how it was measured, the results, the ratios, the
    targets and the daemon's memory; the rest stays in perf.md."""
    parts = md_text.split('\n## ')
    intro = parts[0].split('\n', 2)[2] if parts[0].startswith('# ') else parts[0]
    wanted = ('Results', 'Ratios', 'The targets', 'Daemon memory')
    keep = [p for p in parts[1:] if p.startswith(wanted)]
    body = intro.strip() + '\n\n' + '\n'.join('### ' + p.strip() + '\n' for p in keep)
    return (f'{body}\n![bench/perf]({link_dir}/perf.png)\n\n'
            f'Everything else (scaling, FUSE request census, allocator, profiles, failed cells): '
            f'[{link_dir}/perf.md]({link_dir}/perf.md).\n')


def readme_update(path, md_text, out_dir):
    """Replace the block between the perf markers in a README, if it has them."""
    begin, end = '<!-- BEGIN generated: perf -->', '<!-- END generated: perf -->'
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        return f'{path}: {e}'
    if begin not in text or end not in text:
        return f'{path}: no "{begin}" ... "{end}" block; left alone'
    # The README carries the summary; perf.md next to the plot has everything.
    rel_dir = os.path.relpath(out_dir, os.path.dirname(os.path.abspath(path)))
    block = f'{begin}\n{summary_markdown(md_text, rel_dir)}{end}'
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    with open(path, 'w') as f:
        f.write(head + block + tail)
    return None


def write_all(results, out_dir, readme=None):
    summary = summarise(results)
    checks = targets_check(results, summary)
    results['summary'] = summary
    results['checks'] = checks
    md = markdown(results, summary, checks)
    with open(os.path.join(out_dir, 'perf.md'), 'w') as f:
        f.write(md)
    with open(os.path.join(out_dir, 'perf-summary.md'), 'w') as f:
        f.write(summary_markdown(md, '.'))
    with open(os.path.join(out_dir, 'perf.json'), 'w') as f:
        json.dump(results, f, indent=1, sort_keys=False, default=str)
    notes = []
    err = plot(results, summary, out_dir)
    if err:
        notes.append(err)
    if readme:
        err = readme_update(readme, md, out_dir)
        if err:
            notes.append(err)
    return md, notes
