/*
 * ring_handoff: a ring worker answers at idle priority.
 *
 * The answer wakes the caller while the worker still runs on the caller's
 * CPU, so the scheduler sees that CPU busy and moves the caller to an idle
 * one; its next request then goes to that CPU's queue, whose worker sleeps
 * and must be woken there. A CPU that runs only SCHED_IDLE threads counts
 * as free when a woken thread is placed (sched_idle_cpu), so a worker that
 * answers at idle priority keeps the caller on its CPU; the caller preempts
 * it at once. It pays only while some CPU is idle (else the caller stays
 * anyway), so auto samples the machine's idle time from /proc/stat every
 * PFS_HANDOFF_SAMPLE_NS and hands off while at least half a CPU was idle.
 *
 * The worker stays at idle priority while it waits for and serves the next
 * requests, and changes policy only when the verdict does: a pair of
 * sched_setscheduler calls around every answer cost more than a quarter of
 * a 4 KiB write's round trip. The risk is a thread at normal priority on
 * the worker's CPU, behind which a SCHED_IDLE worker waits for as long as
 * that thread runs (a busy loop: most of a second per request). So the
 * main thread guards the idle workers while there are any: every
 * PFS_HANDOFF_GUARD_NS it raises back to SCHED_OTHER a worker whose request
 * has waited unread for a whole look (the ring's IORING_SQ_TASKRUN flag), or
 * that has served one for PFS_HANDOFF_SERVE_NS while runnable, and pauses
 * that worker's handoffs for PFS_HANDOFF_SAMPLE_NS.
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
#define PFS_HANDOFF_IDLE_MILLI 500		 /* idle CPUs x 1000 that make auto hand off */
#define PFS_HANDOFF_GUARD_NS   (1000000ull)	 /* the guard looks this often */
#define PFS_HANDOFF_SERVE_NS   (4000000ull)	 /* serving this long while runnable: raised */
#define PFS_HANDOFF_QUIET_NS   (50 * 1000000ull) /* this long with no request: all raised */
#define PFS_CAP_SYS_NICE       23		 /* linux/capability.h */

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

static const struct sched_param pfs_normal_param; /* priority 0, as both policies want */

/* Back to SCHED_OTHER: by the worker itself (tid 0) or by the guard; only
 * the one that clears idle_prio makes the call. */
static bool pfs_handoff_raise(struct pfs_worker *w, pid_t tid)
{
	struct pfs_transport *t = w->t;

	if (!__atomic_exchange_n(&w->idle_prio, false, __ATOMIC_ACQ_REL))
		return false;
	__atomic_sub_fetch(&t->idle_workers, 1, __ATOMIC_RELAXED);
	if (sched_setscheduler(tid, SCHED_OTHER, &pfs_normal_param) != 0) {
		/* pfs_handoff_permitted said this works; if a limit changed
		 * under us, stop handing off (each idle worker that cannot
		 * come back says so once, and stays at idle priority). */
		pfs_log(LOG_ERR, "ring_handoff: back from idle priority: %s; handoff off",
			strerror(errno));
		__atomic_store_n(&t->handoff, PFS_HANDOFF_OFF, __ATOMIC_RELAXED);
	}
	return true;
}

void pfs_handoff_submit(struct pfs_worker *w)
{
	struct pfs_transport *t = w->t;
	enum pfs_handoff mode = __atomic_load_n(&t->handoff, __ATOMIC_RELAXED);
	bool idle = __atomic_load_n(&w->idle_prio, __ATOMIC_RELAXED), want;

	if (mode == PFS_HANDOFF_OFF && !idle)
		return;
	__atomic_store_n(&w->serving_since, 0, __ATOMIC_RELAXED);
	/* An answer nobody waits for (RELEASE) changes nothing. */
	if (!w->ent.unwaited) {
		want = mode == PFS_HANDOFF_ON ||
		       (mode == PFS_HANDOFF_AUTO &&
			__atomic_load_n(&t->handoff_now, __ATOMIC_RELAXED));
		if (want && __atomic_load_n(&w->handoff_paused_until, __ATOMIC_RELAXED) >
				    pfs_transport_now_ns())
			want = false;
		if (want && !idle) {
			/* The policy first, then the flag: the guard never
			 * raises a worker before it has gone down. */
			if (sched_setscheduler(0, SCHED_IDLE, &pfs_normal_param) == 0) {
				__atomic_store_n(&w->idle_prio, true, __ATOMIC_RELEASE);
				if (__atomic_add_fetch(&t->idle_workers, 1, __ATOMIC_RELAXED) == 1)
					sem_post(&t->wake); /* the guard starts looking */
				idle = true;
			}
		} else if (!want && idle) {
			pfs_handoff_raise(w, 0);
			idle = false;
		}
	}
	if (idle)
		__atomic_store_n(&w->handoffs, w->handoffs + 1, __ATOMIC_RELAXED);
	if (mode == PFS_HANDOFF_AUTO) {
		uint64_t at = pfs_transport_now_ns();

		if (at - __atomic_load_n(&t->sampled_ns, __ATOMIC_RELAXED) >=
		    PFS_HANDOFF_SAMPLE_NS) {
			io_uring_submit(&w->ent.ring); /* the answer goes first */
			pfs_handoff_sample(t, at);
		}
	}
}

/* Is thread tid of this process runnable (state R), not asleep in I/O? */
static bool pfs_thread_runnable(pid_t tid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true; /* cannot tell: raise it */
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	/* "tid (comm) S ...": the state follows the last ')' */
	p = strrchr(buf, ')');
	return !p || p[1] != ' ' || p[2] == 'R';
}

uint64_t pfs_handoff_guard(struct pfs_transport *t)
{
	uint64_t now, taken_sum = 0;
	bool busy = false;

	if (!__atomic_load_n(&t->idle_workers, __ATOMIC_RELAXED))
		return 0;
	now = pfs_transport_now_ns();
	for (unsigned i = t->ndev; i < t->nworkers; i++) {
		struct pfs_worker *w = &t->workers[i];
		uint64_t since, taken;
		bool stuck = false;

		if (!w->ring_capable || !__atomic_load_n(&w->idle_prio, __ATOMIC_ACQUIRE))
			continue;
		taken = __atomic_load_n(&w->taken, __ATOMIC_RELAXED);
		taken_sum += taken;
		/* A request queued for the worker that it has not run to take
		 * (the flag stays set until it does): the same one at two looks
		 * running, since the worker took none in between. */
		if (__atomic_load_n(w->ent.ring.sq.kflags, __ATOMIC_RELAXED) & IORING_SQ_TASKRUN) {
			stuck = w->pending_seen && w->pending_taken == taken;
			w->pending_seen = true;
			w->pending_taken = taken;
			busy = true;
		} else {
			w->pending_seen = false;
		}
		since = __atomic_load_n(&w->serving_since, __ATOMIC_RELAXED);
		busy = busy || since;
		if (!stuck && since && now > since && now - since >= PFS_HANDOFF_SERVE_NS)
			stuck = pfs_thread_runnable(w->tid);
		if (!stuck)
			continue;
		w->pending_seen = false;
		__atomic_store_n(&w->handoff_paused_until, now + PFS_HANDOFF_SAMPLE_NS,
				 __ATOMIC_RELAXED);
		if (pfs_handoff_raise(w, w->tid))
			__atomic_add_fetch(&w->handoff_stalls, 1, __ATOMIC_RELAXED);
	}
	/* Quiet for a while (no request taken, none waiting or served): the
	 * idle workers go back to normal priority, so that a quiet mount costs
	 * no looks; each comes down again with its next answer. */
	if (busy || taken_sum != t->guard_taken) {
		t->guard_taken = taken_sum;
		t->guard_active_ns = now;
	} else if (now - t->guard_active_ns >= PFS_HANDOFF_QUIET_NS) {
		for (unsigned i = t->ndev; i < t->nworkers; i++)
			if (t->workers[i].ring_capable)
				pfs_handoff_raise(&t->workers[i], t->workers[i].tid);
	}
	return __atomic_load_n(&t->idle_workers, __ATOMIC_RELAXED) ? PFS_HANDOFF_GUARD_NS : 0;
}
