/*
 * alloc/stats.c: the counter table, snapshots summed over threads, reset,
 * the stall histogram and the JSON export.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "alloc_test.h"

static struct alloc *make(uint64_t limit, size_t stock)
{
	struct alloc_config cfg = {.mem_limit = limit, .stock_bytes = stock};
	struct alloc *a = alloc_create(&cfg);

	assert_non_null(a);
	return a;
}

static void test_stats_names_and_help_cover_the_table(void **state)
{
	for (unsigned i = 0; i < ALLOC_STAT_COUNT; i++) {
		assert_true(strlen(alloc_stat_name((enum alloc_stat)i)) > 0);
		assert_true(strlen(alloc_stat_help((enum alloc_stat)i)) > 0);
	}
	assert_string_equal(alloc_stat_name(ALLOC_STAT_calls), "calls");
	assert_string_equal(alloc_stat_name(ALLOC_STAT_stall_ns_max), "stall_ns_max");
	assert_string_equal(alloc_stat_name(ALLOC_STAT_COUNT), "?");
}

/* Check that JSON text is balanced and has no stray characters outside strings. */
static void assert_json_looks_valid(const char *json)
{
	int depth = 0;
	bool in_string = false;

	assert_int_equal(json[0], '{');
	for (const char *p = json; *p; p++) {
		if (*p == '"') {
			in_string = !in_string;
			continue;
		}
		if (in_string)
			continue;
		if (*p == '{')
			depth++;
		else if (*p == '}')
			depth--;
		else
			assert_non_null(strchr(":,0123456789", *p));
		assert_true(depth >= 0);
	}
	assert_false(in_string);
	assert_int_equal(depth, 0);
}

static void test_stats_json_has_every_counter_of_every_site(void **state)
{
	struct alloc *a = make(1 << 20, ALLOC_DEFAULT_STOCK_BYTES);
	void *p = alloc_malloc(a, ALLOC_SITE_WRITEBACK, 4321, 0);
	size_t need = alloc_stats_json(a, NULL, 0);
	char *json = malloc(need + 1);
	char key[64];

	assert_true(need > 100);
	assert_int_equal(alloc_stats_json(a, json, need + 1), need);
	assert_int_equal(strlen(json), need);
	assert_json_looks_valid(json);
	assert_non_null(strstr(json, "\"mem_limit\":1048576,"));
	assert_non_null(strstr(json, "\"policy\":\"none\""));
	assert_non_null(strstr(json, "\"total\":{"));
	assert_non_null(strstr(json, "\"sites\":{"));
	assert_non_null(strstr(json, "\"stall_histogram_ms\":{\"<1\":0,\"<2\":0"));
	for (unsigned s = 0; s < ALLOC_SITE_COUNT; s++) {
		snprintf(key, sizeof(key),
			 "\"%s\":{\"calls\":", alloc_site_name((enum alloc_site)s));
		assert_non_null(strstr(json, key));
	}
	for (unsigned i = 0; i < ALLOC_STAT_COUNT; i++) {
		snprintf(key, sizeof(key), "\"%s\":", alloc_stat_name((enum alloc_stat)i));
		/* Once in total, once per site. */
		assert_int_equal(test_count_substr(json, key), ALLOC_SITE_COUNT + 1);
	}
	assert_non_null(strstr(json, "\"writeback\":{\"calls\":1,\"bytes\":4321,\"frees\":0,"
				     "\"live\":4321,"));
	alloc_free(a, p);
	free(json);
	alloc_destroy(a);
}

static void test_stats_json_truncates_like_snprintf(void **state)
{
	struct alloc *a = make(0, ALLOC_DEFAULT_STOCK_BYTES);
	char small[16];
	char big[8192];
	size_t need = alloc_stats_json(a, small, sizeof(small));

	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_true(need < sizeof(big));
	assert_int_equal(alloc_stats_json(a, big, sizeof(big)), need);
	assert_memory_equal(small, big, sizeof(small) - 1);
	alloc_destroy(a);
}

static struct pfs_decision decide_fail(void *st, const struct pfs_failure *f)
{
	return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
}

TEST_POLICY(policy_fail, "testfail", decide_fail);

static void test_stats_json_names_the_policy(void **state)
{
	struct alloc *a = make(0, ALLOC_DEFAULT_STOCK_BYTES);
	char json[8192];

	alloc_set_policy(a, &policy_fail, NULL);
	alloc_stats_json(a, json, sizeof(json));
	assert_non_null(strstr(json, "\"policy\":\"testfail\""));
	alloc_destroy(a);
}

static void test_stats_reset_zeroes_sums_and_keeps_live(void **state)
{
	struct alloc *a = make(1000, 0);
	void *keep = alloc_malloc(a, ALLOC_SITE_INODE, 300, 0);
	void *gone = alloc_malloc(a, ALLOC_SITE_INODE, 400, 0);
	struct alloc_stats st;

	alloc_free(a, gone);
	assert_null(alloc_malloc(a, ALLOC_SITE_INODE, 2000, 0));
	alloc_stats_read(a, &st);
	assert_int_equal(st.site[ALLOC_SITE_INODE][ALLOC_STAT_calls], 3);
	assert_int_equal(st.site[ALLOC_SITE_INODE][ALLOC_STAT_peak], 700);
	assert_int_equal(st.site[ALLOC_SITE_INODE][ALLOC_STAT_budget_failures], 1);

	alloc_stats_reset(a);
	alloc_stats_read(a, &st);
	for (unsigned i = 0; i < ALLOC_STAT_COUNT; i++) {
		if (i == ALLOC_STAT_live || i == ALLOC_STAT_peak)
			continue;
		assert_int_equal(st.total[i], 0);
	}
	assert_int_equal(st.site[ALLOC_SITE_INODE][ALLOC_STAT_live], 300);
	assert_int_equal(st.site[ALLOC_SITE_INODE][ALLOC_STAT_peak], 300);
	assert_int_equal(st.total[ALLOC_STAT_peak], 300);

	/* Counting goes on from the baseline. */
	alloc_free(a, keep);
	keep = alloc_malloc(a, ALLOC_SITE_INODE, 10, 0);
	alloc_stats_read(a, &st);
	assert_int_equal(st.site[ALLOC_SITE_INODE][ALLOC_STAT_calls], 1);
	assert_int_equal(st.site[ALLOC_SITE_INODE][ALLOC_STAT_bytes], 10);
	assert_int_equal(st.site[ALLOC_SITE_INODE][ALLOC_STAT_frees], 1);
	assert_int_equal(st.site[ALLOC_SITE_INODE][ALLOC_STAT_live], 10);
	alloc_free(a, keep);
	alloc_destroy(a);
}

static void *exiting_thread(void *arg)
{
	struct alloc *a = arg;

	for (unsigned i = 0; i < 100; i++)
		alloc_free(a, alloc_malloc(a, ALLOC_SITE_HANDLE, 8, 0));
	return alloc_malloc(a, ALLOC_SITE_HANDLE, 8, 0); /* freed by main */
}

static void test_stats_include_exited_threads(void **state)
{
	struct alloc *a = make(0, ALLOC_DEFAULT_STOCK_BYTES);
	pthread_t t;
	void *p;

	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(pthread_create(&t, NULL, exiting_thread, a), 0);
		pthread_join(t, &p);
		alloc_free(a, p);
	}
	assert_int_equal(test_stat(a, ALLOC_SITE_HANDLE, ALLOC_STAT_calls), 303);
	assert_int_equal(test_stat(a, ALLOC_SITE_HANDLE, ALLOC_STAT_frees), 303);
	assert_int_equal(test_stat(a, ALLOC_SITE_HANDLE, ALLOC_STAT_bytes), 303 * 8);
	assert_int_equal(test_stat(a, ALLOC_SITE_HANDLE, ALLOC_STAT_live), 0);
	alloc_destroy(a);
}

static struct pfs_decision decide_loop(void *st, const struct pfs_failure *f)
{
	return (struct pfs_decision){.verdict = PFS_VERDICT_LOOP, .wait_ns = 2000000};
}

TEST_POLICY(policy_loop, "testloop", decide_loop);

static void test_stats_stall_lands_in_histogram(void **state)
{
	struct alloc *a = make(0, ALLOC_DEFAULT_STOCK_BYTES);
	struct alloc_stats st;
	uint64_t hist = 0;
	void *p;

	alloc_set_policy(a, &policy_loop, NULL);
	alloc_fail_nth(a, 1, 2);
	p = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 64, 0);
	assert_non_null(p);
	alloc_free(a, p);
	alloc_stats_read(a, &st);
	assert_int_equal(st.total[ALLOC_STAT_stalls], 1);
	assert_int_equal(st.total[ALLOC_STAT_loops], 3);
	/* Three waits of up to 2 ms; a wait never ends early without an event,
	 * so the stall is at least 6 ms: bucket "<8" or later. */
	assert_true(st.total[ALLOC_STAT_stall_ns_max] >= 6000000);
	assert_int_equal(st.total[ALLOC_STAT_stall_ns_total], st.total[ALLOC_STAT_stall_ns_max]);
	for (unsigned b = 0; b < ALLOC_STALL_BUCKETS; b++)
		hist += st.stall_hist[b];
	assert_int_equal(hist, 1);
	for (unsigned b = 0; b < 3; b++)
		assert_int_equal(st.stall_hist[b], 0);
	alloc_destroy(a);
}

static void test_stats_snapshot_reports_budget_fields(void **state)
{
	struct alloc *a = make(5000, 0);
	struct alloc_stats st;
	void *p = alloc_malloc(a, ALLOC_SITE_OTHER, 1234, 0);

	alloc_set_balloon(a, 100);
	alloc_stats_read(a, &st);
	assert_int_equal(st.mem_limit, 5000);
	assert_int_equal(st.balloon, 100);
	assert_int_equal(st.charged, 1234);
	assert_int_equal(st.total[ALLOC_STAT_peak], 1234);
	alloc_free(a, p);
	alloc_destroy(a);
}

/*
 * The fast path counts in packed words that are folded into wide counters
 * every 2^15 calls: many more calls than that, some blocks held across the
 * folds, a reader in between, and every sum is still exact.
 */
static void test_stats_exact_across_counter_folds(void **state)
{
	enum { PAIRS = 100000, HELD = 40 };
	struct alloc *a = make(1ull << 30, ALLOC_DEFAULT_STOCK_BYTES);
	void *held[HELD];
	struct alloc_stats st;

	for (unsigned i = 0; i < HELD; i++)
		held[i] = alloc_malloc(a, ALLOC_SITE_REQUEST, 100 + i, 0);
	for (unsigned i = 0; i < PAIRS; i++) {
		void *p = alloc_malloc(a, ALLOC_SITE_REQUEST, 64 + i % 7, 0);

		assert_non_null(p);
		alloc_free(a, p);
		if (i == PAIRS / 2) {
			alloc_stats_read(a, &st);
			assert_int_equal(st.site[ALLOC_SITE_REQUEST][ALLOC_STAT_calls],
					 HELD + PAIRS / 2 + 1);
		}
	}
	alloc_stats_read(a, &st);
	assert_int_equal(st.site[ALLOC_SITE_REQUEST][ALLOC_STAT_calls], HELD + PAIRS);
	assert_int_equal(st.site[ALLOC_SITE_REQUEST][ALLOC_STAT_frees], PAIRS);
	/* 64..70 bytes by i % 7: 14285 whole rounds of 469, then 64 + 65 + ... + 68. */
	assert_int_equal(st.site[ALLOC_SITE_REQUEST][ALLOC_STAT_bytes],
			 HELD * 100 + HELD * (HELD - 1) / 2 + 14285ull * 469 + 330);
	assert_int_equal(st.site[ALLOC_SITE_REQUEST][ALLOC_STAT_live],
			 HELD * 100 + HELD * (HELD - 1) / 2);
	assert_int_equal(alloc_live(a), HELD * 100 + HELD * (HELD - 1) / 2);
	for (unsigned i = 0; i < HELD; i++)
		alloc_free(a, held[i]);
	assert_int_equal(alloc_live(a), 0);
	alloc_stats_read(a, &st);
	assert_int_equal(st.site[ALLOC_SITE_REQUEST][ALLOC_STAT_frees], PAIRS + HELD);
	alloc_destroy(a);
}

/*
 * A reader sums other threads' counters while those threads count and fold.
 * Under ThreadSanitizer (run-tests' third build) this is the test that puts
 * the fast path's writes beside a reader, so a plain write there is
 * reported. No sum may go backwards (a fold read half done drops 2^15
 * calls; the window is a few instructions wide, so that is caught only now
 * and then) and the totals are exact at the end.
 */
enum { COUNTERS_THREADS = 3, COUNTERS_READS = 2000, COUNTERS_SEEN = 30000 };

struct counting {
	struct alloc *a;
	atomic_bool *stop;
	uint64_t pairs; /* this thread's malloc/free pairs, read after join */
};

/*
 * Counts until the reader says stop, so the reader's sums overlap the
 * counting however the two cores are scheduled: with a fixed number of
 * pairs the counters could finish before the reader ran once (CI saw it).
 */
static void *counting_thread(void *arg)
{
	struct counting *c = arg;

	while (!atomic_load(c->stop)) {
		alloc_free(c->a, alloc_malloc(c->a, ALLOC_SITE_READDIR, 32, 0));
		c->pairs++;
	}
	return NULL;
}

static void test_stats_read_while_other_threads_count_and_fold(void **state)
{
	struct alloc *a = make(1ull << 30, ALLOC_DEFAULT_STOCK_BYTES);
	struct counting c[COUNTERS_THREADS];
	pthread_t t[COUNTERS_THREADS];
	atomic_bool stop = false;
	uint64_t calls = 0, frees = 0, bytes = 0, pairs = 0;
	unsigned backwards = 0, reads = 0;
	struct alloc_stats st;

	for (unsigned i = 0; i < COUNTERS_THREADS; i++) {
		c[i] = (struct counting){.a = a, .stop = &stop};
		assert_int_equal(pthread_create(&t[i], NULL, counting_thread, &c[i]), 0);
	}
	/* Enough reads, and enough counting seen (several folds of 2^15). */
	do {
		alloc_stats_read(a, &st);
		reads++;
		backwards += st.site[ALLOC_SITE_READDIR][ALLOC_STAT_calls] < calls ||
			     st.site[ALLOC_SITE_READDIR][ALLOC_STAT_frees] < frees ||
			     st.site[ALLOC_SITE_READDIR][ALLOC_STAT_bytes] < bytes;
		calls = st.site[ALLOC_SITE_READDIR][ALLOC_STAT_calls];
		frees = st.site[ALLOC_SITE_READDIR][ALLOC_STAT_frees];
		bytes = st.site[ALLOC_SITE_READDIR][ALLOC_STAT_bytes];
	} while (reads < COUNTERS_READS || calls < (uint64_t)COUNTERS_THREADS * COUNTERS_SEEN);
	atomic_store(&stop, true);
	for (unsigned i = 0; i < COUNTERS_THREADS; i++) {
		pthread_join(t[i], NULL);
		pairs += c[i].pairs;
	}
	assert_int_equal(backwards, 0);
	alloc_stats_read(a, &st);
	assert_true(pairs >= calls);
	assert_int_equal(st.site[ALLOC_SITE_READDIR][ALLOC_STAT_calls], pairs);
	assert_int_equal(st.site[ALLOC_SITE_READDIR][ALLOC_STAT_frees], pairs);
	assert_int_equal(st.site[ALLOC_SITE_READDIR][ALLOC_STAT_bytes], 32ull * pairs);
	assert_int_equal(alloc_live(a), 0);
	alloc_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_names_and_help_cover_the_table),
		cmocka_unit_test(test_stats_json_has_every_counter_of_every_site),
		cmocka_unit_test(test_stats_json_truncates_like_snprintf),
		cmocka_unit_test(test_stats_json_names_the_policy),
		cmocka_unit_test(test_stats_reset_zeroes_sums_and_keeps_live),
		cmocka_unit_test(test_stats_include_exited_threads),
		cmocka_unit_test(test_stats_stall_lands_in_histogram),
		cmocka_unit_test(test_stats_snapshot_reports_budget_fields),
		cmocka_unit_test(test_stats_exact_across_counter_folds),
		cmocka_unit_test(test_stats_read_while_other_threads_count_and_fold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
