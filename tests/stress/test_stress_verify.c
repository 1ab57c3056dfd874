/* The verifier's classification, proven on backing files and journals built
 * by hand: one scenario per class and per rule of the precedence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>

#include "stress_fixture.h"

#define BS 4096u

static void journal_write(struct stress_fixture *fx, unsigned file, unsigned block, unsigned gen,
			  int ret, int err)
{
	fixture_journal(fx, "I %u %u %u 10\n", file, block, gen);
	fixture_journal(fx, "W %u %u %u %d %d 10 5\n", file, block, gen, ret, err);
}

static void journal_fsync(struct stress_fixture *fx, unsigned file, int ret, int err)
{
	fixture_journal(fx, "F %u %d %d 20 7\n", file, ret, err);
}

/* Exactly one block, in class cls; checks its count, bytes and the rest 0. */
static void assert_single_class(const struct stress_verify_result *res, enum stress_class cls)
{
	assert_int_equal(res->blocks, 1);
	for (int c = 0; c < STRESS_CLASS_COUNT; c++) {
		assert_int_equal(res->count[c], c == (int)cls ? 1 : 0);
		assert_int_equal(res->bytes[c], c == (int)cls ? BS : 0);
	}
}

static int setup(void **state)
{
	if (fixture_setup(state))
		return -1;
	fixture_journal_start(*state, 2, 4);
	return 0;
}

static void test_verify_latest_acked_generation_is_intact(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 1, 1, BS, 0);
	journal_write(fx, 0, 1, 2, BS, 0);
	journal_fsync(fx, 0, 0, 0);
	fixture_block(fx, 0, 1, 2);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_INTACT);
	assert_true(stress_verify_invariant_holds(res));
	free(res);
}

static void test_verify_hole_after_good_fsync_is_lost_after_fsync(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 1, 3, 1, BS, 0);
	journal_fsync(fx, 1, 0, 0);
	fixture_block(fx, 1, 0, 0); /* the file exists, block 3 is past its end */
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_LOST_AFTER_FSYNC);
	assert_false(stress_verify_invariant_holds(res));
	assert_int_equal(res->examples, 1);
	assert_int_equal(res->example[0].file, 1);
	assert_int_equal(res->example[0].block, 3);
	assert_int_equal(res->example[0].found_gen, 0);
	free(res);
}

static void test_verify_older_generation_after_fsync_is_lost_after_fsync(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 0, 1, BS, 0);
	journal_write(fx, 0, 0, 2, BS, 0);
	journal_fsync(fx, 0, 0, 0);
	fixture_block(fx, 0, 0, 1);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_LOST_AFTER_FSYNC);
	assert_int_equal(res->example[0].fsynced_gen, 2);
	assert_int_equal(res->example[0].found_gen, 1);
	free(res);
}

static void test_verify_missing_file_after_fsync_is_lost_after_fsync(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 1, 0, 1, BS, 0);
	journal_fsync(fx, 1, 0, 0);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_LOST_AFTER_FSYNC);
	free(res);
}

static void test_verify_unfsynced_ack_missing_is_lost_after_write(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 2, 1, BS, 0);
	journal_fsync(fx, 0, 0, 0);
	journal_write(fx, 0, 2, 2, BS, 0);
	fixture_block(fx, 0, 2, 1); /* the fsynced generation survived, not the later */
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_LOST_AFTER_WRITE);
	assert_true(stress_verify_invariant_holds(res));
	free(res);
}

static void test_verify_errseq_failed_fsync_does_not_cover_earlier_writes(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_options opts = {.promise = STRESS_FSYNC_ERRSEQ};
	struct stress_verify_result *res = calloc(1, sizeof(*res));
	char why[256];

	/* The EIO consumed the writeback error: the 0 after it promises
	 * nothing about generation 1 (Linux semantics). */
	journal_write(fx, 0, 0, 1, BS, 0);
	journal_fsync(fx, 0, -1, EIO);
	journal_fsync(fx, 0, 0, 0);
	assert_non_null(res);
	assert_int_equal(stress_verify_run(fx->dir, fx->journal, &opts, res, why, sizeof(why)), 0);
	assert_single_class(res, STRESS_CLASS_LOST_AFTER_WRITE);
	assert_true(stress_verify_invariant_holds(res));
	free(res);
}

static void test_verify_strict_good_fsync_after_failed_one_covers_earlier_writes(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	/* pressurefs keeps the data dirty after a failed writeback, so the 0
	 * after the EIO promises generation 1: its loss breaks the promise. */
	journal_write(fx, 0, 0, 1, BS, 0);
	journal_fsync(fx, 0, -1, EIO);
	journal_fsync(fx, 0, 0, 0);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_LOST_AFTER_FSYNC);
	assert_false(stress_verify_invariant_holds(res));
	free(res);
}

static void test_verify_refused_write_with_previous_data_is_refused(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 1, 1, BS, 0);
	journal_fsync(fx, 0, 0, 0);
	journal_write(fx, 0, 1, 2, -1, ENOMEM); /* skip: dropped */
	fixture_block(fx, 0, 1, 1);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_REFUSED);
	free(res);
}

static void test_verify_refused_write_that_landed_is_refused(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 1, 1, BS, 0);
	journal_write(fx, 0, 1, 2, -1, ENOMEM);
	fixture_block(fx, 0, 1, 2);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_REFUSED);
	free(res);
}

static void test_verify_retried_write_acked_is_intact(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 1, 1, -1, ENOMEM);
	journal_write(fx, 0, 1, 1, -1, ENOMEM);
	journal_write(fx, 0, 1, 1, BS, 0);
	fixture_block(fx, 0, 1, 1);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_INTACT);
	free(res);
}

static void test_verify_short_write_prefix_over_previous_is_refused(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 1, 2, 1, BS, 0);
	journal_write(fx, 1, 2, 2, BS, 0);
	journal_fsync(fx, 1, 0, 0);
	journal_write(fx, 1, 2, 3, 1000, 0);
	fixture_block_mix(fx, 1, 2, 3, 2, 1000);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_REFUSED);
	assert_true(stress_verify_invariant_holds(res));
	free(res);
}

static void test_verify_short_first_write_over_hole_is_refused(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 3, 1, 512, 0);
	fixture_block_mix(fx, 0, 3, 1, 0, 512);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_REFUSED);
	free(res);
}

static void test_verify_short_write_mix_of_other_length_is_torn(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 1, 2, 1, BS, 0);
	journal_write(fx, 1, 2, 2, 1000, 0);
	fixture_block_mix(fx, 1, 2, 2, 1, 2048); /* more than the short count */
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_TORN_OR_CORRUPT);
	assert_int_equal(res->torn_unfsynced, 1);
	free(res);
}

static void test_verify_short_then_acked_retry_lost_is_lost_after_write(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 0, 1, BS, 0);
	journal_write(fx, 0, 0, 2, 1000, 0);
	journal_write(fx, 0, 0, 2, BS, 0); /* retry acknowledged, then lost */
	fixture_block_mix(fx, 0, 0, 2, 1, 1000);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_LOST_AFTER_WRITE);
	free(res);
}

static void test_verify_mixed_unfsynced_generations_are_torn(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 1, 1, BS, 0);
	journal_fsync(fx, 0, 0, 0);
	journal_write(fx, 0, 1, 2, BS, 0);
	fixture_block_mix(fx, 0, 1, 2, 1, BS / 2);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_TORN_OR_CORRUPT);
	assert_int_equal(res->torn_unfsynced, 1);
	assert_int_equal(res->torn_fsynced, 0);
	assert_true(stress_verify_invariant_holds(res));
	free(res);
}

static void test_verify_torn_fsynced_block_breaks_invariant(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 1, 1, BS, 0);
	journal_write(fx, 0, 1, 2, BS, 0);
	journal_fsync(fx, 0, 0, 0);
	fixture_block_mix(fx, 0, 1, 2, 1, BS / 2);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_TORN_OR_CORRUPT);
	assert_int_equal(res->torn_fsynced, 1);
	assert_false(stress_verify_invariant_holds(res));
	free(res);
}

static void test_verify_flipped_byte_is_torn_before_lost(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;
	char path[160];
	int fd;

	journal_write(fx, 1, 0, 1, BS, 0);
	fixture_block(fx, 1, 0, 1);
	snprintf(path, sizeof(path), "%s/f0001.dat", fx->dir);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 2000), 1);
	close(fd);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_TORN_OR_CORRUPT);
	free(res);
}

static void test_verify_generation_never_written_is_corrupt(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 0, 1, BS, 0);
	fixture_block(fx, 0, 0, 5);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_TORN_OR_CORRUPT);
	free(res);
}

static void test_verify_block_of_another_file_is_corrupt(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;
	uint8_t buf[BS];
	char path[160];
	int fd;

	journal_write(fx, 0, 2, 1, BS, 0);
	fixture_image(fx, buf, 1, 2, 1); /* file 1's block in file 0 */
	snprintf(path, sizeof(path), "%s/f0000.dat", fx->dir);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_int_equal(pwrite(fd, buf, BS, 2 * BS), BS);
	close(fd);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_TORN_OR_CORRUPT);
	free(res);
}

static void test_verify_never_acknowledged_hole_is_refused(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 3, 1, -1, ENOSPC);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_REFUSED);
	free(res);
}

static void test_verify_write_in_flight_at_crash_is_intact_either_way(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 0, 1, BS, 0);
	journal_write(fx, 0, 1, 1, BS, 0);
	journal_fsync(fx, 0, 0, 0);
	fixture_journal(fx, "I 0 0 2 30\n"); /* no W: the run died in pwrite */
	fixture_journal(fx, "I 0 1 2 31\n");
	fixture_block(fx, 0, 0, 2); /* it landed */
	fixture_block(fx, 0, 1, 1); /* it did not */
	res = fixture_verify(fx);
	assert_int_equal(res->blocks, 2);
	assert_int_equal(res->count[STRESS_CLASS_INTACT], 2);
	assert_false(res->journal_ended);
	free(res);
}

static void test_verify_truncated_last_journal_line_is_ignored(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 1, 1, 1, BS, 0);
	fixture_journal_raw(fx, "W 1 1 2 4096 0 1"); /* cut by a crash */
	fixture_block(fx, 1, 1, 1);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_INTACT);
	assert_true(res->journal_partial_tail);
	assert_int_equal(res->journal_bad_lines, 0);
	free(res);
}

static void test_verify_garbled_journal_line_is_counted_not_applied(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 1, 1, BS, 0);
	fixture_journal(fx, "W 0 1 zz 4096 0 1 1\n");
	fixture_journal(fx, "W 9 1 2 4096 0 1 1\n"); /* no file 9 */
	fixture_block(fx, 0, 1, 1);
	res = fixture_verify(fx);
	assert_single_class(res, STRESS_CLASS_INTACT);
	assert_int_equal(res->journal_bad_lines, 2);
	free(res);
}

static void test_verify_counts_every_class_at_once(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;

	journal_write(fx, 0, 0, 1, BS, 0); /* intact */
	journal_write(fx, 0, 1, 1, BS, 0); /* lost after fsync */
	journal_fsync(fx, 0, 0, 0);
	journal_write(fx, 0, 2, 1, BS, 0);	/* lost after write */
	journal_write(fx, 0, 3, 1, -1, ENOMEM); /* refused */
	journal_write(fx, 1, 0, 1, BS, 0);	/* torn */
	journal_write(fx, 1, 0, 2, BS, 0);
	fixture_block(fx, 0, 0, 1);
	fixture_block(fx, 0, 1, 0);
	fixture_block(fx, 0, 2, 0);
	fixture_block(fx, 0, 3, 0);
	fixture_block_mix(fx, 1, 0, 2, 1, 100);
	res = fixture_verify(fx);
	assert_int_equal(res->blocks, 5);
	for (int c = 0; c < STRESS_CLASS_COUNT; c++) {
		assert_int_equal(res->count[c], 1);
		assert_int_equal(res->bytes[c], BS);
	}
	assert_false(stress_verify_invariant_holds(res));
	free(res);
}

static void test_verify_rejects_journal_without_start_record(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result res;
	char why[256] = "";

	remove(fx->journal);
	fixture_journal(fx, "W 0 0 1 4096 0 1 1\n");
	assert_int_equal(stress_verify_run(fx->dir, fx->journal, NULL, &res, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "start record"));
}

static void test_verify_json_names_every_class(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	journal_write(fx, 0, 0, 1, BS, 0);
	fixture_block(fx, 0, 0, 1);
	res = fixture_verify(fx);
	stress_verify_print_json(out, res);
	fclose(out);
	for (int c = 0; c < STRESS_CLASS_COUNT; c++) {
		char key[64];

		snprintf(key, sizeof(key), "\"%s_bytes\": %u", stress_class_name(c),
			 c == STRESS_CLASS_INTACT ? BS : 0);
		assert_non_null(strstr(text, key));
	}
	assert_non_null(strstr(text, "\"invariant_ok\": true"));
	free(text);
	free(res);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_verify_latest_acked_generation_is_intact),
		T(test_verify_hole_after_good_fsync_is_lost_after_fsync),
		T(test_verify_older_generation_after_fsync_is_lost_after_fsync),
		T(test_verify_missing_file_after_fsync_is_lost_after_fsync),
		T(test_verify_unfsynced_ack_missing_is_lost_after_write),
		T(test_verify_errseq_failed_fsync_does_not_cover_earlier_writes),
		T(test_verify_strict_good_fsync_after_failed_one_covers_earlier_writes),
		T(test_verify_refused_write_with_previous_data_is_refused),
		T(test_verify_refused_write_that_landed_is_refused),
		T(test_verify_retried_write_acked_is_intact),
		T(test_verify_short_write_prefix_over_previous_is_refused),
		T(test_verify_short_first_write_over_hole_is_refused),
		T(test_verify_short_write_mix_of_other_length_is_torn),
		T(test_verify_short_then_acked_retry_lost_is_lost_after_write),
		T(test_verify_mixed_unfsynced_generations_are_torn),
		T(test_verify_torn_fsynced_block_breaks_invariant),
		T(test_verify_flipped_byte_is_torn_before_lost),
		T(test_verify_generation_never_written_is_corrupt),
		T(test_verify_block_of_another_file_is_corrupt),
		T(test_verify_never_acknowledged_hole_is_refused),
		T(test_verify_write_in_flight_at_crash_is_intact_either_way),
		T(test_verify_truncated_last_journal_line_is_ignored),
		T(test_verify_garbled_journal_line_is_counted_not_applied),
		T(test_verify_counts_every_class_at_once),
		T(test_verify_rejects_journal_without_start_record),
		T(test_verify_json_names_every_class),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
