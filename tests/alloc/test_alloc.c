/*
 * alloc/alloc.c: the calls (malloc, realloc, free, strdup, size), exact
 * accounting under two threads, and carrying out each policy verdict
 * (policies are small tables defined here, not the plugins).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc_test.h"

static struct alloc *make(uint64_t limit, size_t stock)
{
	struct alloc_config cfg = {.mem_limit = limit, .stock_bytes = stock};
	struct alloc *a = alloc_create(&cfg);

	assert_non_null(a);
	return a;
}

/* ---- exact accounting ---- */

struct worker {
	struct alloc *a;
	unsigned seed;
	uint64_t calls[ALLOC_SITE_COUNT];
	uint64_t bytes[ALLOC_SITE_COUNT];
	uint64_t frees[ALLOC_SITE_COUNT];
};

static void *worker_main(void *arg)
{
	enum { ROUNDS = 200000, HELD = 128 };
	static const size_t sizes[] = {1, 16, 64, 100, 500, 4096, 10000};
	struct worker *w = arg;
	void *held[HELD] = {0};
	enum alloc_site held_site[HELD] = {0};

	for (unsigned i = 0; i < ROUNDS; i++) {
		unsigned r = rand_r(&w->seed);
		unsigned slot = r % HELD;
		enum alloc_site site = (enum alloc_site)((r >> 8) % ALLOC_SITE_COUNT);
		size_t size = sizes[(r >> 16) % 7];

		if (held[slot]) {
			alloc_free(w->a, held[slot]);
			w->frees[held_site[slot]]++;
		}
		held[slot] = alloc_malloc(w->a, site, size, 0);
		assert_non_null(held[slot]);
		held_site[slot] = site;
		w->calls[site]++;
		w->bytes[site] += size;
	}
	for (unsigned i = 0; i < HELD; i++) {
		if (held[i]) {
			alloc_free(w->a, held[i]);
			w->frees[held_site[i]]++;
		}
	}
	return NULL;
}

static void two_threads_exact(size_t stock)
{
	struct alloc *a = make(1ull << 40, stock);
	struct worker w[2] = {{.a = a, .seed = 1}, {.a = a, .seed = 2}};
	struct alloc_stats st;
	pthread_t t[2];
	uint64_t calls = 0, bytes = 0, frees = 0;

	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	for (unsigned i = 0; i < 2; i++)
		pthread_join(t[i], NULL);

	alloc_stats_read(a, &st);
	for (unsigned s = 0; s < ALLOC_SITE_COUNT; s++) {
		assert_int_equal(st.site[s][ALLOC_STAT_calls], w[0].calls[s] + w[1].calls[s]);
		assert_int_equal(st.site[s][ALLOC_STAT_bytes], w[0].bytes[s] + w[1].bytes[s]);
		assert_int_equal(st.site[s][ALLOC_STAT_frees], w[0].frees[s] + w[1].frees[s]);
		assert_int_equal(st.site[s][ALLOC_STAT_live], 0);
		calls += w[0].calls[s] + w[1].calls[s];
		bytes += w[0].bytes[s] + w[1].bytes[s];
		frees += w[0].frees[s] + w[1].frees[s];
	}
	assert_int_equal(st.total[ALLOC_STAT_calls], calls);
	assert_int_equal(st.total[ALLOC_STAT_bytes], bytes);
	assert_int_equal(st.total[ALLOC_STAT_frees], frees);
	assert_int_equal(st.total[ALLOC_STAT_live], 0);
	assert_int_equal(calls, frees);
	/* The threads exited: their stock came home too. */
	assert_int_equal(alloc_charged(a), 0);
	alloc_destroy(a);
}

static void test_alloc_two_threads_account_exactly_default_stock(void **state)
{
	two_threads_exact(ALLOC_DEFAULT_STOCK_BYTES);
}

static void test_alloc_two_threads_account_exactly_stock0(void **state)
{
	two_threads_exact(0);
}

static void test_alloc_live_equals_held_sizes_per_site(void **state)
{
	struct alloc *a = make(0, ALLOC_DEFAULT_STOCK_BYTES);
	void *p[ALLOC_SITE_COUNT][3];
	struct alloc_stats st;
	uint64_t total = 0;

	for (unsigned s = 0; s < ALLOC_SITE_COUNT; s++)
		for (unsigned k = 0; k < 3; k++)
			p[s][k] = alloc_malloc(a, (enum alloc_site)s, 10 * (s + 1) + k, 0);
	alloc_stats_read(a, &st);
	for (unsigned s = 0; s < ALLOC_SITE_COUNT; s++) {
		uint64_t want = 3 * 10 * (s + 1) + 0 + 1 + 2;

		assert_int_equal(st.site[s][ALLOC_STAT_live], want);
		assert_true(st.site[s][ALLOC_STAT_peak] >= want);
		total += want;
	}
	assert_int_equal(st.total[ALLOC_STAT_live], total);
	assert_int_equal(alloc_live(a), total);
	assert_true(st.total[ALLOC_STAT_peak] >= total);
	for (unsigned s = 0; s < ALLOC_SITE_COUNT; s++)
		for (unsigned k = 0; k < 3; k++)
			alloc_free(a, p[s][k]);
	assert_int_equal(alloc_live(a), 0);
	alloc_destroy(a);
}

static void test_alloc_peak_is_exact_with_stock0(void **state)
{
	struct alloc *a = make(0, 0);
	void *x = alloc_malloc(a, ALLOC_SITE_INODE, 1000, 0);
	void *y = alloc_malloc(a, ALLOC_SITE_INODE, 2000, 0);
	void *z;

	alloc_free(a, y);
	z = alloc_malloc(a, ALLOC_SITE_HANDLE, 500, 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_peak), 3000);
	assert_int_equal(test_stat(a, ALLOC_SITE_HANDLE, ALLOC_STAT_peak), 500);
	assert_int_equal(test_stat(a, -1, ALLOC_STAT_peak), 3000);
	alloc_free(a, x);
	alloc_free(a, z);
	alloc_destroy(a);
}

/* ---- the calls ---- */

static void test_alloc_size_reports_requested_bytes(void **state)
{
	struct alloc *a = make(0, ALLOC_DEFAULT_STOCK_BYTES);
	void *p = alloc_malloc(a, ALLOC_SITE_OTHER, 123, 0);
	void *z = alloc_malloc(a, ALLOC_SITE_OTHER, 0, 0);

	assert_int_equal(alloc_size(p), 123);
	assert_non_null(z);
	assert_int_equal(alloc_size(z), 0);
	assert_int_equal(alloc_size(NULL), 0);
	/* Blocks keep malloc's alignment. */
	assert_int_equal((uintptr_t)p % 16, 0);
	alloc_free(a, p);
	alloc_free(a, z);
	alloc_free(a, NULL);
	alloc_destroy(a);
}

static void test_alloc_zero_flag_zeroes_memory(void **state)
{
	struct alloc *a = make(0, ALLOC_DEFAULT_STOCK_BYTES);
	unsigned char *p = alloc_malloc(a, ALLOC_SITE_OTHER, 256, ALLOC_ZERO);

	for (unsigned i = 0; i < 256; i++)
		assert_int_equal(p[i], 0);
	memset(p, 0xaa, 256);
	p = alloc_realloc(a, ALLOC_SITE_OTHER, p, 1024, ALLOC_ZERO);
	assert_non_null(p);
	assert_int_equal(p[255], 0xaa);
	for (unsigned i = 256; i < 1024; i++)
		assert_int_equal(p[i], 0);
	alloc_free(a, p);
	alloc_destroy(a);
}

static void test_alloc_strdup_copies_and_charges(void **state)
{
	struct alloc *a = make(0, ALLOC_DEFAULT_STOCK_BYTES);
	char *s = alloc_strdup(a, ALLOC_SITE_REQUEST, "hello, pressure", 0);

	assert_string_equal(s, "hello, pressure");
	assert_int_equal(alloc_size(s), 16);
	assert_int_equal(test_stat(a, ALLOC_SITE_REQUEST, ALLOC_STAT_live), 16);
	alloc_free(a, s);
	assert_int_equal(alloc_live(a), 0);
	alloc_destroy(a);
}

static void test_alloc_realloc_accounts_growth_and_shrink(void **state)
{
	struct alloc *a = make(10000, 0);
	char *p = alloc_realloc(a, ALLOC_SITE_READDIR, NULL, 100, 0);

	assert_non_null(p);
	memset(p, 'x', 100);
	p = alloc_realloc(a, ALLOC_SITE_READDIR, p, 5000, 0);
	assert_non_null(p);
	assert_int_equal(p[99], 'x');
	assert_int_equal(alloc_size(p), 5000);
	assert_int_equal(test_stat(a, ALLOC_SITE_READDIR, ALLOC_STAT_live), 5000);
	assert_int_equal(alloc_charged(a), 5000);
	/* Growth is charged: only the delta must fit. */
	{
		char *q = alloc_realloc(a, ALLOC_SITE_READDIR, p, 10001, 0);

		assert_null(q);
		assert_int_equal(alloc_size(p), 5000); /* old block untouched */
		q = alloc_realloc(a, ALLOC_SITE_READDIR, p, 10000, 0);
		assert_non_null(q);
		p = q;
	}
	assert_int_equal(alloc_charged(a), 10000);
	p = alloc_realloc(a, ALLOC_SITE_READDIR, p, 10, 0);
	assert_int_equal(alloc_charged(a), 10);
	assert_int_equal(test_stat(a, ALLOC_SITE_READDIR, ALLOC_STAT_live), 10);
	/* Moving to another site moves its accounting. */
	p = alloc_realloc(a, ALLOC_SITE_OTHER, p, 20, 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_READDIR, ALLOC_STAT_live), 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_OTHER, ALLOC_STAT_live), 20);
	assert_int_equal(alloc_charged(a), 20);
	assert_int_equal(test_stat(a, ALLOC_SITE_READDIR, ALLOC_STAT_calls), 5);
	alloc_free(a, p);
	assert_int_equal(alloc_live(a), 0);
	assert_int_equal(alloc_charged(a), 0);
	alloc_destroy(a);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_UNDER_SANITIZER 1
#endif
#endif

static void test_alloc_double_free_aborts(void **state)
{
	pid_t pid;
	int status;

#ifdef TEST_UNDER_SANITIZER
	skip(); /* ASan and TSan report the use after free themselves, first */
#endif
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct alloc *a = alloc_create(NULL);
		void *p = alloc_malloc(a, ALLOC_SITE_OTHER, 64, 0);

		close(STDERR_FILENO);
		alloc_free(a, p);
		alloc_free(a, p); /* the header now says "dead" */
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* ---- verdicts ---- */

#include "recording_policy.h"

static struct pfs_decision decide_abort(void *st, const struct pfs_failure *f)
{
	return (struct pfs_decision){.verdict = PFS_VERDICT_ABORT};
}

TEST_POLICY(policy_abort, "testabort", decide_abort);

static int reset_policy_log(void **state)
{
	memset(&last_failure, 0, sizeof(last_failure));
	decisions = 0;
	retry_limit = 3;
	return 0;
}

static void test_alloc_no_policy_fails_at_once(void **state)
{
	struct alloc *a = make(100, 0);

	assert_null(alloc_policy(a));
	errno = 0;
	assert_null(alloc_malloc(a, ALLOC_SITE_OTHER, 101, 0));
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(test_stat(a, -1, ALLOC_STAT_enomem), 1);
	assert_int_equal(test_stat(a, -1, ALLOC_STAT_loops), 0);
	alloc_destroy(a);
}

static void test_alloc_verdict_fail_returns_enomem_once(void **state)
{
	struct alloc *a = make(100, 0);

	alloc_set_policy(a, &policy_fail, NULL);
	assert_ptr_equal(alloc_policy(a), &policy_fail);
	errno = 0;
	assert_null(alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 200, ALLOC_NOFS));
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(decisions, 1);
	assert_string_equal(last_failure.site, "cache_page");
	assert_int_equal(last_failure.site_id, ALLOC_SITE_CACHE_PAGE);
	assert_int_equal(last_failure.size, 200);
	assert_int_equal(last_failure.flags & ALLOC_NOFS, ALLOC_NOFS);
	assert_int_equal(last_failure.cause, PFS_CAUSE_BUDGET);
	assert_int_equal(last_failure.attempt, 0);
	assert_int_equal(last_failure.caller_can_retry, 0);
	assert_int_equal(last_failure.mem_limit, 100);
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_enomem), 1);
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_budget_failures), 1);
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_stalls), 1);
	alloc_destroy(a);
}

static void test_alloc_noretry_never_asks_the_policy(void **state)
{
	struct alloc *a = make(100, 0);

	alloc_set_policy(a, &policy_loop, NULL);
	assert_null(alloc_malloc(a, ALLOC_SITE_OTHER, 200, ALLOC_NORETRY));
	assert_int_equal(decisions, 0);
	assert_int_equal(test_stat(a, -1, ALLOC_STAT_budget_failures), 1);
	assert_int_equal(test_stat(a, -1, ALLOC_STAT_enomem), 1);
	alloc_destroy(a);
}

/* A cache of blocks a reclaimer can free. */
struct toy_cache {
	struct alloc *a;
	void *blocks[8];
	unsigned calls;
	unsigned nofs_calls;
};

static size_t toy_reclaim(void *data, size_t want, unsigned flags)
{
	struct toy_cache *c = data;
	size_t freed = 0;

	c->calls++;
	if (flags & ALLOC_NOFS)
		c->nofs_calls++;
	/* Free one block per call, so the allocator has to loop a bit. */
	if (c->calls < 3)
		return 0;
	for (unsigned i = 0; i < 8 && freed == 0; i++) {
		if (c->blocks[i]) {
			freed = alloc_size(c->blocks[i]);
			alloc_free(c->a, c->blocks[i]);
			c->blocks[i] = NULL;
		}
	}
	return freed;
}

static void test_alloc_verdict_loop_until_reclaimer_frees_room(void **state)
{
	struct alloc *a = make(8000, ALLOC_DEFAULT_STOCK_BYTES);
	struct toy_cache cache = {.a = a};
	void *p;

	for (unsigned i = 0; i < 8; i++)
		assert_non_null(cache.blocks[i] = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 1000, 0));
	alloc_set_reclaimer(a, toy_reclaim, &cache);
	alloc_set_policy(a, &policy_loop, NULL);

	p = alloc_malloc(a, ALLOC_SITE_WRITEBACK, 1000, ALLOC_NOFS);
	assert_non_null(p);
	/* Two reclaims found nothing (the first is direct reclaim, before the
	 * policy is asked); the third, after the second LOOP, freed a block. */
	assert_int_equal(cache.calls, 3);
	assert_int_equal(cache.nofs_calls, 3);
	assert_int_equal(decisions, 2);
	assert_int_equal(last_failure.attempt, 1);
	assert_true(last_failure.stalled_ns >= last_failure.prev_stalled_ns);
	assert_int_equal(test_stat(a, ALLOC_SITE_WRITEBACK, ALLOC_STAT_loops), 2);
	assert_int_equal(test_stat(a, ALLOC_SITE_WRITEBACK, ALLOC_STAT_budget_failures), 2);
	assert_int_equal(test_stat(a, ALLOC_SITE_WRITEBACK, ALLOC_STAT_enomem), 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_WRITEBACK, ALLOC_STAT_stalls), 1);
	assert_true(test_stat(a, ALLOC_SITE_WRITEBACK, ALLOC_STAT_stall_ns_max) > 0);

	alloc_set_reclaimer(a, NULL, NULL);
	assert_int_equal(alloc_reclaim(a, 100, 0), 0);
	alloc_free(a, p);
	for (unsigned i = 0; i < 8; i++)
		alloc_free(a, cache.blocks[i]);
	alloc_destroy(a);
}

struct late_freer {
	struct alloc *a;
	void *block;
};

static void *late_freer_main(void *arg)
{
	struct late_freer *lf = arg;

	if (test_wait_for_waiter(lf->a) == 0)
		alloc_free(lf->a, lf->block);
	return NULL;
}

static struct pfs_decision decide_loop_long(void *st, const struct pfs_failure *f)
{
	decisions++;
	/* Long enough that only a wake-up ends it in a bounded test. */
	return (struct pfs_decision){.verdict = PFS_VERDICT_LOOP, .wait_ns = 30ull * 1000000000u};
}

TEST_POLICY(policy_loop_long, "testlooplong", decide_loop_long);

static void test_alloc_verdict_loop_woken_by_another_threads_free(void **state)
{
	struct alloc *a = make(1000, ALLOC_DEFAULT_STOCK_BYTES);
	struct late_freer lf = {.a = a, .block = alloc_malloc(a, ALLOC_SITE_OTHER, 1000, 0)};
	pthread_t t;
	void *p;

	assert_non_null(lf.block);
	alloc_set_policy(a, &policy_loop_long, NULL);
	assert_int_equal(pthread_create(&t, NULL, late_freer_main, &lf), 0);
	p = alloc_malloc(a, ALLOC_SITE_OTHER, 1000, 0);
	pthread_join(t, NULL);
	assert_non_null(p);
	assert_true(decisions >= 1);
	assert_int_equal(test_stat(a, -1, ALLOC_STAT_loops), decisions);
	alloc_free(a, p);
	alloc_destroy(a);
}

static void test_alloc_verdict_retry_via_try_gives_up_after_limit(void **state)
{
	struct alloc *a = make(0, ALLOC_DEFAULT_STOCK_BYTES);
	struct toy_cache cache = {.a = a};
	struct alloc_retry retry = ALLOC_RETRY_INIT;
	unsigned eagains = 0;
	int err = 0;
	void *p;

	alloc_set_policy(a, &policy_retry, NULL);
	alloc_set_reclaimer(a, toy_reclaim, &cache);
	alloc_fail_nth(a, 1, UINT64_MAX);
	for (;;) {
		p = alloc_try(a, ALLOC_SITE_CACHE_PAGE, 4096, ALLOC_NOFS, &retry, &err);
		if (p || err != -EAGAIN)
			break;
		eagains++;
		assert_int_equal(last_failure.caller_can_retry, 1);
		assert_int_equal(alloc_retry_wait(a, &retry), 0);
	}
	assert_null(p);
	assert_int_equal(err, -ENOMEM);
	assert_int_equal(eagains, 3);
	assert_int_equal(decisions, 4);
	assert_int_equal(last_failure.attempt, 3);
	assert_int_equal(last_failure.cause, PFS_CAUSE_INJECTED);
	/* alloc_retry_wait reclaims with blocking allowed. */
	assert_int_equal(cache.calls, 3);
	assert_int_equal(cache.nofs_calls, 0);
	assert_int_equal(alloc_retry_wait(a, &retry), -ENOMEM);
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_caller_retries), 3);
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_injected_failures), 4);
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_enomem), 1);
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_calls), 1);
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_stalls), 1);
	alloc_fail_nth(a, 0, 0);
	alloc_destroy(a);
}

static void test_alloc_verdict_retry_via_try_succeeds_after_transient(void **state)
{
	struct alloc *a = make(0, ALLOC_DEFAULT_STOCK_BYTES);
	struct alloc_retry retry = ALLOC_RETRY_INIT;
	int err = 1;
	void *p;

	alloc_set_policy(a, &policy_retry, NULL);
	alloc_fail_nth(a, 1, 1); /* two failures */
	p = alloc_try(a, ALLOC_SITE_INODE, 64, 0, &retry, &err);
	assert_null(p);
	assert_int_equal(err, -EAGAIN);
	assert_int_equal(alloc_retry_wait(a, &retry), 0);
	p = alloc_try(a, ALLOC_SITE_INODE, 64, 0, &retry, &err);
	assert_null(p);
	assert_int_equal(alloc_retry_wait(a, &retry), 0);
	p = alloc_try(a, ALLOC_SITE_INODE, 64, 0, &retry, &err);
	assert_non_null(p);
	assert_int_equal(err, 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_caller_retries), 2);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_enomem), 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_stalls), 1);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_calls), 1);
	alloc_free(a, p);
	alloc_destroy(a);
}

static void test_alloc_retry_done_counts_a_caller_giving_up(void **state)
{
	struct alloc *a = make(0, ALLOC_DEFAULT_STOCK_BYTES);
	struct alloc_retry retry = ALLOC_RETRY_INIT;
	int err;

	alloc_set_policy(a, &policy_retry, NULL);
	alloc_fail_nth(a, 1, 0);
	assert_null(alloc_try(a, ALLOC_SITE_HANDLE, 64, 0, &retry, &err));
	assert_int_equal(err, -EAGAIN);
	alloc_retry_done(a, &retry, false);
	assert_int_equal(test_stat(a, ALLOC_SITE_HANDLE, ALLOC_STAT_enomem), 1);
	assert_int_equal(test_stat(a, ALLOC_SITE_HANDLE, ALLOC_STAT_stalls), 1);
	/* Idempotent: a second call records nothing more. */
	alloc_retry_done(a, &retry, false);
	assert_int_equal(test_stat(a, ALLOC_SITE_HANDLE, ALLOC_STAT_enomem), 1);
	assert_int_equal(test_stat(a, ALLOC_SITE_HANDLE, ALLOC_STAT_stalls), 1);
	alloc_destroy(a);
}

static void test_alloc_verdict_retry_inline_without_cursor(void **state)
{
	struct alloc *a = make(0, ALLOC_DEFAULT_STOCK_BYTES);
	struct toy_cache cache = {.a = a};
	void *p;

	alloc_set_policy(a, &policy_retry, NULL);
	alloc_set_reclaimer(a, toy_reclaim, &cache);
	alloc_fail_nth(a, 1, 1);
	p = alloc_malloc(a, ALLOC_SITE_REQUEST, 64, ALLOC_NOFS);
	assert_non_null(p);
	assert_int_equal(last_failure.caller_can_retry, 0);
	assert_int_equal(decisions, 2);
	/* The caller may hold locks: reclaim ran in no-fs mode. */
	assert_int_equal(cache.calls, 2);
	assert_int_equal(cache.nofs_calls, 2);
	assert_int_equal(test_stat(a, ALLOC_SITE_REQUEST, ALLOC_STAT_caller_retries), 2);
	alloc_free(a, p);

	/* Persistent failure: gives up after retry_limit. */
	alloc_fail_nth(a, 1, UINT64_MAX);
	decisions = 0;
	assert_null(alloc_malloc(a, ALLOC_SITE_REQUEST, 64, 0));
	assert_int_equal(decisions, retry_limit + 1);
	alloc_fail_nth(a, 0, 0);
	alloc_destroy(a);
}

static void test_alloc_verdict_abort_kills_child_and_logs(void **state)
{
	int pipefd[2];
	char buf[1024] = "";
	size_t used = 0;
	ssize_t n;
	int status;
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct alloc *a = alloc_create(NULL);

		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		alloc_set_policy(a, &policy_abort, NULL);
		alloc_fail_nth(a, 1, 0);
		alloc_malloc(a, ALLOC_SITE_INODE, 123, 0);
		_exit(0); /* not reached */
	}
	close(pipefd[1]);
	while (used < sizeof(buf) - 1 &&
	       (n = read(pipefd[0], buf + used, sizeof(buf) - 1 - used)) > 0)
		used += (size_t)n;
	buf[used] = '\0';
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(buf, "site inode"));
	assert_non_null(strstr(buf, "size 123"));
	assert_non_null(strstr(buf, "cause injected"));
	assert_non_null(strstr(buf, "policy testabort"));
}

static void test_alloc_policy_swap_keeps_old_until_destroy(void **state)
{
	struct alloc *a = make(100, 0);

	alloc_set_policy(a, &policy_loop, NULL);
	alloc_set_policy(a, &policy_fail, NULL);
	assert_ptr_equal(alloc_policy(a), &policy_fail);
	assert_null(alloc_malloc(a, ALLOC_SITE_OTHER, 200, 0));
	assert_int_equal(decisions, 1);
	alloc_set_policy(a, NULL, NULL);
	assert_null(alloc_policy(a));
	assert_null(alloc_malloc(a, ALLOC_SITE_OTHER, 200, 0));
	assert_int_equal(decisions, 1);
	alloc_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_two_threads_account_exactly_default_stock),
		cmocka_unit_test(test_alloc_two_threads_account_exactly_stock0),
		cmocka_unit_test(test_alloc_live_equals_held_sizes_per_site),
		cmocka_unit_test(test_alloc_peak_is_exact_with_stock0),
		cmocka_unit_test(test_alloc_size_reports_requested_bytes),
		cmocka_unit_test(test_alloc_zero_flag_zeroes_memory),
		cmocka_unit_test(test_alloc_strdup_copies_and_charges),
		cmocka_unit_test(test_alloc_realloc_accounts_growth_and_shrink),
		cmocka_unit_test(test_alloc_double_free_aborts),
		cmocka_unit_test_setup(test_alloc_no_policy_fails_at_once, reset_policy_log),
		cmocka_unit_test_setup(test_alloc_verdict_fail_returns_enomem_once,
				       reset_policy_log),
		cmocka_unit_test_setup(test_alloc_noretry_never_asks_the_policy, reset_policy_log),
		cmocka_unit_test_setup(test_alloc_verdict_loop_until_reclaimer_frees_room,
				       reset_policy_log),
		cmocka_unit_test_setup(test_alloc_verdict_loop_woken_by_another_threads_free,
				       reset_policy_log),
		cmocka_unit_test_setup(test_alloc_verdict_retry_via_try_gives_up_after_limit,
				       reset_policy_log),
		cmocka_unit_test_setup(test_alloc_verdict_retry_via_try_succeeds_after_transient,
				       reset_policy_log),
		cmocka_unit_test_setup(test_alloc_retry_done_counts_a_caller_giving_up,
				       reset_policy_log),
		cmocka_unit_test_setup(test_alloc_verdict_retry_inline_without_cursor,
				       reset_policy_log),
		cmocka_unit_test_setup(test_alloc_verdict_abort_kills_child_and_logs,
				       reset_policy_log),
		cmocka_unit_test_setup(test_alloc_policy_swap_keeps_old_until_destroy,
				       reset_policy_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
