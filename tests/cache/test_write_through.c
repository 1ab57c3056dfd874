/*
 * The write path's bypass (cache/rw.c, under the write_through policy): a
 * write whose page cannot be had goes to the backing file with pwrite and
 * is answered only after it is there; fsync then syncs the backing file
 * although the cache holds nothing dirty of it. pwrite, fsync and
 * fdatasync are wrapped (-Wl,--wrap) to count them and to make a pwrite
 * fail or come up short.
 */
#include "pcache_test.h"

#include "loader.h"
#include "pfs_config.h"

#define PAGE (64u * 1024u)

/* ---- the wrapped system calls ---- */

static int wrap_fd = -1;	   /* the backing file under test: count its calls */
static unsigned wrap_pwrites;	   /* pwrite calls on wrap_fd */
static unsigned wrap_syncs;	   /* fsync + fdatasync calls on wrap_fd */
static int wrap_pwrite_errno;	   /* non-zero: pwrite on wrap_fd fails with it */
static size_t wrap_pwrite_at_most; /* non-zero: pwrite on wrap_fd writes at most this */

ssize_t __real_pwrite(int fd, const void *buf, size_t len, off_t off);
ssize_t __real_pwrite64(int fd, const void *buf, size_t len, off_t off);
int __real_fsync(int fd);
int __real_fdatasync(int fd);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t len, off_t off);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off);
int __wrap_fsync(int fd);
int __wrap_fdatasync(int fd);

static ssize_t wrap_pwrite_common(int fd, const void *buf, size_t len, off_t off)
{
	if (fd == wrap_fd) {
		wrap_pwrites++;
		if (wrap_pwrite_errno) {
			errno = wrap_pwrite_errno;
			return -1;
		}
		if (wrap_pwrite_at_most && len > wrap_pwrite_at_most) {
			len = wrap_pwrite_at_most;
			/* The kernel's reason comes with the next call. */
			wrap_pwrite_errno = ENOSPC;
		}
	}
	return __real_pwrite64(fd, buf, len, off);
}

ssize_t __wrap_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return wrap_pwrite_common(fd, buf, len, off);
}

ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	return wrap_pwrite_common(fd, buf, len, off);
}

int __wrap_fsync(int fd)
{
	if (fd == wrap_fd)
		wrap_syncs++;
	return __real_fsync(fd);
}

int __wrap_fdatasync(int fd)
{
	if (fd == wrap_fd)
		wrap_syncs++;
	return __real_fdatasync(fd);
}

/* ---- a cache whose budget has no room for a page ---- */

static struct alloc *host_alloc;

static struct pfs_reserve *host_reserve_create(void *data, size_t elem_size, unsigned count)
{
	(void)data;
	return alloc_reserve_create(host_alloc, elem_size, count);
}

static void host_reserve_destroy(void *data, struct pfs_reserve *r)
{
	(void)data;
	alloc_reserve_destroy(host_alloc, r);
}

static const struct pfs_policy_host host = {
	.reserve_create = host_reserve_create,
	.reserve_destroy = host_reserve_destroy,
};

struct wt_env {
	struct pt_env env;
	struct policy_handle *policy;
	struct pcache_file f;
	int fd;
	struct pt_model m;
};

/* write_through installed; then the limit is cut to what is charged now
 * plus less than a page, so that every new page is refused. */
static void wt_setup(struct wt_env *w, const char *policy, const char *const *values)
{
	const char *keys[] = {"reserve", "wait_ms"};
	char err[256] = "";

	pt_env_setup(&w->env, PAGE, 0, 0, 3600u * 1000u);
	host_alloc = w->env.a;
	policy_dir_set(PFS_BUILD_POLICY_DIR);
	w->policy = policy_load(policy, keys, values, values ? 2 : 0, &host, err, sizeof(err));
	if (!w->policy)
		fail_msg("policy_load(%s): %s", policy, err);
	if (w->policy->ops->install)
		assert_int_equal(w->policy->ops->install(w->policy->state), 0);
	alloc_set_policy(w->env.a, w->policy->ops, w->policy->state);
	w->fd = pt_file_open(&w->env, &w->f, "file");
	pt_model_init(&w->m);
	wrap_fd = w->fd;
	wrap_pwrites = wrap_syncs = 0;
	wrap_pwrite_errno = 0;
	wrap_pwrite_at_most = 0;
}

static void wt_squeeze(struct wt_env *w)
{
	alloc_set_mem_limit(w->env.a, alloc_charged(w->env.a) + PAGE / 2);
}

static void wt_assert_backing(struct wt_env *w);

/* Whatever the test left dirty goes out first: then the backing file holds
 * exactly what was acknowledged. */
static void wt_teardown(struct wt_env *w)
{
	wrap_fd = -1;
	assert_int_equal(pcache_fsync(&w->f, false), 0);
	wt_assert_backing(w);
	pt_file_close(&w->f);
	pt_model_free(&w->m);
	if (w->policy->ops->uninstall)
		w->policy->ops->uninstall(w->policy->state);
	pt_env_teardown(&w->env);
	policy_unload(w->policy);
	host_alloc = NULL;
}

static uint64_t wt_stat(struct wt_env *w, enum alloc_stat stat)
{
	struct alloc_stats st;

	alloc_stats_read(w->env.a, &st);
	return st.total[stat];
}

static off_t wt_size(struct wt_env *w)
{
	struct timespec mtime;
	bool has_mtime;
	off_t size;

	pcache_file_attr(&w->f, &size, &mtime, &has_mtime);
	return size;
}

/* The backing file, read past the cache, holds exactly the model. */
static void wt_assert_backing(struct wt_env *w)
{
	unsigned char *buf = malloc(w->m.size + 1);
	struct stat st;

	assert_non_null(buf);
	assert_int_equal(fstat(w->fd, &st), 0);
	assert_int_equal(st.st_size, (off_t)w->m.size);
	assert_int_equal(pread(w->fd, buf, w->m.size, 0), (ssize_t)w->m.size);
	assert_memory_equal(buf, w->m.data, w->m.size);
	free(buf);
}

static const char *const wt_values[] = {"writeback:64K", "1"};

static void test_write_through_write_with_no_room_for_a_page_lands_in_backing_file(void **unused)
{
	struct wt_env w;
	uint64_t live;

	wt_setup(&w, "write_through", wt_values);
	wt_squeeze(&w);
	live = alloc_live(w.env.a);
	/* Unaligned, three pages and a bit: every page written through. */
	pt_write(&w.f, &w.m, 3 * PAGE + 100, 300, 1);
	assert_true(wrap_pwrites >= 4);
	assert_int_equal(wt_stat(&w, ALLOC_STAT_bypassed), 4);
	assert_int_equal(wt_stat(&w, ALLOC_STAT_enomem), 0);
	/* No page cached (the file's small page index may be), nothing
	 * dirty: it is in the backing file already. */
	assert_true(alloc_live(w.env.a) - live < PAGE);
	assert_false(pcache_file_is_dirty(&w.f));
	wt_assert_backing(&w);
	pt_assert_cached(&w.f, &w.m);
	wt_teardown(&w);
}

static void test_write_through_fsync_syncs_backing_file_with_nothing_dirty(void **unused)
{
	struct wt_env w;

	wt_setup(&w, "write_through", wt_values);
	wt_squeeze(&w);
	pt_write(&w.f, &w.m, PAGE, 0, 2);
	assert_false(pcache_file_is_dirty(&w.f));
	assert_int_equal(wrap_syncs, 0);
	assert_int_equal(pcache_fsync(&w.f, false), 0);
	assert_int_equal(wrap_syncs, 1);
	assert_int_equal(pcache_fsync(&w.f, true), 0);
	assert_int_equal(wrap_syncs, 2);
	wt_assert_backing(&w);
	wt_teardown(&w);
}

static void test_write_through_cached_page_takes_bytes_without_pwrite(void **unused)
{
	struct wt_env w;

	wt_setup(&w, "write_through", wt_values);
	pt_write(&w.f, &w.m, PAGE, 0, 3); /* room yet: cached, dirty */
	wt_squeeze(&w);
	pt_write(&w.f, &w.m, 100, 500, 4); /* the same page: no allocation */
	assert_int_equal(wrap_pwrites, 0);
	assert_int_equal(wt_stat(&w, ALLOC_STAT_bypassed), 0);
	assert_true(pcache_file_is_dirty(&w.f));
	/* The next page has none: through, beside the dirty one. */
	pt_write(&w.f, &w.m, 100, PAGE + 7, 5);
	assert_int_equal(wt_stat(&w, ALLOC_STAT_bypassed), 1);
	pt_assert_cached(&w.f, &w.m);
	assert_int_equal(pcache_fsync(&w.f, false), 0);
	wt_assert_backing(&w);
	wt_teardown(&w);
}

static void test_write_through_failed_pwrite_is_the_writes_error(void **unused)
{
	unsigned char buf[PAGE];
	struct wt_env w;

	wt_setup(&w, "write_through", wt_values);
	wt_squeeze(&w);
	pt_fill(buf, sizeof(buf), 0, 6);
	wrap_pwrite_errno = EIO;
	assert_int_equal(pcache_write(&w.f, buf, sizeof(buf), 0), -EIO);
	/* Nothing acknowledged: the size did not move. */
	assert_int_equal(wt_size(&w), 0);
	wt_teardown(&w);
}

static void test_write_through_short_pwrite_is_the_writes_error(void **unused)
{
	unsigned char buf[2 * PAGE];
	struct wt_env w;

	wt_setup(&w, "write_through", wt_values);
	pt_write(&w.f, &w.m, PAGE, 0, 7); /* page 0 cached */
	wt_squeeze(&w);
	pt_fill(buf, sizeof(buf), 0, 8);
	/* Page 0 takes its bytes; page 1 comes up short, then ENOSPC. */
	wrap_pwrite_at_most = 1000;
	assert_int_equal(pcache_write(&w.f, buf, sizeof(buf), 0), (ssize_t)PAGE);
	pt_model_write(&w.m, buf, PAGE, 0);
	assert_int_equal(pcache_write(&w.f, buf + PAGE, PAGE, PAGE), -ENOSPC);
	assert_int_equal(wt_size(&w), PAGE);
	wrap_pwrite_errno = 0;
	wrap_pwrite_at_most = 0;
	pt_assert_cached(&w.f, &w.m);
	wt_teardown(&w);
}

/* The same squeeze without the policy: the write fails. Proves the
 * squeeze leaves no room, so the tests above do test the bypass. */
static void test_write_through_same_write_under_enomem_fails(void **unused)
{
	unsigned char buf[PAGE];
	struct wt_env w;

	wt_setup(&w, "enomem", NULL);
	wt_squeeze(&w);
	pt_fill(buf, sizeof(buf), 0, 9);
	assert_int_equal(pcache_write(&w.f, buf, sizeof(buf), 0), -ENOMEM);
	assert_int_equal(wrap_pwrites, 0);
	wt_teardown(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_write_through_write_with_no_room_for_a_page_lands_in_backing_file),
		cmocka_unit_test(test_write_through_fsync_syncs_backing_file_with_nothing_dirty),
		cmocka_unit_test(test_write_through_cached_page_takes_bytes_without_pwrite),
		cmocka_unit_test(test_write_through_failed_pwrite_is_the_writes_error),
		cmocka_unit_test(test_write_through_short_pwrite_is_the_writes_error),
		cmocka_unit_test(test_write_through_same_write_under_enomem_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
