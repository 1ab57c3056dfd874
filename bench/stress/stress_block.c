/* Self-describing blocks: build one from (seed, file, block, generation) and
 * tell what a block read back is. Layout: see stress_i.h. */
#include <pthread.h>
#include <string.h>

#include "stress_i.h"

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table driven. The
 * table is built once, on first use, by whichever writer thread gets there
 * first (two threads writing the same words is still a data race). */
static uint32_t crc32c_table[256];
static pthread_once_t crc32c_table_once = PTHREAD_ONCE_INIT;

static void crc32c_table_build(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc32c_table[i] = c;
	}
}

uint32_t stress_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&crc32c_table_once, crc32c_table_build);
	crc = ~crc;
	while (len--)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static uint64_t splitmix64_next(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

void stress_block_fill(void *buf, const struct stress_block_id *id)
{
	uint8_t *p = buf;
	size_t bs = id->block_size;
	size_t end = bs - STRESS_BLOCK_TRAILER;
	uint64_t state = id->seed;

	put_u64(p, STRESS_BLOCK_MAGIC);
	put_u32(p + 8, id->file);
	put_u32(p + 12, id->block_size);
	put_u64(p + 16, id->block);
	put_u64(p + 24, id->gen);
	put_u64(p + 32, id->seed);

	/* Mix every coordinate into the payload seed so that two generations
	 * of one block share no payload bytes by construction. */
	state ^= splitmix64_next(&state) ^ id->file;
	state ^= splitmix64_next(&state) ^ id->block;
	state ^= splitmix64_next(&state) ^ id->gen;
	for (size_t off = STRESS_BLOCK_HEADER; off < end; off += 8)
		put_u64(p + off, splitmix64_next(&state));

	put_u32(p + end, (uint32_t)id->gen);
	put_u32(p + end + 4, stress_crc32c(0, p, end + 4));
}

static bool block_is_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

enum stress_block_kind stress_block_inspect(const void *buf, const struct stress_block_id *expect,
					    uint64_t *gen_out)
{
	const uint8_t *p = buf;
	size_t bs = expect->block_size;
	size_t end = bs - STRESS_BLOCK_TRAILER;
	uint64_t gen;

	if (block_is_zero(p, bs))
		return STRESS_BLOCK_HOLE;
	if (get_u64(p) != STRESS_BLOCK_MAGIC ||
	    get_u32(p + end + 4) != stress_crc32c(0, p, end + 4))
		return STRESS_BLOCK_BAD;
	gen = get_u64(p + 24);
	/* A good checksum on a block that belongs elsewhere is a misdirected
	 * write: as wrong as a torn one. */
	if (get_u32(p + 8) != expect->file || get_u32(p + 12) != expect->block_size ||
	    get_u64(p + 16) != expect->block || get_u64(p + 32) != expect->seed ||
	    get_u32(p + end) != (uint32_t)gen || gen == 0)
		return STRESS_BLOCK_BAD;
	*gen_out = gen;
	return STRESS_BLOCK_VALID;
}
