/*
 * cache/lru.c: the clean pages: drop_caches drops them and only them,
 * reads cache clean pages, and clean_limit keeps the newest.
 */
#include "lru_i.h" /* _pcache_clean_limit */
#include "pcache_test.h"
#include "pt_fixtures.h"

#define PAGE (64u * 1024u)

static void test_lru_drop_clean_frees_clean_pages_only(void **state)
{
	struct pt_model_fixture *fx = *state;
	struct pcache_usage u;
	uint64_t live_before;

	pt_write(&fx->f, &fx->m, 4 * PAGE, 0, 1);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_write(&fx->f, &fx->m, 2 * PAGE, 4 * PAGE, 2); /* dirty, must survive */
	live_before = alloc_live(fx->env.a);
	assert_int_equal(pcache_drop_clean(fx->env.pc), 4 * PAGE);
	assert_true(alloc_live(fx->env.a) <= live_before - 4 * PAGE);
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.cached_bytes, 2 * PAGE);
	assert_int_equal(u.dirty_bytes, 2 * PAGE);
	/* Dropped pages read back from the backing file. */
	pt_assert_cached(&fx->f, &fx->m);
}

static void test_lru_read_pages_are_cached_clean_and_droppable(void **state)
{
	struct pt_model_fixture *fx = *state;
	struct pcache_usage u;

	pt_write(&fx->f, &fx->m, 3 * PAGE, 0, 1);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pcache_drop_clean(fx->env.pc);
	pt_assert_cached(&fx->f, &fx->m); /* fills the cache again */
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.cached_bytes, 3 * PAGE);
	assert_int_equal(u.dirty_bytes, 0);
	assert_int_equal(pcache_drop_clean(fx->env.pc), 3 * PAGE);
}

/* ---- clean_limit: how many written-back pages the cache keeps ---- */

static struct pt_model_fixture *lru_make_clean(uint64_t clean_limit, uint64_t mem_limit)
{
	struct pt_model_fixture *fx = calloc(1, sizeof(*fx));
	struct pcache_config cc = {
		.page_size = PAGE, .writeback_ms = 60000, .clean_limit = clean_limit};

	assert_non_null(fx);
	pt_env_setup_config(&fx->env, &cc, mem_limit);
	fx->fd = pt_file_open(&fx->env, &fx->f, "data");
	pt_model_init(&fx->m);
	return fx;
}

static uint64_t lru_cached(struct pt_model_fixture *fx)
{
	struct pcache_usage u;

	pcache_usage_read(fx->env.pc, &u);
	return u.cached_bytes;
}

static void test_lru_clean_limit_drops_the_oldest_written_back_pages(void **state)
{
	struct pt_model_fixture *fx = lru_make_clean(2 * PAGE, 0);

	(void)state;
	pt_write(&fx->f, &fx->m, 6 * PAGE, 0, 1);
	assert_int_equal(lru_cached(fx), 6 * PAGE); /* dirty pages are never dropped */
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	assert_int_equal(lru_cached(fx), 2 * PAGE);
	pt_assert_backing(fx->fd, &fx->m);
	/* Reads cache what they fetch, within the same limit. */
	pt_assert_cached(&fx->f, &fx->m);
	assert_int_equal(lru_cached(fx), 2 * PAGE);
	/* Lowered at run time: trimmed at once. */
	pcache_set_config(fx->env.pc,
			  &(struct pcache_config){.writeback_ms = 60000, .clean_limit = PAGE});
	assert_int_equal(lru_cached(fx), PAGE);
	pt_model_teardown((void **)&fx);
}

static void test_lru_clean_limit_auto_is_64m_without_a_budget_and_none_with_one(void **state)
{
	struct pt_model_fixture *fx = lru_make_clean(0, 0);

	(void)state;
	assert_int_equal(_pcache_clean_limit(fx->env.pc), PCACHE_DEFAULT_CLEAN_LIMIT);
	assert_int_equal(PCACHE_DEFAULT_CLEAN_LIMIT, 64u * 1024 * 1024);
	/* A budget set at run time: reclaim decides, the cache keeps no limit
	 * of its own (8M of clean pages stay). */
	alloc_set_mem_limit(fx->env.a, 64u * 1024 * 1024);
	assert_int_equal(_pcache_clean_limit(fx->env.pc), UINT64_MAX);
	pt_write(&fx->f, &fx->m, 128 * PAGE, 0, 2);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	assert_int_equal(lru_cached(fx), 128 * PAGE);
	/* Set explicitly, it holds with a budget too. */
	pcache_set_config(fx->env.pc,
			  &(struct pcache_config){.writeback_ms = 60000, .clean_limit = 4 * PAGE});
	assert_int_equal(_pcache_clean_limit(fx->env.pc), 4 * PAGE);
	assert_int_equal(lru_cached(fx), 4 * PAGE);
	pt_model_teardown((void **)&fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lru_drop_clean_frees_clean_pages_only,
						pt_model_setup, pt_model_teardown),
		cmocka_unit_test_setup_teardown(test_lru_read_pages_are_cached_clean_and_droppable,
						pt_model_setup, pt_model_teardown),
		cmocka_unit_test(test_lru_clean_limit_drops_the_oldest_written_back_pages),
		cmocka_unit_test(
			test_lru_clean_limit_auto_is_64m_without_a_budget_and_none_with_one),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
