/* The abort policy's decide(), called directly: the verdict and its log line. */
#include "test_host.h"

static void test_abort_returns_abort_and_logs_site_size_budget(void **unused)
{
	struct pfs_failure f = test_failure_make();
	struct pfs_policy_host host;
	struct test_log log;
	struct policy_handle *h;
	struct pfs_decision d;

	host = test_host_make(&log);
	h = test_policy_load("abort", NULL, NULL, 0, &host);
	d = h->ops->decide(h->state, &f);
	assert_int_equal(d.verdict, PFS_VERDICT_ABORT);
	assert_int_equal(log.lines, 1);
	assert_int_equal(log.last_level, PFS_LOG_ERR);
	assert_string_equal(log.text,
			    "pressurefs: allocation failed: site cache_page, 65536 bytes, cause "
			    "budget (live 1044480, limit 1048576, balloon 4096); policy abort: "
			    "aborting\n");
	policy_unload(h);
}

static void test_abort_names_each_cause(void **unused)
{
	struct pfs_failure f = test_failure_make();
	struct pfs_policy_host host;
	struct test_log log;
	struct policy_handle *h;

	host = test_host_make(&log);
	h = test_policy_load("abort", NULL, NULL, 0, &host);
	f.site = "writeback";
	f.size = 4096;
	f.cause = PFS_CAUSE_INJECTED;
	assert_int_equal(h->ops->decide(h->state, &f).verdict, PFS_VERDICT_ABORT);
	f.cause = PFS_CAUSE_SYSTEM;
	assert_int_equal(h->ops->decide(h->state, &f).verdict, PFS_VERDICT_ABORT);
	assert_int_equal(log.lines, 2);
	assert_non_null(strstr(log.text, "site writeback, 4096 bytes, cause injected"));
	assert_non_null(strstr(log.text, "site writeback, 4096 bytes, cause system"));
	policy_unload(h);
}

static void test_abort_logs_on_stderr_without_host(void **unused)
{
	struct pfs_failure f = test_failure_make();
	struct test_stderr cap;
	char out[1024];
	struct policy_handle *h = test_policy_load("abort", NULL, NULL, 0, NULL);

	test_stderr_begin(&cap);
	assert_int_equal(h->ops->decide(h->state, &f).verdict, PFS_VERDICT_ABORT);
	test_stderr_end(&cap, out, sizeof(out));
	assert_string_equal(out, "pressurefs: allocation failed: site cache_page, 65536 bytes, "
				 "cause budget (live 1044480, limit 1048576, balloon 4096); "
				 "policy abort: aborting\n");
	policy_unload(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abort_returns_abort_and_logs_site_size_budget),
		cmocka_unit_test(test_abort_names_each_cause),
		cmocka_unit_test(test_abort_logs_on_stderr_without_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
