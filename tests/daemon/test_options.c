/*
 * Unit tests for fs/options.c: the option table, value parsing and the
 * command line. No mount; policy arguments are checked against the
 * plugins built in the same tree.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "options.h"

static int parse_value(const char *name, const char *text, long long *v, char *err, size_t len)
{
	int id = pfs_opt_find(name);

	assert_true(id >= 0);
	return pfs_opt_parse_value((enum pfs_opt_id)id, text, v, NULL, err, len);
}

static void test_options_sizes_take_suffixes(void **state)
{
	char err[256];
	long long v = 0;

	assert_int_equal(parse_value("mem_limit", "65536", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(parse_value("mem_limit", "64K", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 64 * 1024);
	assert_int_equal(parse_value("balloon", "3m", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 3 * 1024 * 1024);
	assert_int_equal(parse_value("dirty_limit", "1G", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 1024LL * 1024 * 1024);
}

static void test_options_bad_sizes_are_refused_with_one_line(void **state)
{
	const char *bad[] = {"12Q",	      "-1", "", "64KB", "1.5M", "99999999999999999999",
			     "9999999999999G"};
	char err[256];
	long long v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(parse_value("mem_limit", bad[i], &v, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "expected a size such as 65536, 64K, 64M or 1G"));
		assert_null(strchr(err, '\n'));
	}
}

static void test_options_numbers_are_range_checked(void **state)
{
	char err[256];
	long long v;

	assert_int_equal(parse_value("fail_probability", "100", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 100);
	assert_int_equal(parse_value("fail_probability", "101", &v, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "0..100"));
	assert_int_equal(parse_value("fail_interval", "0", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse_value("fail_times", "-1", &v, err, sizeof(err)), 0);
	assert_int_equal(v, -1);
	assert_int_equal(parse_value("fail_times", "-2", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse_value("fail_verbose", "2", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse_value("writeback_ms", "abc", &v, err, sizeof(err)), -EINVAL);
}

static void test_options_page_size_must_be_power_of_two(void **state)
{
	char err[256];
	long long v;

	assert_int_equal(parse_value("page_size", "4K", &v, err, sizeof(err)), 0);
	assert_int_equal(parse_value("page_size", "1M", &v, err, sizeof(err)), 0);
	assert_int_equal(parse_value("page_size", "3K", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse_value("page_size", "2K", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse_value("page_size", "2M", &v, err, sizeof(err)), -EINVAL);
}

static void test_options_sites_accept_plus_colon_and_comma(void **state)
{
	unsigned want = (1u << ALLOC_SITE_CACHE_PAGE) | (1u << ALLOC_SITE_WRITEBACK);
	char err[256];
	long long v;

	assert_int_equal(parse_value("fail_sites", "cache_page+writeback", &v, err, sizeof(err)),
			 0);
	assert_int_equal(v, want);
	assert_int_equal(parse_value("fail_sites", "cache_page:writeback", &v, err, sizeof(err)),
			 0);
	assert_int_equal(v, want);
	assert_int_equal(parse_value("fail_sites", "cache_page,writeback", &v, err, sizeof(err)),
			 0);
	assert_int_equal(v, want);
	assert_int_equal(parse_value("fail_sites", "none", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_value("fail_sites", "all", &v, err, sizeof(err)), 0);
	assert_int_equal(v, ALLOC_SITES_ALL);
	assert_int_equal(parse_value("fail_sites", "cache_page+bogus", &v, err, sizeof(err)),
			 -EINVAL);
}

static void test_options_format_round_trips_every_default(void **state)
{
	struct pfs_cmdline cl;
	char *argv[] = {"pressurefs", "/b", "/m"};
	char err[256], text[512];

	assert_int_equal(pfs_cmdline_parse(3, argv, &cl, err, sizeof(err)), 0);
	for (int i = 0; i < PFS_OPT_COUNT; i++) {
		long long v = 0;
		char *str = NULL;

		if (pfs_opt_desc((enum pfs_opt_id)i)->type == PFS_OPT_STRING)
			continue; /* stats_file: no default */
		pfs_opt_format_value((enum pfs_opt_id)i, &cl.opt, text, sizeof(text));
		assert_int_equal(
			pfs_opt_parse_value((enum pfs_opt_id)i, text, &v, &str, err, sizeof(err)),
			0);
		if (str)
			assert_string_equal(str, cl.opt.str[i]);
		else
			assert_int_equal(v, cl.opt.num[i]);
		free(str);
	}
	pfs_cmdline_free(&cl);
}

/* Parse argv (NULL-terminated); returns the result, err filled. */
static int parse_argv(struct pfs_cmdline *cl, char *err, size_t len, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = "pressurefs";
	va_start(ap, len);
	for (char *a; (a = va_arg(ap, char *));)
		argv[argc++] = a;
	va_end(ap);
	err[0] = '\0';
	return pfs_cmdline_parse(argc, argv, cl, err, len);
}

static void test_cmdline_unknown_option_is_one_line(void **state)
{
	struct pfs_cmdline cl;
	char err[512];

	assert_int_equal(parse_argv(&cl, err, sizeof(err), "-o", "foo=1", "/b", "/m", NULL),
			 -EINVAL);
	assert_string_equal(err, "unknown option 'foo=1' (see pressurefs --help)");
	pfs_cmdline_free(&cl);
	assert_int_equal(parse_argv(&cl, err, sizeof(err), "-x", "/b", "/m", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '-x' (see pressurefs --help)");
	pfs_cmdline_free(&cl);
}

static void test_cmdline_policy_arguments_go_to_the_policy(void **state)
{
	struct pfs_cmdline cl;
	char err[512];

	assert_int_equal(parse_argv(&cl, err, sizeof(err), "-o", "policy=retry,retries=3", "-o",
				    "backoff_ms=5", "/b", "/m", NULL),
			 0);
	assert_string_equal(cl.opt.str[PFS_OPT_policy], "retry");
	assert_int_equal(cl.npolicy_args, 2);
	assert_string_equal(cl.policy_keys[0], "retries");
	assert_string_equal(cl.policy_values[0], "3");
	assert_string_equal(cl.policy_keys[1], "backoff_ms");
	pfs_cmdline_free(&cl);
}

static void test_cmdline_argument_of_another_policy_is_left_to_the_loader(void **state)
{
	struct pfs_cmdline cl;
	char err[512];

	/* The loader then says which arguments enomem takes. */
	assert_int_equal(parse_argv(&cl, err, sizeof(err), "-o", "policy=enomem,retries=3", "/b",
				    "/m", NULL),
			 0);
	assert_int_equal(cl.npolicy_args, 1);
	pfs_cmdline_free(&cl);
}

static void test_cmdline_libfuse_options_pass_and_fstab_options_are_ignored(void **state)
{
	struct pfs_cmdline cl;
	char err[512];

	assert_int_equal(parse_argv(&cl, err, sizeof(err), "/b", "/m", "-o",
				    "rw,allow_other,fsname=mine,defaults,_netdev,nofail,relatime,"
				    "x-systemd.automount,nosuid",
				    NULL),
			 0);
	assert_string_equal(cl.fuse_opts, "rw,allow_other,fsname=mine,nosuid");
	assert_int_equal(cl.npolicy_args, 0);
	pfs_cmdline_free(&cl);
}

static void test_cmdline_help_and_version_win(void **state)
{
	struct pfs_cmdline cl;
	char err[512];

	assert_int_equal(parse_argv(&cl, err, sizeof(err), "-o", "foo=1", "--help", NULL), 0);
	assert_true(cl.help);
	pfs_cmdline_free(&cl);
	assert_int_equal(parse_argv(&cl, err, sizeof(err), "-V", NULL), 0);
	assert_true(cl.version);
	pfs_cmdline_free(&cl);
}

static void test_cmdline_needs_both_directories(void **state)
{
	struct pfs_cmdline cl;
	char err[512];

	assert_int_equal(parse_argv(&cl, err, sizeof(err), "/b", NULL), -EINVAL);
	assert_non_null(strstr(err, "missing MOUNTPOINT"));
	pfs_cmdline_free(&cl);
	assert_int_equal(parse_argv(&cl, err, sizeof(err), "/b", "/m", "/x", NULL), -EINVAL);
	assert_non_null(strstr(err, "unexpected argument '/x'"));
	pfs_cmdline_free(&cl);
}

static void test_cmdline_flags_and_later_options_win(void **state)
{
	struct pfs_cmdline cl;
	char err[512];

	assert_int_equal(parse_argv(&cl, err, sizeof(err), "-s", "-d", "-omem_limit=1M", "-o",
				    "mem_limit=2M,ctldir=visible", "/b", "/m", NULL),
			 0);
	assert_true(cl.single_thread);
	assert_true(cl.debug);
	assert_true(cl.foreground);
	assert_int_equal(cl.opt.num[PFS_OPT_mem_limit], 2 * 1024 * 1024);
	assert_int_equal(cl.opt.num[PFS_OPT_ctldir], PFS_CTLDIR_VISIBLE);
	pfs_cmdline_free(&cl);
}

static void test_cmdline_option_without_value_is_refused(void **state)
{
	struct pfs_cmdline cl;
	char err[512];

	assert_int_equal(parse_argv(&cl, err, sizeof(err), "-o", "mem_limit", "/b", "/m", NULL),
			 -EINVAL);
	assert_non_null(strstr(err, "needs a value"));
	pfs_cmdline_free(&cl);
	assert_int_equal(parse_argv(&cl, err, sizeof(err), "-o", "stats_file=", "/b", "/m", NULL),
			 -EINVAL);
	assert_non_null(strstr(err, "empty value"));
	pfs_cmdline_free(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options_sizes_take_suffixes),
		cmocka_unit_test(test_options_bad_sizes_are_refused_with_one_line),
		cmocka_unit_test(test_options_numbers_are_range_checked),
		cmocka_unit_test(test_options_page_size_must_be_power_of_two),
		cmocka_unit_test(test_options_sites_accept_plus_colon_and_comma),
		cmocka_unit_test(test_options_format_round_trips_every_default),
		cmocka_unit_test(test_cmdline_unknown_option_is_one_line),
		cmocka_unit_test(test_cmdline_policy_arguments_go_to_the_policy),
		cmocka_unit_test(test_cmdline_argument_of_another_policy_is_left_to_the_loader),
		cmocka_unit_test(test_cmdline_libfuse_options_pass_and_fstab_options_are_ignored),
		cmocka_unit_test(test_cmdline_help_and_version_win),
		cmocka_unit_test(test_cmdline_needs_both_directories),
		cmocka_unit_test(test_cmdline_flags_and_later_options_win),
		cmocka_unit_test(test_cmdline_option_without_value_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
