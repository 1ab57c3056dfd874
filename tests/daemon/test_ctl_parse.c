/*
 * Unit tests for fs/ctl_parse.c: what one write() to a control file turns
 * into, one test per rule (see the comment at the top of ctl_parse.c): the
 * accepted forms, and each refusal with its errno and its one-line message.
 * No mount, no daemon: the parser has no side effects.
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
#include "ctl/ctl.h"

static struct pfs_ctl_cmd cmd; /* 9 KiB: off the test's stack */
static char err[512];

static const struct pfs_ctl_file *ctl_file(const char *name)
{
	for (unsigned i = 0; i < pfs_ctl_file_count(); i++)
		if (strcmp(pfs_ctl_file_at(i)->name, name) == 0)
			return pfs_ctl_file_at(i);
	fail_msg("no control file '%s'", name);
	return NULL;
}

/* Parse a C string written at offset 0 to the named file. */
static int parse(const char *name, const char *text)
{
	return pfs_ctl_parse_write(ctl_file(name), text, strlen(text), 0, &cmd, err, sizeof(err));
}

/* err holds exactly one non-empty line of printable bytes, containing want. */
static void assert_one_line(const char *want)
{
	assert_true(err[0] != '\0');
	for (const char *c = err; *c; c++)
		assert_false((unsigned char)*c < 0x20 || *c == 0x7f);
	if (want && !strstr(err, want))
		fail_msg("message '%s' does not contain '%s'", err, want);
}

static int setup(void **state)
{
	pfs_ctl_table_init();
	return 0;
}

static void test_ctl_parse_table_lists_every_file_with_its_mode(void **state)
{
	const char *rw[] = {"policy",		"mem_limit",	  "balloon",
			    "fail_probability", "fail_interval",  "fail_times",
			    "fail_space",	"fail_sites",	  "fail_seed",
			    "fail_verbose",	"dirty_limit",	  "clean_limit",
			    "writeback_ms",	"dirty_throttle", "writeback_delay_us"};

	unsigned nrw = 0;

	/* Every run-time option has a file, plus stats, dirty, the three
	 * triggers and fail_nth. */
	for (int i = 0; i < PFS_OPT_COUNT; i++)
		nrw += pfs_opt_desc((enum pfs_opt_id)i)->ctl == PFS_CTL_RW;
	assert_int_equal(nrw, sizeof(rw) / sizeof(rw[0]));
	assert_int_equal(pfs_ctl_file_count(), nrw + 6);
	for (size_t i = 0; i < sizeof(rw) / sizeof(rw[0]); i++) {
		assert_int_equal(ctl_file(rw[i])->mode, 0644);
		assert_int_equal(ctl_file(rw[i])->kind, PFS_CTL_OPTION);
		assert_string_equal(pfs_opt_desc(ctl_file(rw[i])->opt)->name, rw[i]);
	}
	assert_int_equal(ctl_file("stats")->mode, 0444);
	assert_int_equal(ctl_file("dirty")->mode, 0444);
	assert_int_equal(ctl_file("drop_caches")->mode, 0200);
	assert_int_equal(ctl_file("sync")->mode, 0200);
	assert_int_equal(ctl_file("crash")->mode, 0200);
	assert_int_equal(ctl_file("fail_nth")->mode, 0644);
	assert_null(pfs_ctl_file_at(pfs_ctl_file_count()));
	/* Building it twice does not grow it. */
	pfs_ctl_table_init();
	assert_int_equal(pfs_ctl_file_count(), nrw + 6);
}

static void test_ctl_parse_fail_nth_takes_n_n_plus_and_n_plus_m(void **state)
{
	assert_int_equal(parse("fail_nth", "3\n"), 0);
	assert_int_equal(cmd.kind, PFS_CTL_CMD_FAIL_NTH);
	assert_int_equal(cmd.nth, 3);
	assert_int_equal(cmd.nth_more, 0);
	assert_int_equal(parse("fail_nth", "12+"), 0);
	assert_int_equal(cmd.nth, 12);
	assert_true(cmd.nth_more == UINT64_MAX);
	assert_int_equal(parse("fail_nth", "1+64\n"), 0);
	assert_int_equal(cmd.nth, 1);
	assert_int_equal(cmd.nth_more, 64);
	assert_int_equal(parse("fail_nth", "0"), 0);
	assert_int_equal(cmd.kind, PFS_CTL_CMD_FAIL_NTH);
	assert_int_equal(cmd.nth, 0);
}

static void test_ctl_parse_fail_nth_refuses_anything_else(void **state)
{
	const char *bad[] = {"-1",
			     "0+",
			     "0+3",
			     "3++",
			     "+3",
			     "3+-1",
			     "3x",
			     "x",
			     "3+4+5",
			     "18446744073709551615",
			     "99999999999999999999999"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse("fail_nth", bad[i]) != -EINVAL)
			fail_msg("fail_nth took '%s'", bad[i]);
		assert_one_line("fail_nth");
	}
}

static void test_ctl_parse_option_value_as_echo_writes_it(void **state)
{
	assert_int_equal(parse("mem_limit", "64M\n"), 0);
	assert_int_equal(cmd.kind, PFS_CTL_CMD_SET_OPTION);
	assert_int_equal(cmd.opt, PFS_OPT_mem_limit);
	assert_int_equal(cmd.value, 64LL << 20);
	assert_string_equal(cmd.text, "64M");
}

static void test_ctl_parse_option_value_without_newline(void **state)
{
	assert_int_equal(parse("fail_seed", "7"), 0);
	assert_int_equal(cmd.opt, PFS_OPT_fail_seed);
	assert_int_equal(cmd.value, 7);
	assert_int_equal(parse("fail_times", "-1"), 0);
	assert_int_equal(cmd.value, -1);
	assert_int_equal(parse("fail_sites", "cache_page+writeback\n"), 0);
	assert_int_equal(cmd.opt, PFS_OPT_fail_sites);
	assert_int_equal(cmd.value, (1 << ALLOC_SITE_CACHE_PAGE) | (1 << ALLOC_SITE_WRITEBACK));
}

static void test_ctl_parse_trailing_blanks_are_dropped(void **state)
{
	assert_int_equal(parse("balloon", "1K \t\r\n\n"), 0);
	assert_int_equal(cmd.value, 1024);
	assert_string_equal(cmd.text, "1K");
}

static void test_ctl_parse_leading_blank_is_refused(void **state)
{
	assert_int_equal(parse("fail_seed", " 7"), -EINVAL);
	assert_one_line("fail_seed");
}

static void test_ctl_parse_bad_value_gets_the_option_message(void **state)
{
	assert_int_equal(parse("mem_limit", "12Q\n"), -EINVAL);
	assert_one_line("mem_limit='12Q': expected a size such as 65536, 64K, 64M or 1G");
	assert_int_equal(parse("mem_limit", "1K1"), -EINVAL);
	assert_one_line("mem_limit");
	assert_int_equal(parse("fail_sites", "cache_page,bogus"), -EINVAL);
	assert_one_line("fail_sites");
}

static void test_ctl_parse_out_of_range_value_is_refused(void **state)
{
	assert_int_equal(parse("fail_probability", "101"), -EINVAL);
	assert_one_line("fail_probability");
	assert_int_equal(parse("fail_interval", "0"), -EINVAL);
	assert_one_line("fail_interval");
	assert_int_equal(parse("fail_verbose", "2"), -EINVAL);
	assert_one_line("fail_verbose");
	assert_int_equal(parse("writeback_ms", "-1"), -EINVAL);
	assert_one_line("writeback_ms");
}

static void test_ctl_parse_two_lines_are_one_bad_value(void **state)
{
	assert_int_equal(parse("mem_limit", "64M\n1G\n"), -EINVAL);
	assert_one_line("mem_limit");
	assert_int_equal(parse("sync", "1\n1\n"), -EINVAL);
	assert_one_line("sync");
}

static void test_ctl_parse_empty_write_is_refused(void **state)
{
	const char *empty[] = {"", "\n", " \t\r\n"};

	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		assert_int_equal(parse("mem_limit", empty[i]), -EINVAL);
		assert_one_line("mem_limit: empty write");
		assert_int_equal(parse("policy", empty[i]), -EINVAL);
		assert_one_line("policy: empty write");
	}
}

static void test_ctl_parse_nul_byte_is_refused(void **state)
{
	const struct pfs_ctl_file *f = ctl_file("mem_limit");

	/* "1\0" as a C program writing sizeof("1") sends it. */
	assert_int_equal(pfs_ctl_parse_write(f, "1", 2, 0, &cmd, err, sizeof(err)), -EINVAL);
	assert_one_line("mem_limit: the write holds a NUL byte");
	assert_int_equal(pfs_ctl_parse_write(f, "6\0004M", 4, 0, &cmd, err, sizeof(err)), -EINVAL);
	assert_one_line("NUL byte");
	assert_int_equal(
		pfs_ctl_parse_write(ctl_file("sync"), "\0001\n", 3, 0, &cmd, err, sizeof(err)),
		-EINVAL);
	assert_one_line("NUL byte");
}

static void test_ctl_parse_limit_is_4096_bytes_of_write(void **state)
{
	static char buf[PFS_CTL_WRITE_MAX + 1];
	const struct pfs_ctl_file *f = ctl_file("fail_seed");

	/* Exactly the limit: accepted, even if mostly trailing newlines. */
	memset(buf, '\n', sizeof(buf));
	buf[0] = '5';
	assert_int_equal(pfs_ctl_parse_write(f, buf, PFS_CTL_WRITE_MAX, 0, &cmd, err, sizeof(err)),
			 0);
	assert_int_equal(cmd.value, 5);
	/* One byte more: refused before anything is trimmed. */
	assert_int_equal(
		pfs_ctl_parse_write(f, buf, PFS_CTL_WRITE_MAX + 1, 0, &cmd, err, sizeof(err)),
		-EINVAL);
	assert_one_line("fail_seed: a write of 4097 bytes is over the limit of 4096");
	/* A long number within the limit is the value parser's to refuse. */
	memset(buf, '1', PFS_CTL_WRITE_MAX);
	assert_int_equal(pfs_ctl_parse_write(f, buf, PFS_CTL_WRITE_MAX, 0, &cmd, err, sizeof(err)),
			 -EINVAL);
	assert_one_line("fail_seed");
	assert_true(strlen(err) < sizeof(err));
}

/* Regression: a value split over two writes ("6" then "4M") used to set 4M. */
static void test_ctl_parse_write_past_offset_0_is_refused(void **state)
{
	const struct pfs_ctl_file *f = ctl_file("mem_limit");

	assert_int_equal(pfs_ctl_parse_write(f, "6", 1, 0, &cmd, err, sizeof(err)), 0);
	assert_int_equal(cmd.value, 6);
	assert_int_equal(pfs_ctl_parse_write(f, "4M\n", 3, 1, &cmd, err, sizeof(err)), -EINVAL);
	assert_one_line("mem_limit: write at offset 1: a value must come whole in one write");
	assert_int_equal(pfs_ctl_parse_write(ctl_file("sync"), "1\n", 2, 2, &cmd, err, sizeof(err)),
			 -EINVAL);
	assert_one_line("sync: write at offset 2");
}

static void test_ctl_parse_read_only_files_refuse_with_ebadf(void **state)
{
	assert_int_equal(parse("stats", "1\n"), -EBADF);
	assert_one_line("stats is read-only");
	assert_int_equal(parse("dirty", "1\n"), -EBADF);
	assert_one_line("dirty is read-only");
	assert_int_equal(pfs_ctl_parse_write(NULL, "1", 1, 0, &cmd, err, sizeof(err)), -EBADF);
	assert_one_line("no such control file");
}

static void test_ctl_parse_triggers_take_exactly_1(void **state)
{
	const char *bad[] = {"0", "x", "11", "01", "1 1", "+1", "yes"};

	assert_int_equal(parse("sync", "1\n"), 0);
	assert_int_equal(cmd.kind, PFS_CTL_CMD_SYNC);
	assert_int_equal(parse("drop_caches", "1"), 0);
	assert_int_equal(cmd.kind, PFS_CTL_CMD_DROP_CACHES);
	assert_int_equal(parse("crash", "1\r\n"), 0);
	assert_int_equal(cmd.kind, PFS_CTL_CMD_CRASH);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse("crash", bad[i]), -EINVAL);
		assert_one_line("crash: '");
		assert_one_line("' is not 1 (write 1 to crash)");
		assert_int_equal(parse("sync", bad[i]), -EINVAL);
		assert_one_line("' is not 1 (write 1 to sync)");
	}
}

static void test_ctl_parse_policy_name_alone(void **state)
{
	assert_int_equal(parse("policy", "enomem\n"), 0);
	assert_int_equal(cmd.kind, PFS_CTL_CMD_SET_POLICY);
	assert_string_equal(cmd.policy.name, "enomem");
	assert_int_equal(cmd.policy.nargs, 0);
	assert_string_equal(cmd.text, "enomem");
}

static void test_ctl_parse_policy_args_split_on_commas_blanks_newlines(void **state)
{
	const char *forms[] = {"retry,retries=4,backoff_ms=1", "retry retries=4 backoff_ms=1\n",
			       "retry\nretries=4\tbackoff_ms=1", ",retry,,retries=4, backoff_ms=1",
			       /* Regression (fuzz_ctl_write): with CRLF lines the name
				* was "retry\r", an unknown policy. */
			       "retry\r\nretries=4\r\nbackoff_ms=1\r\n"};

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		assert_int_equal(parse("policy", forms[i]), 0);
		assert_string_equal(cmd.policy.name, "retry");
		assert_int_equal(cmd.policy.nargs, 2);
		assert_string_equal(cmd.policy.keys[0], "retries");
		assert_string_equal(cmd.policy.values[0], "4");
		assert_string_equal(cmd.policy.keys[1], "backoff_ms");
		assert_string_equal(cmd.policy.values[1], "1");
	}
	/* An empty value is the plugin's to judge. */
	assert_int_equal(parse("policy", "retry,retries="), 0);
	assert_string_equal(cmd.policy.values[0], "");
}

static void test_ctl_parse_policy_arg_needs_key_and_equals(void **state)
{
	assert_int_equal(parse("policy", "retry,bogus"), -EINVAL);
	assert_one_line("policy: 'bogus' is not arg=value");
	assert_int_equal(parse("policy", "retry,=5"), -EINVAL);
	assert_one_line("policy: '=5' is not arg=value");
}

static void test_ctl_parse_policy_of_separators_only_is_empty(void **state)
{
	assert_int_equal(parse("policy", ", ,\t,"), -EINVAL);
	assert_one_line("policy: empty (expected NAME[,arg=value...])");
}

static void test_ctl_parse_policy_takes_at_most_64_args(void **state)
{
	static char text[PFS_CTL_WRITE_MAX];
	size_t n = (size_t)snprintf(text, sizeof(text), "retry");

	for (int i = 0; i < PFS_CTL_POLICY_ARGS_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, ",k%d=%d", i, i);
	assert_int_equal(parse("policy", text), 0);
	assert_int_equal(cmd.policy.nargs, PFS_CTL_POLICY_ARGS_MAX);
	assert_string_equal(cmd.policy.keys[63], "k63");
	snprintf(text + n, sizeof(text) - n, ",k64=64");
	assert_int_equal(parse("policy", text), -EINVAL);
	assert_one_line("policy: more than 64 arguments");
}

static void test_ctl_parse_message_shows_control_bytes_as_question_marks(void **state)
{
	assert_int_equal(parse("sync", "\x01\x1b[2J"), -EINVAL);
	assert_one_line("sync: '??[2J' is not 1");
	assert_int_equal(parse("mem_limit", "1\n2"), -EINVAL);
	assert_one_line("1?2");
	assert_int_equal(parse("policy", "retry,a\x01"
					 "b"),
			 -EINVAL);
	assert_one_line("'a?b' is not arg=value");
}

static void test_ctl_parse_message_fits_a_small_buffer(void **state)
{
	char small[8];

	memset(small, 'x', sizeof(small));
	assert_int_equal(
		pfs_ctl_parse_write(ctl_file("sync"), "2", 1, 0, &cmd, small, sizeof(small)),
		-EINVAL);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	/* No buffer at all is allowed too. */
	assert_int_equal(pfs_ctl_parse_write(ctl_file("sync"), "2", 1, 0, &cmd, NULL, 0), -EINVAL);
}

static void test_ctl_parse_reads_only_len_bytes(void **state)
{
	const struct pfs_ctl_file *f = ctl_file("mem_limit");

	assert_int_equal(pfs_ctl_parse_write(f, "64M", 2, 0, &cmd, err, sizeof(err)), 0);
	assert_int_equal(cmd.value, 64);
}

static void test_ctl_parse_keeps_nothing_from_the_last_write(void **state)
{
	assert_int_equal(parse("policy", "retry,retries=3"), 0);
	assert_int_equal(cmd.policy.nargs, 1);
	assert_int_equal(parse("sync", "1"), 0);
	assert_int_equal(cmd.kind, PFS_CTL_CMD_SYNC);
	assert_null(cmd.policy.name);
	assert_int_equal(cmd.policy.nargs, 0);
	assert_int_equal(parse("mem_limit", "12Q"), -EINVAL);
	assert_int_equal(cmd.value, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ctl_parse_table_lists_every_file_with_its_mode),
		cmocka_unit_test(test_ctl_parse_option_value_as_echo_writes_it),
		cmocka_unit_test(test_ctl_parse_option_value_without_newline),
		cmocka_unit_test(test_ctl_parse_trailing_blanks_are_dropped),
		cmocka_unit_test(test_ctl_parse_leading_blank_is_refused),
		cmocka_unit_test(test_ctl_parse_bad_value_gets_the_option_message),
		cmocka_unit_test(test_ctl_parse_out_of_range_value_is_refused),
		cmocka_unit_test(test_ctl_parse_two_lines_are_one_bad_value),
		cmocka_unit_test(test_ctl_parse_empty_write_is_refused),
		cmocka_unit_test(test_ctl_parse_nul_byte_is_refused),
		cmocka_unit_test(test_ctl_parse_limit_is_4096_bytes_of_write),
		cmocka_unit_test(test_ctl_parse_write_past_offset_0_is_refused),
		cmocka_unit_test(test_ctl_parse_read_only_files_refuse_with_ebadf),
		cmocka_unit_test(test_ctl_parse_triggers_take_exactly_1),
		cmocka_unit_test(test_ctl_parse_policy_name_alone),
		cmocka_unit_test(test_ctl_parse_policy_args_split_on_commas_blanks_newlines),
		cmocka_unit_test(test_ctl_parse_policy_arg_needs_key_and_equals),
		cmocka_unit_test(test_ctl_parse_policy_of_separators_only_is_empty),
		cmocka_unit_test(test_ctl_parse_policy_takes_at_most_64_args),
		cmocka_unit_test(test_ctl_parse_message_shows_control_bytes_as_question_marks),
		cmocka_unit_test(test_ctl_parse_message_fits_a_small_buffer),
		cmocka_unit_test(test_ctl_parse_reads_only_len_bytes),
		cmocka_unit_test(test_ctl_parse_keeps_nothing_from_the_last_write),
		cmocka_unit_test(test_ctl_parse_fail_nth_takes_n_n_plus_and_n_plus_m),
		cmocka_unit_test(test_ctl_parse_fail_nth_refuses_anything_else),
	};

	return cmocka_run_group_tests_name("ctl_parse", tests, setup, NULL);
}
