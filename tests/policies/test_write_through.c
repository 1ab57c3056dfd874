/* The write_through policy's arguments, install/uninstall and decide(),
 * called directly with a host whose budget the test controls. */
#include "test_host.h"

static struct policy_handle *wt_load(const char *reserve, struct pfs_policy_host *host)
{
	return test_reserve_policy_load("write_through", reserve, host);
}

static void test_write_through_bypasses_cache_page_whatever_the_size(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = wt_load(NULL, &host);

	t.room = 1 << 20;
	assert_int_equal(h->ops->install(h->state), 0);
	assert_int_equal(test_policy_ask(h, "cache_page", 4096).verdict, PFS_VERDICT_BYPASS);
	assert_int_equal(test_policy_ask(h, "cache_page", 64u << 20).verdict, PFS_VERDICT_BYPASS);
	/* Nothing charged, nothing waited for. */
	assert_int_equal(t.charged, 256 * 1024);
	assert_int_equal(t.waits, 0);
	assert_int_equal(t.reclaims, 0);
	h->ops->uninstall(h->state);
	policy_unload(h);
}

static void test_write_through_default_reserves_writeback(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = wt_load(NULL, &host);
	char args[256];

	policy_format_args(h, args, sizeof(args));
	assert_string_equal(args, "reserve=writeback:256K,wait_ms=10");
	t.room = 1 << 20;
	assert_int_equal(h->ops->install(h->state), 0);
	assert_int_equal(t.charged, 256 * 1024);
	assert_ptr_equal(test_policy_ask(h, "writeback", 64 * 1024).reserve, &t.reserves[0]);
	h->ops->uninstall(h->state);
	assert_int_equal(t.charged, 0);
	policy_unload(h);
}

static void test_write_through_fails_other_sites_at_once(void **unused)
{
	static const char *const sites[] = {"inode", "handle", "readdir", "request", "other"};
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = wt_load(NULL, &host);

	t.room = 1 << 20;
	assert_int_equal(h->ops->install(h->state), 0);
	for (unsigned i = 0; i < sizeof(sites) / sizeof(sites[0]); i++)
		assert_int_equal(test_policy_ask(h, sites[i], 64).verdict, PFS_VERDICT_FAIL);
	assert_int_equal(t.waits, 0);
	h->ops->uninstall(h->state);
	policy_unload(h);
}

static void test_write_through_install_fails_with_enomem_when_reserve_does_not_fit(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = wt_load(NULL, &host);

	t.room = 100 * 1024;
	assert_int_equal(h->ops->install(h->state), -ENOMEM);
	assert_int_equal(t.charged, 0);
	/* Not installed: writeback is not served, but a write still bypasses. */
	assert_int_equal(test_policy_ask(h, "writeback", 16).verdict, PFS_VERDICT_FAIL);
	assert_int_equal(test_policy_ask(h, "cache_page", 4096).verdict, PFS_VERDICT_BYPASS);
	policy_unload(h);
}

static void test_write_through_refuses_a_cache_page_reserve(void **unused)
{
	const char *keys[] = {"reserve"};
	const char *values[] = {"writeback:64K+cache_page:64K"};
	char err[512];
	struct policy_handle *h =
		policy_load("write_through", keys, values, 1, NULL, err, sizeof(err));

	assert_null(h);
	if (!strstr(err, "no cache_page reserve"))
		fail_msg("'%s' does not say why", err);
}

static void test_write_through_refuses_bad_reserve_text(void **unused)
{
	const char *keys[] = {"reserve"};
	const char *values[] = {"writeback:lots"};
	char err[512];
	struct policy_handle *h =
		policy_load("write_through", keys, values, 1, NULL, err, sizeof(err));

	assert_null(h);
	if (!strstr(err, "is not a size"))
		fail_msg("'%s' does not say what is accepted", err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_through_bypasses_cache_page_whatever_the_size),
		cmocka_unit_test(test_write_through_default_reserves_writeback),
		cmocka_unit_test(test_write_through_fails_other_sites_at_once),
		cmocka_unit_test(
			test_write_through_install_fails_with_enomem_when_reserve_does_not_fit),
		cmocka_unit_test(test_write_through_refuses_a_cache_page_reserve),
		cmocka_unit_test(test_write_through_refuses_bad_reserve_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
