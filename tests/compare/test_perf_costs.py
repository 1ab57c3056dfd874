#!/usr/bin/env python3
"""unit.perf_costs: bench/perf's per-write daemon costs and the per-policy spreads beside the
"policies within 5%" check, on synthetic results (no mount, no root), and its --contend bounds.
   test_perf_costs.py SOURCE_ROOT"""

import os
import subprocess
import sys
import time
import unittest

SRC = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', '..')
sys.path.insert(0, os.path.join(SRC, 'bench', 'performance'))
sys.path.insert(0, os.path.join(SRC, 'bench', 'common'))
sys.dont_write_bytecode = True

import perf_report  # noqa: E402
import perf_workloads  # noqa: E402

POLICIES = ('nofail', 'retry', 'enomem', 'abort')


def target(name, **kw):
    t = {'target': name, 'kind': 'pressurefs' if name.startswith('pfs-') else 'libfuse',
         'mem_limit': 0, 'writeback_cache': False, 'killpriv': True, 'direct_writeback': True,
         'transport': 'auto'}
    t.update(kw)
    return t


def results(cells):
    names = ['passthrough_ll'] + [f'pfs-{p}' for p in POLICIES]
    return {'targets': [target(n) for n in names], 'main_targets': names,
            'workloads': [{'name': 'randwrite4', 'title': '', 'metrics': [
                {'key': 'iops', 'unit': 'IOPS', 'label': 'randwrite4 IOPS', 'higher_better': True}]}],
            'cells': cells}


def cell(t, run, iops, cpu=None, dcs=None, ccs=None, error=None):
    extra = {}
    if cpu is not None:
        extra.update(daemon_cpu_us_per_op=cpu, daemon_cs_per_op=dcs)
    if ccs is not None:
        extra['client_cs_per_op'] = ccs
    return {'workload': 'randwrite4', 'target': t, 'run': run, 'values': {'iops': iops},
            'extra': extra, 'error': error}


class DaemonUsage(unittest.TestCase):
    def test_daemon_usage_counts_this_process(self):
        a = perf_workloads.daemon_usage(os.getpid())
        # sleeping is a voluntary context switch; spinning costs CPU time
        time.sleep(0.01)
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass
        b = perf_workloads.daemon_usage(os.getpid())
        self.assertIsNotNone(a)
        self.assertGreater(b[1], a[1])
        self.assertGreater(b[0], a[0])

    def test_daemon_usage_without_daemon_is_none(self):
        self.assertIsNone(perf_workloads.daemon_usage(None))


class CostLines(unittest.TestCase):
    def test_cost_lines_are_medians_per_target(self):
        cells = [cell('passthrough_ll', r, 100, cpu=c, dcs=d, ccs=1.0)
                 for r, (c, d) in enumerate([(20.0, 0.9), (10.0, 0.7), (14.0, 0.8)])]
        cells += [cell('pfs-retry', r, 100, cpu=c, dcs=1.0) for r, c in enumerate([9.0, 11.0])]
        cells.append(cell('pfs-retry', 2, 0, cpu=99.0, dcs=9.0, error='failed'))
        lines = perf_report._cost_lines(results(cells))
        self.assertIn('| passthrough_ll | randwrite4 | 14.0 | 0.80 | 1.00 | 3 |', lines)
        # a failed cell does not count; the upper median of two runs
        self.assertIn('| pfs-retry | randwrite4 | 11.0 | 1.00 | – | 2 |', lines)

    def test_no_cost_section_without_costs(self):
        self.assertEqual(perf_report._cost_lines(results([cell('pfs-retry', 0, 100)])), [])


class PolicySpread(unittest.TestCase):
    def test_policy_check_lists_each_policys_own_spread(self):
        cells = [cell('passthrough_ll', r, 100) for r in range(3)]
        own = {'nofail': (100, 110, 90), 'retry': (100, 101, 99), 'enomem': (104, 104, 104),
               'abort': (98, 97, 99)}
        for p, vals in own.items():
            cells += [cell(f'pfs-{p}', r, v) for r, v in enumerate(vals)]
        res = results(cells)
        summary = perf_report.summarise(res)
        checks = [c for c in perf_report.targets_check(res, summary)
                  if c['check'] == 'policies within 5%: randwrite4 iops']
        self.assertEqual(len(checks), 1)
        c = checks[0]
        self.assertAlmostEqual(c['policy_spread'], 104 / 98 - 1)
        self.assertEqual(c['policies']['pfs-nofail'], (100, 0.2))
        self.assertEqual(c['policies']['pfs-enomem'], (104, 0.0))
        md = perf_report.markdown(
            dict(res, meta={'finished': '', 'command': '', 'machine': '', 'runs': 3,
                            'load_start': '', 'load_end': '', 'sizes': ''}, census={},
                 alloc=None, profiles={}, examples={}), summary, checks)
        self.assertIn('each policy, median ±its own spread: nofail 100 ±20%, retry 100 ±2%, '
                      'enomem 104 ±0%, abort 98.0 ±2%', md)


class ContendOption(unittest.TestCase):
    def test_contend_out_of_range_is_one_line_and_status_2(self):
        r = subprocess.run([sys.executable, os.path.join(SRC, 'bench', 'perf'), '--contend',
                            '99', '--list'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.strip().splitlines(),
                         ['perf: --contend 99: 0 to 64 busy processes'])

    def test_contend_in_range_is_accepted(self):
        r = subprocess.run([sys.executable, os.path.join(SRC, 'bench', 'perf'), '--contend',
                            '4', '--list'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
