/* Latency percentiles, errno names and the JSON summary keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stress_i.h"

static void test_latency_percentiles_within_bucket_resolution(void **state)
{
	struct stress_latency *lat = calloc(1, sizeof(*lat));
	uint64_t p50, p99;

	(void)state;
	for (uint64_t us = 1; us <= 10000; us++)
		stress_latency_add(lat, us);
	p50 = stress_latency_percentile(lat, 50.0);
	p99 = stress_latency_percentile(lat, 99.0);
	assert_true(p50 >= 5000 && p50 <= 5000 + 5000 / 16);
	assert_true(p99 >= 9900 && p99 <= 10000);
	assert_int_equal(stress_latency_percentile(lat, 100.0), 10000);
	assert_int_equal(lat->max_us, 10000);
	free(lat);
}

static void test_latency_small_values_are_exact_and_empty_is_zero(void **state)
{
	struct stress_latency *lat = calloc(1, sizeof(*lat));

	(void)state;
	assert_int_equal(stress_latency_percentile(lat, 99.0), 0);
	for (int i = 0; i < 99; i++)
		stress_latency_add(lat, 3);
	stress_latency_add(lat, UINT64_C(1) << 40); /* past the last bucket */
	assert_int_equal(stress_latency_percentile(lat, 50.0), 3);
	assert_int_equal(stress_latency_percentile(lat, 99.0), 3);
	assert_int_equal(stress_latency_percentile(lat, 100.0), UINT64_C(1) << 40);
	free(lat);
}

static void test_latency_merge_adds_counts_and_keeps_max(void **state)
{
	struct stress_latency *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));

	(void)state;
	stress_latency_add(a, 10);
	stress_latency_add(b, 500);
	stress_latency_add(b, 20);
	stress_latency_merge(a, b);
	assert_int_equal(a->count, 3);
	assert_int_equal(a->max_us, 500);
	free(a);
	free(b);
}

static void test_errno_name_is_symbolic(void **state)
{
	char buf[16];

	(void)state;
	assert_string_equal(stress_errno_name(ENOMEM, buf, sizeof(buf)), "ENOMEM");
	assert_string_equal(stress_errno_name(ENOTCONN, buf, sizeof(buf)), "ENOTCONN");
	assert_string_equal(stress_errno_name(0, buf, sizeof(buf)), "E0");
}

static void test_summary_json_has_every_key(void **state)
{
	static const char *const keys[] = {
		"\"writes_ok\": 7",
		"\"write_errors\": {\"EIO\": 1, \"ENOMEM\": 2}",
		"\"short_writes\"",
		"\"fsyncs_ok\"",
		"\"fsync_errors\": {}",
		"\"bytes_acked\"",
		"\"bytes_refused\"",
		"\"duration_s\"",
		"\"mb_per_s\"",
		"\"write_latency_us\"",
		"\"p50\"",
		"\"p99\"",
		"\"max\"",
		"\"fsync_latency_us\"",
		"\"stalls\": 2",
		"\"longest_stall_ms\": 6000",
		"\"hung\": true",
		"\"enotconn\"",
		"\"exit_reason\": \"hung\"",
	};
	struct stress_summary *sum = calloc(1, sizeof(*sum));
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	(void)state;
	sum->total.writes_ok = 7;
	sum->total.write_errors[ENOMEM] = 2;
	sum->total.write_errors[EIO] = 1;
	sum->stalls = 2;
	sum->longest_stall_ms = 6000;
	sum->hung = true;
	sum->exit_reason = "hung";
	sum->duration_s = 1.5;
	stress_summary_print_json(out, sum);
	fclose(out);
	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_non_null(strstr(text, keys[i]));
	free(text);
	free(sum);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_latency_percentiles_within_bucket_resolution),
		cmocka_unit_test(test_latency_small_values_are_exact_and_empty_is_zero),
		cmocka_unit_test(test_latency_merge_adds_counts_and_keeps_max),
		cmocka_unit_test(test_errno_name_is_symbolic),
		cmocka_unit_test(test_summary_json_has_every_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
