/*
 * cache/pcache_index.c: the per-file page index (hash table that grows, the
 * lazily sorted list of unwritten pages), driven directly with bare page
 * records, at the scale of a 4 GiB file of 64 KiB pages.
 */
#include "pcache_test.h"
#include "pcache_i.h"

struct ix_fixture {
	struct pt_env env;
	struct pcache_file f;
	struct pcache_page *pages;
};

static int ix_setup(void **state)
{
	struct ix_fixture *fx = calloc(1, sizeof(*fx));
	int err = 0;

	assert_non_null(fx);
	pt_env_setup(&fx->env, 64 * 1024, 0, 0, 60000);
	pt_file_open(&fx->env, &fx->f, "ix");
	fx->f.index = _pcache_index_create(fx->env.pc, 0, NULL, &err);
	assert_non_null(fx->f.index);
	*state = fx;
	return 0;
}

static int ix_teardown(void **state)
{
	struct ix_fixture *fx = *state;

	/* The bare pages are ours, not the allocator's: unlink them first. */
	pthread_mutex_lock(&fx->f.pages_lock);
	_pcache_index_destroy(fx->env.pc, fx->f.index);
	fx->f.index = NULL;
	pthread_mutex_unlock(&fx->f.pages_lock);
	free(fx->pages);
	pt_file_close(&fx->f);
	pt_env_teardown(&fx->env);
	free(fx);
	return 0;
}

static void ix_insert_many(struct ix_fixture *fx, uint64_t n, uint64_t stride)
{
	fx->pages = calloc(n, sizeof(struct pcache_page));
	assert_non_null(fx->pages);
	for (uint64_t i = 0; i < n; i++) {
		fx->pages[i].index = i * stride;
		fx->pages[i].file = &fx->f;
		_pcache_index_reserve(&fx->f);
		pthread_mutex_lock(&fx->f.pages_lock);
		_pcache_index_insert(fx->f.index, &fx->pages[i]);
		pthread_mutex_unlock(&fx->f.pages_lock);
	}
}

static void test_index_holds_65536_pages_and_finds_each(void **state)
{
	struct ix_fixture *fx = *state;
	const uint64_t n = 65536;

	ix_insert_many(fx, n, 1);
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
	struct ix_fixture *fx = *state;
	const uint64_t n = 5000;

	ix_insert_many(fx, n, 7);
	for (uint64_t i = 0; i < n; i += 2)
		_pcache_index_remove(fx->f.index, &fx->pages[i]);
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
	struct ix_fixture *fx = *state;

	/* Every allocation fails from now on: the table cannot grow. */
	alloc_fail_nth(fx->env.a, 1, UINT64_MAX);
	ix_insert_many(fx, 3000, 3);
	alloc_fail_nth(fx->env.a, 0, 0);
	assert_int_equal(fx->f.index->nbuckets, PCACHE_INDEX_INLINE_BUCKETS);
	for (uint64_t i = 0; i < 3000; i++)
		assert_ptr_equal(_pcache_index_lookup(fx->f.index, i * 3), &fx->pages[i]);
}

static void test_index_unwritten_list_sorts_into_file_order(void **state)
{
	struct ix_fixture *fx = *state;
	const uint64_t n = 10000;
	uint64_t seed = 42, prev = 0, seen = 0;
	uint64_t *order = malloc(n * sizeof(*order));

	assert_non_null(order);
	ix_insert_many(fx, n, 1);
	for (uint64_t i = 0; i < n; i++)
		order[i] = i;
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = pt_rand(&seed) % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (uint64_t i = 0; i < n; i++)
		_pcache_uw_add(fx->f.index, &fx->pages[order[i]]);
	assert_false(fx->f.index->uw_sorted);
	_pcache_uw_sort(fx->f.index);
	for (struct pcache_page *p = fx->f.index->uw_head; p; p = p->uw_next) {
		if (seen)
			assert_true(p->index > prev);
		assert_true(p->uw_prev == NULL || p->uw_prev->uw_next == p);
		prev = p->index;
		seen++;
	}
	assert_int_equal(seen, n);
	assert_int_equal(fx->f.index->uw_tail->index, n - 1);
	/* Unlink everything again before teardown frees the records. */
	while (fx->f.index->uw_head)
		_pcache_uw_remove(fx->f.index, fx->f.index->uw_head);
	assert_null(fx->f.index->uw_tail);
	free(order);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_index_holds_65536_pages_and_finds_each,
						ix_setup, ix_teardown),
		cmocka_unit_test_setup_teardown(test_index_remove_leaves_the_others_findable,
						ix_setup, ix_teardown),
		cmocka_unit_test_setup_teardown(test_index_growth_failure_keeps_every_page,
						ix_setup, ix_teardown),
		cmocka_unit_test_setup_teardown(test_index_unwritten_list_sorts_into_file_order,
						ix_setup, ix_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
