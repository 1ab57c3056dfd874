/* The nofail policy's decide(), called directly through a test host. */
#include <stdlib.h>

#include "test_host.h"

#define MS 1000000ull

static struct policy_handle *nofail_load(struct test_log *log, struct pfs_policy_host *host,
					 const char *warn_ms, const char *wait_ms)
{
	const char *keys[] = {"stall_warn_ms", "wait_ms"};
	const char *values[] = {warn_ms, wait_ms};

	*host = test_host_make(log);
	return test_policy_load("nofail", keys, values, 2, host);
}

static void test_nofail_always_loops_with_wait_ms(void **unused)
{
	struct pfs_failure f = test_failure_make();
	struct pfs_policy_host host;
	struct test_log log;
	struct policy_handle *h = nofail_load(&log, &host, "86400000", "3");

	for (unsigned attempt = 0; attempt < 10000; attempt++) {
		struct pfs_decision d;

		f.attempt = attempt;
		f.cause = (enum pfs_cause)(PFS_CAUSE_BUDGET + attempt % 3);
		f.caller_can_retry = (int)(attempt & 1);
		f.prev_stalled_ns = f.stalled_ns;
		f.stalled_ns += 1000;
		d = h->ops->decide(h->state, &f);
		assert_int_equal(d.verdict, PFS_VERDICT_LOOP);
		assert_int_equal(d.wait_ns, 3 * MS);
	}
	assert_int_equal(log.lines, 0);
	policy_unload(h);
}

static void test_nofail_default_wait_is_10ms(void **unused)
{
	struct pfs_failure f = test_failure_make();
	struct policy_handle *h = test_policy_load("nofail", NULL, NULL, 0, NULL);
	struct pfs_decision d;

	d = h->ops->decide(h->state, &f);
	assert_int_equal(d.verdict, PFS_VERDICT_LOOP);
	assert_int_equal(d.wait_ns, 10 * MS);
	assert_int_equal(h->values[0], 10000);
	policy_unload(h);
}

static void test_nofail_warns_once_per_stall_warn_multiple(void **unused)
{
	struct pfs_failure f = test_failure_make();
	struct pfs_policy_host host;
	struct test_log log;
	struct policy_handle *h = nofail_load(&log, &host, "100", "10");

	/* Asked every 7 ms for just over a second: 10 multiples of 100 ms crossed. */
	for (f.attempt = 0; f.stalled_ns <= 1003 * MS; f.attempt++) {
		h->ops->decide(h->state, &f);
		f.prev_stalled_ns = f.stalled_ns;
		f.stalled_ns += 7 * MS;
	}
	assert_int_equal(log.lines, 10);
	assert_int_equal(log.last_level, PFS_LOG_WARNING);
	/* 105 ms is the first value past 100 ms: attempt 15. */
	assert_non_null(strstr(log.text, "pressurefs: page allocation stall: site cache_page, "
					 "65536 bytes, stalled 105 ms, attempt 15 (live 1044480 "
					 "of limit 1048576, balloon 4096)\n"));
	assert_non_null(strstr(log.text, "stalled 1001 ms, attempt 143 "));
	policy_unload(h);
}

static void test_nofail_warns_once_when_one_jump_crosses_several(void **unused)
{
	struct pfs_failure f = test_failure_make();
	struct pfs_policy_host host;
	struct test_log log;
	struct policy_handle *h = nofail_load(&log, &host, "100", "10");

	f.prev_stalled_ns = 50 * MS;
	f.stalled_ns = 350 * MS;
	h->ops->decide(h->state, &f);
	assert_int_equal(log.lines, 1);
	/* Asked again within the same multiple: no new warning. */
	f.prev_stalled_ns = f.stalled_ns;
	f.stalled_ns = 399 * MS;
	h->ops->decide(h->state, &f);
	assert_int_equal(log.lines, 1);
	policy_unload(h);
}

static void test_nofail_silent_below_stall_warn_ms(void **unused)
{
	struct pfs_failure f = test_failure_make();
	struct pfs_policy_host host;
	struct test_log log;
	struct policy_handle *h = nofail_load(&log, &host, "10000", "10");

	for (f.stalled_ns = 0; f.stalled_ns < 10000 * MS; f.stalled_ns += 10 * MS) {
		h->ops->decide(h->state, &f);
		f.prev_stalled_ns = f.stalled_ns;
	}
	assert_int_equal(log.lines, 0);
	f.stalled_ns = 10012 * MS;
	h->ops->decide(h->state, &f);
	assert_int_equal(log.lines, 1);
	assert_non_null(strstr(log.text, "stalled 10012 ms"));
	policy_unload(h);
}

static void test_nofail_warns_on_stderr_without_host(void **unused)
{
	struct pfs_failure f = test_failure_make();
	struct test_stderr cap;
	char out[1024];
	const char *keys[] = {"stall_warn_ms"};
	const char *values[] = {"1"};
	struct policy_handle *h = test_policy_load("nofail", keys, values, 1, NULL);

	f.stalled_ns = 2 * MS;
	test_stderr_begin(&cap);
	h->ops->decide(h->state, &f);
	test_stderr_end(&cap, out, sizeof(out));
	assert_non_null(strstr(out, "pressurefs: page allocation stall: site cache_page, 65536 "
				    "bytes, stalled 2 ms, attempt 0"));
	policy_unload(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nofail_always_loops_with_wait_ms),
		cmocka_unit_test(test_nofail_default_wait_is_10ms),
		cmocka_unit_test(test_nofail_warns_once_per_stall_warn_multiple),
		cmocka_unit_test(test_nofail_warns_once_when_one_jump_crosses_several),
		cmocka_unit_test(test_nofail_silent_below_stall_warn_ms),
		cmocka_unit_test(test_nofail_warns_on_stderr_without_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
