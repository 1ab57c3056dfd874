/*
 * alloc/site.c: site names, parsing, and the site mask lists used by
 * fail_sites=.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"

static void test_site_names_round_trip(void **state)
{
	for (unsigned i = 0; i < ALLOC_SITE_COUNT; i++) {
		enum alloc_site site = ALLOC_SITE_COUNT;

		assert_int_equal(alloc_site_parse(alloc_site_name((enum alloc_site)i), &site), 0);
		assert_int_equal(site, i);
		assert_true(strlen(alloc_site_help((enum alloc_site)i)) > 0);
	}
}

static void test_site_names_are_the_stable_ones(void **state)
{
	static const char *const want[] = {"cache_page", "inode",   "handle", "writeback",
					   "readdir",	 "request", "other"};

	assert_int_equal(ALLOC_SITE_COUNT, 7);
	for (unsigned i = 0; i < 7; i++)
		assert_string_equal(alloc_site_name((enum alloc_site)i), want[i]);
}

static void test_site_out_of_range_is_question_mark(void **state)
{
	assert_string_equal(alloc_site_name(ALLOC_SITE_COUNT), "?");
	assert_string_equal(alloc_site_help((enum alloc_site)99), "?");
}

static void test_site_parse_rejects_unknown_and_prefixes(void **state)
{
	enum alloc_site site = ALLOC_SITE_OTHER;

	assert_int_equal(alloc_site_parse("bogus", &site), -EINVAL);
	assert_int_equal(alloc_site_parse("inod", &site), -EINVAL);
	assert_int_equal(alloc_site_parse("inodes", &site), -EINVAL);
	assert_int_equal(alloc_site_parse("", &site), -EINVAL);
	assert_int_equal(alloc_site_parse(NULL, &site), -EINVAL);
	assert_int_equal(site, ALLOC_SITE_OTHER);
}

static void test_site_mask_parse_list(void **state)
{
	unsigned mask = 0;
	char bad[32] = "";

	assert_int_equal(alloc_site_mask_parse("cache_page,writeback", &mask, bad, sizeof(bad)), 0);
	assert_int_equal(mask, (1u << ALLOC_SITE_CACHE_PAGE) | (1u << ALLOC_SITE_WRITEBACK));
	assert_int_equal(alloc_site_mask_parse("inode", &mask, bad, sizeof(bad)), 0);
	assert_int_equal(mask, 1u << ALLOC_SITE_INODE);
	assert_int_equal(alloc_site_mask_parse("all", &mask, bad, sizeof(bad)), 0);
	assert_int_equal(mask, ALLOC_SITES_ALL);
	assert_int_equal(alloc_site_mask_parse("", &mask, bad, sizeof(bad)), 0);
	assert_int_equal(mask, ALLOC_SITES_ALL);
	assert_int_equal(alloc_site_mask_parse(NULL, &mask, bad, sizeof(bad)), 0);
	assert_int_equal(mask, ALLOC_SITES_ALL);
}

static void test_site_mask_parse_names_the_bad_entry(void **state)
{
	unsigned mask = 12345;
	char bad[32] = "";

	assert_int_equal(alloc_site_mask_parse("inode,bogus,handle", &mask, bad, sizeof(bad)),
			 -EINVAL);
	assert_string_equal(bad, "bogus");
	assert_int_equal(mask, 12345); /* untouched on error */
	assert_int_equal(alloc_site_mask_parse("inode,", &mask, bad, sizeof(bad)), -EINVAL);
	assert_string_equal(bad, "");
	/* No buffer for the bad name is fine too. */
	assert_int_equal(alloc_site_mask_parse("x", &mask, NULL, 0), -EINVAL);
}

static void test_site_mask_format_round_trip(void **state)
{
	char buf[128];
	unsigned mask = 0;

	alloc_site_mask_format((1u << ALLOC_SITE_INODE) | (1u << ALLOC_SITE_OTHER), buf,
			       sizeof(buf));
	assert_string_equal(buf, "inode,other");
	assert_int_equal(alloc_site_mask_parse(buf, &mask, NULL, 0), 0);
	assert_int_equal(mask, (1u << ALLOC_SITE_INODE) | (1u << ALLOC_SITE_OTHER));
	alloc_site_mask_format(ALLOC_SITES_ALL, buf, sizeof(buf));
	assert_string_equal(buf, "all");
	alloc_site_mask_format(0, buf, sizeof(buf));
	assert_string_equal(buf, "");
	/* Truncation keeps a terminated string. */
	alloc_site_mask_format((1u << ALLOC_SITE_CACHE_PAGE) | (1u << ALLOC_SITE_INODE), buf, 8);
	assert_true(strlen(buf) < 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_site_names_round_trip),
		cmocka_unit_test(test_site_names_are_the_stable_ones),
		cmocka_unit_test(test_site_out_of_range_is_question_mark),
		cmocka_unit_test(test_site_parse_rejects_unknown_and_prefixes),
		cmocka_unit_test(test_site_mask_parse_list),
		cmocka_unit_test(test_site_mask_parse_names_the_bad_entry),
		cmocka_unit_test(test_site_mask_format_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
