#!/usr/bin/env python3
"""unit.compare_cgroup: bench/comparison/compare_cgroup.py's file handling against fake cgroup
trees (v1, v2, hybrid, neither), so the v2 code is proven on a machine that has only v1, and the
scenario keys that drive it.   test_compare_cgroup.py SOURCE_ROOT"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SRC = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', '..')
sys.path.insert(0, os.path.join(SRC, 'bench', 'comparison'))
sys.path.insert(0, os.path.join(SRC, 'bench', 'common'))
sys.dont_write_bytecode = True

import compare_cgroup  # noqa: E402
import compare_scenario  # noqa: E402


def put(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def get(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


V1_FILES = {'memory.limit_in_bytes': '9223372036854771712\n', 'memory.oom_control':
            'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n', 'memory.failcnt': '0\n',
            'memory.max_usage_in_bytes': '0\n', 'memory.usage_in_bytes': '0\n',
            'memory.stat': 'cache 0\nrss 0\ndirty 0\nwriteback 0\n', 'cgroup.procs': ''}
V2_FILES = {'memory.max': 'max\n', 'memory.high': 'max\n', 'memory.current': '0\n',
            'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n',
            'memory.pressure': 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n'
                               'full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
            'memory.peak': '0\n', 'memory.stat': 'anon 0\nfile 0\nfile_dirty 0\nfile_writeback 0\n',
            'cgroup.procs': ''}


class FakeTree(unittest.TestCase):
    """A temp dir laid out like /sys/fs/cgroup. mkdir in a real cgroupfs fills the new group
    with its files, and rmdir removes a group that still lists them: both are emulated."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix='pfs-fake-cgroup-')
        self.files = V1_FILES
        self._mkdir, self._rmdir = os.mkdir, os.rmdir
        test = self

        # compare_cgroup.os is the os module: everyone else (shutil, makedirs) gets the
        # real calls, recognised by their keyword arguments or a path outside the fake group.
        def ours(path, kw):
            return not kw and isinstance(path, str) and os.path.basename(path).startswith('pressurefs-') \
                and path.startswith(test.root)

        def fake_mkdir(path, *a, **kw):
            test._mkdir(path, *a, **kw)
            if ours(path, kw):
                for name, text in test.files.items():
                    put(os.path.join(path, name), text)

        def fake_rmdir(path, *a, **kw):
            if not ours(path, kw):
                return test._rmdir(path, *a, **kw)
            if get(os.path.join(path, 'cgroup.procs')).strip():
                raise OSError(16, 'Device or resource busy')  # EBUSY: tasks left
            shutil.rmtree(path)
        compare_cgroup.os.mkdir = fake_mkdir
        compare_cgroup.os.rmdir = fake_rmdir

    def tearDown(self):
        compare_cgroup.os.mkdir, compare_cgroup.os.rmdir = self._mkdir, self._rmdir
        compare_cgroup._created.clear()
        shutil.rmtree(self.root)

    def v1_root(self):
        put(os.path.join(self.root, 'memory', 'memory.limit_in_bytes'), V1_FILES['memory.limit_in_bytes'])
        return os.path.join(self.root, 'memory')

    def v2_root(self, where, controllers='cpu memory pids', subtree='memory pids'):
        put(os.path.join(where, 'cgroup.controllers'), controllers + '\n')
        put(os.path.join(where, 'cgroup.subtree_control'), subtree + '\n')
        return where


class TestDetect(FakeTree):
    def test_detect_pure_v2_with_memory_enabled_for_children(self):
        self.v2_root(self.root)
        self.assertEqual(compare_cgroup.detect(self.root), ('v2', self.root))

    def test_detect_hybrid_prefers_v2_unified_when_it_has_memory(self):
        self.v1_root()
        unified = self.v2_root(os.path.join(self.root, 'unified'))
        self.assertEqual(compare_cgroup.detect(self.root), ('v2', unified))

    def test_detect_hybrid_falls_back_to_v1_when_unified_lacks_memory(self):
        v1 = self.v1_root()
        self.v2_root(os.path.join(self.root, 'unified'), controllers='hugetlb', subtree='')
        self.assertEqual(compare_cgroup.detect(self.root), ('v1', v1))

    def test_detect_v2_without_memory_in_subtree_control_is_not_used(self):
        self.v2_root(self.root, subtree='pids')
        version, why = compare_cgroup.detect(self.root)
        self.assertIsNone(version)
        self.assertIn('cgroup.subtree_control', why)
        self.assertIn('no cgroup v1 memory controller', why)

    def test_detect_neither_says_why(self):
        version, why = compare_cgroup.detect(self.root)
        self.assertIsNone(version)
        self.assertIn('no cgroup v1 memory controller at %s/memory' % self.root, why)


class TestGroupV1(FakeTree):
    def setUp(self):
        super().setUp()
        self.parent = self.v1_root()

    def test_v1_group_is_named_for_this_process_and_skips_a_name_it_did_not_make(self):
        taken = os.path.join(self.parent, 'pressurefs-%d-%d' % (os.getpid(), compare_cgroup._counter[0] + 1))
        os.makedirs(taken)
        put(os.path.join(taken, 'marker'), 'not ours\n')
        g = compare_cgroup.MemoryGroup('v1', self.parent)
        path = g.create()
        self.assertNotEqual(path, taken)
        self.assertRegex(os.path.basename(path), r'^pressurefs-%d-\d+$' % os.getpid())
        self.assertEqual(get(os.path.join(taken, 'marker')), 'not ours\n')
        self.assertIsNone(g.remove())
        self.assertTrue(os.path.isdir(taken), 'remove() touched a group it did not create')

    def test_v1_configure_kill_writes_the_limit_only(self):
        g = compare_cgroup.MemoryGroup('v1', self.parent)
        g.create()
        g.configure(16 << 20, 'kill')
        self.assertEqual(get(os.path.join(g.path, 'memory.limit_in_bytes')), '16777216\n')
        self.assertIn('oom_kill_disable 0', get(os.path.join(g.path, 'memory.oom_control')))

    def test_v1_configure_disabled_turns_the_oom_killer_off(self):
        g = compare_cgroup.MemoryGroup('v1', self.parent)
        g.create()
        g.configure(16 << 20, 'disabled')
        self.assertEqual(get(os.path.join(g.path, 'memory.oom_control')), '1\n')

    def test_v1_figures_read_failcnt_peak_and_oom_kills(self):
        g = compare_cgroup.MemoryGroup('v1', self.parent)
        g.create()
        g.configure(16 << 20)
        put(os.path.join(g.path, 'memory.failcnt'), '128\n')
        put(os.path.join(g.path, 'memory.max_usage_in_bytes'), '16777216\n')
        put(os.path.join(g.path, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n')
        put(os.path.join(g.path, 'memory.stat'), 'cache 4096\nrss 8192\ndirty 0\nwriteback 0\ntotal_rss 1\n')
        fig = g.figures()
        self.assertEqual((fig['failcnt'], fig['max_usage'], fig['oom_kill']), (128, 16 << 20, 1))
        self.assertEqual(fig['stat'], {'rss': 8192, 'cache': 4096, 'dirty': 0, 'writeback': 0})
        self.assertEqual(compare_cgroup.figures_summary(fig), 'peak 16.0 MiB, failcnt 128, OOM kills 1')
        self.assertEqual(g.file_cache(), 4096)

    def test_v1_remove_lifts_the_limit_and_waits_for_tasks(self):
        g = compare_cgroup.MemoryGroup('v1', self.parent)
        g.create()
        g.configure(16 << 20, 'disabled')
        put(g.procs_file(), '4242\n')
        err = g.remove(wait_s=0.3)
        self.assertIn('tasks [4242]', err)
        self.assertEqual(get(os.path.join(g.path, 'memory.limit_in_bytes')), '-1\n')
        self.assertEqual(get(os.path.join(g.path, 'memory.oom_control')), '0\n')
        put(g.procs_file(), '')
        self.assertEqual(compare_cgroup.groups_remove_all(), [])
        self.assertEqual(os.listdir(self.parent), ['memory.limit_in_bytes'])

    def test_exec_prefix_joins_the_group_with_the_same_pid(self):
        g = compare_cgroup.MemoryGroup('v1', self.parent)
        g.create()
        out = subprocess.run(g.exec_prefix() + ['sh', '-c', 'echo $$'], capture_output=True,
                             text=True, timeout=30, check=True).stdout.strip()
        self.assertEqual(get(g.procs_file()).strip(), out)
        put(g.procs_file(), '')


class TestGroupV2(FakeTree):
    def setUp(self):
        super().setUp()
        self.files = V2_FILES
        self.parent = self.v2_root(self.root)

    def test_v2_configure_kill_sets_memory_max(self):
        g = compare_cgroup.MemoryGroup('v2', self.parent)
        g.create()
        g.configure(32 << 20, 'kill')
        self.assertEqual(get(os.path.join(g.path, 'memory.max')), '33554432\n')
        self.assertEqual(get(os.path.join(g.path, 'memory.high')), 'max\n')

    def test_v2_configure_disabled_throttles_with_memory_high(self):
        g = compare_cgroup.MemoryGroup('v2', self.parent)
        g.create()
        g.configure(32 << 20, 'disabled')
        self.assertEqual(get(os.path.join(g.path, 'memory.high')), '33554432\n')
        self.assertEqual(get(os.path.join(g.path, 'memory.max')), 'max\n')

    def test_v2_figures_read_events_pressure_and_peak(self):
        g = compare_cgroup.MemoryGroup('v2', self.parent)
        g.create()
        g.configure(32 << 20, 'disabled')
        put(os.path.join(g.path, 'memory.events'), 'low 0\nhigh 812\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n')
        put(os.path.join(g.path, 'memory.pressure'),
            'some avg10=12.50 avg60=3.10 avg300=0.70 total=2500000\nfull avg10=9.00 avg60=2.00 avg300=0.50 total=1800000\n')
        put(os.path.join(g.path, 'memory.peak'), '33550000\n')
        put(os.path.join(g.path, 'memory.current'), '1000\n')
        put(os.path.join(g.path, 'memory.stat'), 'anon 700\nfile 300\nfile_dirty 4\nfile_writeback 0\nshmem 0\n')
        fig = g.figures()
        self.assertEqual(fig['events']['high'], 812)
        self.assertEqual(fig['oom_kill'], 1)
        self.assertEqual(fig['pressure']['some'], {'avg10': 12.5, 'avg60': 3.1, 'avg300': 0.7, 'total_us': 2500000})
        self.assertEqual(fig['pressure']['full']['total_us'], 1800000)
        self.assertEqual((fig['max_usage'], fig['usage']), (33550000, 1000))
        self.assertEqual(fig['stat'], {'anon': 700, 'file': 300, 'file_dirty': 4, 'file_writeback': 0})
        self.assertEqual(g.file_cache(), 300)
        self.assertEqual(compare_cgroup.figures_summary(fig),
                         'peak 32.0 MiB, high 812, max 3, oom 1, OOM kills 1, stalled 2.5 s')
        m = compare_cgroup.run_metrics({'cgroup': {'version': 'v2', 'limit': 32 << 20, 'figures': fig}})
        self.assertEqual((m['cgroup_events_high'], m['cgroup_events_max'], m['cgroup_pressure_some_us']),
                         (812, 3, 2500000))

    def test_v2_release_lifts_high_and_max(self):
        g = compare_cgroup.MemoryGroup('v2', self.parent)
        g.create()
        g.configure(32 << 20, 'kill')
        g.release()
        self.assertEqual(get(os.path.join(g.path, 'memory.max')), 'max\n')
        self.assertEqual(get(os.path.join(g.path, 'memory.high')), 'max\n')
        self.assertIsNone(g.remove())

    def test_v2_usage_reads_memory_current_and_max_as_none(self):
        g = compare_cgroup.MemoryGroup('v2', self.parent)
        g.create()
        put(os.path.join(g.path, 'memory.current'), '123456\n')
        self.assertEqual(g.usage(), 123456)
        self.assertIsNone(compare_cgroup._int_file(os.path.join(g.path, 'memory.max')))


class TestParsing(unittest.TestCase):
    def test_parse_keyed_skips_malformed_lines(self):
        self.assertEqual(compare_cgroup.parse_keyed('a 1\nbad\nb x\nc 3 4\nd 5\n'), {'a': 1, 'd': 5})

    def test_parse_pressure_without_full_line(self):
        self.assertEqual(compare_cgroup.parse_pressure('some avg10=1.00 total=7\n'),
                         {'some': {'avg10': 1.0, 'total_us': 7}})

    def test_group_refuses_an_unknown_version_and_oom_mode(self):
        with self.assertRaises(ValueError):
            compare_cgroup.MemoryGroup('v3', '/nonexistent')
        g = compare_cgroup.MemoryGroup('v1', '/nonexistent')
        with self.assertRaisesRegex(ValueError, 'accepted: kill, disabled'):
            g.configure(1 << 20, 'panic')


class TestScenarioKeys(unittest.TestCase):
    def load(self, text):
        d = tempfile.mkdtemp(prefix='pfs-scen-')
        try:
            p = os.path.join(d, 'x.conf')
            put(p, 'description = x\n' + text)
            return compare_scenario.scenario_load(p)
        finally:
            shutil.rmtree(d)

    def test_scenario_cgroup_keys_are_read(self):
        sc = self.load('cgroup_limit = 16M\ncgroup_oom = disabled\ncgroup_budget = limit-overhead-12M\n'
                       'decided_by = kernel\ncrash = power\ncrash_at = 0.5\n')
        self.assertEqual((sc.cgroup_limit, sc.cgroup_oom, sc.cgroup_headroom, sc.decided_by, sc.crash, sc.crash_at),
                         (16 << 20, 'disabled', 12 << 20, 'kernel', 'power', 0.5))

    def test_scenario_cgroup_budget_without_a_limit_is_refused(self):
        with self.assertRaisesRegex(ValueError, 'need cgroup_limit'):
            self.load('cgroup_budget = limit-overhead-1M\n')

    def test_scenario_bad_values_say_what_is_accepted(self):
        for text, msg in (('cgroup_oom = maybe\n', 'accepted: kill, disabled'),
                          ('crash = meteor\n', 'accepted: none, daemon, power'),
                          ('crash_at = 1.5\n', 'between 0 and 1'),
                          ('cgroup_limit = 100K\n', 'at least 1M'),
                          ('cgroup_budget = 4M\n', 'limit-overhead-SIZE'),
                          ('decided_by = fate\n', 'accepted: policy, kernel')):
            with self.assertRaisesRegex(ValueError, msg):
                self.load(text)

    def test_shipped_cgroup_and_power_scenarios_load(self):
        scen = compare_scenario.scenario_list(os.path.join(SRC, 'bench', 'comparison', 'scenarios'))
        self.assertEqual(scen['cgroup-kernel'].decided_by, 'kernel')
        self.assertEqual(scen['cgroup-oom-disabled'].cgroup_oom, 'disabled')
        self.assertIsNotNone(scen['cgroup-squeeze'].cgroup_headroom)
        self.assertEqual(scen['power-cut'].crash, 'power')


if __name__ == '__main__':
    unittest.main(verbosity=2)
