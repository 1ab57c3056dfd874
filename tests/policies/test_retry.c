/* The retry policy's decide(), called directly. */
#include "test_host.h"

#define MS 1000000ull

static struct policy_handle *retry_load(const char *retries, const char *backoff_ms,
					const char *backoff_max_ms)
{
	const char *keys[] = {"retries", "backoff_ms", "backoff_max_ms"};
	const char *values[] = {retries, backoff_ms, backoff_max_ms};

	return test_policy_load("retry", keys, values, 3, NULL);
}

static struct pfs_decision retry_ask(struct policy_handle *h, unsigned attempt)
{
	struct pfs_failure f = test_failure_make();

	f.attempt = attempt;
	return h->ops->decide(h->state, &f);
}

static void test_retry_gives_exactly_retries_retry_verdicts_then_fail(void **unused)
{
	struct policy_handle *h = retry_load("5", "1", "1000");
	unsigned retries = 0;

	for (unsigned attempt = 0; attempt < 20; attempt++) {
		struct pfs_decision d = retry_ask(h, attempt);

		if (attempt < 5) {
			assert_int_equal(d.verdict, PFS_VERDICT_RETRY);
			retries++;
		} else {
			assert_int_equal(d.verdict, PFS_VERDICT_FAIL);
		}
	}
	assert_int_equal(retries, 5);
	policy_unload(h);
}

static void test_retry_zero_retries_fails_first_attempt(void **unused)
{
	struct policy_handle *h = retry_load("0", "2", "1000");

	assert_int_equal(retry_ask(h, 0).verdict, PFS_VERDICT_FAIL);
	policy_unload(h);
}

static void test_retry_backoff_doubles_then_caps(void **unused)
{
	static const uint64_t want_ms[] = {2, 4, 8, 16, 32, 50, 50, 50};
	struct policy_handle *h = retry_load("100", "2", "50");

	for (unsigned attempt = 0; attempt < sizeof(want_ms) / sizeof(want_ms[0]); attempt++) {
		struct pfs_decision d = retry_ask(h, attempt);

		assert_int_equal(d.verdict, PFS_VERDICT_RETRY);
		assert_int_equal(d.wait_ns, want_ms[attempt] * MS);
	}
	policy_unload(h);
}

static void test_retry_defaults_are_8_retries_2ms_capped_at_1s(void **unused)
{
	struct policy_handle *h = test_policy_load("retry", NULL, NULL, 0, NULL);

	assert_int_equal(retry_ask(h, 0).wait_ns, 2 * MS);
	assert_int_equal(retry_ask(h, 7).wait_ns, 256 * MS);
	assert_int_equal(retry_ask(h, 7).verdict, PFS_VERDICT_RETRY);
	assert_int_equal(retry_ask(h, 8).verdict, PFS_VERDICT_FAIL);
	policy_unload(h);

	h = retry_load("1000", "2", "1000");
	assert_int_equal(retry_ask(h, 8).wait_ns, 512 * MS);
	assert_int_equal(retry_ask(h, 9).wait_ns, 1000 * MS);
	policy_unload(h);
}

static void test_retry_backoff_cap_holds_at_huge_attempts(void **unused)
{
	struct policy_handle *h = retry_load("1000000", "60000", "3600000");
	struct pfs_decision d = retry_ask(h, 999999);

	assert_int_equal(d.verdict, PFS_VERDICT_RETRY);
	assert_int_equal(d.wait_ns, 3600000ull * MS);
	assert_int_equal(retry_ask(h, 1000000).verdict, PFS_VERDICT_FAIL);
	policy_unload(h);
}

static void test_retry_zero_backoff_means_no_wait(void **unused)
{
	struct policy_handle *h = retry_load("3", "0", "1000");

	for (unsigned attempt = 0; attempt < 3; attempt++) {
		assert_int_equal(retry_ask(h, attempt).verdict, PFS_VERDICT_RETRY);
		assert_int_equal(retry_ask(h, attempt).wait_ns, 0);
	}
	policy_unload(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_gives_exactly_retries_retry_verdicts_then_fail),
		cmocka_unit_test(test_retry_zero_retries_fails_first_attempt),
		cmocka_unit_test(test_retry_backoff_doubles_then_caps),
		cmocka_unit_test(test_retry_defaults_are_8_retries_2ms_capped_at_1s),
		cmocka_unit_test(test_retry_backoff_cap_holds_at_huge_attempts),
		cmocka_unit_test(test_retry_zero_backoff_means_no_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
