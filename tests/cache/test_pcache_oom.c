/*
 * The fail-the-Nth-allocation loop (tests/harness/oom_loop.h) over the
 * page cache's operations: write, read, truncate, fsync, evict, sync_all
 * and a rename/unlink sequence, under every policy, with
 * transient and persistent failures. Each run ends in success or a clean
 * ENOMEM / short count, leaks nothing, and loses no byte that was
 * acknowledged: after the run, fsync puts exactly the model in the
 * backing file.
 */
#include "pcache_test.h"

#include "loader.h"
#include "oom_loop.h"
#include "pfs_config.h"

#define PAGE (16u * 1024u)

enum oom_op {
	OP_WRITE,
	OP_READ,
	OP_TRUNCATE,
	OP_FSYNC,
	OP_EVICT,
	OP_SYNC_ALL,
	OP_RENAME_UNLINK,
};

static const char *const op_names[] = {"write", "read",	    "truncate",	    "fsync",
				       "evict", "sync_all", "rename_unlink"};

struct oom_ctx {
	enum oom_op op;
	char dir[64], path[128];
	struct pcache *pc;
	struct pcache_file f;
	bool attached;
	int fd;
	struct pt_model m;
	bool unlinked; /* OP_RENAME_UNLINK discarded the data on purpose */
};

/* A backing file with data already, a cache with some dirty and some
 * clean pages: the state the operation starts from. */
static int oom_setup(void *data, struct alloc *a)
{
	struct oom_ctx *c = data;
	struct pcache_config cc = {.page_size = PAGE, .writeback_ms = 3600u * 1000u};
	unsigned char base[3 * PAGE + 100];

	pt_refs.gets = pt_refs.puts = 0;
	c->unlinked = false;
	c->fd = open(c->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(c->fd >= 0);
	pt_fill(base, sizeof(base), 0, 1);
	assert_int_equal(pwrite(c->fd, base, sizeof(base), 0), (ssize_t)sizeof(base));
	memset(c->m.data, 0, 1024 * 1024);
	c->m.size = 0;
	pt_model_write(&c->m, base, sizeof(base), 0);
	c->pc = pcache_create(a, &cc, &pt_ops);
	assert_non_null(c->pc);
	pcache_file_init(c->pc, &c->f, c->fd, (off_t)sizeof(base), 1);
	c->attached = true;
	if (c->op == OP_READ)
		return 0; /* a cold cache: the read does the allocating */
	pt_write(&c->f, &c->m, 2 * PAGE, PAGE / 2, 2);
	if (c->op == OP_EVICT) {
		assert_int_equal(pcache_fsync(&c->f, false), 0);
		pt_write(&c->f, &c->m, 100, 3 * PAGE + 7, 3); /* one dirty page too */
	}
	return 0;
}

static int oom_run(void *data, struct alloc *a)
{
	struct oom_ctx *c = data;
	unsigned char *buf;
	ssize_t n;
	int rc = 0;

	switch (c->op) {
	case OP_WRITE:
		/* Unaligned, over backing data and past its end: fills,
		 * merges, fresh pages and an index that grows. */
		buf = malloc(5 * PAGE);
		assert_non_null(buf);
		pt_fill(buf, 5 * PAGE, 2 * PAGE + 300, 4);
		n = pcache_write(&c->f, buf, 5 * PAGE, 2 * PAGE + 300);
		if (n > 0)
			pt_model_write(&c->m, buf, (size_t)n, 2 * PAGE + 300);
		free(buf);
		rc = n > 0 ? 0 : (int)n;
		break;
	case OP_READ:
		buf = malloc(c->m.size);
		assert_non_null(buf);
		n = pcache_read(&c->f, buf, c->m.size, 0);
		/* Reads never fail for memory: caching is optional. */
		assert_int_equal(n, (ssize_t)c->m.size);
		assert_memory_equal(buf, c->m.data, c->m.size);
		free(buf);
		break;
	case OP_TRUNCATE:
		rc = pcache_truncate(&c->f, PAGE + 77);
		assert_int_equal(rc, 0);
		pt_model_truncate(&c->m, PAGE + 77);
		break;
	case OP_FSYNC:
		rc = pcache_fsync(&c->f, false);
		if (rc == 0)
			pt_assert_backing(c->fd, &c->m); /* the promise */
		break;
	case OP_EVICT:
		pcache_drop_clean(c->pc);
		alloc_reclaim(a, 64 * PAGE, 0); /* blocking: writes back, then drops */
		break;
	case OP_SYNC_ALL:
		/* sync_all must not lose data to a failed buffer allocation. */
		assert_int_equal(pcache_sync_all(c->pc), 0);
		pt_assert_backing(c->fd, &c->m);
		break;
	case OP_RENAME_UNLINK:
		/* The cache is per inode: a rename changes nothing in it, and
		 * writes go on through the same file state. */
		buf = malloc(PAGE);
		assert_non_null(buf);
		pt_fill(buf, PAGE, 5 * PAGE, 5);
		n = pcache_write(&c->f, buf, PAGE, 5 * PAGE);
		free(buf);
		rc = n > 0 ? 0 : (int)n;
		/* Unlink, last reference: the data goes unwritten. */
		pcache_file_discard(&c->f);
		pcache_file_destroy(&c->f);
		c->attached = false;
		c->unlinked = true;
		break;
	}
	return rc;
}

static void oom_check(void *data, struct alloc *a, int rc)
{
	struct oom_ctx *c = data;

	(void)a;
	(void)rc;
	if (!c->attached)
		return;
	/* Nothing acknowledged is lost: the cache shows the model, and an
	 * fsync (failures disarmed) puts exactly the model on disk. */
	pt_assert_cached(&c->f, &c->m);
	assert_int_equal(pcache_fsync(&c->f, false), 0);
	pt_assert_backing(c->fd, &c->m);
}

static void oom_teardown(void *data, struct alloc *a)
{
	struct oom_ctx *c = data;

	(void)a;
	if (c->attached) {
		pcache_file_discard(&c->f); /* after an abort child, or a check */
		pcache_file_destroy(&c->f);
		c->attached = false;
	}
	pcache_destroy(c->pc);
	c->pc = NULL;
	close(c->fd);
	assert_int_equal(pt_refs_held(), 0);
}

/* ---- the matrix: operation x policy x {transient, persistent} ---- */

/* OOM_KIND_RESERVE: a reserve serves every failure, so the loop runs as
 * for FAIL but no run may end in ENOMEM. */
#define OOM_KIND_RESERVE ((enum oom_kind) - 1)

static void oom_matrix_kind(enum oom_op op, const char *policy, const char *const *keys,
			    const char *const *values, unsigned nargs, enum oom_kind kind)
{
	bool never_fails = kind == OOM_KIND_RESERVE;

	struct oom_ctx c = {.op = op};
	struct oom_case oc = {
		.name = policy,
		.setup = oom_setup,
		.run = oom_run,
		.check = oom_check,
		.teardown = oom_teardown,
		.ctx = &c,
		.kind = never_fails ? OOM_KIND_FAIL : kind,
	};
	struct policy_handle *h;
	char err[256] = "";

	snprintf(c.dir, sizeof(c.dir), "/tmp/pcache-oom-XXXXXX");
	assert_non_null(mkdtemp(c.dir));
	snprintf(c.path, sizeof(c.path), "%s/file", c.dir);
	pt_model_init(&c.m);
	policy_dir_set(PFS_BUILD_POLICY_DIR);
	h = policy_load(policy, keys, values, nargs, oom_loop_host(), err, sizeof(err));
	if (!h)
		fail_msg("policy_load(%s): %s", policy, err);
	/* Reads allocate only with ALLOC_NORETRY (caching is optional), which
	 * never asks the policy: no loop, no retry, no abort, whatever the
	 * policy; a failed allocation only means the page is not kept. */
	if (op == OP_READ)
		oc.kind = OOM_KIND_FAIL;
	for (int persistent = 0; persistent < 2; persistent++) {
		struct oom_report r;

		oom_loop_run(&oc, h->ops, h->state, persistent, 200, &r);
		/* Truncate and evict allocate nothing (reclaim never does);
		 * every other operation was failed at least once. */
		if (op != OP_TRUNCATE && op != OP_EVICT)
			assert_true(r.runs > 1);
		if (never_fails)
			assert_int_equal(r.enomem_seen, 0);
		print_message("%s/%s/%s: %u runs, %u ok, %u enomem, %u aborted, %llu loops, "
			      "%llu caller retries\n",
			      oc.name, op_names[op], persistent ? "persistent" : "transient",
			      r.runs, r.succeeded, r.enomem_seen, r.aborted,
			      (unsigned long long)r.loops, (unsigned long long)r.caller_retries);
	}
	policy_unload(h);
	pt_model_free(&c.m);
	pt_rm_rf(c.dir);
}

static void oom_matrix(enum oom_op op, const char *policy, const char *const *keys,
		       const char *const *values, unsigned nargs)
{
	oom_matrix_kind(op, policy, keys, values, nargs, OOM_KIND_PROBE);
}

static const char *const nofail_keys[] = {"wait_ms"}, *const nofail_values[] = {"1"};
/* A reserve for every site, so that the loop meets it at each n; and one
 * for writeback alone, the default's shape. */
static const char *const mempool_keys[] = {"reserve", "wait_ms"};
static const char *const mempool_all_values[] = {"1M", "1"};
static const char *const mempool_wb_values[] = {"writeback:256K", "1"};
/* Short: in persistent mode every call times out. */
static const char *const mayfail_keys[] = {"timeout_ms", "wait_ms"};
static const char *const mayfail_values[] = {"20", "1"};
static const char *const tstf_keys[] = {"threshold", "wait_ms"};
static const char *const tstf_all_values[] = {"1048576", "1"};
static const char *const tstf_none_values[] = {"16", "1"};
static const char *const retry_keys[] = {"backoff_ms"}, *const retry_values[] = {"0"};
static const char *const wt_keys[] = {"reserve", "wait_ms"};
static const char *const wt_values[] = {"writeback:256K", "1"};

#define OOM_TESTS(X)                                                                               \
	X(write, OP_WRITE)                                                                         \
	X(read, OP_READ)                                                                           \
	X(truncate, OP_TRUNCATE)                                                                   \
	X(fsync, OP_FSYNC)                                                                         \
	X(evict, OP_EVICT)                                                                         \
	X(sync_all, OP_SYNC_ALL)                                                                   \
	X(rename_unlink, OP_RENAME_UNLINK)

#define OOM_DEFINE(name, op)                                                                       \
	static void test_pcache_oom_##name##_under_enomem(void **state)                            \
	{                                                                                          \
		(void)state;                                                                       \
		oom_matrix(op, "enomem", NULL, NULL, 0);                                           \
	}                                                                                          \
	static void test_pcache_oom_##name##_under_retry(void **state)                             \
	{                                                                                          \
		(void)state;                                                                       \
		oom_matrix(op, "retry", retry_keys, retry_values, 1);                              \
	}                                                                                          \
	static void test_pcache_oom_##name##_under_nofail(void **state)                            \
	{                                                                                          \
		(void)state;                                                                       \
		oom_matrix(op, "nofail", nofail_keys, nofail_values, 1);                           \
	}                                                                                          \
	static void test_pcache_oom_##name##_under_abort(void **state)                             \
	{                                                                                          \
		(void)state;                                                                       \
		oom_matrix(op, "abort", NULL, NULL, 0);                                            \
	}                                                                                          \
	/* Every site reserved: FAIL never comes, the reserve or a sleep does. */                  \
	static void test_pcache_oom_##name##_under_mempool_all_sites(void **state)                 \
	{                                                                                          \
		(void)state;                                                                       \
		oom_matrix_kind(op, "mempool", mempool_keys, mempool_all_values, 2,                \
				OOM_KIND_RESERVE);                                                 \
	}                                                                                          \
	static void test_pcache_oom_##name##_under_mempool_writeback(void **state)                 \
	{                                                                                          \
		(void)state;                                                                       \
		oom_matrix(op, "mempool", mempool_keys, mempool_wb_values, 2);                     \
	}                                                                                          \
	static void test_pcache_oom_##name##_under_retry_mayfail(void **state)                     \
	{                                                                                          \
		(void)state;                                                                       \
		oom_matrix_kind(op, "retry_mayfail", mayfail_keys, mayfail_values, 2,              \
				OOM_KIND_RETRY);                                                   \
	}                                                                                          \
	static void test_pcache_oom_##name##_under_too_small_to_fail_all(void **state)             \
	{                                                                                          \
		(void)state;                                                                       \
		oom_matrix(op, "too_small_to_fail", tstf_keys, tstf_all_values, 2);                \
	}                                                                                          \
	static void test_pcache_oom_##name##_under_too_small_to_fail_none(void **state)            \
	{                                                                                          \
		(void)state;                                                                       \
		oom_matrix_kind(op, "too_small_to_fail", tstf_keys, tstf_none_values, 2,           \
				OOM_KIND_FAIL);                                                    \
	}                                                                                          \
	static void test_pcache_oom_##name##_under_shutdown(void **state)                          \
	{                                                                                          \
		(void)state;                                                                       \
		oom_matrix(op, "shutdown", NULL, NULL, 0);                                         \
	}                                                                                          \
	/* A write that cannot get a page goes to the backing file: no ENOMEM. */                  \
	static void test_pcache_oom_##name##_under_write_through(void **state)                     \
	{                                                                                          \
		(void)state;                                                                       \
		oom_matrix_kind(op, "write_through", wt_keys, wt_values, 2,                        \
				op == OP_WRITE ? OOM_KIND_RESERVE : OOM_KIND_PROBE);               \
	}
OOM_TESTS(OOM_DEFINE)

#define OOM_ENTRY(name, op)                                                                        \
	cmocka_unit_test(test_pcache_oom_##name##_under_enomem),                                   \
		cmocka_unit_test(test_pcache_oom_##name##_under_retry),                            \
		cmocka_unit_test(test_pcache_oom_##name##_under_nofail),                           \
		cmocka_unit_test(test_pcache_oom_##name##_under_abort),                            \
		cmocka_unit_test(test_pcache_oom_##name##_under_mempool_all_sites),                \
		cmocka_unit_test(test_pcache_oom_##name##_under_mempool_writeback),                \
		cmocka_unit_test(test_pcache_oom_##name##_under_retry_mayfail),                    \
		cmocka_unit_test(test_pcache_oom_##name##_under_too_small_to_fail_all),            \
		cmocka_unit_test(test_pcache_oom_##name##_under_too_small_to_fail_none),           \
		cmocka_unit_test(test_pcache_oom_##name##_under_shutdown),                         \
		cmocka_unit_test(test_pcache_oom_##name##_under_write_through),

int main(void)
{
	const struct CMUnitTest tests[] = {OOM_TESTS(OOM_ENTRY)};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
