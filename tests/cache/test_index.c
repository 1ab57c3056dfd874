/*
 * cache/index.c: the per-file page index (a hash table that grows, and
 * the cached-bytes count it keeps), driven directly with bare page records,
 * at the scale of a 4 GiB file of 64 KiB pages.
 */
#include "index_i.h"
#include "pcache_test.h"
#include "pt_fixtures.h"

static void test_index_holds_65536_pages_and_finds_each(void **state)
{
	struct pt_index_fixture *fx = *state;
	const uint64_t n = 65536;

	pt_index_insert_many(fx, n, 1);
	assert_int_equal(fx->f.index->count, n);
	/* It grew: at most two pages per bucket on average. */
	assert_true(fx->f.index->nbuckets * 2 >= n);
	for (uint64_t i = 0; i < n; i++)
		assert_ptr_equal(_pcache_index_lookup(fx->f.index, i), &fx->pages[i]);
	assert_null(_pcache_index_lookup(fx->f.index, n));
	assert_null(_pcache_index_lookup(fx->f.index, UINT64_MAX));
}

static void test_index_remove_leaves_the_others_findable(void **state)
{
	struct pt_index_fixture *fx = *state;
	const uint64_t n = 5000;

	pt_index_insert_many(fx, n, 7);
	for (uint64_t i = 0; i < n; i += 2)
		_pcache_index_remove(&fx->f, &fx->pages[i]);
	assert_int_equal(fx->f.index->count, n / 2);
	for (uint64_t i = 0; i < n; i++) {
		struct pcache_page *p = _pcache_index_lookup(fx->f.index, i * 7);

		if (i % 2)
			assert_ptr_equal(p, &fx->pages[i]);
		else
			assert_null(p);
	}
}

static void test_index_growth_failure_keeps_every_page(void **state)
{
	struct pt_index_fixture *fx = *state;

	/* Every allocation fails from now on: the table cannot grow. */
	alloc_fail_nth(fx->env.a, 1, UINT64_MAX);
	pt_index_insert_many(fx, 3000, 3);
	alloc_fail_nth(fx->env.a, 0, 0);
	assert_int_equal(fx->f.index->nbuckets, PCACHE_INDEX_INLINE_BUCKETS);
	for (uint64_t i = 0; i < 3000; i++)
		assert_ptr_equal(_pcache_index_lookup(fx->f.index, i * 3), &fx->pages[i]);
}

static uint64_t ix_cached_bytes(struct pt_index_fixture *fx)
{
	struct pcache_usage u;

	pcache_usage_read(fx->env.pc, &u);
	return u.cached_bytes;
}

/* A page is cached while it is in an index: the index keeps the count. */
static void test_index_counts_cached_bytes_on_insert_and_remove(void **state)
{
	struct pt_index_fixture *fx = *state;
	size_t page = pcache_page_size(fx->env.pc);

	assert_int_equal(ix_cached_bytes(fx), 0);
	pt_index_insert_many(fx, 100, 1);
	assert_int_equal(ix_cached_bytes(fx), 100 * page);
	pthread_mutex_lock(&fx->f.pages_lock);
	for (uint64_t i = 0; i < 40; i++)
		_pcache_index_remove(&fx->f, &fx->pages[i]);
	/* A page not in the index is no page of it: nothing to uncount. */
	_pcache_index_remove(&fx->f, &fx->pages[0]);
	pthread_mutex_unlock(&fx->f.pages_lock);
	assert_int_equal(ix_cached_bytes(fx), 60 * page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_index_holds_65536_pages_and_finds_each,
						pt_index_setup, pt_index_teardown),
		cmocka_unit_test_setup_teardown(test_index_remove_leaves_the_others_findable,
						pt_index_setup, pt_index_teardown),
		cmocka_unit_test_setup_teardown(test_index_growth_failure_keeps_every_page,
						pt_index_setup, pt_index_teardown),
		cmocka_unit_test_setup_teardown(test_index_counts_cached_bytes_on_insert_and_remove,
						pt_index_setup, pt_index_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
