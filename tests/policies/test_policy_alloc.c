/*
 * Each policy carried out by the real allocator: nofail keeps trying until a
 * free or the reclaimer makes room, retry gives up after exactly `retries`
 * caller retries, enomem fails at once, abort kills the process.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "loader.h"

#define KIB	      1024u
#define LIMIT	      (64u * KIB)
#define POLL_LIMIT_MS 20000 /* bound on any wait for the other thread */

/* Under the sanitizers a failed malloc() kills the process instead of
 * returning NULL: the tests that make malloc fail skip there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MALLOC_CAN_FAIL 0
#else
#define MALLOC_CAN_FAIL 1
#endif

/* An allocator with a 64 KiB budget and `spec` as its policy. */
struct rig {
	struct alloc *a;
	struct policy_handle *policy;
};

static void rig_setup(struct rig *rig, const char *spec, const char *args,
		      const struct pfs_policy_host *host)
{
	struct alloc_config config = {.mem_limit = LIMIT, .stock_bytes = 0};
	const char *keys[4], *values[4];
	char copy[256], err[512];
	unsigned n = 0;

	snprintf(copy, sizeof(copy), "%s", args ? args : "");
	for (char *save, *tok = strtok_r(copy, ",", &save); tok && n < 4;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		assert_non_null(eq);
		*eq = '\0';
		keys[n] = tok;
		values[n++] = eq + 1;
	}
	rig->policy = policy_load(spec, keys, values, n, host, err, sizeof(err));
	if (!rig->policy)
		fail_msg("%s", err);
	rig->a = alloc_create(&config);
	assert_non_null(rig->a);
	alloc_set_policy(rig->a, rig->policy->ops, rig->policy->state);
	assert_string_equal(alloc_policy(rig->a)->name, spec);
}

static void rig_teardown(struct rig *rig)
{
	assert_int_equal(alloc_live(rig->a), 0);
	alloc_destroy(rig->a);
	policy_unload(rig->policy);
}

static uint64_t stat_total(struct alloc *a, enum alloc_stat stat)
{
	struct alloc_stats s;

	alloc_stats_read(a, &s);
	return s.total[stat];
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* ---- nofail ---- */

struct freer {
	struct alloc *a;
	void *block;		/* what it frees once the allocation loops */
	unsigned min_loops;	/* free after this many in-allocator loops */
	_Atomic bool saw_loops; /* it saw them (else it gave up waiting) */
};

static void *freer_run(void *arg)
{
	struct freer *fr = arg;

	for (unsigned ms = 0; ms < POLL_LIMIT_MS; ms++) {
		if (stat_total(fr->a, ALLOC_STAT_loops) >= fr->min_loops) {
			atomic_store(&fr->saw_loops, true);
			break;
		}
		sleep_ms(1);
	}
	alloc_free(fr->a, fr->block);
	return NULL;
}

static void test_policy_alloc_nofail_loops_until_another_thread_frees(void **unused)
{
	struct freer fr = {.min_loops = 3};
	struct rig rig;
	pthread_t thread;
	void *p;

	rig_setup(&rig, "nofail", "wait_ms=10", NULL);
	fr.a = rig.a;
	fr.block = alloc_malloc(rig.a, ALLOC_SITE_OTHER, 48 * KIB, 0);
	assert_non_null(fr.block);
	assert_int_equal(pthread_create(&thread, NULL, freer_run, &fr), 0);

	/* 48 + 32 KiB > 64 KiB: only the other thread's free lets this through. */
	p = alloc_malloc(rig.a, ALLOC_SITE_CACHE_PAGE, 32 * KIB, 0);
	pthread_join(thread, NULL);

	assert_non_null(p);
	assert_true(atomic_load(&fr.saw_loops));
	assert_true(stat_total(rig.a, ALLOC_STAT_loops) >= 3);
	assert_true(stat_total(rig.a, ALLOC_STAT_budget_failures) >= 3);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_enomem), 0);
	assert_int_equal(alloc_live(rig.a), 32 * KIB);
	alloc_free(rig.a, p);
	rig_teardown(&rig);
}

/* A reclaimer that frees one held block, as a cache would drop a page. */
struct holder {
	struct alloc *a;
	void *block;
	unsigned calls;
	unsigned nofs_calls;
	unsigned free_on_call; /* free the block on this call (1 = first) */
};

static size_t holder_reclaim(void *data, size_t want, unsigned flags)
{
	struct holder *ho = data;
	size_t freed;

	ho->calls++;
	if (flags & ALLOC_NOFS)
		ho->nofs_calls++;
	if (!ho->block || ho->calls < ho->free_on_call)
		return 0;
	freed = alloc_size(ho->block);
	alloc_free(ho->a, ho->block);
	ho->block = NULL;
	return freed;
}

static void test_policy_alloc_nofail_succeeds_once_reclaim_frees_room(void **unused)
{
	struct holder ho = {.free_on_call = 3};
	struct rig rig;
	void *p;

	rig_setup(&rig, "nofail", "wait_ms=1", NULL);
	ho.a = rig.a;
	ho.block = alloc_malloc(rig.a, ALLOC_SITE_CACHE_PAGE, 48 * KIB, 0);
	assert_non_null(ho.block);
	alloc_set_reclaimer(rig.a, holder_reclaim, &ho);

	p = alloc_malloc(rig.a, ALLOC_SITE_INODE, 32 * KIB, ALLOC_NOFS);

	assert_non_null(p);
	assert_null(ho.block);
	/* The allocator's direct reclaim, then one per LOOP verdict. */
	assert_int_equal(ho.calls, 3);
	/* The caller said it holds fs locks: every reclaim was asked no-fs. */
	assert_int_equal(ho.nofs_calls, 3);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_loops), 2);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_enomem), 0);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_stalls), 1);
	alloc_set_reclaimer(rig.a, NULL, NULL);
	alloc_free(rig.a, p);
	rig_teardown(&rig);
}

/* Log host safe to read from another thread. */
struct shared_log {
	pthread_mutex_t lock; /* protects text */
	char text[4096];
	_Atomic unsigned lines;
};

__attribute__((format(printf, 3, 4))) static void
shared_log_append(void *data, enum pfs_log_level level, const char *fmt, ...)
{
	struct shared_log *log = data;
	size_t used;
	va_list ap;

	pthread_mutex_lock(&log->lock);
	used = strlen(log->text);
	va_start(ap, fmt);
	vsnprintf(log->text + used, sizeof(log->text) - used, fmt, ap);
	va_end(ap);
	used = strlen(log->text);
	if (used + 1 < sizeof(log->text))
		strcpy(log->text + used, "\n");
	pthread_mutex_unlock(&log->lock);
	atomic_fetch_add(&log->lines, 1);
}

struct log_freer {
	struct alloc *a;
	struct shared_log *log;
	void *block;
};

static void *log_freer_run(void *arg)
{
	struct log_freer *lf = arg;

	for (unsigned ms = 0; ms < POLL_LIMIT_MS && atomic_load(&lf->log->lines) == 0; ms++)
		sleep_ms(1);
	alloc_free(lf->a, lf->block);
	return NULL;
}

static void test_policy_alloc_nofail_warns_of_stall_through_host(void **unused)
{
	struct shared_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct pfs_policy_host host = {.log = shared_log_append, .host_data = &log};
	struct log_freer lf = {.log = &log};
	struct rig rig;
	pthread_t thread;
	void *p;

	/* Free only after the policy has warned: the stall crossed 1 ms. */
	rig_setup(&rig, "nofail", "stall_warn_ms=1,wait_ms=1", &host);
	lf.a = rig.a;
	lf.block = alloc_malloc(rig.a, ALLOC_SITE_OTHER, 48 * KIB, 0);
	assert_non_null(lf.block);
	assert_int_equal(pthread_create(&thread, NULL, log_freer_run, &lf), 0);
	p = alloc_malloc(rig.a, ALLOC_SITE_CACHE_PAGE, 32 * KIB, 0);
	pthread_join(thread, NULL);

	assert_non_null(p);
	assert_true(atomic_load(&log.lines) >= 1);
	assert_non_null(strstr(log.text, "pressurefs: page allocation stall: site cache_page, "
					 "32768 bytes, stalled "));
	assert_non_null(strstr(log.text, "(live 49152 of limit 65536, balloon 0)"));
	alloc_free(rig.a, p);
	rig_teardown(&rig);
	pthread_mutex_destroy(&log.lock);
}

/* ---- retry ---- */

static void test_policy_alloc_retry_gives_up_after_retries_via_alloc_try(void **unused)
{
	struct alloc_retry retry = ALLOC_RETRY_INIT;
	unsigned calls = 0, waits = 0;
	struct rig rig;
	void *full, *p;
	int err = 0;

	rig_setup(&rig, "retry", "retries=3,backoff_ms=0", NULL);
	full = alloc_malloc(rig.a, ALLOC_SITE_OTHER, 48 * KIB, 0);
	assert_non_null(full);

	for (;;) {
		calls++;
		p = alloc_try(rig.a, ALLOC_SITE_CACHE_PAGE, 32 * KIB, ALLOC_NOFS, &retry, &err);
		if (p || err != -EAGAIN || alloc_retry_wait(rig.a, &retry) != 0)
			break;
		waits++;
		assert_true(calls < 100);
	}

	assert_null(p);
	assert_int_equal(err, -ENOMEM);
	assert_int_equal(calls, 4);
	assert_int_equal(waits, 3);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_caller_retries), 3);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_enomem), 1);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_budget_failures), 4);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_loops), 0);
	/* After FAIL, no further wait is offered. */
	assert_int_equal(alloc_retry_wait(rig.a, &retry), -ENOMEM);
	alloc_free(rig.a, full);
	rig_teardown(&rig);
}

static void test_policy_alloc_retry_gives_up_after_retries_via_alloc_malloc(void **unused)
{
	struct rig rig;
	void *full, *p;

	rig_setup(&rig, "retry", "retries=5,backoff_ms=0", NULL);
	full = alloc_malloc(rig.a, ALLOC_SITE_OTHER, 48 * KIB, 0);
	assert_non_null(full);

	errno = 0;
	p = alloc_malloc(rig.a, ALLOC_SITE_CACHE_PAGE, 32 * KIB, ALLOC_NOFS);

	assert_null(p);
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_caller_retries), 5);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_enomem), 1);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_budget_failures), 6);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_loops), 0);
	alloc_free(rig.a, full);
	rig_teardown(&rig);
}

static void test_policy_alloc_retry_succeeds_when_reclaim_makes_room(void **unused)
{
	struct alloc_retry retry = ALLOC_RETRY_INIT;
	struct holder ho = {.free_on_call = 2};
	struct rig rig;
	unsigned calls = 0;
	int err = 0;
	void *p;

	rig_setup(&rig, "retry", "retries=8,backoff_ms=0", NULL);
	ho.a = rig.a;
	ho.block = alloc_malloc(rig.a, ALLOC_SITE_CACHE_PAGE, 48 * KIB, 0);
	assert_non_null(ho.block);
	alloc_set_reclaimer(rig.a, holder_reclaim, &ho);

	for (;;) {
		calls++;
		p = alloc_try(rig.a, ALLOC_SITE_CACHE_PAGE, 32 * KIB, ALLOC_NOFS, &retry, &err);
		if (p || err != -EAGAIN || alloc_retry_wait(rig.a, &retry) != 0)
			break;
	}

	assert_non_null(p);
	assert_int_equal(err, 0);
	assert_int_equal(calls, 2);
	assert_int_equal(ho.calls, 2);
	/* The allocator's direct reclaim (no-fs) found nothing; the one that
	 * freed ran in alloc_retry_wait(), with the caller's locks dropped:
	 * blocking reclaim. */
	assert_int_equal(ho.nofs_calls, 1);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_caller_retries), 1);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_enomem), 0);
	alloc_set_reclaimer(rig.a, NULL, NULL);
	alloc_free(rig.a, p);
	rig_teardown(&rig);
}

/* ---- enomem ---- */

static void test_policy_alloc_enomem_fails_at_once(void **unused)
{
	struct alloc_retry retry = ALLOC_RETRY_INIT;
	struct holder ho = {.free_on_call = 1};
	struct rig rig;
	void *full, *p;
	int err = 0;

	rig_setup(&rig, "enomem", NULL, NULL);
	full = alloc_malloc(rig.a, ALLOC_SITE_OTHER, 48 * KIB, 0);
	assert_non_null(full);
	alloc_set_reclaimer(rig.a, holder_reclaim, &ho);

	errno = 0;
	p = alloc_malloc(rig.a, ALLOC_SITE_CACHE_PAGE, 32 * KIB, 0);
	assert_null(p);
	assert_int_equal(errno, ENOMEM);
	p = alloc_try(rig.a, ALLOC_SITE_CACHE_PAGE, 32 * KIB, 0, &retry, &err);
	assert_null(p);
	assert_int_equal(err, -ENOMEM);

	assert_int_equal(stat_total(rig.a, ALLOC_STAT_loops), 0);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_caller_retries), 0);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_enomem), 2);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_budget_failures), 2);
	/* Only the allocator's direct reclaim (no-fs, before the policy is
	 * asked), which found nothing to drop; the policy's answer is the
	 * failure, with no reclaim or wait of its own. */
	assert_int_equal(ho.calls, 2);
	assert_int_equal(ho.nofs_calls, 2);
	alloc_set_reclaimer(rig.a, NULL, NULL);
	alloc_free(rig.a, full);
	rig_teardown(&rig);
}

/* ---- the ABI 2 policies, with host services bound to the rig's allocator ---- */

static struct alloc *host_alloc; /* the allocator the services below act on */
static unsigned host_shutdowns;

static struct pfs_reserve *host_reserve_create(void *data, size_t elem_size, unsigned count)
{
	return alloc_reserve_create(host_alloc, elem_size, count);
}

static void host_reserve_destroy(void *data, struct pfs_reserve *r)
{
	alloc_reserve_destroy(host_alloc, r);
}

static size_t host_reclaim(void *data, size_t want, unsigned flags)
{
	return alloc_reclaim(host_alloc, want, flags);
}

static uint64_t host_dirty(void *data)
{
	return 1;
}

static void host_shutdown(void *data, const char *why)
{
	host_shutdowns++;
}

static const struct pfs_policy_host services = {
	.reserve_create = host_reserve_create,
	.reserve_destroy = host_reserve_destroy,
	.reclaim = host_reclaim,
	.dirty_bytes = host_dirty,
	.shutdown = host_shutdown,
};

/* rig_setup, with the policy installed on the new allocator. */
static void rig_setup_installed(struct rig *rig, const char *spec, const char *args)
{
	rig_setup(rig, spec, args, &services);
	/* rig_setup made an allocator the policy has not met: bind and install. */
	host_alloc = rig->a;
	if (rig->policy->ops->install)
		assert_int_equal(rig->policy->ops->install(rig->policy->state), 0);
}

static void rig_teardown_installed(struct rig *rig)
{
	if (rig->policy->ops->uninstall)
		rig->policy->ops->uninstall(rig->policy->state);
	assert_int_equal(alloc_charged(rig->a), 0); /* the reserve went back */
	rig_teardown(rig);
	host_alloc = NULL;
}

static void test_policy_alloc_mempool_serves_writeback_from_reserve_when_budget_full(void **unused)
{
	struct alloc_retry retry = ALLOC_RETRY_INIT;
	struct rig rig;
	void *full, *wb, *page;
	int err = 0;

	rig_setup_installed(&rig, "mempool", "reserve=writeback:16K,wait_ms=1");
	/* The reserve is charged, not live. */
	assert_int_equal(alloc_charged(rig.a), 16 * KIB);
	assert_int_equal(alloc_live(rig.a), 0);
	full = alloc_malloc(rig.a, ALLOC_SITE_OTHER, 48 * KIB, 0);
	assert_non_null(full);
	/* No room left: a cache page fails at once ... */
	page = alloc_malloc(rig.a, ALLOC_SITE_CACHE_PAGE, 4 * KIB, 0);
	assert_null(page);
	/* ... while writeback is served from the reserve, without looping. */
	wb = alloc_try(rig.a, ALLOC_SITE_WRITEBACK, 8 * KIB, ALLOC_NOFS, &retry, &err);
	assert_non_null(wb);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_reserved), 1);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_loops), 0);
	/* Never past the limit: the block took the reserve's charge. */
	assert_int_equal(alloc_charged(rig.a), LIMIT);
	assert_int_equal(alloc_live(rig.a), 56 * KIB);
	alloc_free(rig.a, wb);
	alloc_free(rig.a, full);
	rig_teardown_installed(&rig);
}

static void test_policy_alloc_mempool_injected_writeback_failure_served_by_reserve(void **unused)
{
	struct alloc_inject in = ALLOC_INJECT_OFF;
	struct rig rig;
	void *wb;

	rig_setup_installed(&rig, "mempool", "reserve=writeback:16K");
	in.probability = 100;
	alloc_set_inject(rig.a, &in);
	assert_null(alloc_malloc(rig.a, ALLOC_SITE_INODE, 64, 0));
	wb = alloc_malloc(rig.a, ALLOC_SITE_WRITEBACK, 4 * KIB, 0);
	assert_non_null(wb);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_reserved), 1);
	alloc_free(rig.a, wb);
	in.probability = 0;
	alloc_set_inject(rig.a, &in);
	rig_teardown_installed(&rig);
}

static void test_policy_alloc_mempool_sleeps_until_an_element_comes_back(void **unused)
{
	struct alloc_retry retry = ALLOC_RETRY_INIT;
	struct freer fr = {.min_loops = 2};
	struct rig rig;
	pthread_t thread;
	void *full, *p;
	int err = 0;

	/* One element of 16 KiB (no page size from this host). */
	rig_setup_installed(&rig, "mempool", "reserve=writeback:16K,wait_ms=5");
	full = alloc_malloc(rig.a, ALLOC_SITE_OTHER, 48 * KIB, 0);
	assert_non_null(full);
	fr.a = rig.a;
	fr.block = alloc_try(rig.a, ALLOC_SITE_WRITEBACK, 8 * KIB, ALLOC_NOFS, &retry, &err);
	assert_non_null(fr.block);
	assert_int_equal(pthread_create(&thread, NULL, freer_run, &fr), 0);
	/* The element is out and the budget is full: only its return lets
	 * this through, and what comes back is that same element. */
	p = alloc_try(rig.a, ALLOC_SITE_WRITEBACK, 4 * KIB, ALLOC_NOFS, &retry, &err);
	pthread_join(thread, NULL);
	assert_true(atomic_load(&fr.saw_loops));
	assert_ptr_equal(p, fr.block);
	assert_int_equal(alloc_size(p), 4 * KIB);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_reserved), 2);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_enomem), 0);
	assert_int_equal(alloc_live(rig.a), 52 * KIB);
	/* Switched away while the element is out: the reserve's budget stays
	 * charged until the element comes back, and is then given back. */
	rig.policy->ops->uninstall(rig.policy->state);
	assert_int_equal(alloc_charged(rig.a), LIMIT);
	alloc_free(rig.a, p);
	assert_int_equal(alloc_charged(rig.a), 48 * KIB);
	alloc_free(rig.a, full);
	rig_teardown(&rig);
	host_alloc = NULL;
}

/* Cap the address space where it is now and eat the heap with 4 KiB
 * blocks (the size of the requests that follow), so that malloc() itself
 * fails. 0, or -1 if the cap could not be set or did not bite. */
static int rlimit_as_cap_and_eat(void **blocks, size_t cap_blocks, size_t *n)
{
	FILE *statm = fopen("/proc/self/statm", "r");
	struct rlimit cap;
	long pages = 0;

	if (!statm)
		return -1;
	if (fscanf(statm, "%ld", &pages) != 1) {
		fclose(statm);
		return -1;
	}
	fclose(statm);
	cap.rlim_cur = cap.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE);
	if (setrlimit(RLIMIT_AS, &cap))
		return -1;
	*n = 0;
	while (*n < cap_blocks && (blocks[*n] = malloc(4 * KIB + 16)))
		(*n)++;
	return *n < cap_blocks ? 0 : -1;
}

/* Run fn(a) in a child (whose memory limits die with it); its status. */
static int run_in_child(int (*fn)(struct alloc *), struct alloc *a)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(a));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* In a child: malloc() fails; writeback is still served, from memory the
 * reserve took at install. 0 when it was. */
static int mempool_child_under_rlimit_as(struct alloc *a)
{
	struct alloc_retry retry = ALLOC_RETRY_INIT;
	void **eaten = calloc(1 << 20, sizeof(*eaten));
	size_t n = 0;
	void *wb;
	int err = 0, rc = 0;

	if (!eaten || rlimit_as_cap_and_eat(eaten, 1 << 20, &n))
		return 10;
	wb = alloc_try(a, ALLOC_SITE_WRITEBACK, 4 * KIB, ALLOC_NOFS, &retry, &err);
	if (!wb)
		rc = 13;
	else if (stat_total(a, ALLOC_STAT_system_failures) < 1 ||
		 stat_total(a, ALLOC_STAT_reserved) != 1)
		rc = 14;
	alloc_free(a, wb);
	while (n)
		free(eaten[--n]);
	return rc;
}

static void test_policy_alloc_mempool_serves_writeback_when_malloc_itself_fails(void **unused)
{
	struct rig rig;

	if (!MALLOC_CAN_FAIL)
		skip();
	rig_setup_installed(&rig, "mempool", "reserve=writeback:16K,wait_ms=5");
	assert_int_equal(run_in_child(mempool_child_under_rlimit_as, rig.a), 0);
	rig_teardown_installed(&rig);
}

/* A reclaimer standing for the cache's clean pages: plain malloc blocks it
 * frees on request, until it has freed at least what was wanted. */
struct eater {
	void **blocks;
	size_t n;
	size_t want; /* the last request */
	unsigned calls;
};

static size_t eater_reclaim(void *data, size_t want, unsigned flags)
{
	struct eater *e = data;
	size_t freed = 0;

	e->calls++;
	e->want = want;
	while (e->n && freed < want) {
		free(e->blocks[--e->n]);
		freed += 4 * KIB + 16;
	}
	return freed;
}

/* In a child, under an address-space cap with the heap eaten: malloc()
 * fails, direct reclaim is asked for the request plus a margin, and the
 * retry succeeds with no verdict. 0 when so. */
static int system_failure_child(struct alloc *a)
{
	struct eater e = {.blocks = calloc(1 << 20, sizeof(void *))};
	void *p;
	int rc = 0;

	if (!e.blocks || rlimit_as_cap_and_eat(e.blocks, 1 << 20, &e.n))
		return 10;
	alloc_set_reclaimer(a, eater_reclaim, &e);
	p = alloc_malloc(a, ALLOC_SITE_INODE, 4 * KIB, 0);
	if (!p)
		rc = 11;
	else if (e.calls != 1 || e.want < 4 * KIB + (1u << 20))
		rc = 12;
	else if (stat_total(a, ALLOC_STAT_system_failures) != 1 ||
		 stat_total(a, ALLOC_STAT_reclaimed) != 1 || stat_total(a, ALLOC_STAT_enomem) != 0)
		rc = 13;
	alloc_set_reclaimer(a, NULL, NULL);
	alloc_free(a, p);
	while (e.n)
		free(e.blocks[--e.n]);
	return rc;
}

static void test_policy_alloc_system_failure_reclaims_a_margin_before_the_policy(void **unused)
{
	struct rig rig;

	if (!MALLOC_CAN_FAIL)
		skip();
	rig_setup(&rig, "enomem", NULL, NULL);
	assert_int_equal(run_in_child(system_failure_child, rig.a), 0);
	rig_teardown(&rig);
}

static void test_policy_alloc_write_through_bypass_reaches_only_callers_that_can(void **unused)
{
	struct alloc_retry retry = ALLOC_RETRY_INIT;
	struct rig rig;
	void *full;
	int err = 0;

	rig_setup_installed(&rig, "write_through", "reserve=writeback:16K,wait_ms=1");
	full = alloc_malloc(rig.a, ALLOC_SITE_OTHER, 48 * KIB, 0);
	assert_non_null(full);
	/* A caller that can write through is told to, and nothing is charged. */
	assert_null(alloc_try(rig.a, ALLOC_SITE_CACHE_PAGE, 4 * KIB, ALLOC_NOFS | ALLOC_BYPASS_OK,
			      &retry, &err));
	assert_int_equal(err, ALLOC_EBYPASS);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_bypassed), 1);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_enomem), 0);
	assert_int_equal(alloc_charged(rig.a), LIMIT);
	/* Without the flag, or without an out-parameter, BYPASS is FAIL. */
	retry = (struct alloc_retry)ALLOC_RETRY_INIT;
	assert_null(alloc_try(rig.a, ALLOC_SITE_CACHE_PAGE, 4 * KIB, ALLOC_NOFS, &retry, &err));
	assert_int_equal(err, -ENOMEM);
	assert_null(alloc_malloc(rig.a, ALLOC_SITE_CACHE_PAGE, 4 * KIB, ALLOC_BYPASS_OK));
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_bypassed), 1);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_enomem), 2);
	/* Other sites fail at once, as under enomem. */
	assert_null(alloc_malloc(rig.a, ALLOC_SITE_INODE, 64, 0));
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_loops), 0);
	alloc_free(rig.a, full);
	rig_teardown_installed(&rig);
}

static void test_policy_alloc_mempool_install_refused_when_budget_too_small(void **unused)
{
	struct policy_handle *h;
	struct alloc *a = alloc_create(&(struct alloc_config){.mem_limit = LIMIT});
	const char *keys[] = {"reserve"}, *values[] = {"writeback:128K"};
	char err[256];

	assert_non_null(a);
	h = policy_load("mempool", keys, values, 1, &services, err, sizeof(err));
	assert_non_null(h);
	host_alloc = a;
	assert_int_equal(h->ops->install(h->state), -ENOMEM);
	assert_int_equal(alloc_charged(a), 0);
	host_alloc = NULL;
	alloc_destroy(a);
	policy_unload(h);
}

static void test_policy_alloc_too_small_to_fail_loops_for_small_fails_large(void **unused)
{
	struct holder ho = {.free_on_call = 2};
	struct rig rig;
	void *full, *p;

	rig_setup_installed(&rig, "too_small_to_fail", "threshold=4096,wait_ms=1");
	full = alloc_malloc(rig.a, ALLOC_SITE_OTHER, 62 * KIB, 0);
	assert_non_null(full);
	/* Large: ENOMEM at once, no loop. */
	assert_null(alloc_malloc(rig.a, ALLOC_SITE_CACHE_PAGE, 8 * KIB, 0));
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_loops), 0);
	/* Small: loops until the reclaimer frees the big block. */
	ho.block = full;
	ho.a = rig.a;
	alloc_set_reclaimer(rig.a, holder_reclaim, &ho);
	p = alloc_malloc(rig.a, ALLOC_SITE_CACHE_PAGE, 4 * KIB, 0);
	assert_non_null(p);
	assert_true(stat_total(rig.a, ALLOC_STAT_loops) > 0);
	alloc_set_reclaimer(rig.a, NULL, NULL);
	alloc_free(rig.a, p);
	rig_teardown_installed(&rig);
}

static void test_policy_alloc_retry_mayfail_gives_up_after_timeout(void **unused)
{
	struct rig rig;
	void *full;

	rig_setup_installed(&rig, "retry_mayfail", "timeout_ms=30,wait_ms=5");
	full = alloc_malloc(rig.a, ALLOC_SITE_OTHER, 64 * KIB, 0);
	assert_non_null(full);
	assert_null(alloc_malloc(rig.a, ALLOC_SITE_CACHE_PAGE, 4 * KIB, 0));
	assert_true(stat_total(rig.a, ALLOC_STAT_loops) > 0);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_enomem), 1);
	alloc_free(rig.a, full);
	rig_teardown_installed(&rig);
}

static void test_policy_alloc_shutdown_fails_and_shuts_down(void **unused)
{
	struct rig rig;
	void *full;

	host_shutdowns = 0;
	rig_setup_installed(&rig, "shutdown", NULL);
	full = alloc_malloc(rig.a, ALLOC_SITE_OTHER, 64 * KIB, 0);
	assert_non_null(full);
	assert_null(alloc_malloc(rig.a, ALLOC_SITE_CACHE_PAGE, 4 * KIB, 0));
	assert_int_equal(host_shutdowns, 1);
	assert_int_equal(stat_total(rig.a, ALLOC_STAT_enomem), 1);
	alloc_free(rig.a, full);
	rig_teardown_installed(&rig);
}

/* ---- abort ---- */

/* The child: fill the budget, ask for more under the abort policy. */
static _Noreturn void abort_child(int stderr_fd)
{
	struct rlimit no_core = {0, 0};
	struct rig rig;
	void *full;

	setrlimit(RLIMIT_CORE, &no_core);
	dup2(stderr_fd, STDERR_FILENO);
	alarm(60); /* a child that does not abort must not hang the test */
	rig_setup(&rig, "abort", NULL, NULL);
	alloc_set_balloon(rig.a, 16 * KIB);
	full = alloc_malloc(rig.a, ALLOC_SITE_OTHER, 32 * KIB, 0);
	if (!full)
		_exit(2);
	alloc_malloc(rig.a, ALLOC_SITE_CACHE_PAGE, 32 * KIB, 0);
	_exit(3); /* not reached under abort */
}

static void test_policy_alloc_abort_kills_child_with_sigabrt(void **unused)
{
	char out[8192];
	size_t used = 0;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		abort_child(fds[1]);
	}
	close(fds[1]);
	while (used < sizeof(out) - 1 && (n = read(fds[0], out + used, sizeof(out) - 1 - used)) > 0)
		used += (size_t)n;
	out[used] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);

	if (!WIFSIGNALED(status))
		fail_msg("child exited with %d, stderr: %s", WEXITSTATUS(status), out);
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(out, "pressurefs: allocation failed: site cache_page, 32768 bytes, "
				    "cause budget (live 32768, limit 65536, balloon 16384); "
				    "policy abort: aborting"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_alloc_nofail_loops_until_another_thread_frees),
		cmocka_unit_test(test_policy_alloc_nofail_succeeds_once_reclaim_frees_room),
		cmocka_unit_test(test_policy_alloc_nofail_warns_of_stall_through_host),
		cmocka_unit_test(test_policy_alloc_retry_gives_up_after_retries_via_alloc_try),
		cmocka_unit_test(test_policy_alloc_retry_gives_up_after_retries_via_alloc_malloc),
		cmocka_unit_test(test_policy_alloc_retry_succeeds_when_reclaim_makes_room),
		cmocka_unit_test(test_policy_alloc_enomem_fails_at_once),
		cmocka_unit_test(test_policy_alloc_abort_kills_child_with_sigabrt),
		cmocka_unit_test(
			test_policy_alloc_mempool_serves_writeback_from_reserve_when_budget_full),
		cmocka_unit_test(
			test_policy_alloc_mempool_injected_writeback_failure_served_by_reserve),
		cmocka_unit_test(test_policy_alloc_mempool_install_refused_when_budget_too_small),
		cmocka_unit_test(test_policy_alloc_mempool_sleeps_until_an_element_comes_back),
		cmocka_unit_test(
			test_policy_alloc_mempool_serves_writeback_when_malloc_itself_fails),
		cmocka_unit_test(
			test_policy_alloc_system_failure_reclaims_a_margin_before_the_policy),
		cmocka_unit_test(
			test_policy_alloc_write_through_bypass_reaches_only_callers_that_can),
		cmocka_unit_test(test_policy_alloc_too_small_to_fail_loops_for_small_fails_large),
		cmocka_unit_test(test_policy_alloc_retry_mayfail_gives_up_after_timeout),
		cmocka_unit_test(test_policy_alloc_shutdown_fails_and_shuts_down),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
