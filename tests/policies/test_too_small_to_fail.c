/* The too_small_to_fail policy's decide(), called directly: LOOP up to the
 * threshold (by default the host's page size), FAIL above it. */
#include "test_host.h"

static struct pfs_decision tstf_ask(struct policy_handle *h, size_t size)
{
	struct pfs_failure f = test_failure_make();

	f.size = size;
	return h->ops->decide(h->state, &f);
}

static void test_too_small_to_fail_default_threshold_is_host_page_size(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = test_policy_load("too_small_to_fail", NULL, NULL, 0, &host);

	t.page_size = 65536;
	assert_int_equal(tstf_ask(h, 65536).verdict, PFS_VERDICT_LOOP);
	assert_int_equal(tstf_ask(h, 65537).verdict, PFS_VERDICT_FAIL);
	/* Asked each time: a page size set after init counts. */
	t.page_size = 4096;
	assert_int_equal(tstf_ask(h, 8192).verdict, PFS_VERDICT_FAIL);
	policy_unload(h);
}

static void test_too_small_to_fail_without_page_size_uses_4k(void **unused)
{
	struct policy_handle *h = test_policy_load("too_small_to_fail", NULL, NULL, 0, NULL);

	assert_int_equal(tstf_ask(h, 4096).verdict, PFS_VERDICT_LOOP);
	assert_int_equal(tstf_ask(h, 4097).verdict, PFS_VERDICT_FAIL);
	policy_unload(h);
}

static void test_too_small_to_fail_explicit_threshold_wins(void **unused)
{
	const char *keys[] = {"threshold", "wait_ms"};
	const char *values[] = {"100", "7"};
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = test_policy_load("too_small_to_fail", keys, values, 2, &host);
	struct pfs_decision d;

	t.page_size = 65536;
	d = tstf_ask(h, 100);
	assert_int_equal(d.verdict, PFS_VERDICT_LOOP);
	assert_int_equal(d.wait_ns, 7000000ull);
	assert_int_equal(tstf_ask(h, 101).verdict, PFS_VERDICT_FAIL);
	policy_unload(h);
}

static void test_too_small_to_fail_warns_once_per_crossed_stall(void **unused)
{
	const char *keys[] = {"stall_warn_ms"};
	const char *values[] = {"10"};
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = test_policy_load("too_small_to_fail", keys, values, 1, &host);
	struct pfs_failure f = test_failure_make();

	f.size = 16;
	f.prev_stalled_ns = 5000000;
	f.stalled_ns = 9000000;
	h->ops->decide(h->state, &f);
	assert_int_equal(t.log.lines, 0);
	f.prev_stalled_ns = f.stalled_ns;
	f.stalled_ns = 12000000;
	h->ops->decide(h->state, &f);
	assert_int_equal(t.log.lines, 1);
	assert_non_null(strstr(t.log.text, "too small to fail"));
	policy_unload(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_too_small_to_fail_default_threshold_is_host_page_size),
		cmocka_unit_test(test_too_small_to_fail_without_page_size_uses_4k),
		cmocka_unit_test(test_too_small_to_fail_explicit_threshold_wins),
		cmocka_unit_test(test_too_small_to_fail_warns_once_per_crossed_stall),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
