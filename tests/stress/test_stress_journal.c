/* Journal records: one write() per line, and the parser the verifier uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>

#include "stress_fixture.h"

static int parse(const char *line, struct stress_record *rec)
{
	return stress_record_parse(line, strlen(line), rec);
}

static void test_journal_parses_write_record(void **state)
{
	struct stress_record rec;

	(void)state;
	assert_int_equal(parse("W 3 17 5 4096 0 123 45", &rec), 0);
	assert_int_equal(rec.type, 'W');
	assert_int_equal(rec.file, 3);
	assert_int_equal(rec.block, 17);
	assert_int_equal(rec.gen, 5);
	assert_int_equal(rec.ret, 4096);
	assert_int_equal(rec.err, 0);
	assert_int_equal(rec.t_us, 123);
	assert_int_equal(rec.lat_us, 45);
	assert_int_equal(parse("W 3 17 6 -1 12 200 1", &rec), 0);
	assert_int_equal(rec.ret, -1);
	assert_int_equal(rec.err, ENOMEM);
}

static void test_journal_parses_fsync_open_intent_end(void **state)
{
	struct stress_record rec;

	(void)state;
	assert_int_equal(parse("F 2 -1 5 900 33", &rec), 0);
	assert_int_equal(rec.type, 'F');
	assert_int_equal(rec.file, 2);
	assert_int_equal(rec.ret, -1);
	assert_int_equal(rec.err, EIO);
	assert_int_equal(parse("O 1 0 0 10 2", &rec), 0);
	assert_int_equal(rec.type, 'O');
	assert_int_equal(parse("I 1 9 4 77", &rec), 0);
	assert_int_equal(rec.type, 'I');
	assert_int_equal(rec.block, 9);
	assert_int_equal(rec.gen, 4);
	assert_int_equal(parse("E end reason=duration t_us=5", &rec), 0);
	assert_int_equal(rec.type, 'E');
}

static void test_journal_rejects_malformed_records(void **state)
{
	static const char *const bad[] = {
		"",
		"W",
		"W 1 2 3 4096 0 1",
		"W 1 2 3 4096 0 1 2 3",
		"W 1 2 x 4096 0 1 2",
		"W 1 2 0 4096 0 1 2",
		"W -1 2 3 4096 0 1 2",
		"W 1 2 3 -2 0 1 2",
		"W 1  2 3 4096 0 1 2",
		"F 1 0 0 1",
		"I 1 2 3",
		"Q 1 2 3",
		"W 1 2 3 4096 0 1 2 ",
	};
	struct stress_record rec;

	(void)state;
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], &rec), -EINVAL);
}

static void test_journal_start_record_gives_geometry(void **state)
{
	const char *line = "S start v=1 seed=99 threads=2 files=6 file_size=65536 block=8192 "
			   "fsync_every=4 on_error=skip overwrite_pct=10 t_us=3";
	struct stress_geometry geo;

	(void)state;
	assert_int_equal(stress_record_parse_start(line, strlen(line), &geo), 0);
	assert_int_equal(geo.seed, 99);
	assert_int_equal(geo.files, 6);
	assert_int_equal(geo.file_size, 65536);
	assert_int_equal(geo.block_size, 8192);
	line = "S start v=1 seed=99 files=6 file_size=65536";
	assert_int_equal(stress_record_parse_start(line, strlen(line), &geo), -EINVAL);
	line = "S start v=1 seed=99 files=6 file_size=100 block=8192";
	assert_int_equal(stress_record_parse_start(line, strlen(line), &geo), -EINVAL);
}

static void test_journal_append_writes_whole_lines(void **state)
{
	struct stress_fixture *fx = fixture_new();
	struct stress_journal j;
	char buf[256];
	ssize_t n;
	int fd;

	(void)state;
	assert_non_null(fx);
	assert_int_equal(stress_journal_open(&j, fx->journal), 0);
	assert_int_equal(stress_journal_append(&j, "W %d %d %d 4096 0 1 1\n", 1, 2, 3), 0);
	assert_int_equal(stress_journal_append(&j, "F %d 0 0 2 2\n", 1), 0);
	stress_journal_close(&j);
	/* Reopening truncates: a journal belongs to one run. */
	assert_int_equal(stress_journal_open(&j, fx->journal), 0);
	assert_int_equal(stress_journal_append(&j, "F %d 0 0 3 3\n", 4), 0);
	stress_journal_close(&j);
	fd = open(fx->journal, O_RDONLY);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "F 4 0 0 3 3\n");
	fixture_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal_parses_write_record),
		cmocka_unit_test(test_journal_parses_fsync_open_intent_end),
		cmocka_unit_test(test_journal_rejects_malformed_records),
		cmocka_unit_test(test_journal_start_record_gives_geometry),
		cmocka_unit_test(test_journal_append_writes_whole_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
