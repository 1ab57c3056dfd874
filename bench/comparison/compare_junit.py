"""compare.json's verdicts as JUnit XML for CI (bench/compare --junit FILE): one test case per cell
(scenario x workload x policy). A broken promise, bytes lost after fsync or a hang is a failure
with its reason; a check or a mount that could not be carried out is an error; a crash (the
abort policy's character) is reported in the case's output, not failed."""

import xml.etree.ElementTree as ET


def _case(suite, classname, name, seconds, failures, errors, out):
    case = ET.SubElement(suite, 'testcase', classname=classname, name=name, time='%.1f' % seconds)
    if errors:
        ET.SubElement(case, 'error', message=errors[0][:500]).text = '\n'.join(errors)
    elif failures:
        ET.SubElement(case, 'failure', message=failures[0][:500]).text = '\n'.join(failures)
    if out:
        ET.SubElement(case, 'system-out').text = '\n'.join(out)
    return bool(failures) and not errors, bool(errors)


def _where(r):
    return '%s/%s/%s run %d' % (r['scenario'], r['workload'], r['policy'], r['rep'])


def cases(std_rows, std_checks, cmd_rows):
    """[(classname, name, seconds, failures, errors, out)] in the rows' order."""
    out = []
    failed = [t for ok, t in std_checks if not ok]
    used = set()
    groups = {}
    for r in std_rows:
        groups.setdefault((r['scenario'], r['workload'], r['policy']), []).append(r)
    for (sc, wl, pol), runs in groups.items():
        fails, errs, notes = [], [], []
        for r in runs:
            mine = [t for t in failed if t.startswith(_where(r) + ':')]
            used.update(mine)
            (errs if r['mount_failed'] else fails).extend(mine)
            if r.get('hung') and not any('hung' in t for t in mine):
                fails.append('%s: hung' % _where(r))
            if r.get('crashed'):
                notes.append('%s: the daemon crashed' % _where(r))
        out.append(('pressurefs.compare.%s.%s' % (sc, wl), pol, 0.0, fails, errs, notes))
    scen = []
    for r in std_rows:
        if r['scenario'] not in scen:
            scen.append(r['scenario'])
    for sc in scen:
        mine = [t for t in failed if t not in used and t.startswith(sc + ':')]
        used.update(mine)
        passed = [t for ok, t in std_checks if ok and t.startswith(sc + ':')]
        out.append(('pressurefs.compare.%s' % sc, 'invariants', 0.0, mine, [], passed))
    rest = [t for t in failed if t not in used]
    if rest:
        out.append(('pressurefs.compare', 'invariants', 0.0, rest, [], []))
    groups = {}
    for r in cmd_rows:
        groups.setdefault((r['scenario'], r['workload'], r['policy']), []).append(r)
    for (sc, wl, pol), runs in groups.items():
        fails, errs, notes = [], [], []
        for r in runs:
            w = _where(r)
            counts = '%s intact, %s lost, %s refused %s' % (r.get('intact'), r.get('lost'),
                                                              r.get('refused'), r['unit'])
            if r['mount_failed']:
                errs.append('%s: the mount failed' % w)
            elif r['verdict'] == 'check failed':
                errs.append('%s: %s' % (w, r.get('check_reason')))
            elif r['verdict'] == 'broken':
                fails.append('%s: the promise broke (check exit 1): %s' % (w, counts))
            if r['hung']:
                fails.append('%s: hung: %s' % (w, r.get('hung_reason')))
            notes.append('%s: %s; workload exit %s; %s%s' % (
                w, r['verdict'], r.get('workload_signal') or r.get('workload_status'), counts,
                '; the daemon crashed' if r['crashed'] else ''))
        secs = sum(r.get('elapsed_s') or 0 for r in runs)
        out.append(('pressurefs.workload.%s.%s' % (sc, wl), pol, secs, fails, errs, notes))
    return out


def write(path, std_rows, std_checks, cmd_rows, name='pressurefs.compare'):
    suite = ET.Element('testsuite', name=name)
    n = nfail = nerr = 0
    total = 0.0
    for classname, case_name, secs, fails, errs, notes in cases(std_rows, std_checks, cmd_rows):
        f, e = _case(suite, classname, case_name, secs, fails, errs, notes)
        n += 1
        nfail += f
        nerr += e
        total += secs
    suite.set('tests', str(n))
    suite.set('failures', str(nfail))
    suite.set('errors', str(nerr))
    suite.set('time', '%.1f' % total)
    root = ET.Element('testsuites')
    root.append(suite)
    ET.ElementTree(root).write(path, encoding='utf-8', xml_declaration=True)
    return n, nfail, nerr
