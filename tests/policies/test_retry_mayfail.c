/* The retry_mayfail policy's decide(), called directly: it reclaims with
 * the caller's no-fs flag, retries or loops within timeout_ms, then fails. */
#include "test_host.h"

#define MS 1000000ull

static struct policy_handle *mayfail_load(struct pfs_policy_host *host)
{
	const char *keys[] = {"timeout_ms", "wait_ms", "reclaim_kb"};
	const char *values[] = {"100", "30", "64"};

	return test_policy_load("retry_mayfail", keys, values, 3, host);
}

static void test_retry_mayfail_retries_within_timeout_then_fails(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = mayfail_load(&host);
	struct pfs_failure f = test_failure_make();
	struct pfs_decision d;

	f.stalled_ns = 0;
	d = h->ops->decide(h->state, &f);
	assert_int_equal(d.verdict, PFS_VERDICT_RETRY);
	assert_int_equal(d.wait_ns, 30 * MS);
	/* Near the deadline the wait is cut to what is left. */
	f.stalled_ns = 90 * MS;
	d = h->ops->decide(h->state, &f);
	assert_int_equal(d.verdict, PFS_VERDICT_RETRY);
	assert_int_equal(d.wait_ns, 10 * MS);
	f.stalled_ns = 100 * MS;
	assert_int_equal(h->ops->decide(h->state, &f).verdict, PFS_VERDICT_FAIL);
	policy_unload(h);
}

static void test_retry_mayfail_loops_when_caller_cannot_retry(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = mayfail_load(&host);
	struct pfs_failure f = test_failure_make();

	f.caller_can_retry = 0;
	assert_int_equal(h->ops->decide(h->state, &f).verdict, PFS_VERDICT_LOOP);
	f.stalled_ns = 200 * MS;
	assert_int_equal(h->ops->decide(h->state, &f).verdict, PFS_VERDICT_FAIL);
	policy_unload(h);
}

static void test_retry_mayfail_reclaims_nofs_for_callers_holding_locks(void **unused)
{
	struct test_services t;
	struct pfs_policy_host host = test_services_host(&t);
	struct policy_handle *h = mayfail_load(&host);
	struct pfs_failure f = test_failure_make();

	f.size = 4096;
	f.flags = PFS_ALLOC_NOFS;
	h->ops->decide(h->state, &f);
	assert_int_equal(t.reclaims, 1);
	assert_int_equal(t.reclaim_flags, PFS_ALLOC_NOFS);
	assert_int_equal(t.reclaim_want, 64 * 1024);
	/* Without locks it may block; a request larger than reclaim_kb asks
	 * for at least itself. */
	f.flags = 0;
	f.size = 1 << 20;
	h->ops->decide(h->state, &f);
	assert_int_equal(t.reclaims, 2);
	assert_int_equal(t.reclaim_flags, 0);
	assert_int_equal(t.reclaim_want, 1 << 20);
	/* Past the deadline nothing more is reclaimed. */
	f.stalled_ns = 100 * MS;
	h->ops->decide(h->state, &f);
	assert_int_equal(t.reclaims, 2);
	policy_unload(h);
}

static void test_retry_mayfail_zero_timeout_fails_first_attempt(void **unused)
{
	const char *keys[] = {"timeout_ms"};
	const char *values[] = {"0"};
	struct policy_handle *h = test_policy_load("retry_mayfail", keys, values, 1, NULL);
	struct pfs_failure f = test_failure_make();

	assert_int_equal(h->ops->decide(h->state, &f).verdict, PFS_VERDICT_FAIL);
	policy_unload(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_mayfail_retries_within_timeout_then_fails),
		cmocka_unit_test(test_retry_mayfail_loops_when_caller_cannot_retry),
		cmocka_unit_test(test_retry_mayfail_reclaims_nofs_for_callers_holding_locks),
		cmocka_unit_test(test_retry_mayfail_zero_timeout_fails_first_attempt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
