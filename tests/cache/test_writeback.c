/*
 * cache/writeback.c: the writeback thread (by age, by dirty_limit), fsync and
 * its promise, writeback errors kept and reported, and writes racing with
 * writeback.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mount.h>

#include "pcache_i.h" /* PCACHE_WB_DIRECT_MIN */
#include "pcache_test.h"

#define PAGE (64u * 1024u)

struct wb_fixture {
	struct pt_env env;
	struct pcache_file f;
	struct pt_model m;
	int fd;
};

static struct wb_fixture *wb_make(size_t page_size, uint64_t dirty_limit, unsigned writeback_ms)
{
	struct wb_fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	pt_env_setup(&fx->env, page_size, 0, dirty_limit, writeback_ms);
	fx->fd = pt_file_open(&fx->env, &fx->f, "data");
	pt_model_init(&fx->m);
	return fx;
}

static void wb_free(struct wb_fixture *fx)
{
	pcache_writeback_stop(fx->env.pc);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_file_close(&fx->f);
	pt_env_teardown(&fx->env);
	pt_model_free(&fx->m);
	free(fx);
}

static bool usage_clean(void *data)
{
	struct pcache_usage u;

	pcache_usage_read(data, &u);
	return u.dirty_bytes == 0 && u.writeback_bytes == 0;
}

static void test_writeback_thread_writes_pages_older_than_writeback_ms(void **state)
{
	struct wb_fixture *fx = wb_make(PAGE, 0, 50);
	struct pcache_usage u;

	(void)state;
	pt_write(&fx->f, &fx->m, 3 * PAGE + 77, 1000, 1);
	assert_int_equal(pcache_writeback_start(fx->env.pc), 0);
	assert_true(pt_wait_until(usage_clean, fx->env.pc, 10000));
	pt_assert_backing(fx->fd, &fx->m);
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.pages_written, 4);
	assert_false(pcache_file_is_dirty(&fx->f));
	assert_int_equal(pt_refs_held(), 0); /* the dirty reference went back */
	wb_free(fx);
}

struct limit_ctx {
	struct pcache *pc;
	uint64_t limit;
};

static bool under_limit(void *data)
{
	struct limit_ctx *c = data;
	struct pcache_usage u;

	pcache_usage_read(c->pc, &u);
	return u.dirty_bytes <= c->limit && u.writeback_bytes == 0;
}

static void test_writeback_thread_starts_at_once_past_dirty_limit(void **state)
{
	/* writeback_ms of an hour: only the limit can explain a writeback. */
	struct wb_fixture *fx = wb_make(PAGE, 4 * PAGE, 3600u * 1000u);
	struct limit_ctx c = {fx->env.pc, 4 * PAGE};
	struct pcache_usage u;

	(void)state;
	assert_int_equal(pcache_writeback_start(fx->env.pc), 0);
	pt_write(&fx->f, &fx->m, 32 * PAGE, 0, 1);
	assert_true(pt_wait_until(under_limit, &c, 10000));
	pcache_usage_read(fx->env.pc, &u);
	assert_true(u.pages_written >= 28);
	wb_free(fx);
}

static void test_writeback_past_dirty_limit_writes_down_to_half_of_it(void **state)
{
	/* Three files of 3 pages against a limit of 8, writeback_ms of an
	 * hour: the thread writes the first file (6 pages left, under the
	 * limit but over half of it), goes on with the second (3 left) and
	 * leaves the third alone. */
	struct wb_fixture *fx = wb_make(PAGE, 8 * PAGE, 3600u * 1000u);
	struct pcache_file g, h;
	struct pt_model mg, mh;
	struct limit_ctx c = {fx->env.pc, 3 * PAGE};
	struct pcache_usage u;
	int gfd, hfd;

	(void)state;
	gfd = pt_file_open(&fx->env, &g, "g");
	hfd = pt_file_open(&fx->env, &h, "h");
	pt_model_init(&mg);
	pt_model_init(&mh);
	pt_write(&fx->f, &fx->m, 3 * PAGE, 0, 1);
	pt_write(&g, &mg, 3 * PAGE, 0, 2);
	pt_write(&h, &mh, 3 * PAGE, 0, 3);
	assert_int_equal(pcache_writeback_start(fx->env.pc), 0);
	assert_true(pt_wait_until(under_limit, &c, 10000));
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.dirty_bytes, 3 * PAGE);
	assert_true(pcache_file_is_dirty(&h));
	pt_assert_backing(fx->fd, &fx->m);
	pt_assert_backing(gfd, &mg);
	pcache_writeback_stop(fx->env.pc);
	assert_int_equal(pcache_fsync(&g, false), 0);
	assert_int_equal(pcache_fsync(&h, false), 0);
	pt_assert_backing(hfd, &mh);
	pt_file_close(&g);
	pt_file_close(&h);
	pt_model_free(&mg);
	pt_model_free(&mh);
	wb_free(fx);
}

static void test_writeback_young_pages_stay_dirty_without_pressure(void **state)
{
	struct wb_fixture *fx = wb_make(PAGE, 0, 3600u * 1000u);
	struct pcache_usage u;

	(void)state;
	assert_int_equal(pcache_writeback_start(fx->env.pc), 0);
	pt_write(&fx->f, &fx->m, 2 * PAGE, 0, 1);
	pt_sleep_ms(100);
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.dirty_bytes, 2 * PAGE);
	assert_int_equal(u.pages_written, 0);
	wb_free(fx);
}

static void test_writeback_set_config_takes_effect_at_run_time(void **state)
{
	struct wb_fixture *fx = wb_make(PAGE, 0, 3600u * 1000u);
	struct pcache_config c = {.page_size = PAGE, .writeback_ms = 20};

	(void)state;
	assert_int_equal(pcache_writeback_start(fx->env.pc), 0);
	pt_write(&fx->f, &fx->m, 2 * PAGE, 0, 1);
	pt_sleep_ms(50);
	assert_false(usage_clean(fx->env.pc)); /* an hour is long */
	pcache_set_config(fx->env.pc, &c);
	assert_true(pt_wait_until(usage_clean, fx->env.pc, 10000));
	pt_assert_backing(fx->fd, &fx->m);
	wb_free(fx);
}

struct range_log {
	unsigned n;
	uint64_t id[16];
	off_t off[16], len[16];
};

static void log_range(void *data, uint64_t id, off_t off, off_t len)
{
	struct range_log *log = data;

	assert_true(log->n < 16);
	log->id[log->n] = id;
	log->off[log->n] = off;
	log->len[log->n] = len;
	log->n++;
}

static void test_writeback_for_each_dirty_lists_exactly_the_dirty_ranges(void **state)
{
	struct wb_fixture *fx = wb_make(PAGE, 0, 60000);
	struct range_log log = {0};

	(void)state;
	/* Written out of order on purpose: the listing is in file order. */
	pt_write(&fx->f, &fx->m, 100, 5 * PAGE + 10, 1);
	pt_write(&fx->f, &fx->m, 2 * PAGE - 50, 50, 2); /* [50, 2 PAGE): two pages, one range */
	pt_write(&fx->f, &fx->m, 10, 3 * PAGE, 3);
	pcache_for_each_dirty(fx->env.pc, log_range, &log);
	assert_int_equal(log.n, 3);
	assert_int_equal(log.id[0], fx->f.id);
	assert_int_equal(log.off[0], 50);
	assert_int_equal(log.len[0], 2 * PAGE - 50);
	assert_int_equal(log.off[1], 3 * PAGE);
	assert_int_equal(log.len[1], 10);
	assert_int_equal(log.off[2], 5 * PAGE + 10);
	assert_int_equal(log.len[2], 100);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	log.n = 0;
	pcache_for_each_dirty(fx->env.pc, log_range, &log);
	assert_int_equal(log.n, 0);
	pt_assert_backing(fx->fd, &fx->m);
	wb_free(fx);
}

/* Swap the backing fd for a read-only one (same number, same file). */
static void fd_make_read_only(struct wb_fixture *fx, int *saved)
{
	char path[128];
	int ro;

	snprintf(path, sizeof(path), "%s/data", fx->env.dir);
	*saved = dup(fx->fd);
	assert_true(*saved >= 0);
	ro = open(path, O_RDONLY);
	assert_true(ro >= 0);
	assert_int_equal(dup2(ro, fx->fd), fx->fd);
	close(ro);
}

static void fd_restore(struct wb_fixture *fx, int saved)
{
	assert_int_equal(dup2(saved, fx->fd), fx->fd);
	close(saved);
}

static void test_writeback_backing_error_keeps_data_dirty_and_fsync_reports_it(void **state)
{
	struct wb_fixture *fx = wb_make(PAGE, 0, 60000);
	struct pcache_usage u;
	int saved;

	(void)state;
	pt_write(&fx->f, &fx->m, 2 * PAGE + 5, 0, 1);
	fd_make_read_only(fx, &saved);
	assert_int_equal(pcache_fsync(&fx->f, false), -EBADF);
	assert_true(pcache_file_is_dirty(&fx->f));
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.dirty_bytes, 3 * PAGE);
	assert_true(u.writeback_errors >= 1);
	/* Nothing was lost from the cache's view either. */
	pt_assert_cached(&fx->f, &fx->m);
	fd_restore(fx, saved);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	wb_free(fx);
}

static bool saw_writeback_error(void *data)
{
	struct pcache_usage u;

	pcache_usage_read(data, &u);
	return u.writeback_errors > 0;
}

static void test_writeback_thread_error_is_kept_for_the_next_fsync_once(void **state)
{
	struct wb_fixture *fx = wb_make(PAGE, 0, 20);
	int saved;

	(void)state;
	fd_make_read_only(fx, &saved);
	pt_write(&fx->f, &fx->m, PAGE, 0, 1);
	assert_int_equal(pcache_writeback_start(fx->env.pc), 0);
	assert_true(pt_wait_until(saw_writeback_error, fx->env.pc, 10000));
	assert_true(pcache_file_is_dirty(&fx->f));
	pcache_writeback_stop(fx->env.pc);
	fd_restore(fx, saved);
	/* The data goes out now, but the earlier failure is still reported,
	 * once; the next fsync is clean. */
	assert_int_equal(pcache_fsync(&fx->f, false), -EBADF);
	pt_assert_backing(fx->fd, &fx->m);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	wb_free(fx);
}

/* A tmpfs of our own that fills up: ENOSPC from the backing file. The
 * teardown unmounts it even when an assertion failed half-way. */
static char tmpfs_mnt[160];

static int tmpfs_teardown(void **state)
{
	(void)state;
	if (tmpfs_mnt[0])
		umount2(tmpfs_mnt, MNT_DETACH);
	tmpfs_mnt[0] = '\0';
	return 0;
}

static void test_writeback_full_filesystem_keeps_data_until_room_returns(void **state)
{
	struct pt_env env;
	struct pcache_file f;
	struct pt_model m;
	char mnt[160], path[200];
	unsigned char *buf = malloc(2u * 1024 * 1024);
	int fd, rc;

	(void)state;
	assert_non_null(buf);
	pt_env_setup(&env, PAGE, 0, 0, 60000);
	snprintf(mnt, sizeof(mnt), "%s/mnt", env.dir);
	assert_int_equal(mkdir(mnt, 0755), 0);
	if (mount("pcache-test", mnt, "tmpfs", 0, "size=1m") != 0) {
		pcache_destroy(env.pc);
		alloc_destroy(env.a);
		pt_rm_rf(env.dir);
		free(buf);
		skip(); /* not root, or no tmpfs */
	}
	snprintf(tmpfs_mnt, sizeof(tmpfs_mnt), "%s", mnt);
	snprintf(path, sizeof(path), "%s/big", mnt);
	fd = open(path, O_RDWR | O_CREAT, 0644);
	assert_true(fd >= 0);
	pcache_file_init(env.pc, &f, fd, 0, 1);
	pt_model_init(&m);
	pt_fill(buf, 2u * 1024 * 1024, 0, 5);
	assert_int_equal(pcache_write(&f, buf, 2u * 1024 * 1024, 0), 2 * 1024 * 1024);
	pt_model_write(&m, buf, 2u * 1024 * 1024, 0);
	rc = pcache_fsync(&f, false);
	assert_int_equal(rc, -ENOSPC);
	assert_true(pcache_file_is_dirty(&f));
	pt_assert_cached(&f, &m);
	/* Room again: the same data, still cached, goes out whole. */
	assert_int_equal(mount("pcache-test", mnt, "tmpfs", MS_REMOUNT, "size=8m"), 0);
	assert_int_equal(pcache_fsync(&f, false), 0);
	pt_assert_backing(fd, &m);
	pcache_file_destroy(&f);
	close(fd);
	tmpfs_teardown(NULL);
	pt_env_teardown(&env);
	pt_model_free(&m);
	free(buf);
}

/* ---- writes racing with writeback ---- */

struct race_ctx {
	struct wb_fixture *fx;
	atomic_uint acked; /* blocks whose write returned */
	atomic_bool stop;
	atomic_uint fsyncs_checked;
	atomic_int failed; /* 1: short write, 2: fsync error, 3: byte missing */
	unsigned blocks;
};

#define RACE_BLOCK 9973u /* odd size: blocks straddle page edges */

/* Block i always holds the same bytes: rewriting it is idempotent, so the
 * final content is known whatever the interleaving. */
static void *race_writer(void *arg)
{
	struct race_ctx *c = arg;
	unsigned char buf[RACE_BLOCK];
	uint64_t seed = 7;

	for (unsigned i = 0; i < c->blocks; i++) {
		off_t off = (off_t)i * RACE_BLOCK;

		pt_fill(buf, RACE_BLOCK, off, 1);
		if (pcache_write(&c->fx->f, buf, RACE_BLOCK, off) != RACE_BLOCK)
			atomic_store(&c->failed, 1);
		atomic_store(&c->acked, i + 1);
		/* And rewrite an earlier block, maybe one under writeback. */
		if (i > 4) {
			unsigned j = (unsigned)(pt_rand(&seed) % i);

			off = (off_t)j * RACE_BLOCK;
			pt_fill(buf, RACE_BLOCK, off, 1);
			if (pcache_write(&c->fx->f, buf, RACE_BLOCK, off) != RACE_BLOCK)
				atomic_store(&c->failed, 1);
		}
	}
	atomic_store(&c->stop, true);
	return NULL;
}

/* The fsync promise, checked while a writer runs: every block acknowledged
 * before fsync started is in the backing file when fsync returns 0. */
static void *race_syncer(void *arg)
{
	struct race_ctx *c = arg;
	unsigned char want[RACE_BLOCK], got[RACE_BLOCK];

	while (!atomic_load(&c->stop)) {
		unsigned n = atomic_load(&c->acked);

		if (pcache_fsync(&c->fx->f, n % 2) != 0)
			atomic_store(&c->failed, 2);
		for (unsigned i = 0; i < n; i++) {
			off_t off = (off_t)i * RACE_BLOCK;

			pt_fill(want, RACE_BLOCK, off, 1);
			if (pread(c->fx->fd, got, RACE_BLOCK, off) != RACE_BLOCK ||
			    memcmp(want, got, RACE_BLOCK) != 0)
				atomic_store(&c->failed, 3);
		}
		atomic_fetch_add(&c->fsyncs_checked, 1);
		if (n % 3 == 0)
			pcache_sync_all(c->fx->env.pc);
		else
			pcache_drop_clean(c->fx->env.pc);
	}
	return NULL;
}

static void test_writeback_fsync_promise_holds_while_writer_and_thread_race(void **state)
{
	struct wb_fixture *fx = wb_make(4096, 8 * 4096, 5);
	struct race_ctx c = {.fx = fx, .blocks = 3000};
	pthread_t w, s;

	(void)state;
	assert_int_equal(pcache_writeback_start(fx->env.pc), 0);
	assert_int_equal(pthread_create(&s, NULL, race_syncer, &c), 0);
	assert_int_equal(pthread_create(&w, NULL, race_writer, &c), 0);
	pthread_join(w, NULL);
	pthread_join(s, NULL);
	assert_int_equal(atomic_load(&c.failed), 0);
	assert_true(atomic_load(&c.fsyncs_checked) > 0);
	for (unsigned i = 0; i < c.blocks; i++) {
		unsigned char buf[RACE_BLOCK];

		pt_fill(buf, RACE_BLOCK, (off_t)i * RACE_BLOCK, 1);
		pt_model_write(&fx->m, buf, RACE_BLOCK, (off_t)i * RACE_BLOCK);
	}
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	pt_assert_cached(&fx->f, &fx->m);
	wb_free(fx);
}

/* Small writes all over pages that are partly in the backing file: fills
 * of partial pages, merges and truncates race with the writeback thread
 * (1 ms), sync_all, drop_clean and blocking reclaim. Bytes depend only on
 * their position, so the final content is the model whatever the order. */
struct storm_ctx {
	struct wb_fixture *fx;
	atomic_bool stop;
	atomic_uint rounds;
};

static void *storm_flusher(void *arg)
{
	struct storm_ctx *c = arg;

	while (!atomic_load(&c->stop)) {
		pcache_sync_all(c->fx->env.pc);
		pcache_drop_clean(c->fx->env.pc);
		alloc_reclaim(c->fx->env.a, 64 * 4096, 0);
		atomic_fetch_add(&c->rounds, 1);
	}
	return NULL;
}

static void test_writeback_small_writes_racing_flushers_match_model(void **state)
{
	struct wb_fixture *fx = wb_make(4096, 16 * 4096, 1);
	struct storm_ctx c = {.fx = fx};
	unsigned char *buf = malloc(1024 * 1024);
	uint64_t seed = 99;
	pthread_t t;

	(void)state;
	assert_non_null(buf);
	pt_fill(buf, 1024 * 1024, 0, 2);
	assert_int_equal(pwrite(fx->fd, buf, 1024 * 1024, 0), 1024 * 1024);
	pt_model_write(&fx->m, buf, 1024 * 1024, 0);
	assert_int_equal(pcache_truncate(&fx->f, 1024 * 1024), 0);
	assert_int_equal(pcache_writeback_start(fx->env.pc), 0);
	assert_int_equal(pthread_create(&t, NULL, storm_flusher, &c), 0);
	for (unsigned i = 0; i < 20000; i++) {
		off_t off = (off_t)(pt_rand(&seed) % (2u * 1024 * 1024));
		size_t len = 1 + (size_t)(pt_rand(&seed) % 3000);

		if (i % 997 == 0) {
			size_t size = (size_t)(pt_rand(&seed) % (2u * 1024 * 1024));

			assert_int_equal(pcache_truncate(&fx->f, (off_t)size), 0);
			pt_model_truncate(&fx->m, size);
			continue;
		}
		pt_fill(buf, len, off, 1);
		assert_int_equal(pcache_write(&fx->f, buf, len, off), (ssize_t)len);
		pt_model_write(&fx->m, buf, len, off);
	}
	atomic_store(&c.stop, true);
	pthread_join(t, NULL);
	assert_true(atomic_load(&c.rounds) > 0);
	pt_assert_cached(&fx->f, &fx->m);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	free(buf);
	wb_free(fx);
}

static void test_writeback_sync_all_writes_every_dirty_file(void **state)
{
	struct wb_fixture *fx = wb_make(PAGE, 0, 60000);
	struct pcache_file g;
	struct pt_model mg;
	unsigned char buf[5000];
	int gfd;

	(void)state;
	gfd = pt_file_open(&fx->env, &g, "second");
	pt_model_init(&mg);
	pt_write(&fx->f, &fx->m, 3 * PAGE, 100, 1);
	pt_fill(buf, sizeof(buf), 70000, 2);
	assert_int_equal(pcache_write(&g, buf, sizeof(buf), 70000), (ssize_t)sizeof(buf));
	pt_model_write(&mg, buf, sizeof(buf), 70000);
	assert_int_equal(pt_refs_held(), 2); /* one dirty reference per file */
	assert_int_equal(pcache_sync_all(fx->env.pc), 0);
	assert_int_equal(pt_refs_held(), 0);
	pt_assert_backing(fx->fd, &fx->m);
	pt_assert_backing(gfd, &mg);
	pt_file_close(&g);
	pt_model_free(&mg);
	wb_free(fx);
}

/* ---- direct writeback ---- */

/* Whether the scratch fs takes O_DIRECT writes from 512-aligned memory
 * (where the cache's page data sits). */
static bool direct_io_supported(const char *dir)
{
	char path[160];
	struct statx sx;
	bool ok;
	int fd;

	snprintf(path, sizeof(path), "%s/.dio-probe", dir);
	fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0644);
	if (fd < 0)
		return false;
	ok = statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	     (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_mem_align &&
	     sx.stx_dio_mem_align <= 512 && sx.stx_dio_offset_align &&
	     sx.stx_dio_offset_align <= 4096;
	close(fd);
	unlink(path);
	return ok;
}

static struct wb_fixture *wb_make_direct(bool buffered_only)
{
	struct wb_fixture *fx = calloc(1, sizeof(*fx));
	struct pcache_config cc = {
		.page_size = PAGE, .writeback_ms = 60000, .buffered_only = buffered_only};

	assert_non_null(fx);
	pt_env_setup_config(&fx->env, &cc, 0);
	fx->fd = pt_file_open(&fx->env, &fx->f, "data");
	pt_model_init(&fx->m);
	return fx;
}

static uint64_t wb_direct_bytes(struct wb_fixture *fx)
{
	struct pcache_usage u;

	pcache_usage_read(fx->env.pc, &u);
	return u.direct_bytes;
}

static void test_writeback_direct_takes_long_runs_and_leaves_the_tail_buffered(void **state)
{
	struct wb_fixture *fx = wb_make_direct(false);

	(void)state;
	if (!direct_io_supported(fx->env.dir)) {
		wb_free(fx);
		skip(); /* the scratch fs has no direct I/O */
	}
	/* Eight whole pages go direct; the 100-byte tail cannot. */
	pt_write(&fx->f, &fx->m, 8 * PAGE + 100, 0, 1);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	assert_int_equal(wb_direct_bytes(fx), 8 * PAGE);
	pt_assert_backing(fx->fd, &fx->m);
	/* A short, unaligned overwrite goes through the backing page cache... */
	pt_write(&fx->f, &fx->m, 4096, 1000, 2);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	assert_int_equal(wb_direct_bytes(fx), 8 * PAGE);
	pt_assert_backing(fx->fd, &fx->m);
	/* ...and a direct run over it afterwards still wins: the kernel writes
	 * and drops the buffered copy first. */
	pt_write(&fx->f, &fx->m, 4 * PAGE, 0, 3);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	assert_int_equal(wb_direct_bytes(fx), 12 * PAGE);
	pt_assert_backing(fx->fd, &fx->m);
	/* Read back through the buffered descriptor, not from our pages. */
	pcache_drop_clean(fx->env.pc);
	pt_assert_cached(&fx->f, &fx->m);
	wb_free(fx);
}

static void test_writeback_direct_skips_runs_shorter_than_its_minimum(void **state)
{
	struct wb_fixture *fx = wb_make_direct(false);

	(void)state;
	if (!direct_io_supported(fx->env.dir)) {
		wb_free(fx);
		skip();
	}
	/* One page, and two pages apart: no run reaches the minimum. */
	pt_write(&fx->f, &fx->m, PAGE, 0, 1);
	pt_write(&fx->f, &fx->m, PAGE, 4 * PAGE, 1);
	assert_true(PAGE < PCACHE_WB_DIRECT_MIN);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	assert_int_equal(wb_direct_bytes(fx), 0);
	pt_assert_backing(fx->fd, &fx->m);
	wb_free(fx);
}

static void test_writeback_buffered_only_never_writes_direct(void **state)
{
	struct wb_fixture *fx = wb_make_direct(true);

	(void)state;
	if (!direct_io_supported(fx->env.dir)) {
		wb_free(fx);
		skip(); /* would pass without proving anything */
	}
	pt_write(&fx->f, &fx->m, 8 * PAGE, 0, 1);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	assert_int_equal(wb_direct_bytes(fx), 0);
	pt_assert_backing(fx->fd, &fx->m);
	wb_free(fx);
}

/* ---- fsync errors: what they mean (errseq) ---- */

static bool wrote_back_after_error(void *data)
{
	struct pcache_usage u;

	pcache_usage_read(data, &u);
	return u.writeback_errors > 0 && u.dirty_bytes == 0 && u.writeback_bytes == 0;
}

static void test_writeback_thread_buffer_failure_retried_later_is_no_fsync_error(void **state)
{
	/* Young pages, far under dirty_limit: the thread writes by age, with
	 * an allocated buffer (no stack fallback), so the injected failure
	 * stops its first pass and a later pass writes the data. */
	struct wb_fixture *fx = wb_make(PAGE, 0, 20);
	struct alloc_inject inj = ALLOC_INJECT_OFF;

	(void)state;
	pt_write(&fx->f, &fx->m, 3 * PAGE, 0, 1);
	inj.probability = 100;
	inj.times = 1;
	inj.sites = 1u << ALLOC_SITE_WRITEBACK;
	alloc_set_inject(fx->env.a, &inj);
	assert_int_equal(pcache_writeback_start(fx->env.pc), 0);
	assert_true(pt_wait_until(wrote_back_after_error, fx->env.pc, 20000));
	pt_assert_backing(fx->fd, &fx->m);
	/* Every byte reached the disk: nothing to report. */
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	wb_free(fx);
}

static void test_writeback_fsync_own_buffer_failure_is_enomem_and_keeps_data(void **state)
{
	struct wb_fixture *fx = wb_make(PAGE, 0, 60000);
	pcache_errseq_t h1 = pcache_file_errseq_sample(&fx->f);
	pcache_errseq_t h2 = pcache_file_errseq_sample(&fx->f);

	(void)state;
	pt_write(&fx->f, &fx->m, 2 * PAGE, 0, 1);
	alloc_fail_nth(fx->env.a, 1, 0);
	assert_int_equal(pcache_fsync_handle(&fx->f, false, &h1), -ENOMEM);
	assert_true(pcache_file_is_dirty(&fx->f));
	/* Not a backing error: nobody else is told, and the retry works. */
	assert_int_equal(pcache_fsync_handle(&fx->f, false, &h2), 0);
	pt_assert_backing(fx->fd, &fx->m);
	assert_int_equal(pcache_fsync_handle(&fx->f, false, &h1), 0);
	wb_free(fx);
}

static void test_writeback_error_reported_once_to_every_open_description(void **state)
{
	struct wb_fixture *fx = wb_make(PAGE, 0, 60000);
	pcache_errseq_t before_a, before_b, after_unseen, after_seen;
	int saved;

	(void)state;
	before_a = pcache_file_errseq_sample(&fx->f);
	before_b = pcache_file_errseq_sample(&fx->f);
	pt_write(&fx->f, &fx->m, PAGE + 7, 0, 1);
	fd_make_read_only(fx, &saved);
	/* A writeback that is not an fsync fails (as the thread's would). */
	assert_int_equal(pcache_flush_file(&fx->f), -EBADF);
	fd_restore(fx, saved);
	after_unseen = pcache_file_errseq_sample(&fx->f);

	/* Each description open at the failure is told once, even though
	 * this fsync writes the data out. */
	assert_int_equal(pcache_fsync_handle(&fx->f, false, &before_a), -EBADF);
	pt_assert_backing(fx->fd, &fx->m);
	assert_int_equal(pcache_fsync_handle(&fx->f, false, &before_a), 0);
	assert_int_equal(pcache_fsync_handle(&fx->f, false, &before_b), -EBADF);
	assert_int_equal(pcache_fsync_handle(&fx->f, false, &before_b), 0);
	/* Opened after the failure, before any fsync reported it: told too. */
	assert_int_equal(pcache_fsync_handle(&fx->f, false, &after_unseen), -EBADF);
	/* Opened after it was reported: not news. */
	after_seen = pcache_file_errseq_sample(&fx->f);
	assert_int_equal(pcache_fsync_handle(&fx->f, false, &after_seen), 0);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);

	/* A second failure after the first was seen is news for everyone. */
	pt_write(&fx->f, &fx->m, PAGE, 2 * PAGE, 2);
	fd_make_read_only(fx, &saved);
	assert_int_equal(pcache_fsync_handle(&fx->f, false, &after_seen), -EBADF);
	fd_restore(fx, saved);
	assert_int_equal(pcache_fsync_handle(&fx->f, false, &before_a), -EBADF);
	assert_int_equal(pcache_fsync_handle(&fx->f, false, &before_a), 0);
	pt_assert_backing(fx->fd, &fx->m);
	wb_free(fx);
}

/* ---- writers throttled at dirty_limit ---- */

struct throttle_run {
	uint64_t peak; /* dirty + writeback bytes right after each write */
	unsigned pages;
};

/* One writer, page by page: the peak of what it leaves unwritten. Only
 * this thread adds dirty bytes, so the peak is right after one of its
 * writes. */
static void throttle_write(struct wb_fixture *fx, struct throttle_run *r)
{
	for (unsigned i = 0; i < r->pages; i++) {
		struct pcache_usage u;

		pt_write(&fx->f, &fx->m, PAGE, (off_t)i * PAGE, 1);
		pcache_usage_read(fx->env.pc, &u);
		if (u.dirty_bytes + u.writeback_bytes > r->peak)
			r->peak = u.dirty_bytes + u.writeback_bytes;
	}
}

static struct wb_fixture *throttle_make(bool unthrottled, unsigned delay_us)
{
	struct wb_fixture *fx = calloc(1, sizeof(*fx));
	struct pcache_config cc = {
		.page_size = PAGE,
		.dirty_limit = 4 * PAGE,
		.clean_limit = 4 * PAGE,
		.writeback_ms = 3600u * 1000u,
		.writers_unthrottled = unthrottled,
		.writeback_delay_us = delay_us,
	};

	assert_non_null(fx);
	pt_env_setup_config(&fx->env, &cc, 0);
	fx->fd = pt_file_open(&fx->env, &fx->f, "data");
	pt_model_init(&fx->m);
	assert_int_equal(pcache_writeback_start(fx->env.pc), 0);
	return fx;
}

static void test_writeback_throttle_holds_writers_at_dirty_limit(void **state)
{
	/* Writeback far slower than the writer (2 ms a page). */
	struct wb_fixture *fx = throttle_make(false, 2000);
	struct throttle_run r = {.pages = 64};
	struct pcache_usage u;

	(void)state;
	throttle_write(fx, &r);
	/* A writer checks before it writes: one write past the limit at most. */
	assert_true(r.peak <= 4 * PAGE + PAGE);
	pcache_usage_read(fx->env.pc, &u);
	assert_true(u.throttled_writes > 0);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	wb_free(fx);
}

static void test_writeback_throttle_keeps_the_cache_under_dirty_plus_clean_limit(void **state)
{
	struct wb_fixture *fx = throttle_make(false, 2000);
	struct throttle_run r = {.pages = 64};
	struct alloc_stats st;
	/* A page's record, data and alignment slack, as page_new asks. */
	uint64_t page_bytes = PAGE + 1024;

	(void)state;
	throttle_write(fx, &r);
	alloc_stats_read(fx->env.a, &st);
	/* dirty_limit + clean_limit + the one write a writer may add past the
	 * limit (and one more a writer may add in the instant between a
	 * writeback's end and the trim of the clean pages it made). Woken
	 * before that trim, writers would find up to a whole batch of clean
	 * pages still there. */
	assert_true(st.site[ALLOC_SITE_CACHE_PAGE][ALLOC_STAT_peak] <= (4 + 4 + 2) * page_bytes);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	wb_free(fx);
}

static void test_writeback_unthrottled_writers_run_past_dirty_limit(void **state)
{
	/* The same run with throttling off: the check above can fail. */
	struct wb_fixture *fx = throttle_make(true, 2000);
	struct throttle_run r = {.pages = 64};
	struct pcache_usage u;

	(void)state;
	throttle_write(fx, &r);
	assert_true(r.peak > 4 * PAGE + PAGE);
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.throttled_writes, 0);
	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	wb_free(fx);
}

static void test_writeback_throttle_lets_writers_pass_while_writeback_fails(void **state)
{
	struct wb_fixture *fx = throttle_make(false, 0);
	struct throttle_run r = {.pages = 32};
	int saved;

	(void)state;
	fd_make_read_only(fx, &saved);
	/* Waiting would free nothing: every write completes, all stays dirty. */
	throttle_write(fx, &r);
	assert_true(pcache_file_is_dirty(&fx->f));
	pt_assert_cached(&fx->f, &fx->m);
	pcache_writeback_stop(fx->env.pc);
	fd_restore(fx, saved);
	assert_int_equal(pcache_fsync(&fx->f, false), -EBADF);
	pt_assert_backing(fx->fd, &fx->m);
	wb_free(fx);
}

static void test_writeback_throttle_never_waits_without_the_thread(void **state)
{
	struct wb_fixture *fx = throttle_make(false, 0);
	struct throttle_run r = {.pages = 16};
	struct pcache_usage u;

	(void)state;
	pcache_writeback_stop(fx->env.pc);
	throttle_write(fx, &r);
	pcache_usage_read(fx->env.pc, &u);
	assert_int_equal(u.dirty_bytes, 16 * PAGE);
	assert_int_equal(u.throttled_writes, 0);
	wb_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writeback_thread_writes_pages_older_than_writeback_ms),
		cmocka_unit_test(test_writeback_thread_starts_at_once_past_dirty_limit),
		cmocka_unit_test(test_writeback_past_dirty_limit_writes_down_to_half_of_it),
		cmocka_unit_test(test_writeback_young_pages_stay_dirty_without_pressure),
		cmocka_unit_test(test_writeback_set_config_takes_effect_at_run_time),
		cmocka_unit_test(test_writeback_for_each_dirty_lists_exactly_the_dirty_ranges),
		cmocka_unit_test(
			test_writeback_backing_error_keeps_data_dirty_and_fsync_reports_it),
		cmocka_unit_test(test_writeback_thread_error_is_kept_for_the_next_fsync_once),
		cmocka_unit_test_teardown(
			test_writeback_full_filesystem_keeps_data_until_room_returns,
			tmpfs_teardown),
		cmocka_unit_test(test_writeback_fsync_promise_holds_while_writer_and_thread_race),
		cmocka_unit_test(test_writeback_small_writes_racing_flushers_match_model),
		cmocka_unit_test(test_writeback_sync_all_writes_every_dirty_file),
		cmocka_unit_test(
			test_writeback_direct_takes_long_runs_and_leaves_the_tail_buffered),
		cmocka_unit_test(test_writeback_direct_skips_runs_shorter_than_its_minimum),
		cmocka_unit_test(test_writeback_buffered_only_never_writes_direct),
		cmocka_unit_test(
			test_writeback_thread_buffer_failure_retried_later_is_no_fsync_error),
		cmocka_unit_test(test_writeback_fsync_own_buffer_failure_is_enomem_and_keeps_data),
		cmocka_unit_test(test_writeback_error_reported_once_to_every_open_description),
		cmocka_unit_test(test_writeback_throttle_holds_writers_at_dirty_limit),
		cmocka_unit_test(
			test_writeback_throttle_keeps_the_cache_under_dirty_plus_clean_limit),
		cmocka_unit_test(test_writeback_unthrottled_writers_run_past_dirty_limit),
		cmocka_unit_test(test_writeback_throttle_lets_writers_pass_while_writeback_fails),
		cmocka_unit_test(test_writeback_throttle_never_waits_without_the_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
