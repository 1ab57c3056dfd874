/*
 * cache/cache.c, and dirty.c's file references, through the public API:
 * creation checks, files going dirty and clean (with their references),
 * discard, attributes, usage counters, and memory back at its baseline
 * after teardown.
 */
#include "pcache_test.h"

#define PAGE (64u * 1024u)

static void test_pcache_create_refuses_bad_page_sizes(void **state)
{
	struct alloc_config ac = {0};
	struct alloc *a = alloc_create(&ac);
	size_t bad[] = {1000, 2048, 3 * 4096, 2u * 1024 * 1024};

	(void)state;
	assert_non_null(a);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pcache_config c = {.page_size = bad[i]};

		errno = 0;
		assert_null(pcache_create(a, &c, NULL));
		assert_int_equal(errno, EINVAL);
	}
	assert_int_equal(alloc_live(a), 0);
	alloc_destroy(a);
}

static void test_pcache_default_page_size_is_64k(void **state)
{
	struct alloc_config ac = {0};
	struct alloc *a = alloc_create(&ac);
	struct pcache *pc;

	(void)state;
	pc = pcache_create(a, NULL, NULL);
	assert_non_null(pc);
	assert_int_equal(pcache_page_size(pc), 64 * 1024);
	pcache_destroy(pc);
	assert_int_equal(alloc_live(a), 0);
	alloc_destroy(a);
}

static void test_pcache_dirty_file_holds_one_reference_until_written(void **state)
{
	struct pt_env env;
	struct pcache_file f;
	unsigned char buf[100] = {1};

	(void)state;
	pt_env_setup(&env, PAGE, 0, 0, 60000);
	pt_file_open(&env, &f, "a");
	assert_false(pcache_file_is_dirty(&f));
	assert_int_equal(pcache_write(&f, buf, sizeof(buf), 0), sizeof(buf));
	assert_int_equal(pcache_write(&f, buf, sizeof(buf), 3 * PAGE), sizeof(buf));
	assert_true(pcache_file_is_dirty(&f));
	assert_int_equal(pt_refs_held(), 1);
	assert_int_equal(pcache_flush_file(&f), 0);
	assert_false(pcache_file_is_dirty(&f));
	assert_int_equal(pt_refs_held(), 0);
	pt_file_close(&f);
	pt_env_teardown(&env);
}

static void test_pcache_discard_drops_dirty_data_unwritten(void **state)
{
	struct pt_env env;
	struct pcache_file f;
	struct pcache_usage u;
	unsigned char buf[3 * PAGE];
	struct stat st;
	int fd;

	(void)state;
	pt_env_setup(&env, PAGE, 0, 0, 60000);
	fd = pt_file_open(&env, &f, "a");
	memset(buf, 0xab, sizeof(buf));
	assert_int_equal(pcache_write(&f, buf, sizeof(buf), 0), sizeof(buf));
	pcache_file_discard(&f);
	pcache_usage_read(env.pc, &u);
	assert_int_equal(u.cached_bytes, 0);
	assert_int_equal(u.dirty_bytes, 0);
	assert_int_equal(pt_refs_held(), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 0); /* nothing reached the backing file */
	pt_file_close(&f);
	pt_env_teardown(&env);
}

static void test_pcache_attr_reports_the_last_writes_mtime_before_and_after_writeback(void **state)
{
	struct pt_env env;
	struct pcache_file f;
	unsigned char buf[10] = {0};
	struct timespec mt, after;
	struct stat st;
	bool has;
	off_t size;

	(void)state;
	pt_env_setup(&env, PAGE, 0, 0, 60000);
	pt_file_open(&env, &f, "a");
	pcache_file_attr(&f, &size, &mt, &has);
	assert_int_equal(size, 0);
	assert_false(has);
	assert_int_equal(pcache_write(&f, buf, sizeof(buf), 5 * PAGE), sizeof(buf));
	pcache_file_attr(&f, &size, &mt, &has);
	assert_int_equal(size, 5 * PAGE + 10);
	assert_true(has);
	assert_true(mt.tv_sec > 0);
	assert_int_equal(pcache_fsync(&f, false), 0);
	pcache_file_attr(&f, &size, &after, &has);
	assert_true(has); /* written back: still the write's time, not writeback's */
	assert_int_equal(after.tv_sec, mt.tv_sec);
	assert_int_equal(after.tv_nsec, mt.tv_nsec);
	/* ...and the backing file shows it too (the test owns the file). */
	assert_int_equal(fstat(f.fd, &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, mt.tv_sec);
	assert_int_equal(st.st_mtim.tv_nsec, mt.tv_nsec);
	pt_file_close(&f);
	pt_env_teardown(&env);
}

static void test_pcache_destroy_writes_everything_and_frees_all_memory(void **state)
{
	struct pt_env env;
	struct pcache_file f;
	struct pt_model m;
	unsigned char buf[5 * PAGE];
	int fd;

	(void)state;
	pt_env_setup(&env, PAGE, 0, 0, 60000);
	fd = pt_file_open(&env, &f, "a");
	pt_model_init(&m);
	pt_fill(buf, sizeof(buf), 11, 3);
	assert_int_equal(pcache_write(&f, buf, sizeof(buf), 11), sizeof(buf));
	pt_model_write(&m, buf, sizeof(buf), 11);
	assert_int_equal(pcache_writeback_start(env.pc), 0);
	/* Unmount order: sync everything, then files, then the cache. */
	assert_int_equal(pcache_sync_all(env.pc), 0);
	pt_assert_backing(fd, &m);
	pt_file_close(&f);
	pt_env_teardown(&env); /* asserts live == baseline */
	pt_model_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pcache_create_refuses_bad_page_sizes),
		cmocka_unit_test(test_pcache_default_page_size_is_64k),
		cmocka_unit_test(test_pcache_dirty_file_holds_one_reference_until_written),
		cmocka_unit_test(test_pcache_discard_drops_dirty_data_unwritten),
		cmocka_unit_test(
			test_pcache_attr_reports_the_last_writes_mtime_before_and_after_writeback),
		cmocka_unit_test(test_pcache_destroy_writes_everything_and_frees_all_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
