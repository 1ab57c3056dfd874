/*
 * cache/dirty.c: the list of a file's unwritten pages, kept in file order
 * lazily, driven directly with bare page records.
 */
#include "dirty_i.h"
#include "index_i.h"
#include "pcache_test.h"
#include "pt_fixtures.h"

static void test_dirty_unwritten_list_sorts_into_file_order(void **state)
{
	struct pt_index_fixture *fx = *state;
	const uint64_t n = 10000;
	uint64_t seed = 42, prev = 0, seen = 0;
	uint64_t *order = malloc(n * sizeof(*order));

	assert_non_null(order);
	pt_index_insert_many(fx, n, 1);
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
		cmocka_unit_test_setup_teardown(test_dirty_unwritten_list_sorts_into_file_order,
						pt_index_setup, pt_index_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
