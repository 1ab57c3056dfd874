/*
 * cache/rw.c: cached writes, reads through the cache, truncate and
 * invalidate, checked against an in-memory model and the backing file.
 */
#include "pcache_test.h"

#define PAGE (64u * 1024u)

struct rw_fixture {
	struct pt_env env;
	struct pcache_file f;
	struct pt_model m;
	int fd;
};

static int rw_setup_page(void **state, size_t page_size)
{
	struct rw_fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	pt_env_setup(&fx->env, page_size, 0, 0, 60000);
	fx->fd = pt_file_open(&fx->env, &fx->f, "data");
	pt_model_init(&fx->m);
	*state = fx;
	return 0;
}

static int rw_setup(void **state)
{
	return rw_setup_page(state, PAGE);
}

static int rw_setup_4k(void **state)
{
	return rw_setup_page(state, 4096);
}

static int rw_teardown(void **state)
{
	struct rw_fixture *fx = *state;

	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_file_close(&fx->f);
	pt_env_teardown(&fx->env);
	pt_model_free(&fx->m);
	free(fx);
	return 0;
}

/* Write through the cache and the model alike; the write must be whole. */
static void test_rw_aligned_pages_round_trip(void **state)
{
	struct rw_fixture *fx = *state;

	pt_write(&fx->f, &fx->m, 3 * PAGE, 0, 1);
	pt_assert_cached(&fx->f, &fx->m);
	assert_true(pcache_file_is_dirty(&fx->f));
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	assert_false(pcache_file_is_dirty(&fx->f));
	pt_assert_backing(fx->fd, &fx->m);
}

static void test_rw_unaligned_writes_spanning_pages_round_trip(void **state)
{
	struct rw_fixture *fx = *state;

	pt_write(&fx->f, &fx->m, 1, 7, 1);
	pt_write(&fx->f, &fx->m, PAGE + 333, PAGE - 100, 2);
	pt_write(&fx->f, &fx->m, 5 * PAGE + 17, 3 * PAGE + 4001, 3);
	pt_write(&fx->f, &fx->m, 10, 2 * PAGE - 5, 4);
	pt_assert_cached(&fx->f, &fx->m);
	assert_int_equal(pcache_fsync(&fx->f, true), 0);
	pt_assert_backing(fx->fd, &fx->m);
	/* Read again, now from clean pages. */
	pt_assert_cached(&fx->f, &fx->m);
}

static void test_rw_sparse_holes_stay_holes_in_backing(void **state)
{
	struct rw_fixture *fx = *state;
	struct stat st;
	off_t far = 32 * PAGE * 4; /* 8 MiB */

	pt_write(&fx->f, &fx->m, 4096, 0, 1);
	pt_write(&fx->f, &fx->m, 4096, far, 2);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	/* Nothing between the two writes was written: it is still a hole. */
	assert_true(lseek(fx->fd, 0, SEEK_HOLE) <= 2 * PAGE);
	assert_int_equal(lseek(fx->fd, 2 * PAGE, SEEK_DATA) >= far - (off_t)PAGE, 1);
	assert_int_equal(fstat(fx->fd, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512u < 1024u * 1024u);
	pt_assert_cached(&fx->f, &fx->m);
}

static void test_rw_appends_in_odd_sizes_round_trip(void **state)
{
	struct rw_fixture *fx = *state;
	off_t off = 0;

	for (unsigned i = 0; i < 200; i++) {
		size_t len = 1 + (i * 7919u) % 9000u;

		pt_write(&fx->f, &fx->m, len, off, i);
		off += (off_t)len;
	}
	pt_assert_cached(&fx->f, &fx->m);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
}

/* Data in the backing file before the cache saw it: partial overwrites
 * must merge with it, on read and after writeback. */
static void test_rw_overwrite_merges_with_backing_bytes(void **state)
{
	struct rw_fixture *fx = *state;
	size_t len = 3 * PAGE + 1234;
	unsigned char *orig = malloc(len);

	assert_non_null(orig);
	pt_fill(orig, len, 0, 99);
	assert_int_equal(pwrite(fx->fd, orig, len, 0), (ssize_t)len);
	pt_model_write(&fx->m, orig, len, 0);
	free(orig);
	pcache_truncate(&fx->f, (off_t)len);   /* the cache learns the size */
	pt_write(&fx->f, &fx->m, 100, 500, 1); /* partial page: backing around it */
	pt_assert_cached(&fx->f, &fx->m);
	pt_write(&fx->f, &fx->m, 50, 40000, 2); /* not adjacent: the page is filled first */
	pt_write(&fx->f, &fx->m, 2 * PAGE, PAGE + 10, 3);
	pt_assert_cached(&fx->f, &fx->m);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
}

static void test_rw_read_of_partially_dirty_page_merges_backing_and_dirty(void **state)
{
	struct rw_fixture *fx = *state;
	unsigned char orig[PAGE], got[PAGE];

	pt_fill(orig, PAGE, 0, 7);
	assert_int_equal(pwrite(fx->fd, orig, PAGE, 0), (ssize_t)PAGE);
	pt_model_write(&fx->m, orig, PAGE, 0);
	assert_int_equal(pcache_truncate(&fx->f, PAGE), 0);
	pt_write(&fx->f, &fx->m, 1000, 30000, 8);
	/* A read inside the dirty range, one outside, one across both. */
	assert_int_equal(pcache_read(&fx->f, got, 10, 30100), 10);
	assert_memory_equal(got, fx->m.data + 30100, 10);
	assert_int_equal(pcache_read(&fx->f, got, 10, 100), 10);
	assert_memory_equal(got, fx->m.data + 100, 10);
	assert_int_equal(pcache_read(&fx->f, got, PAGE, 0), PAGE);
	assert_memory_equal(got, fx->m.data, PAGE);
	/* Only the dirty range goes to the backing file. */
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
}

static void test_rw_read_past_end_returns_zero_bytes(void **state)
{
	struct rw_fixture *fx = *state;
	unsigned char buf[64];

	pt_write(&fx->f, &fx->m, 100, 0, 1);
	assert_int_equal(pcache_read(&fx->f, buf, sizeof(buf), 100), 0);
	assert_int_equal(pcache_read(&fx->f, buf, sizeof(buf), 5000), 0);
	assert_int_equal(pcache_read(&fx->f, buf, sizeof(buf), 90), 10);
}

static void test_rw_bytes_between_backing_end_and_cached_size_read_as_zeros(void **state)
{
	struct rw_fixture *fx = *state;
	unsigned char buf[3 * PAGE];

	pt_write(&fx->f, &fx->m, 10, 0, 1);
	pt_write(&fx->f, &fx->m, 10, 2 * PAGE + 5, 2); /* backing file is still empty */
	assert_int_equal(pcache_read(&fx->f, buf, sizeof(buf), 0), 2 * PAGE + 15);
	assert_memory_equal(buf, fx->m.data, 2 * PAGE + 15);
	pt_assert_cached(&fx->f, &fx->m);
}

static void test_rw_truncate_down_drops_dirty_tail_and_zeroes_last_page(void **state)
{
	struct rw_fixture *fx = *state;
	struct pcache_usage u;

	pt_write(&fx->f, &fx->m, 5 * PAGE, 0, 1);
	assert_int_equal(pcache_truncate(&fx->f, 2 * PAGE + 100), 0);
	pt_model_truncate(&fx->m, 2 * PAGE + 100);
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.cached_bytes, 3 * PAGE);
	pt_assert_cached(&fx->f, &fx->m);
	/* Grow again: the old bytes must not come back. */
	assert_int_equal(pcache_truncate(&fx->f, 4 * PAGE), 0);
	pt_model_truncate(&fx->m, 4 * PAGE);
	pt_assert_cached(&fx->f, &fx->m);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
}

static void test_rw_truncate_of_written_back_file_then_write(void **state)
{
	struct rw_fixture *fx = *state;

	pt_write(&fx->f, &fx->m, 3 * PAGE, 0, 1);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	assert_int_equal(pcache_truncate(&fx->f, 1000), 0);
	pt_model_truncate(&fx->m, 1000);
	pt_write(&fx->f, &fx->m, 10, 3 * PAGE, 2);
	pt_assert_cached(&fx->f, &fx->m);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	assert_int_equal(pcache_truncate(&fx->f, 0), 0);
	pt_model_truncate(&fx->m, 0);
	pt_assert_backing(fx->fd, &fx->m);
}

static void test_rw_truncate_inside_last_page_before_its_dirty_range_cleans_it(void **state)
{
	struct rw_fixture *fx = *state;
	unsigned char buf[PAGE];
	struct pcache_usage u;

	pt_write(&fx->f, &fx->m, PAGE, 0, 1);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	assert_int_equal(pcache_read(&fx->f, buf, PAGE, 0), PAGE); /* whole, clean */
	pt_write(&fx->f, &fx->m, 1000, 5000, 2);		   /* dirty [5000, 6000) */
	assert_int_equal(pcache_truncate(&fx->f, 4000), 0);
	pt_model_truncate(&fx->m, 4000);
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.dirty_bytes, 0); /* nothing left to write */
	assert_int_equal(u.cached_bytes, PAGE);
	assert_false(pcache_file_is_dirty(&fx->f));
	assert_int_equal(pt_refs_held(), 0);
	pt_assert_cached(&fx->f, &fx->m);
	pt_assert_backing(fx->fd, &fx->m);
}

static void test_rw_invalidate_range_writes_back_then_forgets(void **state)
{
	struct rw_fixture *fx = *state;
	struct pcache_usage u;

	pt_write(&fx->f, &fx->m, 4 * PAGE, 0, 1);
	assert_int_equal(pcache_invalidate_range(&fx->f, PAGE, 2 * PAGE), 0);
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.cached_bytes, 2 * PAGE);
	assert_int_equal(u.dirty_bytes, 0);
	pt_assert_backing(fx->fd, &fx->m);
	pt_assert_cached(&fx->f, &fx->m);
}

/* Random writes, truncates, reads and fsyncs with 4 KiB pages: after every
 * fsync the backing file is exactly the model. */
static void test_rw_random_operations_match_model_after_each_fsync(void **state)
{
	struct rw_fixture *fx = *state;
	uint64_t seed = 0x5eed1234abcdull;
	unsigned char *buf = malloc(256 * 1024);

	assert_non_null(buf);
	for (unsigned i = 0; i < 600; i++) {
		unsigned op = (unsigned)(pt_rand(&seed) % 100);
		off_t off = (off_t)(pt_rand(&seed) % (2u * 1024 * 1024));
		size_t len = (size_t)(pt_rand(&seed) % (pt_rand(&seed) % 2 ? 300 : 70000)) + 1;

		if (op < 60) {
			pt_write(&fx->f, &fx->m, len, off, i);
		} else if (op < 68) {
			off_t size = (off_t)(pt_rand(&seed) % (fx->m.size + 8192));

			assert_int_equal(pcache_truncate(&fx->f, size), 0);
			pt_model_truncate(&fx->m, (size_t)size);
		} else if (op < 90) {
			ssize_t n = pcache_read(&fx->f, buf, len, off);
			size_t want = (size_t)off >= fx->m.size	       ? 0
				      : len < fx->m.size - (size_t)off ? len
								       : fx->m.size - (size_t)off;

			assert_int_equal(n, (ssize_t)want);
			if (want)
				assert_memory_equal(buf, fx->m.data + off, want);
		} else if (op < 95) {
			assert_int_equal(pcache_fsync(&fx->f, op % 2), 0);
			pt_assert_backing(fx->fd, &fx->m);
		} else {
			pcache_drop_clean(fx->env.pc);
		}
	}
	pt_assert_cached(&fx->f, &fx->m);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rw_aligned_pages_round_trip, rw_setup,
						rw_teardown),
		cmocka_unit_test_setup_teardown(test_rw_unaligned_writes_spanning_pages_round_trip,
						rw_setup, rw_teardown),
		cmocka_unit_test_setup_teardown(test_rw_sparse_holes_stay_holes_in_backing,
						rw_setup, rw_teardown),
		cmocka_unit_test_setup_teardown(test_rw_appends_in_odd_sizes_round_trip, rw_setup,
						rw_teardown),
		cmocka_unit_test_setup_teardown(test_rw_overwrite_merges_with_backing_bytes,
						rw_setup, rw_teardown),
		cmocka_unit_test_setup_teardown(
			test_rw_read_of_partially_dirty_page_merges_backing_and_dirty, rw_setup,
			rw_teardown),
		cmocka_unit_test_setup_teardown(test_rw_read_past_end_returns_zero_bytes, rw_setup,
						rw_teardown),
		cmocka_unit_test_setup_teardown(
			test_rw_bytes_between_backing_end_and_cached_size_read_as_zeros, rw_setup,
			rw_teardown),
		cmocka_unit_test_setup_teardown(
			test_rw_truncate_down_drops_dirty_tail_and_zeroes_last_page, rw_setup,
			rw_teardown),
		cmocka_unit_test_setup_teardown(test_rw_truncate_of_written_back_file_then_write,
						rw_setup, rw_teardown),
		cmocka_unit_test_setup_teardown(
			test_rw_truncate_inside_last_page_before_its_dirty_range_cleans_it,
			rw_setup, rw_teardown),
		cmocka_unit_test_setup_teardown(test_rw_invalidate_range_writes_back_then_forgets,
						rw_setup, rw_teardown),
		cmocka_unit_test_setup_teardown(
			test_rw_random_operations_match_model_after_each_fsync, rw_setup_4k,
			rw_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
