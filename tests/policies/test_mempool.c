/* The mempool policy's arguments, install/uninstall and decide(), called
 * directly with a host whose budget the test controls. */
#include "test_host.h"

static struct policy_handle *mempool_load(const char *reserve, struct pfs_policy_host *host)
{
	const char *keys[] = {"reserve", "wait_ms"};
	const char *values[] = {reserve, "3"};

	return test_policy_load("mempool", keys, values, reserve ? 2 : 0, host);
}

static struct pfs_decision mempool_ask(struct policy_handle *h, const char *site, size_t size)
{
	struct pfs_failure f = test_failure_make();

	f.site = site;
	f.size = size;
	return h->ops->decide(h->state, &f);
}

static void mempool_refused(const char *reserve, const char *want)
{
	const char *keys[] = {"reserve"};
	const char *values[] = {reserve};
	char err[512];
	struct policy_handle *h = policy_load("mempool", keys, values, 1, NULL, err, sizeof(err));

	assert_null(h);
	if (!strstr(err, want))
		fail_msg("reserve=%s: '%s' does not say '%s'", reserve, err, want);
}

static void test_mempool_default_reserves_writeback_only(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = mempool_load(NULL, &host);
	char args[256];

	policy_format_args(h, args, sizeof(args));
	assert_string_equal(args, "reserve=writeback:256K,wait_ms=10");
	t.room = 1 << 20;
	assert_int_equal(h->ops->install(h->state), 0);
	assert_int_equal(t.charged, 256 * 1024);
	assert_int_equal(mempool_ask(h, "writeback", 4096).verdict, PFS_VERDICT_RESERVED);
	assert_int_equal(mempool_ask(h, "cache_page", 4096).verdict, PFS_VERDICT_FAIL);
	h->ops->uninstall(h->state);
	/* The reserve went back; the 4 KiB handed out belongs to its block. */
	assert_int_equal(t.charged, 4096);
	policy_unload(h);
}

static void test_mempool_install_fails_with_enomem_when_reserve_does_not_fit(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = mempool_load("writeback:64K+inode:64K", &host);

	t.room = 100 * 1024; /* the first fits, the second does not */
	assert_int_equal(h->ops->install(h->state), -ENOMEM);
	assert_int_equal(t.charged, 0); /* the first was given back */
	/* Not installed: it serves nothing. */
	assert_int_equal(mempool_ask(h, "writeback", 16).verdict, PFS_VERDICT_FAIL);
	policy_unload(h);
}

static void test_mempool_install_without_reserve_service_is_refused(void **unused)
{
	struct test_log log;
	struct pfs_policy_host host = test_host_make(&log);
	struct policy_handle *h = mempool_load("4K", &host);

	assert_int_equal(h->ops->install(h->state), -EOPNOTSUPP);
	policy_unload(h);
}

static void test_mempool_serves_until_reserve_empty_then_sleeps(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = mempool_load("writeback:10K", &host);
	struct pfs_decision d;

	t.room = 10 * 1024;
	assert_int_equal(h->ops->install(h->state), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(mempool_ask(h, "writeback", 1024).verdict, PFS_VERDICT_RESERVED);
	/* Empty, and the budget is full: sleep for a free. */
	d = mempool_ask(h, "writeback", 1024);
	assert_int_equal(d.verdict, PFS_VERDICT_LOOP);
	assert_int_equal(d.wait_ns, 3 * 1000000ull);
	/* The blocks handed out were freed: the budget has room, the next
	 * decision refills the reserve and serves from it. */
	t.charged = 0;
	assert_int_equal(mempool_ask(h, "writeback", 1024).verdict, PFS_VERDICT_RESERVED);
	assert_int_equal(t.charged, 10 * 1024);
	h->ops->uninstall(h->state);
	assert_int_equal(t.charged, 1024); /* the block served last */
	policy_unload(h);
}

static void test_mempool_total_reserve_serves_every_site(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = mempool_load("8K", &host);

	t.room = 8192;
	assert_int_equal(h->ops->install(h->state), 0);
	/* Writers can drain a shared pool: writeback then sleeps. */
	assert_int_equal(mempool_ask(h, "cache_page", 8192).verdict, PFS_VERDICT_RESERVED);
	assert_int_equal(mempool_ask(h, "writeback", 16).verdict, PFS_VERDICT_LOOP);
	h->ops->uninstall(h->state);
	policy_unload(h);
}

static void test_mempool_request_larger_than_reserve_fails_and_logs_once(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = mempool_load("writeback:4K", &host);

	t.room = 1 << 20;
	assert_int_equal(h->ops->install(h->state), 0);
	assert_int_equal(mempool_ask(h, "writeback", 8192).verdict, PFS_VERDICT_FAIL);
	assert_int_equal(mempool_ask(h, "writeback", 8192).verdict, PFS_VERDICT_FAIL);
	assert_int_equal(t.log.lines, 1);
	assert_non_null(strstr(t.log.text, "more than its reserve"));
	h->ops->uninstall(h->state);
	policy_unload(h);
}

static void test_mempool_refuses_bad_reserve_text(void **unused)
{
	mempool_refused("nosuch:4K", "unknown site 'nosuch'");
	mempool_refused("writeback:0", "is not a size > 0");
	mempool_refused("writeback:4X", "is not a size > 0");
	mempool_refused("4K+writeback:4K", "a total (SIZE) stands alone");
	mempool_refused("writeback:4K+writeback:8K", "given twice");
	mempool_refused("a,b", "without commas");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mempool_default_reserves_writeback_only),
		cmocka_unit_test(test_mempool_install_fails_with_enomem_when_reserve_does_not_fit),
		cmocka_unit_test(test_mempool_install_without_reserve_service_is_refused),
		cmocka_unit_test(test_mempool_serves_until_reserve_empty_then_sleeps),
		cmocka_unit_test(test_mempool_total_reserve_serves_every_site),
		cmocka_unit_test(test_mempool_request_larger_than_reserve_fails_and_logs_once),
		cmocka_unit_test(test_mempool_refuses_bad_reserve_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
