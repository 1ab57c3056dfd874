/*
 * The policy loader: finding plugins by name and path, refusing everything
 * that is not a current pressurefs policy with one line, parsing arguments.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pfs_config.h"
#include "loader.h"

#define AVAILABLE                                                                                  \
	"(available: abort, enomem, mempool, nofail, retry, retry_mayfail, shutdown, "             \
	"too_small_to_fail, write_through)"

static const char *const policy_names[] = {"abort", "enomem", "nofail", "retry"};

/* Load with "k=v" strings; asserts nothing. */
static struct policy_handle *load_with(const char *spec, char *err, size_t errlen, unsigned nargs,
				       ...)
{
	const char *keys[8], *values[8];
	char store[8][128];
	va_list ap;

	assert_true(nargs <= 8);
	va_start(ap, nargs);
	for (unsigned i = 0; i < nargs; i++) {
		char *eq;

		snprintf(store[i], sizeof(store[i]), "%s", va_arg(ap, const char *));
		eq = strchr(store[i], '=');
		assert_non_null(eq);
		*eq = '\0';
		keys[i] = store[i];
		values[i] = eq + 1;
	}
	va_end(ap);
	return policy_load(spec, keys, values, nargs, NULL, err, errlen);
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

static void assert_one_line(const char *s)
{
	assert_true(strlen(s) > 0);
	assert_null(strchr(s, '\n'));
}

static void test_loader_dir_is_build_tree_for_build_tree_program(void **unused)
{
	/* This test binary lives in the build tree, so plugins come from there. */
	assert_string_equal(policy_dir(), PFS_BUILD_POLICY_DIR);
	assert_string_not_equal(policy_dir(), PFS_POLICY_DIR);
}

static void test_loader_loads_each_policy_by_name(void **unused)
{
	char err[512], want[PATH_MAX];

	for (size_t i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]); i++) {
		struct policy_handle *h =
			policy_load(policy_names[i], NULL, NULL, 0, NULL, err, sizeof(err));

		if (!h)
			fail_msg("%s: %s", policy_names[i], err);
		assert_string_equal(h->ops->name, policy_names[i]);
		assert_int_equal(h->ops->abi_version, PFS_POLICY_ABI_VERSION);
		assert_non_null(h->ops->decide);
		snprintf(want, sizeof(want), "%s/%s.so", PFS_BUILD_POLICY_DIR, policy_names[i]);
		assert_string_equal(h->path, want);
		policy_unload(h);
	}
}

static void test_loader_loads_policy_by_absolute_path(void **unused)
{
	char err[512], path[PATH_MAX];
	struct policy_handle *h;

	snprintf(path, sizeof(path), "%s/retry.so", PFS_BUILD_POLICY_DIR);
	assert_true(path[0] == '/');
	h = policy_load(path, NULL, NULL, 0, NULL, err, sizeof(err));
	if (!h)
		fail_msg("%s", err);
	assert_string_equal(h->ops->name, "retry");
	assert_string_equal(h->path, path);
	policy_unload(h);
}

static void test_loader_refuses_unknown_name_listing_available(void **unused)
{
	char err[512];

	assert_null(policy_load("foo", NULL, NULL, 0, NULL, err, sizeof(err)));
	assert_string_equal(err, "unknown policy 'foo' " AVAILABLE);
}

static void test_loader_refuses_invalid_name(void **unused)
{
	char err[512];

	assert_null(policy_load("Retry", NULL, NULL, 0, NULL, err, sizeof(err)));
	assert_contains(err, "invalid policy name 'Retry'");
	assert_contains(err, AVAILABLE);
	assert_null(policy_load("", NULL, NULL, 0, NULL, err, sizeof(err)));
	assert_contains(err, "no policy given");
	assert_null(policy_load(NULL, NULL, NULL, 0, NULL, err, sizeof(err)));
	assert_contains(err, "no policy given");
}

static void test_loader_refuses_missing_path(void **unused)
{
	char err[512];

	assert_null(policy_load("/nonexistent/dir/x.so", NULL, NULL, 0, NULL, err, sizeof(err)));
	assert_contains(err, "cannot open policy /nonexistent/dir/x.so");
	assert_contains(err, AVAILABLE);
	assert_one_line(err);
}

static void test_loader_refuses_text_file_named_so(void **unused)
{
	char dir[] = "/tmp/pfs-loader-XXXXXX";
	char path[PATH_MAX], err[1024];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/x.so", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not an ELF file\n", f);
	fclose(f);

	assert_null(policy_load(path, NULL, NULL, 0, NULL, err, sizeof(err)));
	unlink(path);
	rmdir(dir);
	assert_contains(err, "x.so is not a pressurefs policy (cannot load it:");
	assert_contains(err, AVAILABLE);
	assert_one_line(err);
}

static void test_loader_refuses_directory(void **unused)
{
	char err[512];

	assert_null(policy_load("/tmp/", NULL, NULL, 0, NULL, err, sizeof(err)));
	assert_contains(err, "/tmp/ is not a pressurefs policy (not a file)");
}

static void test_loader_refuses_shared_object_without_symbol(void **unused)
{
	char err[1024];

	assert_null(policy_load(TEST_PLUGIN_DIR "/bad_nosym.so", NULL, NULL, 0, NULL, err,
				sizeof(err)));
	assert_string_equal(err, TEST_PLUGIN_DIR "/bad_nosym.so is not a pressurefs policy "
						 "(no symbol pfs_policy_v1) " AVAILABLE);
}

static void test_loader_refuses_wrong_abi(void **unused)
{
	char err[1024];

	assert_null(
		policy_load(TEST_PLUGIN_DIR "/bad_abi.so", NULL, NULL, 0, NULL, err, sizeof(err)));
	assert_string_equal(err, TEST_PLUGIN_DIR "/bad_abi.so was built for policy ABI 3, this "
						 "pressurefs needs 4; rebuild it against "
						 "pressurefs/policy.h " AVAILABLE);
}

static void test_loader_refuses_struct_size_too_small(void **unused)
{
	char err[1024], want[64];

	assert_null(
		policy_load(TEST_PLUGIN_DIR "/bad_size.so", NULL, NULL, 0, NULL, err, sizeof(err)));
	snprintf(want, sizeof(want), "of %zu bytes", offsetof(struct pfs_policy, decide));
	assert_contains(err, want);
	snprintf(want, sizeof(want), "needs at least %zu;", sizeof(struct pfs_policy));
	assert_contains(err, want);
	assert_contains(err, "rebuild it against pressurefs/policy.h");
	assert_contains(err, AVAILABLE);
}

static void test_loader_refuses_plugin_without_decide(void **unused)
{
	char err[1024];

	assert_null(policy_load(TEST_PLUGIN_DIR "/bad_nodecide.so", NULL, NULL, 0, NULL, err,
				sizeof(err)));
	assert_contains(err, "bad_nodecide.so is a broken pressurefs policy (no decide function)");
}

static void test_loader_reports_init_failure(void **unused)
{
	char err[1024];

	assert_null(
		policy_load(TEST_PLUGIN_DIR "/bad_init.so", NULL, NULL, 0, NULL, err, sizeof(err)));
	assert_string_equal(err, "bad_init: init failed: Invalid argument");
}

static void test_loader_finds_names_in_overridden_dir(void **unused)
{
	char err[1024];

	policy_dir_set(TEST_PLUGIN_DIR);
	assert_string_equal(policy_dir(), TEST_PLUGIN_DIR);
	assert_null(policy_load("bad_abi", NULL, NULL, 0, NULL, err, sizeof(err)));
	policy_dir_set(NULL);
	assert_contains(err, "bad_abi.so was built for policy ABI 3");
	/* The listing came from the overridden directory. */
	assert_contains(err, "(available: bad_abi, bad_init, bad_nodecide, bad_nosym, bad_size)");
	assert_string_equal(policy_dir(), PFS_BUILD_POLICY_DIR);
}

static void test_loader_defaults_without_args(void **unused)
{
	char err[512];
	struct policy_handle *h = policy_load("retry", NULL, NULL, 0, NULL, err, sizeof(err));

	assert_non_null(h);
	assert_int_equal(h->nparams, 3);
	assert_int_equal(h->values[0], 8);
	assert_int_equal(h->values[1], 2);
	assert_int_equal(h->values[2], 1000);
	policy_unload(h);
}

static void test_loader_parses_args_in_any_order(void **unused)
{
	char err[512];
	struct policy_handle *h;

	h = load_with("retry", err, sizeof(err), 2, "backoff_ms=5", "retries=3");
	if (!h)
		fail_msg("%s", err);
	assert_int_equal(h->values[0], 3);
	assert_int_equal(h->values[1], 5);
	assert_int_equal(h->values[2], 1000);
	policy_unload(h);

	h = load_with("nofail", err, sizeof(err), 2, "stall_warn_ms=1", "wait_ms=60000");
	if (!h)
		fail_msg("%s", err);
	assert_int_equal(h->values[0], 1);
	assert_int_equal(h->values[1], 60000);
	policy_unload(h);
}

static void test_loader_refuses_unknown_arg_listing_accepted(void **unused)
{
	char err[512];

	assert_null(load_with("retry", err, sizeof(err), 1, "foo=1"));
	assert_string_equal(
		err, "retry has no argument 'foo' (accepted: retries, backoff_ms, backoff_max_ms)");
	assert_null(load_with("enomem", err, sizeof(err), 1, "retries=1"));
	assert_string_equal(err, "enomem has no argument 'retries' (accepted: none)");
}

static void test_loader_refuses_duplicate_arg(void **unused)
{
	char err[512];

	assert_null(load_with("retry", err, sizeof(err), 2, "retries=1", "retries=2"));
	assert_string_equal(err, "retry: argument 'retries' given twice");
}

static void test_loader_refuses_out_of_range_arg(void **unused)
{
	static const char *const bad[] = {"retries=1000001", "retries=-1",
					  "retries=9223372036854775807"};
	char err[512];
	struct policy_handle *h;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(load_with("retry", err, sizeof(err), 1, bad[i]));
		assert_contains(err, "is not an integer in 0..1000000");
	}
	assert_null(load_with("nofail", err, sizeof(err), 1, "wait_ms=0"));
	assert_string_equal(err, "nofail: wait_ms=0 is not an integer in 1..60000");
	/* The bounds themselves are accepted. */
	h = load_with("retry", err, sizeof(err), 1, "retries=1000000");
	assert_non_null(h);
	assert_int_equal(h->values[0], 1000000);
	policy_unload(h);
	h = load_with("retry", err, sizeof(err), 1, "retries=0");
	assert_non_null(h);
	assert_int_equal(h->values[0], 0);
	policy_unload(h);
}

static void test_loader_refuses_non_integer_arg(void **unused)
{
	static const char *const bad[] = {
		"retries=abc",	"retries=",    "retries=1x",  "retries= 1",
		"retries=0x10", "retries=1.5", "retries=--1", "retries=99999999999999999999999"};
	char err[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (load_with("retry", err, sizeof(err), 1, bad[i]))
			fail_msg("'%s' was accepted", bad[i]);
		assert_contains(err, "is not an integer in 0..1000000");
	}
	assert_null(load_with("retry", err, sizeof(err), 1, "retries=abc"));
	assert_string_equal(err, "retry: retries=abc is not an integer in 0..1000000");
}

static void test_loader_error_stays_one_line(void **unused)
{
	char err[512];

	assert_null(load_with("retry", err, sizeof(err), 1, "retries=1\nsecond line"));
	assert_one_line(err);
	assert_contains(err, "retry: retries=1 second line is not an integer");
}

static void test_loader_error_fits_small_buffers(void **unused)
{
	char err[16];

	memset(err, 'x', sizeof(err));
	assert_null(policy_load("foo", NULL, NULL, 0, NULL, err, sizeof(err)));
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_null(policy_load("foo", NULL, NULL, 0, NULL, NULL, 0));
}

static void test_loader_accepts_arg_answers_per_policy(void **unused)
{
	assert_int_equal(policy_accepts_arg("retry", "retries"), 1);
	assert_int_equal(policy_accepts_arg("retry", "backoff_max_ms"), 1);
	assert_int_equal(policy_accepts_arg("retry", "stall_warn_ms"), 0);
	assert_int_equal(policy_accepts_arg("nofail", "stall_warn_ms"), 1);
	assert_int_equal(policy_accepts_arg("enomem", "retries"), 0);
	assert_int_equal(policy_accepts_arg("abort", "mem_limit"), 0);
	assert_int_equal(policy_accepts_arg("foo", "retries"), -ENOENT);
	assert_true(policy_accepts_arg(TEST_PLUGIN_DIR "/bad_abi.so", "x") < 0);
}

static void test_loader_lists_available_sorted(void **unused)
{
	char buf[256], small[8], empty[] = "/tmp/pfs-empty-XXXXXX";

	policy_list_available(buf, sizeof(buf));
	assert_string_equal(buf, "abort, enomem, mempool, nofail, retry, retry_mayfail, shutdown, "
				 "too_small_to_fail, write_through");
	policy_list_available(small, sizeof(small));
	assert_string_equal(small, "abort, ");

	assert_non_null(mkdtemp(empty));
	policy_dir_set(empty);
	policy_list_available(buf, sizeof(buf));
	policy_dir_set(NULL);
	rmdir(empty);
	assert_contains(buf, "none in /tmp/pfs-empty-");
}

static void test_loader_format_args_round_trips(void **unused)
{
	char err[512], text[256], copy[256], again[256];
	const char *keys[8], *values[8];
	struct policy_handle *h, *h2;
	unsigned n = 0;

	h = load_with("retry", err, sizeof(err), 2, "retries=17", "backoff_max_ms=250");
	assert_non_null(h);
	policy_format_args(h, text, sizeof(text));
	assert_string_equal(text, "retries=17,backoff_ms=2,backoff_max_ms=250");

	snprintf(copy, sizeof(copy), "%s", text);
	for (char *save, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		assert_non_null(eq);
		*eq = '\0';
		keys[n] = tok;
		values[n++] = eq + 1;
	}
	h2 = policy_load("retry", keys, values, n, NULL, err, sizeof(err));
	assert_non_null(h2);
	policy_format_args(h2, again, sizeof(again));
	assert_string_equal(again, text);
	assert_memory_equal(h->values, h2->values, sizeof(h->values[0]) * h->nparams);
	policy_unload(h2);
	policy_unload(h);

	h = policy_load("enomem", NULL, NULL, 0, NULL, err, sizeof(err));
	assert_non_null(h);
	policy_format_args(h, text, sizeof(text));
	assert_string_equal(text, "");
	policy_unload(h);
}

static void test_loader_help_mentions_every_policy_and_param(void **unused)
{
	static const char *const params[] = {"stall_warn_ms=N", "wait_ms=N", "retries=N",
					     "backoff_ms=N", "backoff_max_ms=N"};
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	assert_non_null(out);
	policy_print_help(out);
	fclose(out);
	for (size_t i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]); i++)
		assert_contains(text, policy_names[i]);
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		assert_contains(text, params[i]);
	assert_contains(text, "(default 8, 0..1000000)");
	assert_contains(text, "(default 10000, 1..86400000)");
	assert_contains(text, "fail at once");
	free(text);
}

static void test_loader_unload_null_is_noop(void **unused)
{
	policy_unload(NULL);
	assert_string_equal(policy_dir(), PFS_BUILD_POLICY_DIR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loader_dir_is_build_tree_for_build_tree_program),
		cmocka_unit_test(test_loader_loads_each_policy_by_name),
		cmocka_unit_test(test_loader_loads_policy_by_absolute_path),
		cmocka_unit_test(test_loader_refuses_unknown_name_listing_available),
		cmocka_unit_test(test_loader_refuses_invalid_name),
		cmocka_unit_test(test_loader_refuses_missing_path),
		cmocka_unit_test(test_loader_refuses_text_file_named_so),
		cmocka_unit_test(test_loader_refuses_directory),
		cmocka_unit_test(test_loader_refuses_shared_object_without_symbol),
		cmocka_unit_test(test_loader_refuses_wrong_abi),
		cmocka_unit_test(test_loader_refuses_struct_size_too_small),
		cmocka_unit_test(test_loader_refuses_plugin_without_decide),
		cmocka_unit_test(test_loader_reports_init_failure),
		cmocka_unit_test(test_loader_finds_names_in_overridden_dir),
		cmocka_unit_test(test_loader_defaults_without_args),
		cmocka_unit_test(test_loader_parses_args_in_any_order),
		cmocka_unit_test(test_loader_refuses_unknown_arg_listing_accepted),
		cmocka_unit_test(test_loader_refuses_duplicate_arg),
		cmocka_unit_test(test_loader_refuses_out_of_range_arg),
		cmocka_unit_test(test_loader_refuses_non_integer_arg),
		cmocka_unit_test(test_loader_error_stays_one_line),
		cmocka_unit_test(test_loader_error_fits_small_buffers),
		cmocka_unit_test(test_loader_accepts_arg_answers_per_policy),
		cmocka_unit_test(test_loader_lists_available_sorted),
		cmocka_unit_test(test_loader_format_args_round_trips),
		cmocka_unit_test(test_loader_help_mentions_every_policy_and_param),
		cmocka_unit_test(test_loader_unload_null_is_noop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
