/* The self-describing block format: round trip, and every kind of damage a
 * reader must see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "stress_i.h"

#define BS 4096u

static const struct stress_block_id id_base = {
	.seed = 42,
	.file = 3,
	.block_size = BS,
	.block = 17,
	.gen = 5,
};

static void test_crc32c_matches_reference_vector(void **state)
{
	(void)state;
	/* The check value of CRC-32C (iSCSI, RFC 3720). */
	assert_int_equal(stress_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(stress_crc32c(stress_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

static void test_block_round_trip_reads_back_its_generation(void **state)
{
	uint8_t buf[BS];
	uint64_t gen = 0;

	(void)state;
	for (uint32_t bs = STRESS_BLOCK_MIN; bs <= 65536; bs *= 2) {
		uint8_t *big = malloc(bs);
		struct stress_block_id id = id_base;

		id.block_size = bs;
		stress_block_fill(big, &id);
		assert_int_equal(stress_block_inspect(big, &id, &gen), STRESS_BLOCK_VALID);
		assert_int_equal(gen, 5);
		free(big);
	}
	stress_block_fill(buf, &id_base);
	assert_int_equal(stress_block_inspect(buf, &id_base, &gen), STRESS_BLOCK_VALID);
}

static void test_block_fill_is_deterministic(void **state)
{
	uint8_t a[BS], b[BS];

	(void)state;
	stress_block_fill(a, &id_base);
	stress_block_fill(b, &id_base);
	assert_memory_equal(a, b, BS);
}

static void test_block_generations_share_no_payload(void **state)
{
	struct stress_block_id next = id_base;
	uint8_t a[BS], b[BS];
	unsigned same = 0;

	(void)state;
	next.gen++;
	stress_block_fill(a, &id_base);
	stress_block_fill(b, &next);
	for (unsigned off = STRESS_BLOCK_HEADER; off + 8 <= BS - STRESS_BLOCK_TRAILER; off += 8)
		same += !memcmp(a + off, b + off, 8);
	assert_int_equal(same, 0);
}

static void test_block_zeros_are_a_hole(void **state)
{
	uint8_t buf[BS] = {0};
	uint64_t gen = 99;

	(void)state;
	assert_int_equal(stress_block_inspect(buf, &id_base, &gen), STRESS_BLOCK_HOLE);
	assert_int_equal(gen, 99);
}

static void test_block_any_flipped_byte_is_bad(void **state)
{
	static const unsigned offsets[] = {0, 9, 20, 30, 39, 40, 2048, BS - 9, BS - 8, BS - 1};
	uint8_t buf[BS];
	uint64_t gen;

	(void)state;
	for (unsigned i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		stress_block_fill(buf, &id_base);
		buf[offsets[i]] ^= 0x10;
		assert_int_equal(stress_block_inspect(buf, &id_base, &gen), STRESS_BLOCK_BAD);
	}
}

static void test_block_mixed_halves_are_bad(void **state)
{
	struct stress_block_id older = id_base;
	uint8_t a[BS], b[BS];
	uint64_t gen;

	(void)state;
	older.gen--;
	stress_block_fill(a, &id_base);
	stress_block_fill(b, &older);
	memcpy(a + BS / 2, b + BS / 2, BS / 2); /* new head, old tail */
	assert_int_equal(stress_block_inspect(a, &id_base, &gen), STRESS_BLOCK_BAD);
	stress_block_fill(a, &id_base);
	memcpy(b + BS / 2, a + BS / 2, BS / 2); /* old head, new tail */
	assert_int_equal(stress_block_inspect(b, &id_base, &gen), STRESS_BLOCK_BAD);
}

static void test_block_with_zeroed_tail_is_bad(void **state)
{
	uint8_t buf[BS];
	uint64_t gen;

	(void)state;
	stress_block_fill(buf, &id_base);
	memset(buf + 1000, 0, BS - 1000);
	assert_int_equal(stress_block_inspect(buf, &id_base, &gen), STRESS_BLOCK_BAD);
}

static void test_block_of_another_identity_is_bad(void **state)
{
	uint8_t buf[BS];
	uint64_t gen;
	struct stress_block_id other;

	(void)state;
	stress_block_fill(buf, &id_base);
	other = id_base;
	other.file++;
	assert_int_equal(stress_block_inspect(buf, &other, &gen), STRESS_BLOCK_BAD);
	other = id_base;
	other.block++;
	assert_int_equal(stress_block_inspect(buf, &other, &gen), STRESS_BLOCK_BAD);
	other = id_base;
	other.seed++;
	assert_int_equal(stress_block_inspect(buf, &other, &gen), STRESS_BLOCK_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_matches_reference_vector),
		cmocka_unit_test(test_block_round_trip_reads_back_its_generation),
		cmocka_unit_test(test_block_fill_is_deterministic),
		cmocka_unit_test(test_block_generations_share_no_payload),
		cmocka_unit_test(test_block_zeros_are_a_hole),
		cmocka_unit_test(test_block_any_flipped_byte_is_bad),
		cmocka_unit_test(test_block_mixed_halves_are_bad),
		cmocka_unit_test(test_block_with_zeroed_tail_is_bad),
		cmocka_unit_test(test_block_of_another_identity_is_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
