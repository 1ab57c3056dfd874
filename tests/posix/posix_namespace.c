/*
 * POSIX conformance: rename, unlink and link while files are open and their
 * pages are dirty in the daemon's cache. The cache makes these easy to get
 * wrong: dirty pages keyed by path follow the name instead of the file, an
 * unlinked file loses its pages, two names of one file get two caches.
 */
#include "posix_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int ns_create(const char *name)
{
	int fd = open(name, O_RDWR | O_CREAT | O_EXCL, 0644);

	assert_ok(fd);
	return fd;
}

static off_t ns_size(int fd)
{
	struct stat st;

	assert_ok(fstat(fd, &st));
	return st.st_size;
}

/* rename(a, b) with both open and dirty: the handle on a keeps writing into
 * what is now b; the handle on the old b keeps its own file, whose later
 * writes and fsync never reach the name b. */
static void test_rename_over_open_target_keeps_both_handles(void **state)
{
	struct posix_ctx *ctx = *state;
	struct stat st;
	char list[256];
	int fa = ns_create("a"), fb = ns_create("b");

	posix_write_pattern(fa, 1, 0, 300000);
	posix_write_pattern(fb, 2, 0, 200000);
	assert_ok(rename("a", "b"));
	assert_errno(stat("a", &st), ENOENT);

	posix_expect_pattern(fb, 2, 0, 200000);
	assert_ok(fstat(fb, &st));
	assert_int_equal(st.st_nlink, 0);
	posix_write_pattern(fb, 2, 200000, 50000);
	posix_expect_pattern(fb, 2, 0, 250000);
	assert_ok(fsync(fb));

	posix_write_pattern(fa, 1, 300000, 100000);
	assert_ok(fsync(fa));

	int fnew = open("b", O_RDONLY);
	assert_ok(fnew);
	assert_int_equal(ns_size(fnew), 400000);
	posix_expect_pattern(fnew, 1, 0, 400000);
	posix_expect_backing_equals(ctx, "b", fa);
	close(fnew);
	close(fb);
	close(fa);
	posix_list_dir(".", list, sizeof(list));
	assert_string_equal(list, "b");
}

/* The target of the rename had dirty pages and no open handle: those pages
 * belong to a file that no longer has a name and must never be written over
 * the new b, not even by a global writeback. */
static void test_rename_over_closed_dirty_target_drops_its_pages(void **state)
{
	struct posix_ctx *ctx = *state;
	int fb = ns_create("b");

	posix_write_pattern(fb, 3, 0, 500000);
	close(fb);
	int fa = ns_create("a");
	posix_write_pattern(fa, 4, 0, 100000);
	assert_ok(fsync(fa));
	assert_ok(rename("a", "b"));
	assert_int_equal(posix_cache_sync(), 0);
	assert_int_equal(posix_cache_drop(), 0);

	int fr = open("b", O_RDONLY);
	assert_ok(fr);
	assert_int_equal(ns_size(fr), 100000);
	posix_expect_pattern(fr, 4, 0, 100000);
	posix_expect_backing_equals(ctx, "b", fr);
	close(fr);
	close(fa);
}

/* A file renamed into another directory while open and dirty: the writes
 * before and after the rename reach the backing file under its new name. */
static void test_rename_across_dirs_open_handle_writes_reach_new_path(void **state)
{
	struct posix_ctx *ctx = *state;
	struct stat st;

	assert_ok(mkdir("d1", 0755));
	assert_ok(mkdir("d2", 0755));
	int fd = ns_create("d1/a");
	posix_write_pattern(fd, 5, 0, 200000);
	assert_ok(rename("d1/a", "d2/b"));
	posix_write_pattern(fd, 5, 200000, 200000);
	assert_errno(stat("d1/a", &st), ENOENT);
	assert_ok(stat("d2/b", &st));
	assert_int_equal(st.st_size, 400000);

	int fr = open("d2/b", O_RDONLY);
	assert_ok(fr);
	posix_expect_pattern(fr, 5, 0, 400000);
	assert_ok(fsync(fd));
	posix_expect_backing_equals(ctx, "d2/b", fd);
	assert_errno(posix_backing_open(ctx, "d1/a", O_RDONLY), ENOENT);
	close(fr);
	close(fd);
}

/* Renaming a directory moves the open, dirty files inside it. */
static void test_rename_dir_with_open_file_writes_reach_new_path(void **state)
{
	struct posix_ctx *ctx = *state;
	struct stat st;

	assert_ok(mkdir("x", 0755));
	assert_ok(mkdir("x/y", 0755));
	int fd = ns_create("x/y/f");
	posix_write_pattern(fd, 6, 0, 100000);
	assert_ok(rename("x", "z"));
	posix_write_pattern(fd, 6, 100000, 100000);
	assert_errno(stat("x/y/f", &st), ENOENT);
	assert_ok(stat("z/y/f", &st));
	assert_int_equal(st.st_size, 200000);
	assert_ok(fsync(fd));
	posix_expect_backing_equals(ctx, "z/y/f", fd);
	assert_errno(posix_backing_open(ctx, "x/y/f", O_RDONLY), ENOENT);
	close(fd);
}

/* An unlinked file stays readable and writable through its handle, with
 * nlink 0, and fsync on it succeeds. */
static void test_unlink_open_file_still_read_and_written(void **state)
{
	struct stat st;
	int fd = ns_create("u");

	posix_write_pattern(fd, 7, 0, 150000);
	assert_ok(unlink("u"));
	assert_errno(stat("u", &st), ENOENT);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(st.st_size, 150000);
	posix_expect_pattern(fd, 7, 0, 150000);

	posix_write_pattern(fd, 7, 150000, 100000);
	posix_expect_pattern(fd, 7, 0, 250000);
	assert_ok(ftruncate(fd, 200000));
	assert_int_equal(ns_size(fd), 200000);
	posix_expect_pattern(fd, 7, 0, 200000);
	assert_ok(fsync(fd));
	assert_ok(fdatasync(fd));
	assert_int_equal(posix_cache_drop(), 0);
	posix_expect_pattern(fd, 7, 0, 200000);
	close(fd);
}

/* A new file under the name of an unlinked, still open one is a different
 * file: it starts empty and the old handle's writes never show in it. */
static void test_unlink_open_file_name_reused_is_new_file(void **state)
{
	struct posix_ctx *ctx = *state;
	struct stat sold, snew;
	int fold = ns_create("u");

	posix_write_pattern(fold, 8, 0, 100000);
	assert_ok(unlink("u"));
	int fnew = ns_create("u");
	assert_int_equal(ns_size(fnew), 0);
	posix_write_pattern(fnew, 9, 0, 1000);
	posix_write_pattern(fold, 8, 100000, 100000);
	assert_ok(fsync(fold));
	assert_ok(fsync(fnew));
	assert_int_equal(posix_cache_sync(), 0);

	assert_ok(fstat(fold, &sold));
	assert_ok(fstat(fnew, &snew));
	assert_true(sold.st_ino != snew.st_ino);
	assert_int_equal(snew.st_size, 1000);
	posix_expect_pattern(fnew, 9, 0, 1000);
	posix_expect_pattern(fold, 8, 0, 200000);
	posix_expect_backing_equals(ctx, "u", fnew);
	close(fold);

	int fr = open("u", O_RDONLY);
	assert_ok(fr);
	assert_int_equal(ns_size(fr), 1000);
	posix_expect_pattern(fr, 9, 0, 1000);
	close(fr);
	close(fnew);
}

/* Two names, one file, one cache: a write through one name is read through
 * the other before any fsync, both ways, and stat agrees on both names. */
static void test_hardlink_write_one_name_read_other_before_fsync(void **state)
{
	struct posix_ctx *ctx = *state;
	struct stat s1, s2;
	int fa = ns_create("h1");

	posix_write_pattern(fa, 10, 0, 100000);
	assert_ok(link("h1", "h2"));
	int fb = open("h2", O_RDWR);
	assert_ok(fb);
	posix_expect_pattern(fb, 10, 0, 100000); /* the second name's view is now cached too */

	posix_write_pattern(fa, 11, 50000, 20000);
	posix_expect_pattern(fb, 11, 50000, 20000);
	posix_expect_pattern(fb, 10, 70000, 30000);
	posix_write_pattern(fb, 12, 90000, 40000);
	assert_int_equal(ns_size(fa), 130000);
	posix_expect_pattern(fa, 12, 90000, 40000);
	posix_expect_pattern(fa, 11, 50000, 20000);

	assert_ok(stat("h1", &s1));
	assert_ok(stat("h2", &s2));
	assert_int_equal(s1.st_ino, s2.st_ino);
	assert_int_equal(s1.st_nlink, 2);
	assert_int_equal(s2.st_nlink, 2);
	assert_int_equal(s1.st_size, 130000);
	assert_int_equal(s2.st_size, 130000);

	/* A third handle opened now sees the same bytes. */
	int fc = open("h2", O_RDONLY);
	assert_ok(fc);
	posix_expect_same_content(fa, fc);

	assert_ok(fsync(fb));
	posix_expect_backing_equals(ctx, "h1", fa);
	posix_expect_backing_equals(ctx, "h2", fa);
	close(fc);
	close(fb);
	close(fa);
}

/* Unlinking one name of a dirty file leaves its data under the other. */
static void test_hardlink_unlink_one_name_other_keeps_dirty_data(void **state)
{
	struct posix_ctx *ctx = *state;
	struct stat st;
	int fa = ns_create("h1");

	posix_write_pattern(fa, 13, 0, 200000);
	assert_ok(link("h1", "h2"));
	close(fa);
	assert_ok(unlink("h1"));
	int fb = open("h2", O_RDWR);
	assert_ok(fb);
	assert_ok(fstat(fb, &st));
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_size, 200000);
	posix_expect_pattern(fb, 13, 0, 200000);
	assert_ok(fsync(fb));
	posix_expect_backing_equals(ctx, "h2", fb);
	close(fb);
}

/* A second name made in the backing dir (an existing hard link the mount
 * finds by lookup) reaches the same cached file as the first. */
static void test_hardlink_found_by_lookup_shares_cache(void **state)
{
	struct posix_ctx *ctx = *state;
	char from[8300], to[8300];
	int fa = ns_create("h1");

	posix_write_pattern(fa, 17, 0, 100000);
	assert_ok(fsync(fa));
	snprintf(from, sizeof(from), "%s/h1", ctx->backing);
	snprintf(to, sizeof(to), "%s/h2", ctx->backing);
	assert_ok(link(from, to));

	posix_write_pattern(fa, 18, 20000, 10000); /* dirty, not in the backing file */
	int fb = open("h2", O_RDWR);
	assert_ok(fb);
	posix_expect_pattern(fb, 18, 20000, 10000);
	posix_write_pattern(fb, 19, 95000, 10000);
	assert_int_equal(ns_size(fa), 105000);
	posix_expect_pattern(fa, 19, 95000, 10000);
	assert_ok(fsync(fb));
	posix_expect_backing_equals(ctx, "h1", fa);
	close(fb);
	close(fa);
}

/* Corners POSIX defines: rename onto another name of the same file does
 * nothing; a directory renames over an empty one; link() of a symlink links
 * the symlink; mknod makes regular files; mkdir counts in the parent's
 * nlink. */
static void test_rename_link_mknod_corner_cases(void **state)
{
	struct stat st, before;
	char buf[64];

	close(ns_create("h1"));
	assert_ok(link("h1", "h2"));
	assert_ok(rename("h1", "h2"));
	assert_ok(stat("h1", &st));
	assert_ok(stat("h2", &st));
	assert_int_equal(st.st_nlink, 2);

	assert_ok(mkdir("e", 0755));
	assert_ok(mkdir("f", 0755));
	assert_ok(rename("e", "f"));
	assert_errno(stat("e", &st), ENOENT);
	assert_ok(stat("f", &st));
	assert_true(S_ISDIR(st.st_mode));

	assert_ok(symlink("target", "s"));
	assert_ok(linkat(AT_FDCWD, "s", AT_FDCWD, "s2", 0));
	assert_ok(lstat("s2", &st));
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_nlink, 2);
	ssize_t n = readlink("s2", buf, sizeof(buf));
	assert_int_equal(n, 6);
	assert_memory_equal(buf, "target", 6);

	assert_ok(mknod("reg", S_IFREG | 0640, 0));
	assert_ok(stat("reg", &st));
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	assert_int_equal(st.st_size, 0);

	assert_ok(stat(".", &before));
	assert_ok(mkdir("sub", 0755));
	assert_ok(stat(".", &st));
	assert_int_equal(st.st_nlink, before.st_nlink + 1);
	assert_ok(rmdir("sub"));
	assert_ok(stat(".", &st));
	assert_int_equal(st.st_nlink, before.st_nlink);
}

/* The errors POSIX gives rename, link, unlink and rmdir. */
static void test_rename_link_unlink_errors_posix(void **state)
{
	struct stat st;

	assert_ok(mkdir("d", 0755));
	assert_ok(mkdir("e", 0755));
	close(ns_create("e/x"));
	close(ns_create("f"));

	assert_errno(rename("d", "f"), ENOTDIR);
	assert_errno(rename("f", "d"), EISDIR);
	assert_int_equal(rename("d", "e"), -1);
	assert_true(errno == ENOTEMPTY || errno == EEXIST);
	assert_errno(rename("d", "d/sub"), EINVAL);
	assert_errno(rename("missing", "z"), ENOENT);
	assert_errno(rename("f", "nodir/z"), ENOENT);
	assert_errno(rename("f/x", "z"), ENOTDIR);
	assert_ok(rename("f", "f"));
	assert_ok(stat("f", &st));

	assert_errno(link("d", "dl"), EPERM);
	assert_errno(link("f", "e/x"), EEXIST);
	assert_errno(link("missing", "l"), ENOENT);
	assert_errno(unlink("d"), EISDIR);
	assert_errno(unlink("missing"), ENOENT);
	assert_errno(rmdir("f"), ENOTDIR);
	assert_int_equal(rmdir("e"), -1);
	assert_true(errno == ENOTEMPTY || errno == EEXIST);
	assert_errno(mkdir("d", 0755), EEXIST);
	assert_errno(open("f", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	assert_errno(open("f/", O_RDONLY), ENOTDIR);
	assert_errno(open("d", O_WRONLY), EISDIR);
}

/* renameat2: RENAME_NOREPLACE refuses an existing target, RENAME_EXCHANGE
 * swaps two dirty files: each name then reads, and after fsync holds in the
 * backing dir, the other's bytes. Skipped where the flags are unsupported
 * (EINVAL: Linux-only, not POSIX). */
static void test_rename_exchange_swaps_dirty_files_noreplace_refuses(void **state)
{
	struct posix_ctx *ctx = *state;
	int fa = ns_create("a"), fb = ns_create("b");

	posix_write_pattern(fa, 14, 0, 100000);
	posix_write_pattern(fb, 15, 0, 50000);
	if (renameat2(AT_FDCWD, "a", AT_FDCWD, "b", RENAME_NOREPLACE) == 0)
		fail_msg("RENAME_NOREPLACE replaced an existing file");
	if (errno == EINVAL) {
		print_message("renameat2 flags are not supported here (EINVAL)\n");
		close(fa);
		close(fb);
		skip();
	}
	assert_int_equal(errno, EEXIST);
	assert_ok(renameat2(AT_FDCWD, "a", AT_FDCWD, "c", RENAME_NOREPLACE));
	assert_ok(renameat2(AT_FDCWD, "c", AT_FDCWD, "b", RENAME_EXCHANGE));

	int fr = open("b", O_RDONLY);
	assert_ok(fr);
	assert_int_equal(ns_size(fr), 100000);
	posix_expect_pattern(fr, 14, 0, 100000);
	close(fr);
	fr = open("c", O_RDONLY);
	assert_ok(fr);
	assert_int_equal(ns_size(fr), 50000);
	posix_expect_pattern(fr, 15, 0, 50000);
	close(fr);
	posix_write_pattern(fa, 14, 100000, 1000); /* still the file now named b */
	assert_ok(fsync(fa));
	assert_ok(fsync(fb));
	posix_expect_backing_equals(ctx, "b", fa);
	posix_expect_backing_equals(ctx, "c", fb);
	close(fa);
	close(fb);
}

/* fsync of a directory (what careful programs do after a rename) succeeds,
 * and a file renamed then fsynced is in the backing dir under its name. */
static void test_fsync_directory_after_rename_succeeds(void **state)
{
	struct posix_ctx *ctx = *state;
	int fd = ns_create("tmp");

	posix_write_pattern(fd, 16, 0, 10000);
	assert_ok(fsync(fd));
	assert_ok(rename("tmp", "final"));
	int dfd = open(".", O_RDONLY | O_DIRECTORY);
	assert_ok(dfd);
	assert_ok(fsync(dfd));
	close(dfd);
	posix_expect_backing_equals(ctx, "final", fd);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		POSIX_TEST(test_rename_over_open_target_keeps_both_handles),
		POSIX_TEST(test_rename_over_closed_dirty_target_drops_its_pages),
		POSIX_TEST(test_rename_across_dirs_open_handle_writes_reach_new_path),
		POSIX_TEST(test_rename_dir_with_open_file_writes_reach_new_path),
		POSIX_TEST(test_unlink_open_file_still_read_and_written),
		POSIX_TEST(test_unlink_open_file_name_reused_is_new_file),
		POSIX_TEST(test_hardlink_write_one_name_read_other_before_fsync),
		POSIX_TEST(test_hardlink_unlink_one_name_other_keeps_dirty_data),
		POSIX_TEST(test_hardlink_found_by_lookup_shares_cache),
		POSIX_TEST(test_rename_link_mknod_corner_cases),
		POSIX_TEST(test_rename_link_unlink_errors_posix),
		POSIX_TEST(test_rename_exchange_swaps_dirty_files_noreplace_refuses),
		POSIX_TEST(test_fsync_directory_after_rename_succeeds),
	};

	return posix_run_group("posix_namespace", tests, sizeof(tests) / sizeof(tests[0]));
}
