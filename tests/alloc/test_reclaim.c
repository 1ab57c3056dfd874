/*
 * alloc/reclaim.c: the reclaim hook and direct reclaim. A budget refusal
 * drops clean pages (the toy cache's blocks here) and tries once more
 * before the policy is asked; injected failures and ALLOC_NORETRY calls go
 * without it; the statistics count what it saved.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "alloc_test.h"

#define BLOCK 1000u

/* ---- policies that record what they were asked ---- */

#include "recording_policy.h"

static int reset_policy_log(void **state)
{
	memset(&last_failure, 0, sizeof(last_failure));
	decisions = 0;
	return 0;
}

/* ---- a cache of clean blocks, and its reclaimer ---- */

struct toy_cache {
	struct alloc *a;
	void *blocks[8];
	unsigned calls;
	unsigned nofs_calls;	/* calls with ALLOC_NOFS */
	unsigned first_flags;	/* flags of the first call */
	unsigned skip_calls;	/* free nothing on the first skip_calls calls */
	pthread_mutex_t *shard; /* a lock the allocating thread may hold */
	unsigned shard_busy;	/* calls that found it held: a would-be deadlock */
};

/* Drops one block per call, as the page cache drops clean pages. */
static size_t toy_reclaim(void *data, size_t want, unsigned flags)
{
	struct toy_cache *c = data;

	if (c->calls++ == 0)
		c->first_flags = flags;
	if (flags & ALLOC_NOFS)
		c->nofs_calls++;
	if (c->shard) {
		/* What freeing a page could lead to (an inode unref takes a
		 * shard lock): a trylock, so that the test cannot hang. */
		if (pthread_mutex_trylock(c->shard) != 0) {
			c->shard_busy++;
			return 0;
		}
		pthread_mutex_unlock(c->shard);
	}
	if (c->calls <= c->skip_calls)
		return 0;
	for (unsigned i = 0; i < 8; i++) {
		if (c->blocks[i]) {
			size_t freed = alloc_size(c->blocks[i]);

			alloc_free(c->a, c->blocks[i]);
			c->blocks[i] = NULL;
			return freed;
		}
	}
	return 0;
}

/* An allocator whose budget (8 * BLOCK) is all held by the toy cache. */
static struct alloc *make_full(struct toy_cache *c)
{
	struct alloc_config cfg = {.mem_limit = 8 * BLOCK, .stock_bytes = 0};
	struct alloc *a = alloc_create(&cfg);

	assert_non_null(a);
	c->a = a;
	for (unsigned i = 0; i < 8; i++)
		assert_non_null(c->blocks[i] = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, BLOCK, 0));
	alloc_set_reclaimer(a, toy_reclaim, c);
	return a;
}

static void destroy_full(struct alloc *a, struct toy_cache *c)
{
	alloc_set_reclaimer(a, NULL, NULL);
	for (unsigned i = 0; i < 8; i++)
		alloc_free(a, c->blocks[i]);
	assert_int_equal(alloc_live(a), 0);
	alloc_destroy(a);
}

static unsigned cached_blocks(const struct toy_cache *c)
{
	unsigned n = 0;

	for (unsigned i = 0; i < 8; i++)
		n += c->blocks[i] != NULL;
	return n;
}

/* ---- tests ---- */

static void test_reclaim_hook_runs_the_registered_reclaimer(void **state)
{
	struct toy_cache c = {0};
	struct alloc *a = make_full(&c);

	assert_int_equal(alloc_reclaim(a, 1, 0), BLOCK);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.first_flags, 0);
	assert_int_equal(cached_blocks(&c), 7);
	/* The hook alone is not direct reclaim: nothing counted. */
	assert_int_equal(test_stat(a, -1, ALLOC_STAT_reclaimed_bytes), 0);
	destroy_full(a, &c);
}

static void test_reclaim_direct_saves_an_enomem_call_without_asking_the_policy(void **state)
{
	struct toy_cache c = {0};
	struct alloc *a = make_full(&c);
	void *p;

	alloc_set_policy(a, &policy_fail, NULL);
	/* No caller flags at all: direct reclaim is no-fs anyway. */
	p = alloc_malloc(a, ALLOC_SITE_WRITEBACK, BLOCK, 0);
	assert_non_null(p);
	assert_int_equal(decisions, 0);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.first_flags, ALLOC_NOFS);
	assert_int_equal(cached_blocks(&c), 7);
	assert_int_equal(test_stat(a, ALLOC_SITE_WRITEBACK, ALLOC_STAT_budget_failures), 1);
	assert_int_equal(test_stat(a, ALLOC_SITE_WRITEBACK, ALLOC_STAT_enomem), 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_WRITEBACK, ALLOC_STAT_reclaimed), 1);
	assert_int_equal(test_stat(a, ALLOC_SITE_WRITEBACK, ALLOC_STAT_reclaimed_bytes), BLOCK);
	/* It failed once before it finished: a stall, as the kernel counts
	 * direct reclaim in allocstall. */
	assert_int_equal(test_stat(a, ALLOC_SITE_WRITEBACK, ALLOC_STAT_stalls), 1);
	/* Counted where the call was made, not at the cache's site. */
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_reclaimed), 0);
	alloc_free(a, p);
	destroy_full(a, &c);
}

static void test_reclaim_direct_spares_a_retry_caller_its_back_off(void **state)
{
	struct toy_cache c = {0};
	struct alloc *a = make_full(&c);
	struct alloc_retry retry = ALLOC_RETRY_INIT;
	int err = 1;
	void *p;

	alloc_set_policy(a, &policy_retry, NULL);
	p = alloc_try(a, ALLOC_SITE_CACHE_PAGE, BLOCK, ALLOC_NOFS, &retry, &err);
	assert_non_null(p);
	assert_int_equal(err, 0);
	assert_int_equal(decisions, 0);
	assert_int_equal(c.nofs_calls, 1);
	assert_int_equal(test_stat(a, -1, ALLOC_STAT_caller_retries), 0);
	assert_int_equal(test_stat(a, -1, ALLOC_STAT_reclaimed), 1);
	alloc_free(a, p);
	destroy_full(a, &c);
}

static void test_reclaim_direct_asks_the_policy_when_it_frees_nothing(void **state)
{
	struct toy_cache c = {.skip_calls = 1};
	struct alloc *a = make_full(&c);

	alloc_set_policy(a, &policy_fail, NULL);
	errno = 0;
	assert_null(alloc_malloc(a, ALLOC_SITE_INODE, BLOCK, ALLOC_NOFS));
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(c.calls, 1);
	assert_int_equal(decisions, 1);
	assert_int_equal(last_failure.cause, PFS_CAUSE_BUDGET);
	assert_int_equal(last_failure.attempt, 0);
	/* Freed nothing: no second attempt, one failure counted. */
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_budget_failures), 1);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_reclaimed), 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_reclaimed_bytes), 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_enomem), 1);
	destroy_full(a, &c);
}

static void test_reclaim_direct_counts_no_save_when_the_retry_fails_too(void **state)
{
	struct toy_cache c = {0};
	struct alloc *a = make_full(&c);

	alloc_set_policy(a, &policy_fail, NULL);
	/* One block freed is not room for two. */
	assert_null(alloc_malloc(a, ALLOC_SITE_REQUEST, 2 * BLOCK, ALLOC_NOFS));
	assert_int_equal(c.calls, 1);
	assert_int_equal(decisions, 1);
	assert_int_equal(test_stat(a, ALLOC_SITE_REQUEST, ALLOC_STAT_budget_failures), 2);
	assert_int_equal(test_stat(a, ALLOC_SITE_REQUEST, ALLOC_STAT_reclaimed), 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_REQUEST, ALLOC_STAT_reclaimed_bytes), BLOCK);
	assert_int_equal(test_stat(a, ALLOC_SITE_REQUEST, ALLOC_STAT_enomem), 1);
	destroy_full(a, &c);
}

static void test_reclaim_direct_skipped_under_noretry_only(void **state)
{
	pthread_mutex_t shard = PTHREAD_MUTEX_INITIALIZER;
	struct toy_cache c = {.shard = &shard};
	struct alloc *a = make_full(&c);
	void *p;

	alloc_set_policy(a, &policy_loop, NULL);
	/* Under a "shard lock": a NORETRY allocation fails at once, and the
	 * reclaimer never runs where it could meet that lock. */
	pthread_mutex_lock(&shard);
	assert_null(alloc_malloc(a, ALLOC_SITE_INODE, BLOCK, ALLOC_NOFS | ALLOC_NORETRY));
	pthread_mutex_unlock(&shard);
	assert_int_equal(c.calls, 0);
	assert_int_equal(c.shard_busy, 0);
	assert_int_equal(decisions, 0);
	assert_int_equal(cached_blocks(&c), 8);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_enomem), 1);

	/* The same allocation without NORETRY (and without the lock) is
	 * saved by direct reclaim. */
	p = alloc_malloc(a, ALLOC_SITE_INODE, BLOCK, ALLOC_NOFS);
	assert_non_null(p);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.nofs_calls, 1);
	assert_int_equal(decisions, 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_reclaimed), 1);
	alloc_free(a, p);
	destroy_full(a, &c);
	pthread_mutex_destroy(&shard);
}

static void test_reclaim_direct_skipped_for_an_injected_failure(void **state)
{
	struct toy_cache c = {0};
	struct alloc *a = make_full(&c);
	void *p;

	alloc_set_policy(a, &policy_fail, NULL);
	/* Make room first, so that only injection can fail the call. */
	alloc_free(a, c.blocks[0]);
	c.blocks[0] = NULL;
	alloc_fail_nth(a, 1, 0);
	assert_null(alloc_malloc(a, ALLOC_SITE_HANDLE, BLOCK, ALLOC_NOFS));
	assert_true(alloc_fail_nth_fired(a));
	/* An injected failure is one that happened after reclaim: straight
	 * to the policy. */
	assert_int_equal(decisions, 1);
	assert_int_equal(last_failure.cause, PFS_CAUSE_INJECTED);
	assert_int_equal(c.calls, 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_HANDLE, ALLOC_STAT_injected_failures), 1);
	assert_int_equal(test_stat(a, ALLOC_SITE_HANDLE, ALLOC_STAT_reclaimed), 0);

	/* A budget refusal of the same call does reclaim. */
	assert_non_null(c.blocks[0] = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, BLOCK, 0));
	p = alloc_malloc(a, ALLOC_SITE_HANDLE, BLOCK, ALLOC_NOFS);
	assert_non_null(p);
	assert_int_equal(decisions, 1);
	assert_int_equal(c.calls, 1);
	assert_int_equal(test_stat(a, ALLOC_SITE_HANDLE, ALLOC_STAT_reclaimed), 1);
	alloc_free(a, p);
	alloc_fail_nth(a, 0, 0);
	destroy_full(a, &c);
}

static void test_reclaim_direct_runs_once_then_the_loop_reclaims(void **state)
{
	struct toy_cache c = {.skip_calls = 2};
	struct alloc *a = make_full(&c);
	void *p;

	alloc_set_policy(a, &policy_loop, NULL);
	/* A caller that holds no fs lock: the LOOP verdict's reclaim may block. */
	p = alloc_malloc(a, ALLOC_SITE_WRITEBACK, BLOCK, 0);
	assert_non_null(p);
	/* Direct reclaim (no-fs) found nothing; the LOOP verdict's own
	 * reclaim (blocking allowed) ran twice, freeing on the second. */
	assert_int_equal(c.calls, 3);
	assert_int_equal(c.nofs_calls, 1);
	assert_int_equal(c.first_flags, ALLOC_NOFS);
	assert_int_equal(decisions, 2);
	assert_int_equal(test_stat(a, ALLOC_SITE_WRITEBACK, ALLOC_STAT_loops), 2);
	/* Saved by the loop, not by direct reclaim. */
	assert_int_equal(test_stat(a, ALLOC_SITE_WRITEBACK, ALLOC_STAT_reclaimed), 0);
	alloc_free(a, p);
	destroy_full(a, &c);
}

static void test_reclaim_direct_shows_in_the_stats_json(void **state)
{
	struct toy_cache c = {0};
	struct alloc *a = make_full(&c);
	char json[8192];
	void *p;

	p = alloc_malloc(a, ALLOC_SITE_READDIR, BLOCK, 0);
	assert_non_null(p);
	assert_true(alloc_stats_json(a, json, sizeof(json)) < sizeof(json));
	assert_non_null(strstr(json, "\"reclaimed\":1,\"reclaimed_bytes\":1000,"));
	assert_int_equal(test_count_substr(json, "\"reclaimed\":1,"), 2); /* total, readdir */
	assert_string_equal(alloc_stat_name(ALLOC_STAT_reclaimed), "reclaimed");
	assert_true(strlen(alloc_stat_help(ALLOC_STAT_reclaimed_bytes)) > 0);
	alloc_free(a, p);
	destroy_full(a, &c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_reclaim_hook_runs_the_registered_reclaimer,
				       reset_policy_log),
		cmocka_unit_test_setup(
			test_reclaim_direct_saves_an_enomem_call_without_asking_the_policy,
			reset_policy_log),
		cmocka_unit_test_setup(test_reclaim_direct_spares_a_retry_caller_its_back_off,
				       reset_policy_log),
		cmocka_unit_test_setup(test_reclaim_direct_asks_the_policy_when_it_frees_nothing,
				       reset_policy_log),
		cmocka_unit_test_setup(test_reclaim_direct_counts_no_save_when_the_retry_fails_too,
				       reset_policy_log),
		cmocka_unit_test_setup(test_reclaim_direct_skipped_under_noretry_only,
				       reset_policy_log),
		cmocka_unit_test_setup(test_reclaim_direct_skipped_for_an_injected_failure,
				       reset_policy_log),
		cmocka_unit_test_setup(test_reclaim_direct_runs_once_then_the_loop_reclaims,
				       reset_policy_log),
		cmocka_unit_test_setup(test_reclaim_direct_shows_in_the_stats_json,
				       reset_policy_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
