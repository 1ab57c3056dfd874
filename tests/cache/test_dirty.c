/*
 * cache/dirty.c: the list of a file's unwritten pages, kept in file order
 * lazily, driven directly with bare page records.
 */
#include "dirty_i.h"
#include "index_i.h"
#include "pcache_test.h"

struct dirty_fixture {
	struct pt_env env;
	struct pcache_file f;
	struct pcache_page *pages;
};

static int dirty_setup(void **state)
{
	struct dirty_fixture *fx = calloc(1, sizeof(*fx));
	int err = 0;

	assert_non_null(fx);
	pt_env_setup(&fx->env, 64 * 1024, 0, 0, 60000);
	pt_file_open(&fx->env, &fx->f, "ix");
	fx->f.index = _pcache_index_create(fx->env.pc, 0, NULL, &err);
	assert_non_null(fx->f.index);
	*state = fx;
	return 0;
}

static void dirty_remove_cb(struct pcache_file *f, struct pcache_page *p, void *data)
{
	_pcache_index_remove(f, p);
}

static int dirty_teardown(void **state)
{
	struct dirty_fixture *fx = *state;

	/* The bare pages are ours, not the allocator's: unlink them first. */
	pthread_mutex_lock(&fx->f.pages_lock);
	_pcache_index_for_each(fx->f.index, dirty_remove_cb, &fx->f, NULL);
	_pcache_index_destroy(fx->env.pc, fx->f.index);
	fx->f.index = NULL;
	pthread_mutex_unlock(&fx->f.pages_lock);
	free(fx->pages);
	pt_file_close(&fx->f);
	pt_env_teardown(&fx->env);
	free(fx);
	return 0;
}

static void dirty_insert_many(struct dirty_fixture *fx, uint64_t n, uint64_t stride)
{
	fx->pages = calloc(n, sizeof(struct pcache_page));
	assert_non_null(fx->pages);
	for (uint64_t i = 0; i < n; i++) {
		fx->pages[i].index = i * stride;
		fx->pages[i].file = &fx->f;
		_pcache_index_reserve(&fx->f);
		pthread_mutex_lock(&fx->f.pages_lock);
		_pcache_index_insert(&fx->f, &fx->pages[i]);
		pthread_mutex_unlock(&fx->f.pages_lock);
	}
}

static void test_dirty_unwritten_list_sorts_into_file_order(void **state)
{
	struct dirty_fixture *fx = *state;
	const uint64_t n = 10000;
	uint64_t seed = 42, prev = 0, seen = 0;
	uint64_t *order = malloc(n * sizeof(*order));

	assert_non_null(order);
	dirty_insert_many(fx, n, 1);
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
						dirty_setup, dirty_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
