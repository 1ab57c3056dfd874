/* The enomem policy's decide(), called directly. */
#include "test_host.h"

static void test_enomem_fails_every_attempt_without_wait(void **unused)
{
	struct pfs_failure f = test_failure_make();
	struct pfs_policy_host host;
	struct test_log log;
	struct policy_handle *h;

	host = test_host_make(&log);
	h = test_policy_load("enomem", NULL, NULL, 0, &host);
	for (unsigned attempt = 0; attempt < 100; attempt++) {
		struct pfs_decision d;

		f.attempt = attempt;
		f.cause = (enum pfs_cause)(PFS_CAUSE_BUDGET + attempt % 3);
		f.caller_can_retry = (int)(attempt & 1);
		d = h->ops->decide(h->state, &f);
		assert_int_equal(d.verdict, PFS_VERDICT_FAIL);
		assert_int_equal(d.wait_ns, 0);
	}
	assert_int_equal(log.lines, 0);
	policy_unload(h);
}

static void test_enomem_takes_no_arguments(void **unused)
{
	struct policy_handle *h = test_policy_load("enomem", NULL, NULL, 0, NULL);

	assert_int_equal(h->nparams, 0);
	assert_null(h->ops->params);
	policy_unload(h);
	assert_int_equal(policy_accepts_arg("enomem", "retries"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enomem_fails_every_attempt_without_wait),
		cmocka_unit_test(test_enomem_takes_no_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
