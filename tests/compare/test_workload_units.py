#!/usr/bin/env python3
"""unit.compare_workload: the pieces of the workload contract that need no mount: command
resolution, the check's JSON line, exit statuses, sharding, JUnit verdicts.
  test_workload_units.py SOURCE_ROOT"""

import importlib.machinery
import importlib.util
import os
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

SRC = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', '..')
sys.path.insert(0, os.path.join(SRC, 'bench', 'comparison'))
sys.path.insert(0, os.path.join(SRC, 'bench', 'common'))
sys.dont_write_bytecode = True

import compare_junit  # noqa: E402
import compare_workload as cw  # noqa: E402
import compare_workload_report as cwr  # noqa: E402


def _load_compare():
    loader = importlib.machinery.SourceFileLoader('bench_compare', os.path.join(SRC, 'bench', 'compare'))
    spec = importlib.util.spec_from_loader('bench_compare', loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class Commands(unittest.TestCase):
    def test_relative_program_made_absolute(self):
        self.assertEqual(cw.absolute_program('bench/apps/x.py run --n 3'),
                         os.path.abspath('bench/apps/x.py') + ' run --n 3')
        self.assertEqual(cw.absolute_program('FOO=1 ./app a'), 'FOO=1 ' + os.path.abspath('app') + ' a')
        self.assertEqual(cw.absolute_program(['./app', 'x']), [os.path.abspath('app'), 'x'])

    def test_bare_and_absolute_programs_untouched(self):
        for cmd in ('sqlite3 db "SELECT 1"', '/usr/bin/true', 'echo x > f; exit 3', 'cd r && git fsck'):
            self.assertEqual(cw.absolute_program(cmd), cmd)

    def test_missing_program_is_one_problem(self):
        self.assertIn('does not exist', cw.command_problem('--check', '/nonexistent/x arg'))
        self.assertIn('not a program on PATH', cw.command_problem('--check', 'no-such-prog-xyz'))
        self.assertIn('empty command', cw.command_problem('--workload', ''))
        self.assertIsNone(cw.command_problem('--workload', 'sh -c "exit 0"'))
        self.assertIsNone(cw.command_problem('--workload', 'cd r && true'))

    def test_default_name_is_the_program(self):
        self.assertEqual(cw.default_name('bench/apps/careless_append.py run'), 'careless_append')
        self.assertEqual(cw.default_name(['python3', 'my_db.py', 'x']), 'my_db')
        self.assertEqual(cw.default_name('PFS=1 sqlite3 x'), 'sqlite3')


class CheckOutput(unittest.TestCase):
    def test_last_json_object_line_wins(self):
        text = 'starting\n{"intact": 1}\n[1, 2]\n{"intact": 5, "lost": 2}\nnot {json\ndone\n'
        self.assertEqual(cw.last_json(text), {'intact': 5, 'lost': 2})

    def test_no_json_line(self):
        self.assertIsNone(cw.last_json('ok\n[3]\n{broken\n'))

    def test_exit_status_as_a_shell_reports_it(self):
        self.assertEqual(cw.exit_status(0), 0)
        self.assertEqual(cw.exit_status(7), 7)
        self.assertEqual(cw.exit_status(-9), 137)
        self.assertEqual(cw.exit_status(-15), 143)


def _row(policy, verdict, **kw):
    r = {'scenario': 's', 'workload': 'w', 'policy': policy, 'rep': 1, 'unit': 'records',
         'verdict': verdict, 'check_reason': None, 'intact': 3, 'lost': 0, 'refused': 0,
         'workload_status': 0, 'workload_signal': None, 'hung': False, 'hung_reason': None,
         'crashed': False, 'mount_failed': False, 'elapsed_s': 1.0, 'enomem': 0, 'loops': 0,
         'caller_retries': 0}
    r.update(kw)
    return r


class Verdicts(unittest.TestCase):
    def test_broken_promise_fails_an_invariant(self):
        checks = cwr.invariants([_row('a', 'held'), _row('b', 'broken', lost=4)])
        self.assertEqual([ok for ok, _t in checks], [True, False])
        self.assertIn('4 records lost', checks[1][1])

    def test_junit_failure_error_and_pass(self):
        rows = [_row('held', 'held'), _row('broken', 'broken', lost=2),
                _row('failed', 'check failed', check_reason='the check failed (exit status 5): boom'),
                _row('hung', 'held', hung=True, hung_reason='no write for 5 s')]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, 'j.xml')
            self.assertEqual(compare_junit.write(path, [], [], rows), (4, 2, 1))
            cases = {c.get('name'): c for c in ET.parse(path).getroot().iter('testcase')}
        self.assertIsNone(cases['held'].find('failure'))
        self.assertIn('2 lost', cases['broken'].find('failure').get('message'))
        self.assertIn('boom', cases['failed'].find('error').get('message'))
        self.assertIn('no write for 5 s', cases['hung'].find('failure').get('message'))

    def test_promise_text_over_repeats(self):
        cells = cwr.aggregate([_row('p', 'held'), dict(_row('p', 'broken'), rep=2)], [('s', 'w', 'p')])
        self.assertEqual(cwr.promise_text(cells[0]), 'held 1/2, BROKEN 1/2')


class Shards(unittest.TestCase):
    def test_shards_partition_the_cells(self):
        compare = _load_compare()

        class Sc:
            def __init__(self, name):
                self.name = name
        plan = [(Sc(s), 'w', rep, p, 1) for s in ('b', 'a', 'c') for p in ('x', 'y') for rep in (1, 2)]
        seen = []
        for k in (1, 2, 3, 4):
            part = compare._shard(plan, (k, 4))
            cells = {(sc.name, wl, pol) for sc, wl, _r, pol, _d in part}
            # every repeat of a cell stays in its cell's shard
            self.assertEqual(len(part), 2 * len(cells))
            seen += sorted(cells)
        self.assertEqual(sorted(seen), sorted({(s, 'w', p) for s in 'abc' for p in 'xy'}))
        self.assertEqual(compare._shard(plan, (1, 1)), plan)
        self.assertEqual([(c[0].name, c[3]) for c in compare._shard(plan, (1, 4))][::2],
                         [('a', 'y'), ('c', 'y')])


if __name__ == '__main__':
    unittest.main(verbosity=2)
