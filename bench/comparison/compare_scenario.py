"""Pressure scenarios: bench/comparison/scenarios/NAME.conf, small key = value files.

Keys (unknown keys are an error, so a typo cannot silently weaken a scenario):
  description       one line: what the scenario does to the daemon
  mount             comma list of pressurefs -o options (policy= is added by the driver)
  mount.POLICY      extra -o options for one policy only (e.g. mount.nofail = stall_warn_ms=2000)
  stress            pfs-stress run flags (the driver adds --dir, --journal, --duration, --seed)
  duration          seconds of the full run (default 10)
  quick_duration    seconds under --quick (default 4)
  quick             yes/no: part of the --quick subset (default no)
  balloon_schedule  "T:SIZE T:SIZE ...": at T seconds after the workload starts write SIZE to
                    .pressurefs/balloon (the simulated competitor inflates or deflates)
  rlimit_as         "vmsize+SIZE": after the mount, cap the daemon's RLIMIT_AS at its VmSize
                    plus SIZE with prlimit --pid
  daemon_env        space-separated NAME=VALUE added to the daemon's environment
  daemon_stack      RLIMIT_STACK for the daemon (prlimit --stack): glibc sizes thread stacks
                    from it, so a cap on RLIMIT_AS is not eaten by 8 MiB thread stacks
  churn             yes/no: run the metadata churner (create/open/stat/readdir/rename/unlink)
                    beside the workload
  cgroup_limit      SIZE: run the daemon in a memory cgroup of its own with this limit
                    (compare_cgroup: v1 memory.limit_in_bytes, v2 memory.max)
  cgroup_oom        kill (default: the OOM killer ends the daemon at the limit) or disabled
                    (the kernel stalls it instead: v1 memory.oom_control = 1, v2 memory.high)
  cgroup_budget     "limit-overhead-SIZE": after the mount, set mem_limit to the group's limit
                    minus the daemon's measured overhead (what it holds outside the budget)
                    minus SIZE, so the policy decides before the kernel does
  decided_by        policy (default) or kernel: with kernel no allocation ever fails in the
                    allocator, so the policies' character checks do not apply
  crash             none (default), daemon (the crash control file) or power (the backing dir
                    on an ext4 image that is shut down unflushed): how the run ends
  crash_at          the moment of the crash as a fraction of the run (default 0.6)
  expect_hang       comma list of policies this scenario is built to hang (memory never comes
                    back): for them the hang is checked as its own invariant; anywhere else a
                    hang fails the policy's invariants
"""

import os
import re

_KEYS = {
    'description', 'mount', 'stress', 'duration', 'quick_duration', 'quick',
    'balloon_schedule', 'rlimit_as', 'daemon_env', 'daemon_stack', 'churn',
    'cgroup_limit', 'cgroup_oom', 'cgroup_budget', 'decided_by', 'crash', 'crash_at',
    'expect_hang',
}
CRASH_MODES = ('none', 'daemon', 'power')
_SIZE_RE = re.compile(r'^(\d+)([KMG]?)$')


def size_parse(text):
    """'64K' -> 65536 (powers of 1024, as the daemon reads sizes)."""
    m = _SIZE_RE.match(text.strip().upper())
    if not m:
        raise ValueError("'%s' is not a size such as 65536, 64K, 64M or 1G" % text)
    return int(m.group(1)) * {'': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}[m.group(2)]


def _bool_parse(text):
    t = text.strip().lower()
    if t in ('yes', 'true', '1', 'on'):
        return True
    if t in ('no', 'false', '0', 'off', ''):
        return False
    raise ValueError("'%s' is not yes/no" % text)


class Scenario:
    def __init__(self, name, path):
        self.name = name
        self.path = path
        self.description = ''
        self.mount = ''
        self.mount_policy = {}
        self.stress = []
        self.duration = 10
        self.quick_duration = 4
        self.quick = False
        self.balloon_schedule = []   # [(seconds, bytes)]
        self.rlimit_headroom = None  # bytes above VmSize, or None
        self.daemon_env = {}
        self.daemon_stack = None
        self.churn = False
        self.cgroup_limit = None     # bytes, or None: no memory cgroup
        self.cgroup_oom = 'kill'
        self.cgroup_headroom = None  # cgroup_budget: bytes below limit - overhead, or None
        self.decided_by = 'policy'
        self.crash = 'none'
        self.crash_at = 0.6
        self.expect_hang = []

    def mount_options(self, policy):
        """The -o string for one policy: policy first, then scenario, then per-policy extras."""
        parts = ['policy=' + policy]
        if self.mount:
            parts.append(self.mount)
        if self.mount_policy.get(policy):
            parts.append(self.mount_policy[policy])
        return ','.join(parts)

    def to_json(self):
        return {
            'name': self.name, 'description': self.description, 'mount': self.mount,
            'mount_policy': self.mount_policy, 'stress': ' '.join(self.stress),
            'duration': self.duration, 'quick_duration': self.quick_duration,
            'balloon_schedule': self.balloon_schedule, 'rlimit_headroom': self.rlimit_headroom,
            'daemon_env': self.daemon_env, 'daemon_stack': self.daemon_stack, 'churn': self.churn,
            'cgroup_limit': self.cgroup_limit, 'cgroup_oom': self.cgroup_oom,
            'cgroup_headroom': self.cgroup_headroom, 'decided_by': self.decided_by,
            'crash': self.crash, 'crash_at': self.crash_at,
            'expect_hang': self.expect_hang,
        }


def scenario_load(path):
    name = os.path.basename(path)
    if name.endswith('.conf'):
        name = name[:-5]
    sc = Scenario(name, path)
    with open(path, encoding='utf-8') as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.split('#', 1)[0].strip()
            if not line:
                continue
            where = '%s:%d' % (path, lineno)
            if '=' not in line:
                raise ValueError('%s: expected key = value' % where)
            key, value = (s.strip() for s in line.split('=', 1))
            try:
                _scenario_set(sc, key, value)
            except ValueError as e:
                raise ValueError('%s: %s' % (where, e)) from None
    if not sc.description:
        raise ValueError('%s: no description line' % path)
    if sc.cgroup_limit is None and (sc.cgroup_headroom is not None or sc.cgroup_oom != 'kill'):
        raise ValueError('%s: cgroup_budget and cgroup_oom need cgroup_limit' % path)
    return sc


def _scenario_set(sc, key, value):
    if key.startswith('mount.'):
        sc.mount_policy[key[6:]] = value
        return
    if key not in _KEYS:
        raise ValueError("unknown key '%s' (accepted: %s, mount.POLICY)" % (key, ', '.join(sorted(_KEYS))))
    if key == 'description':
        sc.description = value
    elif key == 'mount':
        sc.mount = value
    elif key == 'stress':
        sc.stress = value.split()
    elif key in ('duration', 'quick_duration'):
        v = int(value)
        if v < 1:
            raise ValueError('%s must be >= 1' % key)
        setattr(sc, key, v)
    elif key == 'quick':
        sc.quick = _bool_parse(value)
    elif key == 'churn':
        sc.churn = _bool_parse(value)
    elif key == 'expect_hang':
        sc.expect_hang = [p for p in re.split(r'[,\s]+', value) if p]
    elif key == 'balloon_schedule':
        steps = []
        for item in value.split():
            t, _, size = item.partition(':')
            steps.append((float(t), size_parse(size)))
        sc.balloon_schedule = sorted(steps)
    elif key == 'rlimit_as':
        if not value.startswith('vmsize+'):
            raise ValueError("rlimit_as must read 'vmsize+SIZE'")
        sc.rlimit_headroom = size_parse(value[len('vmsize+'):])
    elif key == 'daemon_stack':
        sc.daemon_stack = size_parse(value)
    elif key == 'cgroup_limit':
        sc.cgroup_limit = size_parse(value)
        if sc.cgroup_limit < 1 << 20:
            raise ValueError('cgroup_limit must be at least 1M')
    elif key == 'cgroup_oom':
        if value not in ('kill', 'disabled'):
            raise ValueError("cgroup_oom '%s' (accepted: kill, disabled)" % value)
        sc.cgroup_oom = value
    elif key == 'cgroup_budget':
        if not value.startswith('limit-overhead-'):
            raise ValueError("cgroup_budget must read 'limit-overhead-SIZE'")
        sc.cgroup_headroom = size_parse(value[len('limit-overhead-'):])
    elif key == 'decided_by':
        if value not in ('policy', 'kernel'):
            raise ValueError("decided_by '%s' (accepted: policy, kernel)" % value)
        sc.decided_by = value
    elif key == 'crash':
        if value not in CRASH_MODES:
            raise ValueError("crash '%s' (accepted: %s)" % (value, ', '.join(CRASH_MODES)))
        sc.crash = value
    elif key == 'crash_at':
        v = float(value)
        if not 0 < v < 1:
            raise ValueError('crash_at must be a fraction of the run, between 0 and 1')
        sc.crash_at = v
    elif key == 'daemon_env':
        for item in value.split():
            k, sep, v = item.partition('=')
            if not sep:
                raise ValueError("daemon_env item '%s' is not NAME=VALUE" % item)
            sc.daemon_env[k] = v


def scenario_list(directory):
    """Every scenario in directory, by name."""
    out = {}
    for fn in sorted(os.listdir(directory)):
        if fn.endswith('.conf'):
            sc = scenario_load(os.path.join(directory, fn))
            out[sc.name] = sc
    return out
