/* The mempool policy's arguments, install/uninstall and decide(), called
 * directly with a host whose budget the test controls. */
#include "test_host.h"

static struct policy_handle *mempool_load(const char *reserve, struct pfs_policy_host *host)
{
	return test_reserve_policy_load("mempool", reserve, host);
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
	struct pfs_decision d;
	char args[256];

	policy_format_args(h, args, sizeof(args));
	assert_string_equal(args, "reserve=writeback:256K,wait_ms=10");
	t.room = 1 << 20;
	assert_int_equal(h->ops->install(h->state), 0);
	/* No page size from the host: elements of the cache's default 64 KiB. */
	assert_int_equal(t.nreserves, 1);
	assert_int_equal(t.reserves[0].elem_size, 64 * 1024);
	assert_int_equal(t.reserves[0].count, 4);
	assert_int_equal(t.charged, 256 * 1024);
	d = test_policy_ask(h, "writeback", 4096);
	assert_int_equal(d.verdict, PFS_VERDICT_RESERVED);
	assert_ptr_equal(d.reserve, &t.reserves[0]);
	assert_int_equal(d.wait_ns, 10 * 1000000ull);
	assert_int_equal(test_policy_ask(h, "cache_page", 4096).verdict, PFS_VERDICT_FAIL);
	h->ops->uninstall(h->state);
	assert_false(t.reserves[0].live);
	assert_int_equal(t.charged, 0);
	/* Uninstalled: a decide() still in flight serves nothing. */
	assert_int_equal(test_policy_ask(h, "writeback", 4096).verdict, PFS_VERDICT_FAIL);
	policy_unload(h);
}

static void test_mempool_install_fails_with_enomem_when_reserve_does_not_fit(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = mempool_load("writeback:64K+inode:64K", &host);

	t.room = 100 * 1024; /* the first fits, the second does not */
	assert_int_equal(h->ops->install(h->state), -ENOMEM);
	assert_int_equal(t.nreserves, 1);
	assert_false(t.reserves[0].live); /* the first was given back */
	assert_int_equal(t.charged, 0);
	/* Not installed: it serves nothing. */
	assert_int_equal(test_policy_ask(h, "writeback", 16).verdict, PFS_VERDICT_FAIL);
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

static void test_mempool_elements_are_the_page_size_rounded_up_to_the_reserve(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = mempool_load("writeback:10K+inode:2K", &host);

	t.room = 1 << 20;
	t.page_size = 4096;
	assert_int_equal(h->ops->install(h->state), 0);
	/* 10K in 4K elements: three, so that 10K fit; 2K: one element of 2K. */
	assert_int_equal(t.reserves[0].elem_size, 4096);
	assert_int_equal(t.reserves[0].count, 3);
	assert_int_equal(t.reserves[1].elem_size, 2048);
	assert_int_equal(t.reserves[1].count, 1);
	assert_int_equal(t.charged, 14 * 1024);
	assert_ptr_equal(test_policy_ask(h, "inode", 2048).reserve, &t.reserves[1]);
	assert_int_equal(test_policy_ask(h, "inode", 2049).verdict, PFS_VERDICT_FAIL);
	h->ops->uninstall(h->state);
	assert_int_equal(t.charged, 0);
	policy_unload(h);
}

static void test_mempool_total_reserve_serves_every_site(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = mempool_load("8K", &host);

	t.room = 8192;
	assert_int_equal(h->ops->install(h->state), 0);
	/* One pool for all: writers can drain it, and writeback then sleeps
	 * for the same elements (the allocator's part). */
	assert_ptr_equal(test_policy_ask(h, "cache_page", 8192).reserve, &t.reserves[0]);
	assert_ptr_equal(test_policy_ask(h, "writeback", 16).reserve, &t.reserves[0]);
	h->ops->uninstall(h->state);
	policy_unload(h);
}

static void test_mempool_request_larger_than_an_element_fails_and_logs_once(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = mempool_load("writeback:4K", &host);

	t.room = 1 << 20;
	assert_int_equal(h->ops->install(h->state), 0);
	assert_int_equal(test_policy_ask(h, "writeback", 8192).verdict, PFS_VERDICT_FAIL);
	assert_int_equal(test_policy_ask(h, "writeback", 8192).verdict, PFS_VERDICT_FAIL);
	assert_int_equal(t.log.lines, 1);
	assert_non_null(strstr(t.log.text, "more than its reserve's elements"));
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
		cmocka_unit_test(test_mempool_elements_are_the_page_size_rounded_up_to_the_reserve),
		cmocka_unit_test(test_mempool_total_reserve_serves_every_site),
		cmocka_unit_test(test_mempool_request_larger_than_an_element_fails_and_logs_once),
		cmocka_unit_test(test_mempool_refuses_bad_reserve_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
