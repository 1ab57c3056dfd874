/*
 * alloc/inject.c: the Linux fault-injection knobs, the site filter, the seed
 * and the fail-the-Nth countdown.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "alloc_test.h"

enum { CALLS = 10000 };

static struct alloc *make(const struct pfs_policy_host *host)
{
	struct alloc_config cfg = {.stock_bytes = ALLOC_DEFAULT_STOCK_BYTES, .log_host = host};
	struct alloc *a = alloc_create(&cfg);

	assert_non_null(a);
	return a;
}

/* Allocate and free n times at site; pattern[i] = attempt i failed. */
static unsigned run_calls(struct alloc *a, enum alloc_site site, size_t size, unsigned n,
			  bool *pattern)
{
	unsigned failed = 0;

	for (unsigned i = 0; i < n; i++) {
		void *p = alloc_malloc(a, site, size, 0);

		if (pattern)
			pattern[i] = p == NULL;
		failed += p == NULL;
		alloc_free(a, p);
	}
	return failed;
}

static void test_inject_probability_0_never_fails(void **state)
{
	struct alloc *a = make(NULL);
	struct alloc_inject in = ALLOC_INJECT_OFF;

	in.probability = 0;
	alloc_set_inject(a, &in);
	assert_int_equal(run_calls(a, ALLOC_SITE_CACHE_PAGE, 64, 1000, NULL), 0);
	assert_int_equal(test_stat(a, -1, ALLOC_STAT_injected_failures), 0);
	alloc_destroy(a);
}

static void test_inject_probability_100_always_fails(void **state)
{
	struct alloc *a = make(NULL);
	struct alloc_inject in = ALLOC_INJECT_OFF;

	in.probability = 100;
	alloc_set_inject(a, &in);
	assert_int_equal(run_calls(a, ALLOC_SITE_CACHE_PAGE, 64, 1000, NULL), 1000);
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_injected_failures), 1000);
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_enomem), 1000);
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_calls), 1000);
	assert_int_equal(alloc_live(a), 0);
	alloc_destroy(a);
}

static void test_inject_probability_50_fails_about_half(void **state)
{
	struct alloc *a = make(NULL);
	struct alloc_inject in = ALLOC_INJECT_OFF;
	unsigned failed;

	in.probability = 50;
	in.seed = 7;
	alloc_set_inject(a, &in);
	failed = run_calls(a, ALLOC_SITE_OTHER, 64, CALLS, NULL);
	/* Binomial(10000, 0.5): 4500..5500 is more than 10 sigma wide. */
	assert_in_range(failed, 4500, 5500);
	alloc_destroy(a);
}

static void test_inject_interval_fails_every_nth_call(void **state)
{
	struct alloc *a = make(NULL);
	struct alloc_inject in = ALLOC_INJECT_OFF;
	bool pattern[30];

	in.probability = 100;
	in.interval = 3;
	alloc_set_inject(a, &in);
	run_calls(a, ALLOC_SITE_OTHER, 64, 30, pattern);
	for (unsigned i = 0; i < 30; i++)
		assert_int_equal(pattern[i], (i + 1) % 3 == 0);
	alloc_destroy(a);
}

static void test_inject_times_limits_the_failures(void **state)
{
	struct alloc *a = make(NULL);
	struct alloc_inject in = ALLOC_INJECT_OFF;
	struct alloc_inject now;
	bool pattern[20];

	in.probability = 100;
	in.times = 5;
	alloc_set_inject(a, &in);
	run_calls(a, ALLOC_SITE_OTHER, 64, 20, pattern);
	for (unsigned i = 0; i < 20; i++)
		assert_int_equal(pattern[i], i < 5);
	alloc_get_inject(a, &now);
	assert_int_equal(now.times, 0);
	/* Exhausted: the fast path is back (nothing armed). */
	assert_false(atomic_load(&a->hot.gate) & ALLOC_GATE_ARMED);
	alloc_destroy(a);
}

static void test_inject_times_minus_one_is_unlimited(void **state)
{
	struct alloc *a = make(NULL);
	struct alloc_inject in = ALLOC_INJECT_OFF;
	struct alloc_inject now;

	in.probability = 100;
	in.times = -1;
	alloc_set_inject(a, &in);
	assert_int_equal(run_calls(a, ALLOC_SITE_OTHER, 64, 500, NULL), 500);
	alloc_get_inject(a, &now);
	assert_int_equal(now.times, -1);
	alloc_destroy(a);
}

static void test_inject_space_lets_bytes_pass_first(void **state)
{
	struct alloc *a = make(NULL);
	struct alloc_inject in = ALLOC_INJECT_OFF;
	bool pattern[15];

	/* As the kernel: while space > size, space -= size and the call passes. */
	in.probability = 100;
	in.space = 1000;
	alloc_set_inject(a, &in);
	run_calls(a, ALLOC_SITE_OTHER, 100, 15, pattern);
	for (unsigned i = 0; i < 15; i++)
		assert_int_equal(pattern[i], i >= 9);
	alloc_destroy(a);
}

static void test_inject_site_filter_spares_other_sites(void **state)
{
	struct alloc *a = make(NULL);
	struct alloc_inject in = ALLOC_INJECT_OFF;

	in.probability = 100;
	assert_int_equal(alloc_site_mask_parse("inode,writeback", &in.sites, NULL, 0), 0);
	alloc_set_inject(a, &in);
	assert_int_equal(run_calls(a, ALLOC_SITE_CACHE_PAGE, 64, 100, NULL), 0);
	assert_int_equal(run_calls(a, ALLOC_SITE_INODE, 64, 100, NULL), 100);
	assert_int_equal(run_calls(a, ALLOC_SITE_WRITEBACK, 64, 100, NULL), 100);
	assert_int_equal(run_calls(a, ALLOC_SITE_REQUEST, 64, 100, NULL), 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_injected_failures), 0);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_injected_failures), 100);
	alloc_destroy(a);
}

static void test_inject_verbose_logs_each_failure(void **state)
{
	struct test_log *log = calloc(1, sizeof(*log));
	struct pfs_policy_host host = {.log = test_log_fn, .host_data = log};
	struct alloc *a = make(&host);
	struct alloc_inject in = ALLOC_INJECT_OFF;

	in.probability = 100;
	in.times = 3;
	in.verbose = true;
	alloc_set_inject(a, &in);
	run_calls(a, ALLOC_SITE_READDIR, 77, 10, NULL);
	assert_int_equal(log->lines, 3);
	assert_int_equal(test_count_substr(log->text, "injected failure at site readdir, size 77"),
			 3);

	/* Quiet when verbose is off. */
	in.verbose = false;
	alloc_set_inject(a, &in);
	run_calls(a, ALLOC_SITE_READDIR, 77, 10, NULL);
	assert_int_equal(log->lines, 3);
	alloc_destroy(a);
	free(log);
}

static void pattern_for_seed(uint64_t seed, bool *pattern)
{
	struct alloc *a = make(NULL);
	struct alloc_inject in = ALLOC_INJECT_OFF;

	in.probability = 30;
	in.seed = seed;
	alloc_set_inject(a, &in);
	run_calls(a, ALLOC_SITE_CACHE_PAGE, 64, CALLS, pattern);
	alloc_destroy(a);
}

static void test_inject_same_seed_same_failures(void **state)
{
	static bool first[CALLS], second[CALLS];
	unsigned failed = 0;

	pattern_for_seed(42, first);
	pattern_for_seed(42, second);
	assert_memory_equal(first, second, sizeof(first));
	for (unsigned i = 0; i < CALLS; i++)
		failed += first[i];
	assert_in_range(failed, 2000, 4000);
}

static void test_inject_different_seed_different_failures(void **state)
{
	static bool first[CALLS], second[CALLS];
	unsigned differ = 0;

	pattern_for_seed(42, first);
	pattern_for_seed(43, second);
	for (unsigned i = 0; i < CALLS; i++)
		differ += first[i] != second[i];
	/* Independent 30% draws differ in ~42% of places. */
	assert_true(differ > CALLS / 10);
}

static void test_inject_set_restarts_the_sequence(void **state)
{
	static bool first[1000], second[1000];
	struct alloc *a = make(NULL);
	struct alloc_inject in = ALLOC_INJECT_OFF;

	in.probability = 50;
	in.seed = 9;
	alloc_set_inject(a, &in);
	run_calls(a, ALLOC_SITE_OTHER, 64, 1000, first);
	alloc_set_inject(a, &in);
	run_calls(a, ALLOC_SITE_OTHER, 64, 1000, second);
	assert_memory_equal(first, second, sizeof(first));
	alloc_destroy(a);
}

static void test_inject_countdown_fails_nth_once_transient(void **state)
{
	struct alloc *a = make(NULL);
	bool pattern[10];

	alloc_fail_nth(a, 3, 0);
	assert_false(alloc_fail_nth_fired(a));
	run_calls(a, ALLOC_SITE_OTHER, 64, 10, pattern);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(pattern[i], i == 2);
	assert_true(alloc_fail_nth_fired(a));
	alloc_destroy(a);
}

static void test_inject_countdown_fails_nth_then_more(void **state)
{
	struct alloc *a = make(NULL);
	bool pattern[10];

	alloc_fail_nth(a, 3, 2);
	run_calls(a, ALLOC_SITE_INODE, 64, 10, pattern);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(pattern[i], i >= 2 && i <= 4);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_injected_failures), 3);
	alloc_destroy(a);
}

static void test_inject_countdown_persistent_fails_all_later(void **state)
{
	struct alloc *a = make(NULL);
	bool pattern[50];

	alloc_fail_nth(a, 4, UINT64_MAX);
	run_calls(a, ALLOC_SITE_OTHER, 64, 50, pattern);
	for (unsigned i = 0; i < 50; i++)
		assert_int_equal(pattern[i], i >= 3);
	alloc_fail_nth(a, 0, 0);
	assert_int_equal(run_calls(a, ALLOC_SITE_OTHER, 64, 10, NULL), 0);
	alloc_destroy(a);
}

static void test_inject_countdown_not_reached_never_fires(void **state)
{
	struct alloc *a = make(NULL);

	alloc_fail_nth(a, 100, 0);
	assert_int_equal(run_calls(a, ALLOC_SITE_OTHER, 64, 99, NULL), 0);
	assert_false(alloc_fail_nth_fired(a));
	/* Disarming clears it without firing. */
	alloc_fail_nth(a, 0, 0);
	assert_int_equal(run_calls(a, ALLOC_SITE_OTHER, 64, 5, NULL), 0);
	assert_false(alloc_fail_nth_fired(a));
	alloc_destroy(a);
}

static void test_inject_countdown_counts_every_site(void **state)
{
	struct alloc *a = make(NULL);
	void *p, *q;

	alloc_fail_nth(a, 2, 0);
	p = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 10, 0);
	q = alloc_malloc(a, ALLOC_SITE_HANDLE, 10, 0);
	assert_non_null(p);
	assert_null(q);
	assert_int_equal(test_stat(a, ALLOC_SITE_HANDLE, ALLOC_STAT_injected_failures), 1);
	alloc_free(a, p);
	alloc_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inject_probability_0_never_fails),
		cmocka_unit_test(test_inject_probability_100_always_fails),
		cmocka_unit_test(test_inject_probability_50_fails_about_half),
		cmocka_unit_test(test_inject_interval_fails_every_nth_call),
		cmocka_unit_test(test_inject_times_limits_the_failures),
		cmocka_unit_test(test_inject_times_minus_one_is_unlimited),
		cmocka_unit_test(test_inject_space_lets_bytes_pass_first),
		cmocka_unit_test(test_inject_site_filter_spares_other_sites),
		cmocka_unit_test(test_inject_verbose_logs_each_failure),
		cmocka_unit_test(test_inject_same_seed_same_failures),
		cmocka_unit_test(test_inject_different_seed_different_failures),
		cmocka_unit_test(test_inject_set_restarts_the_sequence),
		cmocka_unit_test(test_inject_countdown_fails_nth_once_transient),
		cmocka_unit_test(test_inject_countdown_fails_nth_then_more),
		cmocka_unit_test(test_inject_countdown_persistent_fails_all_later),
		cmocka_unit_test(test_inject_countdown_not_reached_never_fires),
		cmocka_unit_test(test_inject_countdown_counts_every_site),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
