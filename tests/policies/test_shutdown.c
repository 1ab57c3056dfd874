/* The shutdown policy's decide(), called directly: every failure is
 * ENOMEM, and one while data is dirty asks the host to shut down. */
#include "test_host.h"

static void test_shutdown_first_failure_while_dirty_shuts_down(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = test_policy_load("shutdown", NULL, NULL, 0, &host);
	struct pfs_failure f = test_failure_make();

	assert_int_equal(h->ops->install(h->state), 0);
	t.dirty = 12345;
	assert_int_equal(h->ops->decide(h->state, &f).verdict, PFS_VERDICT_FAIL);
	assert_int_equal(t.shutdowns, 1);
	assert_non_null(strstr(t.why, "65536 bytes at site cache_page failed (budget)"));
	assert_non_null(strstr(t.why, "12345 bytes of acknowledged data were dirty"));
	policy_unload(h);
}

static void test_shutdown_failure_with_nothing_dirty_only_fails(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = test_policy_load("shutdown", NULL, NULL, 0, &host);
	struct pfs_failure f = test_failure_make();

	t.dirty = 0;
	assert_int_equal(h->ops->decide(h->state, &f).verdict, PFS_VERDICT_FAIL);
	assert_int_equal(t.shutdowns, 0);
	policy_unload(h);
}

static void test_shutdown_install_refused_without_shutdown_service(void **unused)
{
	struct test_log log;
	struct pfs_policy_host host = test_host_make(&log);
	struct policy_handle *h = test_policy_load("shutdown", NULL, NULL, 0, &host);

	assert_int_equal(h->ops->install(h->state), -EOPNOTSUPP);
	policy_unload(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shutdown_first_failure_while_dirty_shuts_down),
		cmocka_unit_test(test_shutdown_failure_with_nothing_dirty_only_fails),
		cmocka_unit_test(test_shutdown_install_refused_without_shutdown_service),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
