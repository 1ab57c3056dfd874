/*
 * pfs-perf-meta: the metadata microbenchmarks of bench/perf.
 *
 *   pfs-perf-meta files DIR N SIZE   create N files of SIZE bytes, then stat
 *                                    each, then unlink each (three timed phases)
 *   pfs-perf-meta populate DIR N     create N empty files (untimed set-up)
 *   pfs-perf-meta scan DIR           list DIR, then stat every name listed
 *                                    (readdir and lookup, timed apart)
 *
 * Each prints one JSON object on stdout and exits 0, or prints one line
 * starting with "pfs-perf-meta: " on stderr and exits 1. Written in C so
 * that the tool's own cost per operation (a few hundred nanoseconds) stays
 * far below a FUSE round trip; Python would add microseconds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define META_NAME_MAX  32
#define META_WRITE_MAX (1u << 20)

static double meta_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void meta_name_format(char *buf, unsigned long i)
{
	snprintf(buf, META_NAME_MAX, "f%07lu", i);
}

static int meta_fail(const char *what, const char *name, int err)
{
	fprintf(stderr, "pfs-perf-meta: %s %s: %s\n", what, name ? name : "", strerror(err));
	return 1;
}

static int meta_number_parse(const char *text, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || end == text || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int meta_file_create(int dirfd, const char *name, const char *data, size_t size)
{
	int fd, err = 0;

	fd = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (size && write(fd, data, size) != (ssize_t)size)
		err = errno ? -errno : -EIO;
	if (close(fd) && !err)
		err = -errno;
	return err;
}

/* create / stat / unlink N files of size bytes: the small-file cycle */
static int meta_files_run(int dirfd, unsigned long n, unsigned long size)
{
	char name[META_NAME_MAX];
	double t0, t1, t2, t3;
	struct stat st;
	char *data;
	unsigned long i;
	int err;

	data = malloc(size ? size : 1);
	if (!data)
		return meta_fail("malloc", NULL, ENOMEM);
	memset(data, 'm', size);

	t0 = meta_now();
	for (i = 0; i < n; i++) {
		meta_name_format(name, i);
		err = meta_file_create(dirfd, name, data, size);
		if (err) {
			free(data);
			return meta_fail("create", name, -err);
		}
	}
	t1 = meta_now();
	for (i = 0; i < n; i++) {
		meta_name_format(name, i);
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
			free(data);
			return meta_fail("stat", name, errno);
		}
	}
	t2 = meta_now();
	for (i = 0; i < n; i++) {
		meta_name_format(name, i);
		if (unlinkat(dirfd, name, 0)) {
			free(data);
			return meta_fail("unlink", name, errno);
		}
	}
	t3 = meta_now();
	free(data);
	printf("{\"files\": %lu, \"size\": %lu, \"create_s\": %.6f, \"stat_s\": %.6f, "
	       "\"unlink_s\": %.6f}\n",
	       n, size, t1 - t0, t2 - t1, t3 - t2);
	return 0;
}

static int meta_populate_run(int dirfd, unsigned long n)
{
	char name[META_NAME_MAX];
	double t0 = meta_now();
	unsigned long i;
	int err;

	for (i = 0; i < n; i++) {
		meta_name_format(name, i);
		err = meta_file_create(dirfd, name, NULL, 0);
		if (err && err != -EEXIST)
			return meta_fail("create", name, -err);
	}
	printf("{\"files\": %lu, \"populate_s\": %.6f}\n", n, meta_now() - t0);
	return 0;
}

/* Names are kept in one growing buffer so that listing allocates rarely. */
struct meta_names {
	char *buf;
	size_t len, cap;
	unsigned long count;
};

static int meta_names_add(struct meta_names *names, const char *name)
{
	size_t need = strlen(name) + 1;

	if (names->len + need > names->cap) {
		size_t cap = names->cap ? names->cap * 2 : 1u << 16;
		char *buf;

		while (cap < names->len + need)
			cap *= 2;
		buf = realloc(names->buf, cap);
		if (!buf)
			return -ENOMEM;
		names->buf = buf;
		names->cap = cap;
	}
	memcpy(names->buf + names->len, name, need);
	names->len += need;
	names->count++;
	return 0;
}

/* readdir the whole directory, then look every name up (cold if the caller
 * dropped the caches) */
static int meta_scan_run(int dirfd)
{
	struct meta_names names = {0};
	struct dirent *de;
	double t0, t1, t2;
	struct stat st;
	size_t off;
	DIR *dir;
	int fd;

	fd = dup(dirfd);
	if (fd < 0)
		return meta_fail("dup", NULL, errno);
	t0 = meta_now();
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return meta_fail("opendir", NULL, errno);
	}
	errno = 0;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (meta_names_add(&names, de->d_name)) {
			closedir(dir);
			free(names.buf);
			return meta_fail("readdir", NULL, ENOMEM);
		}
	}
	if (errno) {
		int err = errno;

		closedir(dir);
		free(names.buf);
		return meta_fail("readdir", NULL, err);
	}
	closedir(dir);
	t1 = meta_now();
	for (off = 0; off < names.len; off += strlen(names.buf + off) + 1) {
		if (fstatat(dirfd, names.buf + off, &st, AT_SYMLINK_NOFOLLOW)) {
			int ret = meta_fail("stat", names.buf + off, errno);

			free(names.buf);
			return ret;
		}
	}
	t2 = meta_now();
	printf("{\"entries\": %lu, \"readdir_s\": %.6f, \"stat_s\": %.6f}\n", names.count, t1 - t0,
	       t2 - t1);
	free(names.buf);
	return 0;
}

static int meta_usage(void)
{
	fprintf(stderr, "pfs-perf-meta: usage: pfs-perf-meta files DIR N SIZE | "
			"populate DIR N | scan DIR\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned long n = 0, size = 0;
	int dirfd, ret;

	if (argc < 3)
		return meta_usage();
	if (!strcmp(argv[1], "files")) {
		if (argc != 5 || meta_number_parse(argv[3], 100000000ul, &n) ||
		    meta_number_parse(argv[4], META_WRITE_MAX, &size))
			return meta_usage();
	} else if (!strcmp(argv[1], "populate")) {
		if (argc != 4 || meta_number_parse(argv[3], 100000000ul, &n))
			return meta_usage();
	} else if (strcmp(argv[1], "scan") || argc != 3) {
		return meta_usage();
	}

	dirfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return meta_fail("open", argv[2], errno);
	if (!strcmp(argv[1], "files"))
		ret = meta_files_run(dirfd, n, size);
	else if (!strcmp(argv[1], "populate"))
		ret = meta_populate_run(dirfd, n);
	else
		ret = meta_scan_run(dirfd);
	close(dirfd);
	return ret;
}
