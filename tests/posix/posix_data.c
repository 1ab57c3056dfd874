/*
 * POSIX conformance: file contents and size when the pages are dirty in the
 * daemon's cache — truncate down and up, sparse files and
 * SEEK_DATA/SEEK_HOLE, O_APPEND from two writers, O_TRUNC.
 */
#include "posix_common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1u << 20)

static int data_create(const char *name)
{
	int fd = open(name, O_RDWR | O_CREAT | O_EXCL, 0644);

	assert_ok(fd);
	return fd;
}

static off_t data_size(int fd)
{
	struct stat st;

	assert_ok(fstat(fd, &st));
	return st.st_size;
}

/* Nothing can be read at or past EOF. */
static void data_expect_eof(int fd, off_t off)
{
	char c;

	assert_int_equal(pread(fd, &c, 1, off), 0);
}

/* lseek for SEEK_DATA/SEEK_HOLE that must succeed; fails naming the errno. */
static off_t data_seek(int fd, off_t off, int whence)
{
	off_t r = lseek(fd, off, whence);

	if (r < 0)
		fail_msg("%s from %jd: %s (%s)", whence == SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE",
			 (intmax_t)off, posix_errno_name(errno), strerror(errno));
	return r;
}

/* Truncating below dirty pages drops them; growing again shows zeros, not
 * the dropped bytes, before and after they reach the backing file. */
static void test_truncate_down_drops_dirty_tail_and_up_reads_zeros(void **state)
{
	struct posix_ctx *ctx = *state;
	int fd = data_create("f");

	posix_write_pattern(fd, 20, 0, 262144);
	assert_ok(ftruncate(fd, 100000));
	assert_int_equal(data_size(fd), 100000);
	posix_expect_pattern(fd, 20, 0, 100000);
	data_expect_eof(fd, 100000);

	assert_ok(ftruncate(fd, 300000));
	assert_int_equal(data_size(fd), 300000);
	posix_expect_pattern(fd, 20, 0, 100000);
	posix_expect_zero(fd, 100000, 200000);

	assert_ok(fsync(fd));
	posix_expect_backing_equals(ctx, "f", fd);
	assert_int_equal(posix_cache_drop(), 0);
	posix_expect_pattern(fd, 20, 0, 100000);
	posix_expect_zero(fd, 100000, 200000);
	close(fd);
}

/* Truncating into a clean cached page, then writing past the new EOF: the
 * gap reads as zeros, not as the page's old tail. */
static void test_truncate_into_clean_page_then_write_past_leaves_zero_gap(void **state)
{
	struct posix_ctx *ctx = *state;
	int fd = data_create("f");

	posix_write_pattern(fd, 21, 0, 131072);
	assert_ok(fsync(fd));
	posix_expect_pattern(fd, 21, 0, 131072); /* the pages are cached and clean */
	assert_ok(ftruncate(fd, 70000));
	posix_write_pattern(fd, 22, 120000, 10000);
	assert_int_equal(data_size(fd), 130000);
	posix_expect_pattern(fd, 21, 0, 70000);
	posix_expect_zero(fd, 70000, 50000);
	posix_expect_pattern(fd, 22, 120000, 10000);
	assert_ok(fsync(fd));
	posix_expect_backing_equals(ctx, "f", fd);
	close(fd);
}

/* truncate(2) by path shortens a file another handle holds dirty: that
 * handle sees the new size at once, and the backing file gets it. */
static void test_truncate_by_path_shortens_file_dirty_in_other_handle(void **state)
{
	struct posix_ctx *ctx = *state;
	int fd = data_create("f");

	posix_write_pattern(fd, 23, 0, 200000);
	assert_ok(truncate("f", 50000));
	assert_int_equal(data_size(fd), 50000);
	data_expect_eof(fd, 50000);
	posix_write_pattern(fd, 24, 0, 1000);
	assert_ok(fsync(fd));
	assert_int_equal(data_size(fd), 50000);
	posix_expect_pattern(fd, 24, 0, 1000);
	posix_expect_pattern(fd, 23, 1000, 49000);
	posix_expect_backing_equals(ctx, "f", fd);
	close(fd);
}

/* A write far past EOF makes a hole that reads as zeros; the size counts it. */
static void test_sparse_hole_reads_zero_and_size_counts_it(void **state)
{
	struct posix_ctx *ctx = *state;
	int fd = data_create("f");

	posix_write_pattern(fd, 30, 0, 4096);
	posix_write_pattern(fd, 31, 10 * MIB, 4096);
	assert_int_equal(data_size(fd), 10 * MIB + 4096);
	posix_expect_pattern(fd, 30, 0, 4096);
	posix_expect_zero(fd, 4096, 10 * MIB - 4096);
	posix_expect_pattern(fd, 31, 10 * MIB, 4096);
	assert_ok(fsync(fd));
	posix_expect_backing_equals(ctx, "f", fd);
	close(fd);
}

/* Rebuild the file the way `cp --sparse` does (read only what SEEK_DATA and
 * SEEK_HOLE call data, zeros elsewhere) and check it against a plain read.
 * A filesystem may report no holes at all; it may never call data a hole. */
static void data_expect_seek_copy_equals(int fd)
{
	off_t size = data_size(fd), pos = 0;
	unsigned char *copy = calloc(1, (size_t)size + 1), *plain = malloc((size_t)size + 1);

	assert_non_null(copy);
	assert_non_null(plain);
	while (pos < size) {
		off_t data = lseek(fd, pos, SEEK_DATA);
		if (data < 0) {
			if (errno != ENXIO)
				fail_msg("SEEK_DATA from %jd: %s", (intmax_t)pos, strerror(errno));
			break; /* only a hole up to EOF */
		}
		assert_true(data >= pos && data < size);
		off_t hole = lseek(fd, data, SEEK_HOLE);
		assert_ok(hole);
		assert_true(hole > data && hole <= size);
		assert_int_equal(
			posix_pread_full(fd, copy + data, (size_t)(hole - data), (uint64_t)data),
			hole - data);
		pos = hole;
	}
	assert_int_equal(posix_pread_full(fd, plain, (size_t)size, 0), size);
	if (memcmp(copy, plain, (size_t)size)) {
		off_t i = 0;
		while (copy[i] == plain[i])
			i++;
		fail_msg("SEEK_DATA/SEEK_HOLE called byte %jd (0x%02x) a hole", (intmax_t)i,
			 plain[i]);
	}
	free(copy);
	free(plain);
}

/* SEEK_DATA and SEEK_HOLE see data that is only in the cache: a file that
 * starts with a hole and whose data is dirty, then a synced file with dirty
 * data written into one of its holes. */
static void test_seek_data_hole_see_dirty_unsynced_data(void **state)
{
	int fd = data_create("f");
	off_t size = 8 * MIB + 65536;

	posix_write_pattern(fd, 32, 8 * MIB, 65536);
	off_t d = data_seek(fd, 0, SEEK_DATA);
	assert_true(d <= 8 * MIB);
	assert_int_equal(data_seek(fd, 8 * MIB, SEEK_DATA), 8 * MIB);
	assert_int_equal(data_seek(fd, 8 * MIB + 100, SEEK_DATA), 8 * MIB + 100);
	assert_int_equal(data_seek(fd, 8 * MIB + 100, SEEK_HOLE), size);
	off_t h = data_seek(fd, 0, SEEK_HOLE);
	assert_true(h <= 8 * MIB || h == size);
	data_expect_seek_copy_equals(fd);

	assert_ok(fsync(fd));
	data_expect_seek_copy_equals(fd);
	posix_write_pattern(fd, 33, 2 * MIB, 5000);
	d = data_seek(fd, 0, SEEK_DATA);
	assert_true(d <= 2 * MIB);
	assert_int_equal(data_seek(fd, 2 * MIB + 10, SEEK_DATA), 2 * MIB + 10);
	h = data_seek(fd, 2 * MIB, SEEK_HOLE);
	assert_true(h >= 2 * MIB + 5000 && h <= size);
	data_expect_seek_copy_equals(fd);
	close(fd);
}

/* At and past EOF there is neither data nor hole: ENXIO. */
static void test_seek_data_hole_at_eof_enxio(void **state)
{
	int fd = data_create("f");

	posix_write_pattern(fd, 34, 0, 10000);
	assert_errno(lseek(fd, 10000, SEEK_DATA), ENXIO);
	assert_errno(lseek(fd, 10000, SEEK_HOLE), ENXIO);
	assert_errno(lseek(fd, 20000, SEEK_DATA), ENXIO);
	assert_int_equal(data_seek(fd, 9999, SEEK_HOLE), 10000);
	assert_int_equal(data_seek(fd, 0, SEEK_DATA), 0);
	/* Extended by truncate only: the tail is a hole up to EOF. */
	assert_ok(ftruncate(fd, 100000));
	off_t d = lseek(fd, 50000, SEEK_DATA);
	if (d >= 0)
		assert_int_equal(d, 50000); /* no hole support: everything is data */
	else
		assert_int_equal(errno, ENXIO);
	close(fd);
}

/* ---- O_APPEND ---- */

#define APPEND_WRITERS 2
#define APPEND_RECORDS 300
#define APPEND_HEADER  777 /* unaligned EOF before the writers start */

struct append_record {
	char magic[4];
	uint32_t writer;
	uint32_t seq;
	uint32_t len;
};

static uint32_t append_record_len(uint32_t writer, uint32_t seq)
{
	return (uint32_t)sizeof(struct append_record) + 100 + (writer * 977 + seq * 131) % 3000;
}

static void append_record_fill(unsigned char *buf, uint32_t writer, uint32_t seq)
{
	struct append_record h = {
		{'R', 'E', 'C', ':'}, writer, seq, append_record_len(writer, seq)};

	memcpy(buf, &h, sizeof(h));
	posix_fill(buf + sizeof(h), h.len - sizeof(h), writer * 100000 + seq, 0);
}

/* One appending process: each record is one write(); an fsync now and then
 * so that writeback runs between appends. Returns 0 or an errno. */
static int append_writer(uint32_t writer)
{
	unsigned char buf[4096];
	int fd = open("log", O_WRONLY | O_APPEND);

	if (fd < 0)
		return errno;
	for (uint32_t seq = 0; seq < APPEND_RECORDS; seq++) {
		uint32_t len = append_record_len(writer, seq);
		append_record_fill(buf, writer, seq);
		ssize_t n = write(fd, buf, len);
		if (n != (ssize_t)len)
			return n < 0 ? errno : EIO;
		if (seq % 50 == 49 && fsync(fd))
			return errno;
	}
	return close(fd) ? errno : 0;
}

/* Two processes append records to one file: every record lands whole, once,
 * after the data that was there (dirty), none lost or overlapping. */
static void test_append_two_writers_no_lost_or_overlapping_records(void **state)
{
	struct posix_ctx *ctx = *state;
	pid_t pids[APPEND_WRITERS];
	int fd = data_create("log");

	posix_write_pattern(fd, 40, 0, APPEND_HEADER);
	for (uint32_t w = 0; w < APPEND_WRITERS; w++) {
		fflush(NULL);
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			alarm(120);
			_exit(append_writer(w));
		}
	}
	for (int w = 0; w < APPEND_WRITERS; w++) {
		int status;
		assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
		assert_true(WIFEXITED(status));
		if (WEXITSTATUS(status))
			fail_msg("appending writer %d failed: %s", w,
				 posix_errno_name(WEXITSTATUS(status)));
	}

	off_t size = data_size(fd), expected = APPEND_HEADER;
	for (uint32_t w = 0; w < APPEND_WRITERS; w++)
		for (uint32_t s = 0; s < APPEND_RECORDS; s++)
			expected += append_record_len(w, s);
	assert_int_equal(size, expected);
	posix_expect_pattern(fd, 40, 0, APPEND_HEADER);

	uint32_t next[APPEND_WRITERS] = {0};
	unsigned char got[4096], want[4096];
	for (off_t off = APPEND_HEADER; off < size;) {
		struct append_record h;
		assert_int_equal(posix_pread_full(fd, &h, sizeof(h), (uint64_t)off), sizeof(h));
		if (memcmp(h.magic, "REC:", 4) || h.writer >= APPEND_WRITERS ||
		    h.seq != next[h.writer] || h.len != append_record_len(h.writer, h.seq))
			fail_msg("no valid next record at offset %jd (writer %u seq %u len %u)",
				 (intmax_t)off, h.writer, h.seq, h.len);
		assert_int_equal(posix_pread_full(fd, got, h.len, (uint64_t)off), h.len);
		append_record_fill(want, h.writer, h.seq);
		if (memcmp(got, want, h.len))
			fail_msg("record %u of writer %u at offset %jd is torn", h.seq, h.writer,
				 (intmax_t)off);
		next[h.writer]++;
		off += h.len;
	}
	for (int w = 0; w < APPEND_WRITERS; w++)
		assert_int_equal(next[w], APPEND_RECORDS);
	assert_ok(fsync(fd));
	posix_expect_backing_equals(ctx, "log", fd);
	close(fd);
}

/* An O_APPEND write lands at the EOF the cache knows, past dirty data the
 * backing file does not have yet. */
static void test_append_after_dirty_write_lands_at_cached_eof(void **state)
{
	struct posix_ctx *ctx = *state;
	unsigned char buf[5000];
	int fd = data_create("f");

	posix_write_pattern(fd, 41, 0, 100000);
	int fa = open("f", O_WRONLY | O_APPEND);
	assert_ok(fa);
	posix_fill(buf, 5000, 42, 100000);
	assert_int_equal(write(fa, buf, 5000), 5000);
	assert_int_equal(data_seek(fa, 0, SEEK_CUR), 105000);
	assert_int_equal(data_size(fd), 105000);
	posix_expect_pattern(fd, 41, 0, 100000);
	posix_expect_pattern(fd, 42, 100000, 5000);

	posix_write_pattern(fd, 43, 200000, 1000); /* a hole, then dirty data */
	posix_fill(buf, 100, 44, 201000);
	assert_int_equal(write(fa, buf, 100), 100);
	assert_int_equal(data_size(fd), 201100);
	posix_expect_zero(fd, 105000, 95000);
	posix_expect_pattern(fd, 43, 200000, 1000);
	posix_expect_pattern(fd, 44, 201000, 100);
	assert_ok(fsync(fa));
	posix_expect_backing_equals(ctx, "f", fd);
	close(fa);
	close(fd);
}

/* ---- O_TRUNC ---- */

/* O_TRUNC empties a file with synced and dirty data; nothing of it comes
 * back after writeback, and the timestamps are marked for update. */
static void test_otrunc_drops_dirty_and_synced_data(void **state)
{
	struct posix_ctx *ctx = *state;
	struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
	struct stat st;
	int fd = data_create("f");

	posix_write_pattern(fd, 50, 0, 300000);
	assert_ok(fsync(fd));
	posix_write_pattern(fd, 51, 300000, 300000);
	assert_ok(futimens(fd, old));

	int ft = open("f", O_WRONLY | O_TRUNC);
	assert_ok(ft);
	assert_int_equal(data_size(ft), 0);
	assert_int_equal(data_size(fd), 0);
	data_expect_eof(fd, 0);
	assert_ok(fstat(ft, &st));
	assert_true(st.st_mtim.tv_sec > 1000000000);
	assert_true(st.st_ctim.tv_sec > 1000000000);

	posix_write_pattern(ft, 52, 0, 10);
	assert_ok(fsync(ft));
	assert_int_equal(posix_cache_sync(), 0);
	assert_int_equal(posix_cache_drop(), 0);
	assert_int_equal(data_size(fd), 10);
	posix_expect_pattern(fd, 52, 0, 10);
	posix_expect_backing_equals(ctx, "f", fd);
	close(ft);
	close(fd);
}

/* After O_TRUNC, a write past the new EOF leaves a hole of zeros, not the
 * bytes the dirty pages held before the truncate. */
static void test_otrunc_then_write_past_eof_reads_no_stale_bytes(void **state)
{
	struct posix_ctx *ctx = *state;
	int fd = data_create("f");

	posix_write_pattern(fd, 53, 0, 200000);
	close(fd);
	fd = open("f", O_RDWR | O_TRUNC);
	assert_ok(fd);
	posix_write_pattern(fd, 54, 150000, 100);
	assert_int_equal(data_size(fd), 150100);
	posix_expect_zero(fd, 0, 150000);
	posix_expect_pattern(fd, 54, 150000, 100);
	assert_ok(fsync(fd));
	assert_int_equal(posix_cache_drop(), 0);
	posix_expect_zero(fd, 0, 150000);
	posix_expect_backing_equals(ctx, "f", fd);
	close(fd);

	/* O_TRUNC on an empty file and O_CREAT|O_TRUNC on a new one. */
	fd = open("g", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_ok(fd);
	assert_int_equal(data_size(fd), 0);
	close(fd);
	fd = open("g", O_WRONLY | O_TRUNC);
	assert_ok(fd);
	assert_int_equal(data_size(fd), 0);
	close(fd);
}

/* Offsets past 2 GiB, 4 GiB and 1 TiB (sparse): no 32-bit truncation of an
 * offset or a page index anywhere on the way to the backing file. */
static void test_large_offsets_past_2g_4g_and_1t_round_trip(void **state)
{
	static const uint64_t offs[] = {
		(1ull << 31) - 5000,
		(1ull << 32) - 3000,
		(1ull << 32) + 12345,
		1ull << 40,
	};
	int fd = data_create("f");

	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		posix_write_pattern(fd, 100 + i, offs[i], 10000);
	assert_int_equal(data_size(fd), (off_t)((1ull << 40) + 10000));
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		posix_expect_pattern(fd, 100 + i, offs[i], 10000);
		posix_expect_zero(fd, offs[i] - 100, 100);
	}
	posix_expect_zero(fd, 0, 65536);
	off_t d = data_seek(fd, (off_t)(1ull << 39), SEEK_DATA);
	assert_true(d >= (off_t)(1ull << 39) && d <= (off_t)(1ull << 40));
	assert_ok(fsync(fd));
	assert_int_equal(posix_cache_drop(), 0);
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		posix_expect_pattern(fd, 100 + i, offs[i], 10000);

	/* Truncate down across the 4 GiB line, then up: zeros, not old bytes. */
	assert_ok(ftruncate(fd, (off_t)(1ull << 32) + 100));
	assert_ok(ftruncate(fd, (off_t)(1ull << 33)));
	posix_expect_pattern(fd, 101, (1ull << 32) - 3000, 3100);
	posix_expect_zero(fd, (1ull << 32) + 100, 30000);
	assert_int_equal(data_size(fd), (off_t)(1ull << 33));
	close(fd);
}

/* copy_file_range (what cp uses) copies the bytes the source has in the
 * cache, not what its backing file holds yet, and the copy reads back. */
static void test_copy_file_range_copies_dirty_data(void **state)
{
	struct posix_ctx *ctx = *state;
	int src = data_create("src"), dst = data_create("dst");

	posix_write_pattern(src, 110, 0, 300000);
	assert_ok(fsync(src));
	posix_write_pattern(src, 111, 100000, 50000); /* dirty over synced */
	posix_write_pattern(src, 112, 300000, 20000); /* dirty past the synced EOF */
	loff_t in = 0, out = 0;
	size_t left = 320000;
	while (left > 0) {
		ssize_t n = copy_file_range(src, &in, dst, &out, left, 0);
		if (n < 0)
			fail_msg("copy_file_range at %jd: %s", (intmax_t)in, strerror(errno));
		if (n == 0)
			fail_msg("copy_file_range stopped at %jd of 320000", (intmax_t)in);
		left -= (size_t)n;
	}
	assert_int_equal(data_size(dst), 320000);
	posix_expect_same_content(src, dst);
	assert_ok(fsync(dst));
	assert_int_equal(posix_cache_drop(), 0);
	posix_expect_pattern(dst, 111, 100000, 50000);
	posix_expect_pattern(dst, 112, 300000, 20000);
	posix_expect_backing_equals(ctx, "dst", src);
	close(src);
	close(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		POSIX_TEST(test_truncate_down_drops_dirty_tail_and_up_reads_zeros),
		POSIX_TEST(test_truncate_into_clean_page_then_write_past_leaves_zero_gap),
		POSIX_TEST(test_truncate_by_path_shortens_file_dirty_in_other_handle),
		POSIX_TEST(test_sparse_hole_reads_zero_and_size_counts_it),
		POSIX_TEST(test_seek_data_hole_see_dirty_unsynced_data),
		POSIX_TEST(test_seek_data_hole_at_eof_enxio),
		POSIX_TEST(test_append_two_writers_no_lost_or_overlapping_records),
		POSIX_TEST(test_append_after_dirty_write_lands_at_cached_eof),
		POSIX_TEST(test_otrunc_drops_dirty_and_synced_data),
		POSIX_TEST(test_otrunc_then_write_past_eof_reads_no_stale_bytes),
		POSIX_TEST(test_large_offsets_past_2g_4g_and_1t_round_trip),
		POSIX_TEST(test_copy_file_range_copies_dirty_data),
	};

	return posix_run_group("posix_data", tests, sizeof(tests) / sizeof(tests[0]));
}
