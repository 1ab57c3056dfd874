/*
 * cache/reclaim.c: the allocator's reclaimer: no-fs reclaim that never
 * writes or waits, and blocking reclaim that writes dirty files back to
 * free their pages.
 */
#include "pcache_test.h"
#include "pt_fixtures.h"

#define PAGE (64u * 1024u)

static void test_reclaim_nofs_drops_clean_but_never_writes(void **state)
{
	struct pt_model_fixture *fx = *state;
	struct pcache_usage u;

	pt_write(&fx->f, &fx->m, PAGE, 0, 1);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_write(&fx->f, &fx->m, 3 * PAGE, PAGE, 2);
	assert_int_equal(alloc_reclaim(fx->env.a, 100 * PAGE, ALLOC_NOFS), PAGE);
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.dirty_bytes, 3 * PAGE);
	assert_int_equal(u.pages_written, 1); /* only fsync's */
}

static void test_reclaim_blocking_writes_dirty_files_back_and_frees_them(void **state)
{
	struct pt_model_fixture *fx = *state;
	struct pcache_usage u;

	pt_write(&fx->f, &fx->m, 40 * PAGE + 123, 77, 1); /* more pages than one stack batch */
	assert_true(alloc_reclaim(fx->env.a, 100 * PAGE, 0) >= 40 * PAGE);
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.dirty_bytes, 0);
	assert_int_equal(u.cached_bytes, 0);
	assert_int_equal(pt_refs_held(), 0);
	pt_assert_backing(fx->fd, &fx->m);
	pt_assert_cached(&fx->f, &fx->m);
}

static void test_reclaim_stops_near_what_was_asked(void **state)
{
	struct pt_model_fixture *fx = *state;
	struct pcache_usage u;

	pt_write(&fx->f, &fx->m, 10 * PAGE, 0, 1);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	assert_int_equal(alloc_reclaim(fx->env.a, 2 * PAGE, ALLOC_NOFS), 2 * PAGE);
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.cached_bytes, 8 * PAGE);
}

/* One file cannot be written (its fd is read-only): blocking reclaim still
 * cleans and frees the other, and keeps the failing one dirty. */
static void test_reclaim_skips_past_a_file_whose_writeback_fails(void **state)
{
	struct pt_model_fixture *fx = *state;
	struct pcache_file g;
	struct pt_model mg;
	struct pcache_usage u;
	unsigned char buf[3 * PAGE];
	char path[128];
	int gfd, saved, ro;

	gfd = pt_file_open(&fx->env, &g, "second");
	pt_model_init(&mg);
	pt_write(&fx->f, &fx->m, 2 * PAGE, 0, 1); /* fx->f is the oldest dirty file */
	pt_fill(buf, sizeof(buf), 0, 2);
	assert_int_equal(pcache_write(&g, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	pt_model_write(&mg, buf, sizeof(buf), 0);
	snprintf(path, sizeof(path), "%s/data", fx->env.dir);
	saved = dup(fx->fd);
	ro = open(path, O_RDONLY);
	assert_true(saved >= 0 && ro >= 0);
	assert_int_equal(dup2(ro, fx->fd), fx->fd);
	close(ro);
	assert_true(alloc_reclaim(fx->env.a, 100 * PAGE, 0) >= 3 * PAGE);
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.dirty_bytes, 2 * PAGE); /* the failing file's */
	assert_true(u.writeback_errors >= 1);
	assert_true(pcache_file_is_dirty(&fx->f));
	assert_false(pcache_file_is_dirty(&g));
	pt_assert_backing(gfd, &mg);
	assert_int_equal(dup2(saved, fx->fd), fx->fd);
	close(saved);
	assert_int_equal(pcache_fsync(&fx->f, false), -EBADF); /* the kept error, once */
	pt_file_close(&g);
	pt_model_free(&mg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reclaim_nofs_drops_clean_but_never_writes,
						pt_model_setup, pt_model_teardown),
		cmocka_unit_test_setup_teardown(
			test_reclaim_blocking_writes_dirty_files_back_and_frees_them,
			pt_model_setup, pt_model_teardown),
		cmocka_unit_test_setup_teardown(
			test_reclaim_skips_past_a_file_whose_writeback_fails, pt_model_setup,
			pt_model_teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_stops_near_what_was_asked,
						pt_model_setup, pt_model_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
