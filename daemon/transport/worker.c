/*
 * The worker pool: sizing, the memory charged for it, the threads, and the
 * /dev/fuse loop. The io_uring side of a worker is in uring.c.
 *
 * Pool shapes:
 *   /dev/fuse:  N workers, each reading /dev/fuse into its own buffer;
 *               N = (budget/8) / (stack + buffer), within 2..16 (16 without
 *               a budget; 1 with -s).
 *   io_uring:   1 to 4 /dev/fuse workers (INIT, FORGET, INTERRUPT, and
 *               what the kernel sends before every queue has an entry; a
 *               FORGET of an unlinked file closes its backing fd, which the
 *               backing fs may make wait for its journal, so one worker
 *               falls behind a burst of unlinks) plus CPUs x depth ring
 *               workers, each with one entry of its CPU's queue. If INIT does not take io_uring
 * after all (auto), the ring workers read /dev/fuse instead: the same buffers serve.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "transport_i.h"

#define PFS_PAGE 4096u

static size_t pfs_worker_bytes(unsigned max_write)
{
	/* stack, buffer, and the slack that aligns the buffer to a page */
	return PFS_WORKER_STACK + PFS_REQ_HEADER_PAGE + max_write + PFS_PAGE;
}

static uint64_t pfs_ring_bytes(unsigned nqueues, unsigned depth, unsigned max_write)
{
	return (uint64_t)nqueues * depth * (max_write + PFS_REQ_HEADER_PAGE);
}

/*
 * Ring memory may take min(8 MiB, mem_limit/8); the depth is what fits, at
 * most PFS_RING_DEPTH_MAX. The kernel gives a request only to an entry of
 * its caller's CPU, so every queue needs PFS_RING_DEPTH_MIN entries: one
 * request stalled by its policy must not leave that CPU's callers (the
 * control files that would end the stall among them) without an entry.
 * When that does not fit, max_write is halved (down to PFS_MIN_WRITE)
 * before io_uring is given up. Returns false if it does not fit at all.
 */
static bool pfs_ring_size(uint64_t mem_limit, unsigned nqueues, unsigned *max_write,
			  unsigned *depth)
{
	uint64_t room = PFS_RING_BYTES_MAX;

	if (mem_limit && mem_limit / 8 < room)
		room = mem_limit / 8;
	for (unsigned mw = PFS_MAX_WRITE; mw >= PFS_MIN_WRITE; mw /= 2) {
		uint64_t d = room / pfs_ring_bytes(nqueues, 1, mw);

		if (d >= PFS_RING_DEPTH_MIN) {
			/* The ring workers' stacks as well may take no more
			 * than a quarter of the budget, beyond the minimum. */
			uint64_t most =
				mem_limit
					? mem_limit / 4 / ((uint64_t)nqueues * pfs_worker_bytes(mw))
					: PFS_RING_DEPTH_MAX;
			if (d > most)
				d = most < PFS_RING_DEPTH_MIN ? PFS_RING_DEPTH_MIN : most;
			*max_write = mw;
			*depth = d > PFS_RING_DEPTH_MAX ? PFS_RING_DEPTH_MAX : (unsigned)d;
			return true;
		}
	}
	return false;
}

static unsigned pfs_dev_workers(uint64_t mem_limit, unsigned max_write, bool single)
{
	uint64_t n;

	if (single)
		return 1;
	if (!mem_limit)
		return PFS_DEV_WORKERS_MAX;
	n = mem_limit / 8 / pfs_worker_bytes(max_write);
	if (n < PFS_DEV_WORKERS_MIN)
		n = PFS_DEV_WORKERS_MIN;
	return n > PFS_DEV_WORKERS_MAX ? PFS_DEV_WORKERS_MAX : (unsigned)n;
}

static int pfs_worker_alloc(struct pfs_transport *t, struct pfs_worker *w)
{
	size_t bytes = pfs_worker_bytes(t->max_write);
	uintptr_t p;

	w->block = alloc_malloc(t->fs->alloc, ALLOC_SITE_REQUEST, bytes, ALLOC_NORETRY);
	if (!w->block)
		return -ENOMEM;
	t->charged += bytes;
	w->stack = w->block;
	p = (uintptr_t)w->block + PFS_WORKER_STACK;
	p = (p + PFS_PAGE - 1) & ~(uintptr_t)(PFS_PAGE - 1);
	w->buf = (char *)p;
	w->buf_size = PFS_REQ_HEADER_PAGE + t->max_write;
	return 0;
}

void pfs_transport_destroy(struct pfs *fs)
{
	struct pfs_transport *t = fs->conn.transport;

	if (!t)
		return;
	for (unsigned i = 0; t->workers && i < t->nworkers; i++) {
		pfs_ring_entry_teardown(&t->workers[i]);
		alloc_free(fs->alloc, t->workers[i].block);
	}
	alloc_free(fs->alloc, t->workers);
	if (t->stop_fd >= 0)
		close(t->stop_fd);
	pfs_handoff_teardown(t); /* also after a fallback to /dev/fuse */
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->changed);
	sem_destroy(&t->wake);
	alloc_free(fs->alloc, t);
	fs->conn.transport = NULL;
}

/* Can io_uring be tried at all? false with the reason in why. */
static bool pfs_uring_try(struct pfs_transport *t, const struct pfs_transport_config *cfg,
			  char *why, size_t whylen)
{
	uint64_t mem_limit = (uint64_t)t->fs->ctl.opt.num[PFS_OPT_mem_limit];

	if (!pfs_uring_kernel_enabled(why, whylen) || !pfs_uring_probe(why, whylen))
		return false;
	t->nqueues = pfs_possible_cpus();
	if (!pfs_ring_size(mem_limit, t->nqueues, &t->max_write, &t->depth)) {
		snprintf(why, whylen,
			 "mem_limit=%llu is too small for the rings (%u CPUs x %u entries x %u "
			 "bytes must fit in mem_limit/8)",
			 (unsigned long long)mem_limit, t->nqueues, PFS_RING_DEPTH_MIN,
			 PFS_MIN_WRITE + PFS_REQ_HEADER_PAGE);
		return false;
	}
	if (cfg->single_thread)
		t->depth = PFS_RING_DEPTH_MIN;
	return true;
}

int pfs_transport_create(struct pfs *fs, const struct pfs_transport_config *cfg, char *err,
			 size_t errlen)
{
	uint64_t mem_limit = (uint64_t)fs->ctl.opt.num[PFS_OPT_mem_limit];
	struct pfs_transport *t;
	char why[320] = "";
	unsigned nring = 0;
	int r;

	t = alloc_malloc(fs->alloc, ALLOC_SITE_REQUEST, sizeof(*t), ALLOC_NORETRY | ALLOC_ZERO);
	if (!t) {
		snprintf(err, errlen, "no memory for the worker pool");
		return -ENOMEM;
	}
	fs->conn.transport = t;
	t->fs = fs;
	t->want = cfg->want;
	t->spin_ns = (uint64_t)cfg->spin_us * 1000;
	t->stop_fd = -1;
	t->stat_fd = -1;
	t->handoff = PFS_HANDOFF_OFF; /* pfs_handoff_setup decides, with io_uring only */
	t->state = PFS_TS_STARTING;
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->sample_lock, NULL);
	pthread_cond_init(&t->changed, NULL);
	sem_init(&t->wake, 0, 0);

	t->max_write = PFS_MAX_WRITE;
	if (cfg->want == PFS_TRANSPORT_DEV_FUSE)
		t->dev_fuse_why = "transport=dev_fuse";
	else if (pfs_uring_try(t, cfg, why, sizeof(why)))
		t->uring_possible = true;
	if (!t->uring_possible && cfg->want == PFS_TRANSPORT_IO_URING) {
		snprintf(err, errlen, "transport=io_uring: %s", why);
		r = -EOPNOTSUPP;
		goto fail;
	}
	if (t->uring_possible) {
		r = pfs_handoff_setup(t, cfg->handoff, err, errlen);
		if (r)
			goto fail;
		nring = t->nqueues * t->depth;
		/* One is enough for INIT, FORGET and INTERRUPT under a small
		 * budget; up to four keep up with a burst of unlinks. */
		t->ndev = mem_limit ? (unsigned)(mem_limit / 8 / pfs_worker_bytes(t->max_write))
				    : PFS_URING_DEV_WORKERS;
		if (t->ndev > PFS_URING_DEV_WORKERS)
			t->ndev = PFS_URING_DEV_WORKERS;
		if (t->ndev < 1 || cfg->single_thread)
			t->ndev = 1;
		t->nworkers = t->ndev + nring;
		t->stop_fd = eventfd(0, EFD_CLOEXEC);
		if (t->stop_fd < 0) {
			r = -errno;
			snprintf(err, errlen, "eventfd: %s", strerror(errno));
			goto fail;
		}
	} else {
		t->max_write = PFS_MAX_WRITE;
		t->nworkers = pfs_dev_workers(mem_limit, t->max_write, cfg->single_thread);
		t->ndev = t->nworkers;
		if (cfg->want == PFS_TRANSPORT_AUTO) {
			static char line[360];
			snprintf(line, sizeof(line), "io_uring unavailable: %s", why);
			t->dev_fuse_why = line;
		}
	}

	t->workers = alloc_malloc(fs->alloc, ALLOC_SITE_REQUEST, t->nworkers * sizeof(*t->workers),
				  ALLOC_NORETRY | ALLOC_ZERO);
	if (!t->workers) {
		r = -ENOMEM;
		goto nomem;
	}
	t->charged += t->nworkers * sizeof(*t->workers) + sizeof(*t);
	for (unsigned i = 0; i < t->nworkers; i++) {
		struct pfs_worker *w = &t->workers[i];

		w->t = t;
		w->index = i;
		/* the first ndev read /dev/fuse from the start (INIT comes there) */
		w->ring_capable = t->uring_possible && i >= t->ndev;
		w->qid = w->ring_capable ? (i - t->ndev) % t->nqueues : 0;
		r = pfs_worker_alloc(t, w);
		if (r)
			goto nomem;
	}
	return 0;

nomem:
	snprintf(err, errlen,
		 "mem_limit=%llu minus balloon leaves no room for the request pool (%u workers x "
		 "%zu bytes: stack, max_write and a header page)",
		 (unsigned long long)mem_limit, t->nworkers, pfs_worker_bytes(t->max_write));
fail:
	pfs_transport_destroy(fs);
	return r;
}

unsigned pfs_transport_max_write(const struct pfs *fs)
{
	return fs->conn.transport ? fs->conn.transport->max_write : PFS_MAX_WRITE;
}

const char *pfs_transport_name(const struct pfs *fs)
{
	const struct pfs_transport *t = fs->conn.transport;
	enum pfs_transport_state st;

	if (!t)
		return "dev_fuse";
	st = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
	if (st == PFS_TS_STARTING)
		return "starting";
	if (st == PFS_TS_URING && __atomic_load_n(&t->failed, __ATOMIC_RELAXED) == 0)
		return "io_uring";
	if (st == PFS_TS_STOP)
		return t->ended_on_uring ? "io_uring" : "dev_fuse";
	return "dev_fuse";
}

void pfs_transport_spin_counts(const struct pfs *fs, uint64_t *hits, uint64_t *misses)
{
	const struct pfs_transport *t = fs->conn.transport;

	*hits = t ? __atomic_load_n(&t->spin_hits, __ATOMIC_RELAXED) : 0;
	*misses = t ? __atomic_load_n(&t->spin_misses, __ATOMIC_RELAXED) : 0;
}

void pfs_transport_handoff_stats(const struct pfs *fs, struct pfs_handoff_stats *out)
{
	const struct pfs_transport *t = fs->conn.transport;

	memset(out, 0, sizeof(*out));
	out->mode = "off";
	if (!t || !t->uring_possible)
		return;
	out->mode = pfs_handoff_mode_name(t);
	for (unsigned i = 0; i < t->nworkers; i++) {
		out->handoffs += __atomic_load_n(&t->workers[i].handoffs, __ATOMIC_RELAXED);
		out->stalls += __atomic_load_n(&t->workers[i].handoff_stalls, __ATOMIC_RELAXED);
	}
	out->samples = __atomic_load_n(&t->idle_samples, __ATOMIC_RELAXED);
	out->idle_milli = __atomic_load_n(&t->idle_milli, __ATOMIC_RELAXED);
}

bool pfs_transport_uring_wanted(const struct pfs *fs)
{
	return fs->conn.transport && fs->conn.transport->uring_possible;
}

void pfs_transport_session_ended(struct pfs_transport *t, bool failed)
{
	if (failed)
		__atomic_store_n(&t->status, 1, __ATOMIC_RELAXED);
	fuse_session_exit(t->fs->conn.se);
	sem_post(&t->wake);
}

void pfs_transport_init_answered(struct pfs *fs, bool uring, bool kernel_offered)
{
	struct pfs_transport *t = fs->conn.transport;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	if (t->state == PFS_TS_STARTING)
		__atomic_store_n(&t->state, uring ? PFS_TS_URING : PFS_TS_DEV_FUSE,
				 __ATOMIC_RELEASE);
	pthread_cond_broadcast(&t->changed);
	pthread_mutex_unlock(&t->lock);
	if (uring) {
		char why[256];

		pfs_log(LOG_INFO, "transport: io_uring (%u CPUs x %u entries of %u KiB, %s)",
			t->nqueues, t->depth, t->max_write / 1024,
			pfs_handoff_describe(t, why, sizeof(why)));
		return;
	}
	if (t->want == PFS_TRANSPORT_IO_URING) {
		pfs_log(LOG_ERR, "transport=io_uring: the kernel's INIT did not offer "
				 "FUSE_OVER_IO_URING (fuse module older than 6.14, or "
				 "enable_uring turned off meanwhile); unmounting");
		pfs_transport_session_ended(t, true);
		return;
	}
	if (t->dev_fuse_why)
		pfs_log(LOG_INFO, "transport: /dev/fuse (%s)", t->dev_fuse_why);
	else
		pfs_log(LOG_INFO, "transport: /dev/fuse (the kernel's INIT did not offer "
				  "FUSE_OVER_IO_URING)");
	(void)kernel_offered;
}

/* Read and handle requests from /dev/fuse until the session ends. */
static void pfs_dev_worker_loop(struct pfs_worker *w)
{
	struct pfs_transport *t = w->t;
	struct fuse_session *se = t->fs->conn.se;
	int fd = fuse_session_fd(se);

	for (;;) {
		ssize_t n;
		int e;

		/* Stopping cancels workers blocked here, and only here. */
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		n = pfs_fuse_io_receive(t->fs, fd, w->buf, w->buf_size);
		e = errno;
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (n < 0) {
			if (fuse_session_exited(se))
				return;
			/* ENOENT: the request was interrupted before we read it */
			if (e == ENOENT || e == EINTR || e == EAGAIN)
				continue;
			if (e != ENODEV)
				pfs_log(LOG_ERR, "reading /dev/fuse: %s", strerror(e));
			pfs_transport_session_ended(t, e != ENODEV);
			return;
		}
		if ((size_t)n < sizeof(struct fuse_in_header)) {
			pfs_log(LOG_ERR, "short read on /dev/fuse (%zd bytes)", n);
			pfs_transport_session_ended(t, true);
			return;
		}
		/* A request read is answered even when the session is ending:
		 * dropped, a RELEASE would leave its handle behind and a caller
		 * would get an abort instead of its answer. */
		fuse_session_process_buf(se, &(struct fuse_buf){.mem = w->buf, .size = (size_t)n});
		if (fuse_session_exited(se))
			return;
	}
}

/* A ring worker runs on its queue's CPU, where the kernel queues the
 * requests of that CPU's callers. Best effort: a CPU may be offline or
 * outside our cpuset. cpu < 0: anywhere again. */
static void pfs_worker_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (cpu >= 0)
		CPU_SET(cpu, &set);
	else
		for (int c = 0; c < CPU_SETSIZE; c++)
			CPU_SET(c, &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *pfs_worker_main(void *arg)
{
	struct pfs_worker *w = arg;
	struct pfs_transport *t = w->t;
	enum pfs_transport_state st;
	char name[16];

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	if (w->ring_capable)
		snprintf(name, sizeof(name), "pfs-ring%u.%u", w->qid, w->index);
	else
		snprintf(name, sizeof(name), "pfs-dev%u", w->index);
	pthread_setname_np(pthread_self(), name);
	if (!w->ring_capable) {
		pfs_dev_worker_loop(w);
		return NULL;
	}
	pthread_mutex_lock(&t->lock);
	while (t->state == PFS_TS_STARTING)
		pthread_cond_wait(&t->changed, &t->lock);
	st = t->state;
	pthread_mutex_unlock(&t->lock);
	if (st == PFS_TS_URING) {
		w->tid = gettid();
		pfs_worker_pin((int)w->qid);
		if (pfs_ring_worker_loop(w))
			return NULL;
		/* The kernel refused the entry: it turned io_uring off for
		 * this connection, so requests come on /dev/fuse. */
		if (t->want == PFS_TRANSPORT_IO_URING) {
			pfs_transport_session_ended(t, true);
			return NULL;
		}
		pfs_worker_pin(-1);
	}
	if (st != PFS_TS_STOP)
		pfs_dev_worker_loop(w);
	return NULL;
}

static int pfs_worker_start(struct pfs_worker *w)
{
	pthread_attr_t attr;
	int r;

	r = pthread_attr_init(&attr);
	if (r)
		return -r;
	r = pthread_attr_setstack(&attr, w->stack, PFS_WORKER_STACK);
	if (!r)
		r = pthread_create(&w->thread, &attr, pfs_worker_main, w);
	pthread_attr_destroy(&attr);
	if (r)
		return -r;
	w->started = true;
	return 0;
}

static void pfs_transport_stop(struct pfs_transport *t)
{
	uint64_t one = 1;

	pthread_mutex_lock(&t->lock);
	/* What the stats say from now on (the final stats_file among them). */
	t->ended_on_uring =
		t->state == PFS_TS_URING && !__atomic_load_n(&t->failed, __ATOMIC_RELAXED);
	__atomic_store_n(&t->state, PFS_TS_STOP, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&t->changed);
	pthread_mutex_unlock(&t->lock);
	if (t->stop_fd >= 0 && write(t->stop_fd, &one, sizeof(one)) != sizeof(one))
		pfs_log(LOG_WARNING, "waking ring workers: %s", strerror(errno));
	for (unsigned i = 0; i < t->nworkers; i++)
		if (t->workers[i].started)
			pthread_cancel(t->workers[i].thread);
	for (unsigned i = 0; i < t->nworkers; i++) {
		if (!t->workers[i].started)
			continue;
		pthread_join(t->workers[i].thread, NULL);
		t->workers[i].started = false;
	}
}

/* The rings are made here, after fuse_daemonize's fork, by the process
 * that uses them. If that fails, auto falls back before INIT is read. */
static int pfs_transport_rings_setup(struct pfs_transport *t)
{
	char why[320];

	for (unsigned i = 0; i < t->nworkers; i++) {
		if (!t->workers[i].ring_capable ||
		    !pfs_ring_entry_setup(&t->workers[i], why, sizeof(why)))
			continue;
		if (t->want == PFS_TRANSPORT_IO_URING) {
			pfs_log(LOG_ERR, "transport=io_uring: %s", why);
			return -1;
		}
		static char line[360];
		snprintf(line, sizeof(line), "io_uring unavailable: %s", why);
		t->dev_fuse_why = line;
		t->uring_possible = false;
		for (unsigned j = 0; j < t->nworkers; j++) {
			pfs_ring_entry_teardown(&t->workers[j]);
			t->workers[j].ring_capable = false;
		}
		break;
	}
	return 0;
}

int pfs_transport_run(struct pfs *fs)
{
	struct pfs_transport *t = fs->conn.transport;
	unsigned started = 0;
	sigset_t mask;

	if (pfs_transport_rings_setup(t))
		return 1;
	/* Workers start with the exit signals blocked (see pfs_exit_signals). */
	pfs_exit_signals_block(&mask);
	for (unsigned i = 0; i < t->nworkers; i++) {
		int r = pfs_worker_start(&t->workers[i]);

		if (r) {
			pfs_log(LOG_ERR, "worker thread %u: %s", i, strerror(-r));
			if (i == 0 || t->workers[i].ring_capable) {
				/* a queue without its entry would stall the ring */
				pfs_transport_session_ended(t, true);
				break;
			}
			continue;
		}
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &mask, NULL);
	/* Signals (fuse_set_signal_handlers) only set the session's exit flag.
	 * This thread is the only one that takes them, so one interrupts this
	 * wait; a signal that comes just before it is seen a second later.
	 * CLOCK_MONOTONIC: a step of the wall clock must not stretch that.
	 * While ring workers are at idle priority, it is also their guard. */
	for (uint64_t next = 0; !fuse_session_exited(fs->conn.se);) {
		uint64_t at = pfs_transport_now_ns() + (next ? next : 1000000000ull);
		struct timespec ts = {.tv_sec = (time_t)(at / 1000000000ull),
				      .tv_nsec = (long)(at % 1000000000ull)};

		(void)sem_clockwait(&t->wake, CLOCK_MONOTONIC, &ts);
		next = pfs_handoff_guard(t);
	}
	pfs_transport_stop(t);
	(void)started;
	return __atomic_load_n(&t->status, __ATOMIC_RELAXED);
}
