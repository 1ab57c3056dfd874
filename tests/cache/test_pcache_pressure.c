/*
 * The page cache under memory pressure with the real policy plugins
 * (loaded with policy_load): what a writer sees under enomem, retry,
 * nofail and abort, and that no acknowledged byte is lost after fsync.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "pcache_test.h"

#ifdef PT_HAVE_POLICY_LOADER
#include "loader.h"
#include "pfs_config.h"

#define PAGE (64u * 1024u)

struct pr_env {
	struct pt_env env;
	struct policy_handle *policy;
};

static void pr_setup(struct pr_env *pe, const char *policy, const char *const *keys,
		     const char *const *values, unsigned nargs, uint64_t mem_limit,
		     unsigned writeback_ms)
{
	char err[256] = "";

	pt_env_setup(&pe->env, PAGE, mem_limit, 0, writeback_ms);
	policy_dir_set(PFS_BUILD_POLICY_DIR);
	pe->policy = policy_load(policy, keys, values, nargs, NULL, err, sizeof(err));
	if (!pe->policy)
		fail_msg("policy_load(%s): %s", policy, err);
	alloc_set_policy(pe->env.a, pe->policy->ops, pe->policy->state);
}

static void pr_teardown(struct pr_env *pe)
{
	pt_env_teardown(&pe->env);
	/* alloc_destroy (in teardown) is done with the policy: fini now. */
	policy_unload(pe->policy);
}

static uint64_t pr_stat(struct pr_env *pe, enum alloc_stat stat)
{
	struct alloc_stats st;

	alloc_stats_read(pe->env.a, &st);
	return st.total[stat];
}

/* Write len bytes at off; the model learns exactly what was acknowledged.
 * Returns the bytes acknowledged (0 for an error). */
static size_t pr_write(struct pcache_file *f, struct pt_model *m, size_t len, off_t off,
		       unsigned gen)
{
	unsigned char *buf = malloc(len);
	ssize_t n;

	assert_non_null(buf);
	pt_fill(buf, len, off, gen);
	n = pcache_write(f, buf, len, off);
	assert_true(n == -ENOMEM || (n > 0 && (size_t)n <= len));
	if (n > 0)
		pt_model_write(m, buf, (size_t)n, off);
	free(buf);
	return n > 0 ? (size_t)n : 0;
}

/* enomem, 1 MiB of budget, no writeback thread: writes fail (short or
 * ENOMEM) once memory is full of dirty pages; what was acknowledged is
 * in the backing file after fsync; then writes go on (fsync made the
 * pages clean, so they can be reclaimed). */
static void test_pressure_enomem_fails_writes_but_loses_no_acknowledged_byte(void **state)
{
	struct pr_env pe;
	struct pcache_file f;
	struct pt_model m;
	unsigned failed = 0, short_writes = 0;
	off_t off = 0;
	int fd;

	(void)state;
	pr_setup(&pe, "enomem", NULL, NULL, 0, 1024 * 1024, 3600u * 1000u);
	fd = pt_file_open(&pe.env, &f, "a");
	pt_model_init(&m);
	for (unsigned i = 0; i < 40; i++) {
		size_t want = 100 * 1000, got = pr_write(&f, &m, want, off, 1);

		if (got == 0)
			failed++;
		else if (got < want)
			short_writes++;
		off += (off_t)got;
		if (got < want) {
			/* The careful application: fsync what it has, then
			 * go on from where the write stopped. */
			assert_int_equal(pcache_fsync(&f, false), 0);
			pt_assert_backing(fd, &m);
		}
	}
	print_message("enomem: %u writes failed, %u short, of 40\n", failed, short_writes);
	assert_true(failed + short_writes > 0);
	assert_true(pr_stat(&pe, ALLOC_STAT_enomem) > 0);
	assert_true((size_t)off > 2u * 1024 * 1024); /* it went on after failures */
	assert_int_equal(pcache_fsync(&f, false), 0);
	pt_assert_backing(fd, &m);
	pt_file_close(&f);
	pt_model_free(&m);
	pr_teardown(&pe);
}

/* The same seeded injection (20% of cache_page allocations) under enomem
 * and under retry: retry counts caller retries and fails fewer writes. */
static unsigned pr_injected_run(const char *policy, uint64_t *retries)
{
	struct pr_env pe;
	struct pcache_file f;
	struct pt_model m;
	struct alloc_inject inj = ALLOC_INJECT_OFF;
	const char *keys[] = {"backoff_ms"}, *values[] = {"0"};
	unsigned failed = 0;
	int fd;

	pr_setup(&pe, policy, strcmp(policy, "retry") ? NULL : keys,
		 strcmp(policy, "retry") ? NULL : values, strcmp(policy, "retry") ? 0 : 1, 0,
		 3600u * 1000u);
	fd = pt_file_open(&pe.env, &f, "a");
	pt_model_init(&m);
	inj.probability = 20;
	inj.sites = 1u << ALLOC_SITE_CACHE_PAGE;
	inj.seed = 42;
	alloc_set_inject(pe.env.a, &inj);
	for (unsigned i = 0; i < 200; i++)
		if (pr_write(&f, &m, PAGE, (off_t)i * PAGE, 1) < PAGE)
			failed++;
	inj.probability = 0;
	alloc_set_inject(pe.env.a, &inj);
	*retries = pr_stat(&pe, ALLOC_STAT_caller_retries);
	assert_int_equal(pcache_fsync(&f, false), 0);
	pt_assert_backing(fd, &m);
	pt_file_close(&f);
	pt_model_free(&m);
	pr_teardown(&pe);
	return failed;
}

static void test_pressure_retry_fails_fewer_writes_than_enomem_under_same_seed(void **state)
{
	uint64_t enomem_retries, retry_retries;
	unsigned enomem_failed = pr_injected_run("enomem", &enomem_retries);
	unsigned retry_failed = pr_injected_run("retry", &retry_retries);

	(void)state;
	print_message("failed writes of 200: enomem %u, retry %u (caller retries %llu)\n",
		      enomem_failed, retry_failed, (unsigned long long)retry_retries);
	assert_true(enomem_failed > 10);
	assert_true(retry_failed < enomem_failed);
	assert_int_equal(enomem_retries, 0);
	assert_true(retry_retries > 0);
}

/* nofail, 2 MiB of budget, a writer of 16 MiB: it never sees an error,
 * the allocator reclaims or loops, and the writes finish because writeback
 * cleans pages that reclaim then drops. */
static void test_pressure_nofail_writer_finishes_because_writeback_frees_memory(void **state)
{
	struct pr_env pe;
	struct pcache_file f;
	struct pt_model m;
	const char *keys[] = {"wait_ms"}, *values[] = {"5"};
	int fd;

	(void)state;
	pr_setup(&pe, "nofail", keys, values, 1, 2u * 1024 * 1024, 1000);
	fd = pt_file_open(&pe.env, &f, "a");
	pt_model_init(&m);
	assert_int_equal(pcache_writeback_start(pe.env.pc), 0);
	for (unsigned i = 0; i < 128; i++)
		assert_int_equal(pr_write(&f, &m, 128 * 1024, (off_t)i * 128 * 1024, 1),
				 128 * 1024);
	print_message("nofail: %llu allocator loops, 0 errors\n",
		      (unsigned long long)pr_stat(&pe, ALLOC_STAT_loops));
	/* The budget was full: room came from direct reclaim of the pages
	 * writeback cleaned, or from the allocator's loop. */
	assert_true(pr_stat(&pe, ALLOC_STAT_loops) + pr_stat(&pe, ALLOC_STAT_reclaimed) > 0);
	assert_int_equal(pr_stat(&pe, ALLOC_STAT_enomem), 0);
	assert_true(alloc_live(pe.env.a) <= 2u * 1024 * 1024);
	assert_int_equal(pcache_fsync(&f, false), 0);
	pt_assert_backing(fd, &m);
	pt_file_close(&f);
	pt_model_free(&m);
	pr_teardown(&pe);
}

/* retry with a tight budget and the writeback thread: the writer drops its
 * lock, reclaim writes back and frees, and the writes all get through. */
static void test_pressure_retry_writer_gets_through_a_full_budget(void **state)
{
	struct pr_env pe;
	struct pcache_file f;
	struct pt_model m;
	const char *keys[] = {"retries", "backoff_ms"}, *values[] = {"50", "1"};
	int fd;

	(void)state;
	pr_setup(&pe, "retry", keys, values, 2, 1024 * 1024, 1000);
	fd = pt_file_open(&pe.env, &f, "a");
	pt_model_init(&m);
	assert_int_equal(pcache_writeback_start(pe.env.pc), 0);
	for (unsigned i = 0; i < 64; i++)
		assert_int_equal(pr_write(&f, &m, 100 * 1000, (off_t)i * 100 * 1000, 1),
				 100 * 1000);
	/* The budget was full: room came from direct reclaim of the pages
	 * writeback cleaned, or from the writer's retries. */
	assert_true(pr_stat(&pe, ALLOC_STAT_caller_retries) + pr_stat(&pe, ALLOC_STAT_reclaimed) >
		    0);
	assert_int_equal(pcache_fsync(&f, false), 0);
	pt_assert_backing(fd, &m);
	pt_file_close(&f);
	pt_model_free(&m);
	pr_teardown(&pe);
}

/* RETRY: a writer waiting for memory has dropped the inode lock, so a
 * reader of the same file gets through meanwhile (were the lock held, the
 * read would wait for the writer, which waits for us: the bounded wait
 * below would fail). */
struct drop_ctx {
	struct pcache_file *f;
	atomic_bool writer_done, reader_done;
	ssize_t written;
};

static void *drop_writer(void *arg)
{
	struct drop_ctx *c = arg;
	unsigned char buf[PAGE];

	pt_fill(buf, PAGE, 5 * PAGE, 3);
	c->written = pcache_write(c->f, buf, PAGE, 5 * PAGE);
	atomic_store(&c->writer_done, true);
	return NULL;
}

static void *drop_reader(void *arg)
{
	struct drop_ctx *c = arg;
	unsigned char buf[100];

	pcache_read(c->f, buf, sizeof(buf), 0);
	atomic_store(&c->reader_done, true);
	return NULL;
}

static bool flag_set(void *data)
{
	return atomic_load((atomic_bool *)data);
}

static bool retries_seen(void *data)
{
	return pr_stat(data, ALLOC_STAT_caller_retries) > 0;
}

static void test_pressure_retry_writer_drops_inode_lock_while_it_waits(void **state)
{
	struct pr_env pe;
	struct pcache_file f;
	struct pt_model m;
	const char *keys[] = {"retries", "backoff_ms"}, *values[] = {"1000000", "1"};
	struct drop_ctx c = {.f = &f};
	pthread_t w, r;

	(void)state;
	pr_setup(&pe, "retry", keys, values, 2, 0, 3600u * 1000u);
	pt_file_open(&pe.env, &f, "a");
	pt_model_init(&m);
	pr_write(&f, &m, 1000, 0, 1);
	alloc_fail_nth(pe.env.a, 1, UINT64_MAX); /* every attempt fails from now */
	assert_int_equal(pthread_create(&w, NULL, drop_writer, &c), 0);
	/* The writer is retrying once the allocator counts caller retries. */
	assert_true(pt_wait_until(retries_seen, &pe, 10000));
	assert_int_equal(pthread_create(&r, NULL, drop_reader, &c), 0);
	assert_true(pt_wait_until(flag_set, &c.reader_done, 10000));
	assert_false(atomic_load(&c.writer_done)); /* still waiting for memory */
	alloc_fail_nth(pe.env.a, 0, 0);		   /* memory is back */
	pthread_join(w, NULL);
	pthread_join(r, NULL);
	assert_int_equal(c.written, PAGE);
	assert_int_equal(pcache_fsync(&f, false), 0);
	pt_file_close(&f);
	pt_model_free(&m);
	pr_teardown(&pe);
}

/* abort: the daemon (here a forked child) dies by SIGABRT; what it fsynced
 * before is intact in the backing file. */
static void test_pressure_abort_dies_and_fsynced_bytes_survive(void **state)
{
	char dir[] = "/tmp/pcache-abort-XXXXXX", path[128];
	unsigned char want[300000], got[300000];
	int status, fd;
	pid_t pid;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a", dir);
	pt_fill(want, sizeof(want), 0, 9);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct alloc_config ac = {.mem_limit = 1024 * 1024};
		struct alloc *a = alloc_create(&ac);
		struct policy_handle *h;
		struct pcache *pc;
		struct pcache_file f;
		char err[256];

		if (!freopen("/dev/null", "w", stderr))
			_exit(2);
		policy_dir_set(PFS_BUILD_POLICY_DIR);
		h = policy_load("abort", NULL, NULL, 0, NULL, err, sizeof(err));
		if (!a || !h)
			_exit(3);
		alloc_set_policy(a, h->ops, h->state);
		pc = pcache_create(a, NULL, NULL);
		fd = open(path, O_RDWR | O_CREAT, 0644);
		if (!pc || fd < 0)
			_exit(4);
		pcache_file_init(pc, &f, fd, 0, 1);
		if (pcache_write(&f, want, sizeof(want), 0) != (ssize_t)sizeof(want) ||
		    pcache_fsync(&f, false) != 0)
			_exit(5);
		/* Now fill memory with dirty pages until the policy aborts. */
		for (off_t off = sizeof(want);; off += PAGE)
			pcache_write(&f, want, PAGE, off);
		_exit(6);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
	assert_memory_equal(got, want, sizeof(want));
	close(fd);
	pt_rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pressure_enomem_fails_writes_but_loses_no_acknowledged_byte),
		cmocka_unit_test(
			test_pressure_retry_fails_fewer_writes_than_enomem_under_same_seed),
		cmocka_unit_test(
			test_pressure_nofail_writer_finishes_because_writeback_frees_memory),
		cmocka_unit_test(test_pressure_retry_writer_gets_through_a_full_budget),
		cmocka_unit_test(test_pressure_retry_writer_drops_inode_lock_while_it_waits),
		cmocka_unit_test(test_pressure_abort_dies_and_fsynced_bytes_survive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* !PT_HAVE_POLICY_LOADER */

int main(void)
{
	return 77; /* the policy loader is not built: skip */
}

#endif
