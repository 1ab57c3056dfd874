/*
 * POSIX conformance: the other ways in and out of a file's pages — O_DIRECT
 * opens and shared mappings — must stay coherent with buffered I/O while
 * the daemon's cache holds dirty pages. The O_DIRECT tests also print what
 * the daemon did (its `dirty` list before and after), to document whether
 * direct I/O bypasses the cache or goes through it.
 */
#include "posix_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define KIB	  1024u
#define DIO_ALIGN 4096u

static int io_create(const char *name)
{
	int fd = open(name, O_RDWR | O_CREAT | O_EXCL, 0644);

	assert_ok(fd);
	return fd;
}

static off_t io_size(int fd)
{
	struct stat st;

	assert_ok(fstat(fd, &st));
	return st.st_size;
}

static unsigned char *io_aligned(size_t len)
{
	void *p = NULL;

	assert_int_equal(posix_memalign(&p, DIO_ALIGN, len), 0);
	return p;
}

/* Dirty bytes the daemon lists for inode ino in [off, off+len); -1 where
 * there is no control directory. */
static long long io_dirty_bytes(ino_t ino, uint64_t off, uint64_t len)
{
	static char buf[1 << 16];
	long long total = 0;

	if (posix_ctl_read("dirty", buf, sizeof(buf)) < 0)
		return -1;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long i, o, l;
		if (sscanf(line, "%llu %llu %llu", &i, &o, &l) != 3 || i != ino)
			continue;
		uint64_t from = o > off ? o : off, to = o + l < off + len ? o + l : off + len;
		if (to > from)
			total += (long long)(to - from);
	}
	return total;
}

static ino_t io_ino(int fd)
{
	struct stat st;

	assert_ok(fstat(fd, &st));
	return st.st_ino;
}

/* Open name with O_DIRECT. A plain directory on a filesystem without
 * O_DIRECT (tmpfs before Linux 6.6) skips the test; the mount may not. */
static int io_open_direct(const char *name, int flags)
{
	int fd = open(name, flags | O_DIRECT);

	if (fd >= 0)
		return fd;
	if (errno == EINVAL && !posix_on_mount()) {
		print_message("the host filesystem refuses O_DIRECT: skipped\n");
		skip();
	}
	fail_msg("open(%s|O_DIRECT) refused: %s",
		 (flags & O_ACCMODE) == O_RDONLY ? "O_RDONLY" : "O_RDWR", strerror(errno));
	return -1;
}

/* An O_DIRECT read of pages that are dirty in the cache returns the dirty
 * bytes, not what the backing file still holds. */
static void test_odirect_read_sees_buffered_dirty_data(void **state)
{
	struct posix_ctx *ctx = *state;
	unsigned char *buf = io_aligned(64 * KIB), *want = malloc(64 * KIB);
	int fb = io_create("f");

	assert_non_null(want);
	posix_write_pattern(fb, 60, 0, 256 * KIB);
	assert_ok(fsync(fb));
	posix_write_pattern(fb, 61, 64 * KIB, 64 * KIB); /* dirty over synced */
	long long before = io_dirty_bytes(io_ino(fb), 64 * KIB, 64 * KIB);

	int fd = io_open_direct("f", O_RDONLY);
	assert_int_equal(pread(fd, buf, 64 * KIB, 64 * KIB), 64 * KIB);
	posix_fill(want, 64 * KIB, 61, 64 * KIB);
	if (memcmp(buf, want, 64 * KIB))
		fail_msg("O_DIRECT read of dirty [64K, 128K) returned stale bytes");
	assert_int_equal(pread(fd, buf, 64 * KIB, 0), 64 * KIB);
	posix_fill(want, 64 * KIB, 60, 0);
	assert_memory_equal(buf, want, 64 * KIB);

	long long after = io_dirty_bytes(io_ino(fb), 64 * KIB, 64 * KIB);
	if (before >= 0)
		print_message("O_DIRECT read of a dirty range: dirty bytes listed before %lld, "
			      "after %lld (%s)\n",
			      before, after,
			      after == 0 && before > 0 ? "the daemon flushed them first"
						       : "served from the cache");
	assert_ok(fsync(fb));
	posix_expect_backing_equals(ctx, "f", fb);
	close(fd);
	close(fb);
	free(buf);
	free(want);
}

/* An O_DIRECT write is seen by buffered reads through another handle, and a
 * later buffered write into the same page is seen by O_DIRECT reads. */
static void test_odirect_write_coherent_with_buffered_io(void **state)
{
	struct posix_ctx *ctx = *state;
	unsigned char *buf = io_aligned(64 * KIB), *want = malloc(64 * KIB);
	int fb = io_create("f");

	assert_non_null(want);
	posix_write_pattern(fb, 62, 0, 256 * KIB);
	posix_expect_pattern(fb, 62, 0, 256 * KIB); /* cached in every layer */
	int fd = io_open_direct("f", O_RDWR);

	posix_fill(buf, 64 * KIB, 63, 128 * KIB);
	assert_int_equal(pwrite(fd, buf, 64 * KIB, 128 * KIB), 64 * KIB);
	long long listed = io_dirty_bytes(io_ino(fb), 128 * KIB, 64 * KIB);
	if (listed >= 0)
		print_message("O_DIRECT write of 64 KiB: %lld of its bytes listed dirty after "
			      "(%s)\n",
			      listed,
			      listed == 0 ? "written through or bypassing the cache"
					  : "kept dirty in the cache like a buffered write");
	posix_expect_pattern(fb, 62, 0, 128 * KIB);
	posix_expect_pattern(fb, 63, 128 * KIB, 64 * KIB);
	posix_expect_pattern(fb, 62, 192 * KIB, 64 * KIB);

	posix_write_pattern(fb, 64, 140000, 1000);
	assert_int_equal(pread(fd, buf, 64 * KIB, 128 * KIB), 64 * KIB);
	posix_fill(want, 64 * KIB, 63, 128 * KIB);
	posix_fill(want + (140000 - 128 * KIB), 1000, 64, 140000);
	if (memcmp(buf, want, 64 * KIB))
		fail_msg("O_DIRECT read after a buffered write into the same page is stale");

	/* Extending through O_DIRECT. */
	posix_fill(buf, DIO_ALIGN, 65, 256 * KIB);
	assert_int_equal(pwrite(fd, buf, DIO_ALIGN, 256 * KIB), DIO_ALIGN);
	assert_int_equal(io_size(fb), 256 * KIB + DIO_ALIGN);
	posix_expect_pattern(fb, 65, 256 * KIB, DIO_ALIGN);

	assert_ok(fsync(fd));
	posix_expect_backing_equals(ctx, "f", fb);
	close(fd);
	close(fb);
	free(buf);
	free(want);
}

/* A shared mapping of a file whose pages are dirty in the daemon's cache
 * (the file reopened, so nothing is mapped from an earlier read) shows the
 * dirty bytes, and zeros past EOF in the last page. */
static void test_mmap_shared_read_sees_dirty_cached_pages(void **state)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = 300000, maplen = (len + (size_t)page - 1) & ~((size_t)page - 1);
	unsigned char *want = malloc(len);
	int fd = io_create("f");

	assert_non_null(want);
	posix_write_pattern(fd, 70, 0, len);
	close(fd);
	assert_int_equal(posix_cache_drop(), 0); /* drops only clean pages: ours stay */
	fd = open("f", O_RDONLY);
	assert_ok(fd);
	unsigned char *p = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	posix_fill(want, len, 70, 0);
	if (memcmp(p, want, len))
		fail_msg("MAP_SHARED read of dirty cached pages differs from what was written");
	for (size_t i = len; i < maplen; i++)
		assert_int_equal(p[i], 0);
	munmap(p, maplen);
	close(fd);
	free(want);
}

/* Stores through a shared mapping are seen by read(2) once msync returns,
 * by a handle opened later, and in the backing file after fsync. */
static void test_mmap_shared_write_seen_by_read_and_backing(void **state)
{
	struct posix_ctx *ctx = *state;
	size_t len = 200000;
	unsigned char *fill = malloc(100000);
	int fd = io_create("f");

	assert_non_null(fill);
	posix_write_pattern(fd, 71, 0, len);
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	posix_fill(fill, 100000, 72, 50000);
	memcpy(p + 50000, fill, 100000);
	assert_ok(msync(p, len, MS_SYNC));

	posix_expect_pattern(fd, 71, 0, 50000);
	posix_expect_pattern(fd, 72, 50000, 100000);
	posix_expect_pattern(fd, 71, 150000, 50000);
	int fr = open("f", O_RDONLY);
	assert_ok(fr);
	posix_expect_pattern(fr, 72, 50000, 100000);

	/* A buffered write after the store is seen through the mapping. */
	posix_write_pattern(fd, 73, 60000, 1000);
	unsigned char *want = malloc(1000);
	assert_non_null(want);
	posix_fill(want, 1000, 73, 60000);
	assert_memory_equal(p + 60000, want, 1000);
	munmap(p, len);
	assert_ok(fsync(fd));
	posix_expect_backing_equals(ctx, "f", fd);
	close(fr);
	close(fd);
	free(fill);
	free(want);
}

/* A private mapping's stores never reach the file. */
static void test_mmap_private_write_leaves_file_unchanged(void **state)
{
	struct posix_ctx *ctx = *state;
	int fd = io_create("f");

	posix_write_pattern(fd, 74, 0, 100000);
	unsigned char *p = mmap(NULL, 100000, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	assert_true(p != MAP_FAILED);
	memset(p, 0, 100000);
	munmap(p, 100000);
	assert_ok(fsync(fd));
	posix_expect_pattern(fd, 74, 0, 100000);
	posix_expect_backing_equals(ctx, "f", fd);
	close(fd);
}

/* Synchronized writes (O_SYNC, O_DSYNC, RWF_SYNC) are in the backing file
 * when write returns, with no fsync. syncfs is only reported: the kernel
 * does not pass it on to a FUSE daemon, so it cannot flush the cache. */
static void test_osync_dsync_rwf_sync_writes_reach_backing_on_return(void **state)
{
	struct posix_ctx *ctx = *state;
	unsigned char buf[5000];
	static const struct {
		const char *name;
		int flags;
	} modes[] = {{"osync", O_SYNC}, {"odsync", O_DSYNC}};

	posix_fill(buf, sizeof(buf), 120, 0);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		int fd = open(modes[i].name, O_RDWR | O_CREAT | O_EXCL | modes[i].flags, 0644);
		assert_ok(fd);
		assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
		posix_expect_backing_equals(ctx, modes[i].name, fd);
		assert_int_equal(pwrite(fd, buf, 1000, 100000), 1000);
		posix_expect_backing_equals(ctx, modes[i].name, fd);
		close(fd);
	}
	int fd = io_create("rwfsync");
	struct iovec iov = {buf, sizeof(buf)};
	assert_int_equal(pwritev2(fd, &iov, 1, 0, RWF_SYNC), sizeof(buf));
	posix_expect_backing_equals(ctx, "rwfsync", fd);
	assert_int_equal(pwritev2(fd, &iov, 1, 7000, RWF_DSYNC), sizeof(buf));
	posix_expect_backing_equals(ctx, "rwfsync", fd);
	close(fd);

	fd = io_create("syncfs");
	posix_write_pattern(fd, 121, 0, 10000);
	assert_ok(syncfs(fd));
	int bfd = posix_backing_open(ctx, "syncfs", O_RDONLY);
	assert_ok(bfd);
	struct stat st;
	assert_ok(fstat(bfd, &st));
	print_message("after syncfs the backing file holds %jd of 10000 bytes%s\n",
		      (intmax_t)st.st_size,
		      st.st_size == 10000 ? "" : " (syncfs does not reach a FUSE daemon)");
	close(bfd);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		POSIX_TEST(test_odirect_read_sees_buffered_dirty_data),
		POSIX_TEST(test_odirect_write_coherent_with_buffered_io),
		POSIX_TEST(test_mmap_shared_read_sees_dirty_cached_pages),
		POSIX_TEST(test_mmap_shared_write_seen_by_read_and_backing),
		POSIX_TEST(test_mmap_private_write_leaves_file_unchanged),
		POSIX_TEST(test_osync_dsync_rwf_sync_writes_reach_backing_on_return),
	};

	return posix_run_group("posix_io_modes", tests, sizeof(tests) / sizeof(tests[0]));
}
