/*
 * POSIX conformance: names and paths — odd bytes in names, 255-byte names,
 * paths up to PATH_MAX, a deep tree, long symlink targets. The daemon maps
 * every name to a backing path or handle; each of these is a way to get that
 * wrong (quoting, fixed buffers, PATH_MAX counted from the backing root).
 */
#include "posix_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const odd_names[] = {
	"with space",
	" leading space",
	"trailing space ",
	"new\nline",
	"\nstarts with newline",
	"tab\there",
	"utf8-\xc3\xbcn\xc3\xaf"
	"c\xc3\xb8"
	"d\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e-\xf0\x9f\x98\x80",
	"-dash",
	"back\\slash",
	"quote\"'",
	"*?[glob]",
	"%s%n%%",
	"...",
	".hidden",
	("\x01\x1f"
	 "ctrl"), /* split: \x1fc would be one escape */
	"\xff\xfe not utf8",
	"colon:semi;",
};

#define ODD_COUNT (sizeof(odd_names) / sizeof(odd_names[0]))

static void names_write_file(const char *name, const char *content)
{
	int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);

	if (fd < 0)
		fail_msg("create '%s': %s", name, strerror(errno));
	assert_int_equal(write(fd, content, strlen(content)), strlen(content));
	close(fd);
}

static void names_expect_content(const char *name, const char *content)
{
	char buf[512];
	int fd = open(name, O_RDONLY);

	if (fd < 0)
		fail_msg("open '%s': %s", name, strerror(errno));
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, strlen(content));
	assert_memory_equal(buf, content, (size_t)n);
}

/* Whether readdir of dir lists exactly the given names. */
static void names_expect_listing(const char *dir, const char *const *names, size_t count)
{
	size_t found = 0;
	DIR *d = opendir(dir);

	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		size_t i = 0;
		while (i < count && strcmp(names[i], e->d_name))
			i++;
		if (i == count)
			fail_msg("%s lists an unexpected name '%s'", dir, e->d_name);
		found++;
	}
	closedir(d);
	assert_int_equal(found, count);
}

/* Names with spaces, newlines, tabs, control bytes, UTF-8 and invalid
 * UTF-8 are created, listed byte for byte (through the mount and in the
 * backing dir), read, renamed and removed. */
static void test_names_with_space_newline_utf8_round_trip(void **state)
{
	struct posix_ctx *ctx = *state;
	char renamed[300];
	struct stat st;

	for (size_t i = 0; i < ODD_COUNT; i++)
		names_write_file(odd_names[i], odd_names[i]);
	names_expect_listing(".", odd_names, ODD_COUNT);
	names_expect_listing(ctx->backing, odd_names, ODD_COUNT);
	for (size_t i = 0; i < ODD_COUNT; i++) {
		assert_ok(stat(odd_names[i], &st));
		assert_int_equal(st.st_size, strlen(odd_names[i]));
		names_expect_content(odd_names[i], odd_names[i]);
		snprintf(renamed, sizeof(renamed), "%s\n\xe2\x86\x92 moved", odd_names[i]);
		assert_ok(rename(odd_names[i], renamed));
		names_expect_content(renamed, odd_names[i]);
		assert_ok(mkdir(odd_names[i], 0755));
		assert_ok(symlink(renamed, "link"));
		names_expect_content("link", odd_names[i]);
		assert_ok(unlink("link"));
		assert_ok(rmdir(odd_names[i]));
		assert_ok(unlink(renamed));
	}
	names_expect_listing(".", NULL, 0);
}

static void names_expect_name_limit(const char *n255, const char *n256)
{
	struct stat st;

	names_write_file(n255, "255");
	assert_ok(stat(n255, &st));
	names_expect_content(n255, "255");
	assert_errno(open(n256, O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
	assert_errno(mkdir(n256, 0755), ENAMETOOLONG);
	assert_errno(stat(n256, &st), ENAMETOOLONG);
	assert_errno(symlink("x", n256), ENAMETOOLONG);
	assert_errno(link(n255, n256), ENAMETOOLONG);
	assert_errno(rename(n255, n256), ENAMETOOLONG);
	assert_ok(unlink(n255));
	assert_ok(mkdir(n255, 0755));
	assert_ok(rmdir(n255));
	assert_ok(symlink("x", n255));
	assert_ok(unlink(n255));
}

/* A 255-byte name works for every kind of entry, in ASCII and in UTF-8;
 * 256 bytes is ENAMETOOLONG everywhere. */
static void test_name_255_bytes_works_256_enametoolong(void **state)
{
	struct posix_ctx *ctx = *state;
	char n255[260], n256[260], other[260];
	struct stat st;

	memset(n255, 'a', 255);
	n255[255] = 0;
	memset(n256, 'a', 256);
	n256[256] = 0;
	names_expect_name_limit(n255, n256);

	/* 85 three-byte characters = 255 bytes. */
	for (int i = 0; i < 85; i++)
		memcpy(n255 + 3 * i, "\xe6\x97\xa5", 3);
	n255[255] = 0;
	memcpy(n256, n255, 255);
	n256[255] = 'x';
	n256[256] = 0;
	names_expect_name_limit(n255, n256);

	/* A 255-byte name is listed whole, renamed and linked to another. */
	names_write_file(n255, "x");
	memset(other, 'b', 255);
	other[255] = 0;
	assert_ok(rename(n255, other));
	assert_ok(link(other, n255));
	const char *const both[] = {n255, other};
	names_expect_listing(".", both, 2);
	names_expect_listing(ctx->backing, both, 2);
	assert_ok(stat(n255, &st));
	assert_int_equal(st.st_nlink, 2);
}

/* The absolute path length of the test dir's deepest file is exactly
 * PATH_MAX - 1: it opens, by that path and relative to the test dir; one
 * byte more is ENAMETOOLONG. The daemon must not count the backing dir's
 * own path against the caller's limit. */
static void test_path_near_path_max_works_one_more_enametoolong(void **state)
{
	struct posix_ctx *ctx = *state;
	char *path = malloc(PATH_MAX + 16), comp[256];
	size_t len = strlen(ctx->dir);
	struct stat st;

	posix_require_alloc(path);
	memcpy(path, ctx->dir, len + 1);
	memset(comp, 'p', 200);
	comp[200] = 0;
	/* Directories of 200-byte names while more than a whole name is left. */
	while (PATH_MAX - 1 - len > 256) {
		path[len++] = '/';
		memcpy(path + len, comp, 201);
		len += 200;
		if (mkdir(path, 0755))
			fail_msg("mkdir at path length %zu: %s", len, strerror(errno));
	}
	size_t last = PATH_MAX - 1 - len - 1; /* 1..255 bytes */
	path[len++] = '/';
	memset(path + len, 'f', last);
	len += last;
	path[len] = 0;
	assert_int_equal(strlen(path), PATH_MAX - 1);

	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		fail_msg("create a file at path length %d: %s", PATH_MAX - 1, strerror(errno));
	posix_write_pattern(fd, 90, 0, 100000);
	assert_ok(fsync(fd));
	close(fd);
	assert_ok(stat(path, &st));
	assert_int_equal(st.st_size, 100000);
	const char *rel = path + strlen(ctx->dir) + 1;
	fd = open(rel, O_RDONLY);
	assert_ok(fd);
	posix_expect_pattern(fd, 90, 0, 100000);
	close(fd);
	char *moved = strdup(path);
	posix_require_alloc(moved);
	moved[len - 1] = 'g';
	assert_ok(rename(path, moved));
	assert_ok(rename(moved, path));
	free(moved);

	path[len] = 'x';
	path[len + 1] = 0;
	assert_errno(open(path, O_RDWR | O_CREAT, 0644), ENAMETOOLONG);
	assert_errno(stat(path, &st), ENAMETOOLONG);
	assert_errno(mkdir(path, 0755), ENAMETOOLONG);
	free(path);
}

#define DEEP_LEVELS 1000

/* A tree 1000 directories deep: made level by level, a file at the bottom
 * written and read back by its whole relative path and level by level. */
static void test_deep_tree_1000_levels(void **state)
{
	char *rel = malloc(DEEP_LEVELS * 2 + 16);
	int dfd = open(".", O_RDONLY | O_DIRECTORY);

	posix_require_alloc(rel);
	assert_ok(dfd);
	for (int i = 0; i < DEEP_LEVELS; i++) {
		if (mkdirat(dfd, "d", 0755))
			fail_msg("mkdir at depth %d: %s", i + 1, strerror(errno));
		int next = openat(dfd, "d", O_RDONLY | O_DIRECTORY);
		if (next < 0)
			fail_msg("open directory at depth %d: %s", i + 1, strerror(errno));
		close(dfd);
		dfd = next;
	}
	int fd = openat(dfd, "leaf", O_RDWR | O_CREAT | O_EXCL, 0644);
	assert_ok(fd);
	posix_write_pattern(fd, 91, 0, 70000);
	assert_ok(fsync(fd));
	close(fd);
	close(dfd);

	rel[0] = 0;
	for (int i = 0; i < DEEP_LEVELS; i++)
		strcat(rel, "d/");
	strcat(rel, "leaf");
	assert_int_equal(posix_cache_drop(), 0);
	fd = open(rel, O_RDONLY);
	if (fd < 0)
		fail_msg("open the leaf by its %zu-byte relative path: %s", strlen(rel),
			 strerror(errno));
	posix_expect_pattern(fd, 91, 0, 70000);
	close(fd);

	/* Renaming the top moves the whole tree. */
	assert_ok(rename("d", "top"));
	memmove(rel + 2, rel, strlen(rel) + 1);
	memcpy(rel, "top", 3); /* "d/d/.../leaf" -> "top/d/.../leaf" */
	fd = open(rel, O_RDONLY);
	assert_ok(fd);
	posix_expect_pattern(fd, 91, 0, 70000);
	close(fd);
	free(rel);
}

/* A symlink target of PATH_MAX - 1 bytes is stored and read back whole;
 * PATH_MAX bytes is ENAMETOOLONG. Targets with newlines and UTF-8 too. */
static void test_symlink_long_and_odd_targets_round_trip(void **state)
{
	char *target = malloc(PATH_MAX + 1), *got = malloc(PATH_MAX + 1);
	struct stat st;

	posix_require_alloc(target);
	posix_require_alloc(got);
	for (int i = 0; i < PATH_MAX - 1; i++)
		target[i] = (i % 16 == 15) ? '/' : (char)('a' + i % 26);
	target[PATH_MAX - 1] = 0;
	assert_ok(symlink(target, "long"));
	ssize_t n = readlink("long", got, PATH_MAX + 1);
	assert_int_equal(n, PATH_MAX - 1);
	assert_memory_equal(got, target, (size_t)n);
	assert_ok(lstat("long", &st));
	assert_int_equal(st.st_size, PATH_MAX - 1);

	target[PATH_MAX - 1] = 'z';
	target[PATH_MAX] = 0;
	assert_errno(symlink(target, "toolong"), ENAMETOOLONG);

	for (size_t i = 0; i < ODD_COUNT; i++) {
		assert_ok(symlink(odd_names[i], "odd"));
		n = readlink("odd", got, PATH_MAX);
		assert_int_equal(n, strlen(odd_names[i]));
		assert_memory_equal(got, odd_names[i], (size_t)n);
		assert_ok(unlink("odd"));
	}
	free(target);
	free(got);
}

#define LIST_FILES 2000

static void names_make_many(int count)
{
	char name[256];

	for (int i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "entry-%05d-%0100d", i, i);
		int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			fail_msg("create entry %d: %s", i, strerror(errno));
		close(fd);
	}
}

static int names_entry_index(const char *name)
{
	int i;

	if (sscanf(name, "entry-%05d-", &i) != 1 || i < 0 || i >= LIST_FILES)
		return -1;
	return i;
}

/* A directory of 2000 long names (many getdents calls) lists each name
 * exactly once; telldir/seekdir return to the same entry. */
static void test_readdir_large_dir_lists_each_name_once(void **state)
{
	unsigned char *seen = calloc(LIST_FILES, 1);
	char again[300] = "";
	long mark = -1;
	int count = 0;

	assert_non_null(seen);
	names_make_many(LIST_FILES);
	DIR *d = opendir(".");
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int i = names_entry_index(e->d_name);
		if (i < 0)
			fail_msg("unexpected name '%s'", e->d_name);
		if (seen[i]++)
			fail_msg("entry %d listed twice", i);
		if (++count == 1000) {
			mark = telldir(d);
			assert_true(mark >= 0);
			struct dirent *n = readdir(d);
			assert_non_null(n);
			snprintf(again, sizeof(again), "%s", n->d_name);
			seekdir(d, mark);
		}
	}
	assert_int_equal(count, LIST_FILES);
	seekdir(d, mark);
	struct dirent *e = readdir(d);
	assert_non_null(e);
	assert_string_equal(e->d_name, again);
	closedir(d);
	free(seen);
}

/* Entries removed while a listing is under way: every entry not removed is
 * still listed exactly once (POSIX leaves only the removed ones open). */
static void test_readdir_unlink_during_listing_misses_no_other_entry(void **state)
{
	unsigned char *seen = calloc(LIST_FILES, 1), *removed = calloc(LIST_FILES, 1);
	char name[256];
	int count = 0;

	assert_non_null(seen);
	assert_non_null(removed);
	names_make_many(LIST_FILES);
	DIR *d = opendir(".");
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int i = names_entry_index(e->d_name);
		assert_true(i >= 0);
		if (seen[i]++ && !removed[i])
			fail_msg("entry %d listed twice", i);
		/* After 300 entries, remove the ones already seen. */
		if (++count == 300) {
			for (int j = 0; j < LIST_FILES; j++) {
				if (!seen[j])
					continue;
				snprintf(name, sizeof(name), "entry-%05d-%0100d", j, j);
				assert_ok(unlink(name));
				removed[j] = 1;
			}
		}
	}
	closedir(d);
	for (int i = 0; i < LIST_FILES; i++)
		if (!removed[i] && !seen[i])
			fail_msg("entry %d was never listed (%d entries seen)", i, count);
	free(seen);
	free(removed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		POSIX_TEST(test_names_with_space_newline_utf8_round_trip),
		POSIX_TEST(test_name_255_bytes_works_256_enametoolong),
		POSIX_TEST(test_path_near_path_max_works_one_more_enametoolong),
		POSIX_TEST(test_deep_tree_1000_levels),
		POSIX_TEST(test_symlink_long_and_odd_targets_round_trip),
		POSIX_TEST(test_readdir_large_dir_lists_each_name_once),
		POSIX_TEST(test_readdir_unlink_during_listing_misses_no_other_entry),
	};

	return posix_run_group("posix_names", tests, sizeof(tests) / sizeof(tests[0]));
}
