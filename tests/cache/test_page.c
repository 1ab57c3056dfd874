/*
 * cache/page.c with rw.c and backing.c: a page's blocks. A write of whole
 * blocks into a page that is not uptodate reads nothing from the backing
 * file; a partial block is filled alone; writeback writes the dirty runs
 * and nothing else; reads of a partly valid page see the backing bytes
 * around the written ones. Checked against the model, the backing file
 * and the cache's fill counters.
 */
#include "pcache_test.h"

#define PAGE  (64u * 1024u)
#define BLOCK 4096u

struct page_fixture {
	struct pt_env env;
	struct pcache_file f;
	struct pt_model m;
	int fd;
};

/* A backing file of size bytes of generation-9 data, known to the model,
 * opened through a cache of page_size pages. */
static struct page_fixture *page_make(size_t page_size, size_t size)
{
	struct page_fixture *fx = calloc(1, sizeof(*fx));
	char path[128];
	unsigned char *buf = malloc(size ? size : 1);
	int fd;

	assert_non_null(fx);
	assert_non_null(buf);
	pt_env_setup(&fx->env, page_size, 0, 0, 60000);
	pt_model_init(&fx->m);
	snprintf(path, sizeof(path), "%s/data", fx->env.dir);
	fd = open(path, O_RDWR | O_CREAT, 0644);
	assert_true(fd >= 0);
	pt_fill(buf, size, 0, 9);
	assert_int_equal(pwrite(fd, buf, size, 0), (ssize_t)size);
	pt_model_write(&fx->m, buf, size, 0);
	close(fd);
	free(buf);
	fx->fd = pt_file_open(&fx->env, &fx->f, "data");
	return fx;
}

static void page_free(struct page_fixture *fx)
{
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_file_close(&fx->f);
	pt_env_teardown(&fx->env);
	pt_model_free(&fx->m);
	free(fx);
}

static struct pcache_usage page_usage(struct page_fixture *fx)
{
	struct pcache_usage u;

	pcache_usage_read(fx->env.pc, &u);
	return u;
}

/* Change the backing file behind the cache's back (as nothing else may):
 * what writeback leaves alone shows through afterwards. */
static void backing_scribble(struct page_fixture *fx, off_t off, size_t len)
{
	unsigned char *buf = malloc(len);

	assert_non_null(buf);
	memset(buf, 0xee, len);
	assert_int_equal(pwrite(fx->fd, buf, len, off), (ssize_t)len);
	pt_model_write(&fx->m, buf, len, off);
	free(buf);
}

struct range_log {
	unsigned n;
	off_t off[16], len[16];
};

static void log_range(void *data, uint64_t id, off_t off, off_t len)
{
	struct range_log *log = data;

	(void)id;
	assert_true(log->n < 16);
	log->off[log->n] = off;
	log->len[log->n] = len;
	log->n++;
}

static void test_page_aligned_block_writes_need_no_fill(void **state)
{
	struct page_fixture *fx = page_make(PAGE, 4 * PAGE);

	(void)state;
	/* Disjoint blocks of one page, out of order, and a page's last block. */
	pt_write(&fx->f, &fx->m, BLOCK, 8 * BLOCK, 1);
	pt_write(&fx->f, &fx->m, BLOCK, 2 * BLOCK, 2);
	pt_write(&fx->f, &fx->m, 2 * BLOCK, 12 * BLOCK, 3);
	pt_write(&fx->f, &fx->m, BLOCK, PAGE + 15 * BLOCK, 4);
	pt_write(&fx->f, &fx->m, BLOCK, PAGE + 3 * BLOCK, 5);
	assert_int_equal(page_usage(fx).fills, 0);
	assert_int_equal(page_usage(fx).fill_bytes, 0);
	page_free(fx);
}

static void test_page_read_of_partly_valid_page_sees_backing_around_dirty_blocks(void **state)
{
	struct page_fixture *fx = page_make(PAGE, 2 * PAGE);

	(void)state;
	pt_write(&fx->f, &fx->m, BLOCK, 1 * BLOCK, 1);
	pt_write(&fx->f, &fx->m, BLOCK, 9 * BLOCK, 2);
	/* Inside the written blocks: from memory. */
	{
		unsigned char buf[BLOCK];

		assert_int_equal(pcache_read(&fx->f, buf, BLOCK, 9 * BLOCK), BLOCK);
		assert_memory_equal(buf, fx->m.data + 9 * BLOCK, BLOCK);
		assert_int_equal(page_usage(fx).fills, 0);
	}
	/* Over a missing block and a written one: only the missing one is
	 * read. */
	{
		unsigned char buf[2 * BLOCK];

		assert_int_equal(pcache_read(&fx->f, buf, 2 * BLOCK, 8 * BLOCK), 2 * BLOCK);
		assert_memory_equal(buf, fx->m.data + 8 * BLOCK, 2 * BLOCK);
		assert_int_equal(page_usage(fx).fills, 1);
		assert_int_equal(page_usage(fx).fill_bytes, BLOCK);
	}
	pt_assert_cached(&fx->f, &fx->m);
	/* One more fill of the 13 missing blocks, around the 2 written ones. */
	assert_int_equal(page_usage(fx).fills, 2);
	assert_int_equal(page_usage(fx).fill_bytes, PAGE - 2 * BLOCK);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	page_free(fx);
}

static void test_page_writeback_writes_exactly_the_dirty_runs(void **state)
{
	struct page_fixture *fx = page_make(PAGE, 3 * PAGE);
	struct range_log log = {0};

	(void)state;
	pt_write(&fx->f, &fx->m, BLOCK, 2 * BLOCK, 1);
	pt_write(&fx->f, &fx->m, 2 * BLOCK, 6 * BLOCK, 2);
	/* Page 0's last block and page 1's first: one run across pages. */
	pt_write(&fx->f, &fx->m, BLOCK, 15 * BLOCK, 3);
	pt_write(&fx->f, &fx->m, BLOCK, PAGE, 4);
	/* Alone in its page: the bytes written, not their block. */
	pt_write(&fx->f, &fx->m, 10, 2 * PAGE + 5 * BLOCK + 7, 5);
	pcache_for_each_dirty(fx->env.pc, log_range, &log);
	assert_int_equal(log.n, 4);
	assert_int_equal(log.off[0], 2 * BLOCK);
	assert_int_equal(log.len[0], BLOCK);
	assert_int_equal(log.off[1], 6 * BLOCK);
	assert_int_equal(log.len[1], 2 * BLOCK);
	assert_int_equal(log.off[2], 15 * BLOCK);
	assert_int_equal(log.len[2], 2 * BLOCK);
	assert_int_equal(log.off[3], 2 * PAGE + 5 * BLOCK + 7);
	assert_int_equal(log.len[3], 10);
	/* Every byte between the runs changes under the cache: writeback must
	 * leave each of them as it finds it. */
	backing_scribble(fx, 0, 2 * BLOCK);
	backing_scribble(fx, 3 * BLOCK, 3 * BLOCK);
	backing_scribble(fx, 8 * BLOCK, 7 * BLOCK);
	backing_scribble(fx, PAGE + BLOCK, PAGE - BLOCK + 5 * BLOCK + 7);
	backing_scribble(fx, 2 * PAGE + 5 * BLOCK + 17, PAGE - 5 * BLOCK - 17);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	assert_int_equal(page_usage(fx).fills, 0);
	pt_assert_backing(fx->fd, &fx->m);
	page_free(fx);
}

static void test_page_unaligned_write_fills_only_the_block_it_touches(void **state)
{
	struct page_fixture *fx = page_make(PAGE, 2 * PAGE);

	(void)state;
	pt_write(&fx->f, &fx->m, BLOCK, 0, 1);
	/* Block 4 in part, away from the dirty bytes: only it is read. */
	pt_write(&fx->f, &fx->m, 100, 4 * BLOCK + 300, 2);
	assert_int_equal(page_usage(fx).fills, 1);
	assert_int_equal(page_usage(fx).fill_bytes, BLOCK);
	/* Into a block that is valid now: nothing more. */
	pt_write(&fx->f, &fx->m, 10, 4 * BLOCK + 3000, 3);
	assert_int_equal(page_usage(fx).fills, 1);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	pt_assert_cached(&fx->f, &fx->m);
	page_free(fx);
}

static void test_page_swallowed_hull_edge_is_filled_around_its_bytes(void **state)
{
	struct page_fixture *fx = page_make(PAGE, 2 * PAGE);

	(void)state;
	/* A partial block at the hull's edge needs nothing while it stays
	 * one. */
	pt_write(&fx->f, &fx->m, 100, 100, 1);
	pt_write(&fx->f, &fx->m, 50, 200, 2);
	assert_int_equal(page_usage(fx).fills, 0);
	/* Now the hull grows past it: its other bytes come from the backing
	 * file, its written ones stay. */
	pt_write(&fx->f, &fx->m, BLOCK, 3 * BLOCK, 3);
	assert_int_equal(page_usage(fx).fills, 1);
	assert_int_equal(page_usage(fx).fill_bytes, BLOCK - 150);
	/* A partial block inside the hull: filled whole, once. */
	pt_write(&fx->f, &fx->m, 10, 5 * BLOCK + 10, 4);
	pt_write(&fx->f, &fx->m, 10, 5 * BLOCK + 1000, 5);
	assert_int_equal(page_usage(fx).fills, 2);
	assert_int_equal(page_usage(fx).fill_bytes, 2 * BLOCK - 150);
	/* A gap inside the one block of a page's hull: that block is filled
	 * around its written bytes. */
	pt_write(&fx->f, &fx->m, 10, PAGE + 10, 6);
	assert_int_equal(page_usage(fx).fills, 2);
	pt_write(&fx->f, &fx->m, 10, PAGE + 1000, 7);
	assert_int_equal(page_usage(fx).fills, 3);
	assert_int_equal(page_usage(fx).fill_bytes, 3 * BLOCK - 150 - 10);
	pt_assert_cached(&fx->f, &fx->m);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	page_free(fx);
}

static void test_page_small_appends_need_no_fill(void **state)
{
	struct page_fixture *fx = page_make(PAGE, 0);

	(void)state;
	for (unsigned i = 0; i < 200; i++)
		pt_write(&fx->f, &fx->m, 1000, (off_t)i * 1000, i + 1);
	assert_int_equal(page_usage(fx).fills, 0);
	pt_assert_cached(&fx->f, &fx->m);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	page_free(fx);
}

static void test_page_truncate_cuts_dirty_blocks_and_edges(void **state)
{
	struct page_fixture *fx = page_make(PAGE, 2 * PAGE);

	(void)state;
	pt_write(&fx->f, &fx->m, BLOCK, 0, 1);
	pt_write(&fx->f, &fx->m, BLOCK, 8 * BLOCK, 2);
	pt_write(&fx->f, &fx->m, 2 * BLOCK, 12 * BLOCK, 3);
	/* Inside a dirty block: its head stays dirty, the blocks past go. */
	assert_int_equal(pcache_truncate(&fx->f, 8 * BLOCK + 100), 0);
	pt_model_truncate(&fx->m, 8 * BLOCK + 100);
	pt_assert_cached(&fx->f, &fx->m);
	/* Grown again: the bytes past the old end read as zeros. */
	assert_int_equal(pcache_truncate(&fx->f, PAGE + 10), 0);
	pt_model_truncate(&fx->m, PAGE + 10);
	pt_write(&fx->f, &fx->m, 20, 10 * BLOCK + 5, 4);
	pt_assert_cached(&fx->f, &fx->m);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	/* A dirty edge block that is not valid, cut inside its bytes. */
	pt_write(&fx->f, &fx->m, 100, 2 * BLOCK + 50, 5);
	assert_int_equal(pcache_truncate(&fx->f, 2 * BLOCK + 80), 0);
	pt_model_truncate(&fx->m, 2 * BLOCK + 80);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	pt_assert_cached(&fx->f, &fx->m);
	/* Cut before all of its bytes: the page is clean. */
	pt_write(&fx->f, &fx->m, 10, BLOCK + 500, 6);
	assert_int_equal(pcache_truncate(&fx->f, BLOCK + 400), 0);
	pt_model_truncate(&fx->m, BLOCK + 400);
	assert_false(pcache_file_is_dirty(&fx->f));
	pt_assert_cached(&fx->f, &fx->m);
	page_free(fx);
}

static void test_page_write_after_cut_hull_fills_nothing_it_does_not_dirty(void **state)
{
	struct page_fixture *fx = page_make(PAGE, 2 * PAGE);

	(void)state;
	pt_write(&fx->f, &fx->m, BLOCK, 0, 1);
	pt_write(&fx->f, &fx->m, BLOCK, 8 * BLOCK, 2);
	/* The hull now ends inside block 5, which holds no dirty byte. */
	assert_int_equal(pcache_truncate(&fx->f, 5 * BLOCK + 100), 0);
	pt_model_truncate(&fx->m, 5 * BLOCK + 100);
	pt_write(&fx->f, &fx->m, BLOCK, 2 * BLOCK, 3);
	assert_int_equal(page_usage(fx).fills, 0);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	pt_assert_cached(&fx->f, &fx->m);
	page_free(fx);
}

/* Random writes (aligned and not), reads, truncates and fsyncs against
 * the model, for a page size: the cache and then the backing file hold
 * exactly the model's bytes. */
static void page_random_ops(size_t page_size, uint64_t seed)
{
	struct page_fixture *fx = page_make(page_size, 3 * page_size + 777);
	unsigned char *buf = malloc(5 * BLOCK);
	uint64_t r = seed;

	assert_non_null(buf);
	for (unsigned i = 0; i < 600; i++) {
		uint64_t op = pt_rand(&r) % 100;
		size_t span = 4 * page_size;
		off_t off;
		size_t len;

		if (pt_rand(&r) % 2) {
			off = (off_t)(pt_rand(&r) % (span / BLOCK)) * BLOCK;
			len = (size_t)(1 + pt_rand(&r) % 4) * BLOCK;
		} else {
			off = (off_t)(pt_rand(&r) % span);
			len = 1 + pt_rand(&r) % (BLOCK + 200);
		}
		if (op < 70) {
			pt_write(&fx->f, &fx->m, len, off, i + 10);
		} else if (op < 85) {
			ssize_t want = (size_t)off >= fx->m.size
					       ? 0
					       : (ssize_t)(fx->m.size - (size_t)off < len
								   ? fx->m.size - (size_t)off
								   : len);

			assert_int_equal(pcache_read(&fx->f, buf, len, off), want);
			assert_memory_equal(buf, fx->m.data + off, (size_t)want);
		} else if (op < 92) {
			assert_int_equal(pcache_truncate(&fx->f, off), 0);
			pt_model_truncate(&fx->m, (size_t)off);
		} else {
			assert_int_equal(pcache_fsync(&fx->f, false), 0);
			pt_assert_backing(fx->fd, &fx->m);
		}
	}
	pt_assert_cached(&fx->f, &fx->m);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	free(buf);
	page_free(fx);
}

static void test_page_random_ops_match_the_model_64k_pages(void **state)
{
	(void)state;
	page_random_ops(PAGE, 0x9e3779b97f4a7c15ull);
	page_random_ops(PAGE, 12345);
}

static void test_page_random_ops_match_the_model_4k_and_1m_pages(void **state)
{
	(void)state;
	page_random_ops(4096, 777);
	page_random_ops(1024 * 1024, 4242);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page_aligned_block_writes_need_no_fill),
		cmocka_unit_test(
			test_page_read_of_partly_valid_page_sees_backing_around_dirty_blocks),
		cmocka_unit_test(test_page_writeback_writes_exactly_the_dirty_runs),
		cmocka_unit_test(test_page_unaligned_write_fills_only_the_block_it_touches),
		cmocka_unit_test(test_page_swallowed_hull_edge_is_filled_around_its_bytes),
		cmocka_unit_test(test_page_small_appends_need_no_fill),
		cmocka_unit_test(test_page_truncate_cuts_dirty_blocks_and_edges),
		cmocka_unit_test(test_page_write_after_cut_hull_fills_nothing_it_does_not_dirty),
		cmocka_unit_test(test_page_random_ops_match_the_model_64k_pages),
		cmocka_unit_test(test_page_random_ops_match_the_model_4k_and_1m_pages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
