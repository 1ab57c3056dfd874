/*
 * ring_handoff: a ring worker submits its answer at idle priority.
 *
 * The answer wakes the caller while the worker still runs on the caller's
 * CPU, so the scheduler sees that CPU busy and moves the caller to an idle
 * one; its next request then goes to that CPU's queue, whose worker sleeps
 * and must be woken there. A CPU that runs only SCHED_IDLE threads counts
 * as free when a woken thread is placed (sched_idle_cpu), so a worker that
 * answers at idle priority keeps the caller on its CPU; the caller preempts
 * it at once, and the worker goes back to normal priority when the caller
 * sleeps again. It pays only while some CPU is idle (else the caller stays
 * anyway, and the worker's two extra system calls and its wait behind
 * other threads are pure cost), so auto samples the machine's idle time
 * from /proc/stat every PFS_HANDOFF_SAMPLE_NS and hands off while at least
 * half a CPU was idle. A worker whose handoff took a millisecond or more
 * waited behind another thread on its own CPU; auto pauses that worker's
 * handoffs for one sample period.
 *
 * Coming back from SCHED_IDLE needs CAP_SYS_NICE or an RLIMIT_NICE that
 * allows the thread's nice value (sched(7)); without them a worker would be
 * stuck at idle priority, so the handoff is not used at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <syslog.h>
#include <unistd.h>

#include "transport_i.h"

#define PFS_HANDOFF_SAMPLE_NS  (50 * 1000000ull)
#define PFS_HANDOFF_IDLE_MILLI 500	    /* idle CPUs x 1000 that make auto hand off */
#define PFS_HANDOFF_STALL_NS   (1000000ull) /* a handoff this slow pauses its worker's */
#define PFS_CAP_SYS_NICE       23	    /* linux/capability.h */

/* CAP_SYS_NICE in the effective set, from /proc/self/status (no libcap). */
static bool pfs_has_cap_sys_nice(void)
{
	char line[256];
	unsigned long long eff;
	bool yes = false;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1) {
			yes = eff & (1ull << PFS_CAP_SYS_NICE);
			break;
		}
	fclose(f);
	return yes;
}

/* May a thread of ours come back from SCHED_IDLE to SCHED_OTHER? */
static bool pfs_handoff_permitted(char *why, size_t whylen)
{
	struct rlimit rl = {0};
	int nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0);
	if (errno)
		nice = 0;
	if (getrlimit(RLIMIT_NICE, &rl) == 0 &&
	    (rl.rlim_cur == RLIM_INFINITY || (rlim_t)(20 - nice) <= rl.rlim_cur))
		return true;
	if (pfs_has_cap_sys_nice())
		return true;
	snprintf(why, whylen,
		 "a thread at idle priority could not come back: needs CAP_SYS_NICE or "
		 "RLIMIT_NICE >= %d (ulimit -e), it is %llu",
		 20 - nice, (unsigned long long)rl.rlim_cur);
	return false;
}

int pfs_handoff_setup(struct pfs_transport *t, enum pfs_handoff want, char *err, size_t errlen)
{
	char why[200];

	t->handoff = PFS_HANDOFF_OFF;
	if (want == PFS_HANDOFF_OFF)
		return 0;
	if (t->spin_ns) {
		if (want == PFS_HANDOFF_ON) {
			snprintf(err, errlen,
				 "ring_handoff=on: not with ring_spin_us (a watching worker keeps "
				 "its CPU busy instead); set one of them");
			return -EINVAL;
		}
		t->handoff_why = "ring_spin_us is set";
		return 0;
	}
	if (!pfs_handoff_permitted(why, sizeof(why))) {
		if (want == PFS_HANDOFF_ON) {
			snprintf(err, errlen, "ring_handoff=on: %s; or use ring_handoff=off", why);
			return -EPERM;
		}
		snprintf(t->handoff_why_buf, sizeof(t->handoff_why_buf), "%s", why);
		t->handoff_why = t->handoff_why_buf;
		return 0;
	}
	if (want == PFS_HANDOFF_AUTO) {
		t->stat_fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
		if (t->stat_fd < 0) {
			snprintf(t->handoff_why_buf, sizeof(t->handoff_why_buf), "/proc/stat: %s",
				 strerror(errno));
			t->handoff_why = t->handoff_why_buf;
			return 0;
		}
		t->clk_tck = (uint64_t)sysconf(_SC_CLK_TCK);
	}
	t->handoff = want;
	return 0;
}

void pfs_handoff_teardown(struct pfs_transport *t)
{
	if (t->stat_fd >= 0)
		close(t->stat_fd);
	t->stat_fd = -1;
	pthread_mutex_destroy(&t->sample_lock);
}

const char *pfs_handoff_mode_name(const struct pfs_transport *t)
{
	static const char *const modes[] = {"auto", "on", "off"}; /* enum pfs_handoff */

	return modes[__atomic_load_n(&t->handoff, __ATOMIC_RELAXED)];
}

const char *pfs_handoff_describe(const struct pfs_transport *t, char *buf, size_t len)
{
	if (__atomic_load_n(&t->handoff, __ATOMIC_RELAXED) != PFS_HANDOFF_OFF || !t->handoff_why)
		snprintf(buf, len, "handoff %s", pfs_handoff_mode_name(t));
	else
		snprintf(buf, len, "handoff off: %s", t->handoff_why);
	return buf;
}

/* The machine's idle CPUs (x 1000) since the last sample; one sampler at a
 * time, the others go on without waiting. */
static void pfs_handoff_sample(struct pfs_transport *t, uint64_t now)
{
	char buf[256];
	unsigned long long idle, iowait;
	ssize_t n;

	if (pthread_mutex_trylock(&t->sample_lock))
		return;
	if (now - t->sampled_ns < PFS_HANDOFF_SAMPLE_NS)
		goto out;
	n = pread(t->stat_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		goto out;
	buf[n] = '\0';
	/* "cpu  user nice system idle iowait ...", in USER_HZ ticks */
	if (sscanf(buf, "cpu %*u %*u %*u %llu %llu", &idle, &iowait) != 2)
		goto out;
	idle += iowait;
	if (t->sampled_ns && t->clk_tck) {
		uint64_t milli = (uint64_t)(idle - t->idle_ticks) * 1000u * 1000000000u /
				 ((now - t->sampled_ns) * t->clk_tck);

		__atomic_store_n(&t->idle_milli, milli, __ATOMIC_RELAXED);
		__atomic_store_n(&t->handoff_now, milli >= PFS_HANDOFF_IDLE_MILLI,
				 __ATOMIC_RELAXED);
		__atomic_add_fetch(&t->idle_samples, 1, __ATOMIC_RELAXED);
	}
	t->idle_ticks = idle;
	__atomic_store_n(&t->sampled_ns, now, __ATOMIC_RELAXED);
out:
	pthread_mutex_unlock(&t->sample_lock);
}

void pfs_handoff_submit(struct pfs_worker *w)
{
	static const struct sched_param normal; /* priority 0, as SCHED_OTHER wants */
	struct pfs_transport *t = w->t;
	struct io_uring *ring = &w->ent.ring;
	enum pfs_handoff mode = __atomic_load_n(&t->handoff, __ATOMIC_RELAXED);
	bool now;

	if (mode == PFS_HANDOFF_OFF)
		return;
	now = !w->ent.unwaited &&
	      (mode == PFS_HANDOFF_ON || (__atomic_load_n(&t->handoff_now, __ATOMIC_RELAXED) &&
					  pfs_transport_now_ns() >= w->handoff_paused_until));
	if (now && sched_setscheduler(0, SCHED_IDLE, &normal) == 0) {
		uint64_t from = pfs_transport_now_ns(), took;

		io_uring_submit(ring);
		took = pfs_transport_now_ns() - from;
		if (sched_setscheduler(0, SCHED_OTHER, &normal) != 0) {
			/* pfs_handoff_permitted said this works; if a limit
			 * changed under us, stop handing off. */
			pfs_log(LOG_ERR, "ring_handoff: back from idle priority: %s; handoff off",
				strerror(errno));
			__atomic_store_n(&t->handoff, PFS_HANDOFF_OFF, __ATOMIC_RELAXED);
			return;
		}
		__atomic_store_n(&w->handoffs, w->handoffs + 1, __ATOMIC_RELAXED);
		if (took >= PFS_HANDOFF_STALL_NS && mode == PFS_HANDOFF_AUTO) {
			/* It waited behind another thread on its CPU (a
			 * SCHED_IDLE thread never preempts one): its own CPU
			 * is not free even if another is. */
			w->handoff_paused_until = from + took + PFS_HANDOFF_SAMPLE_NS;
			__atomic_store_n(&w->handoff_stalls, w->handoff_stalls + 1,
					 __ATOMIC_RELAXED);
		}
	}
	if (mode == PFS_HANDOFF_AUTO) {
		uint64_t at = pfs_transport_now_ns();

		if (at - __atomic_load_n(&t->sampled_ns, __ATOMIC_RELAXED) >=
		    PFS_HANDOFF_SAMPLE_NS) {
			io_uring_submit(ring); /* the answer goes first */
			pfs_handoff_sample(t, at);
		}
	}
}
