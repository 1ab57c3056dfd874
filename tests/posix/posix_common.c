/* Shared fixture of the POSIX conformance tests: see posix_common.h. */
#include "posix_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define POSIX_CHILD_ALARM_S 120 /* a child acting as another user never hangs the run */
#define POSIX_CHUNK	    (1u << 20)

static const char *posix_root;
static const char *posix_backing_root;
static const char *posix_ctl;

const char *posix_errno_name(int err)
{
	const char *name = strerrorname_np(err);

	return name ? name : "E?";
}

void posix_assert_errno(long rc, int err, const char *what, const char *file, int line)
{
	int got = errno;

	if (rc == -1 && got == err)
		return;
	if (rc == -1)
		print_error("%s: expected %s, got %s (%s)\n", what, posix_errno_name(err),
			    posix_errno_name(got), strerror(got));
	else
		print_error("%s: expected -1/%s, got %ld (success)\n", what, posix_errno_name(err),
			    rc);
	_fail(file, line);
}

void posix_assert_ok(long rc, const char *what, const char *file, int line)
{
	int got = errno;

	if (rc >= 0)
		return;
	print_error("%s: failed with %s (%s)\n", what, posix_errno_name(got), strerror(got));
	_fail(file, line);
}

/* ---- the per-test directory ---- */

/* Remove name (relative to the working directory) and all below it, one
 * level at a time with chdir, so neither PATH_MAX nor the fd limit bounds
 * the depth. Returns 0 or -errno. */
static int posix_remove_tree(const char *name)
{
	struct stat st;

	if (lstat(name, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(name) ? -errno : 0;
	chmod(name, 0700); /* tests may leave a directory unreadable */
	if (chdir(name))
		return -errno;

	char **names = NULL;
	size_t count = 0, cap = 0;
	DIR *d = opendir(".");
	int rc = 0;
	if (!d) {
		rc = -errno;
		goto out_up;
	}
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			char **grown = realloc(names, cap * sizeof(*names));
			if (!grown) {
				rc = -ENOMEM;
				break;
			}
			names = grown;
		}
		names[count] = strdup(e->d_name);
		if (!names[count]) {
			rc = -ENOMEM;
			break;
		}
		count++;
	}
	closedir(d);
	for (size_t i = 0; i < count; i++) {
		int r = posix_remove_tree(names[i]);
		if (r && !rc)
			rc = r;
		free(names[i]);
	}
	free(names);
out_up:
	if (chdir("..") && !rc)
		rc = -errno;
	if (!rc && rmdir(name))
		rc = -errno;
	return rc;
}

int posix_setup(void **state)
{
	struct posix_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return -1;
	ctx->name = *state;
	snprintf(ctx->dir, sizeof(ctx->dir), "%s/%s", posix_root, ctx->name);
	snprintf(ctx->backing, sizeof(ctx->backing), "%s/%s", posix_backing_root, ctx->name);
	if (chdir(posix_root) || posix_remove_tree(ctx->name) || mkdir(ctx->name, 0755) ||
	    chmod(ctx->name, 0755) || chdir(ctx->name)) {
		fprintf(stderr, "posix: cannot make the test directory %s: %s\n", ctx->dir,
			strerror(errno));
		free(ctx);
		return -1;
	}
	*state = ctx;
	return 0;
}

int posix_teardown(void **state)
{
	struct posix_ctx *ctx = *state;
	int rc = 0;

	if (chdir(posix_root))
		rc = -1;
	else if (!getenv("PFS_POSIX_KEEP") && posix_remove_tree(ctx->name))
		fprintf(stderr, "posix: could not remove %s: %s\n", ctx->dir, strerror(errno));
	*state = (void *)ctx->name;
	free(ctx);
	return rc;
}

int posix_run_group(const char *group, const struct CMUnitTest *tests, size_t count)
{
	char tmp[4096] = "";
	int rc;

	posix_root = getenv("PFS_POSIX_DIR");
	if (posix_root && posix_root[0] != '/') {
		fprintf(stderr, "%s: PFS_POSIX_DIR must be an absolute directory\n", group);
		return 2;
	}
	if (!posix_root) {
		/* No directory named: a plain temp dir, readable by the other user. */
		const char *base = getenv("TMPDIR");
		snprintf(tmp, sizeof(tmp), "%s/pfs-posix-plain.XXXXXX",
			 base && *base ? base : "/tmp");
		if (!mkdtemp(tmp) || chmod(tmp, 0755)) {
			fprintf(stderr, "%s: cannot make a temp dir in %s: %s\n", group, tmp,
				strerror(errno));
			return 2;
		}
		posix_root = tmp;
	}
	posix_backing_root = getenv("PFS_POSIX_BACKING");
	if (!posix_backing_root || !*posix_backing_root)
		posix_backing_root = posix_root;
	posix_ctl = getenv("PFS_POSIX_CTL");
	if (posix_ctl && !*posix_ctl)
		posix_ctl = NULL;
	umask(022);
	signal(SIGPIPE, SIG_IGN);
	printf("%s: testing in %s (backing %s%s)\n", group, posix_root, posix_backing_root,
	       posix_ctl ? ", control dir set" : "");
	rc = _cmocka_run_group_tests(group, tests, count, NULL, NULL);
	if (tmp[0] && !getenv("PFS_POSIX_KEEP") && (chdir("/") || rmdir(tmp)))
		fprintf(stderr, "%s: could not remove %s: %s\n", group, tmp, strerror(errno));
	return rc;
}

/* ---- data ---- */

void posix_fill(unsigned char *buf, size_t len, uint64_t seed, uint64_t off)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t x = (off + i) >> 3;
		x = x * 0x9E3779B97F4A7C15ull ^ (seed + 1) * 0xD1B54A32D192ED03ull;
		x ^= x >> 29;
		unsigned char b = (unsigned char)(x >> (((off + i) & 7) * 8));
		buf[i] = b ? b : 0x5a;
	}
}

size_t posix_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		assert_ok(n);
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return done;
}

void posix_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	ssize_t n = pwrite(fd, buf, len, (off_t)off);

	assert_ok(n);
	assert_int_equal(n, len);
}

void posix_write_pattern(int fd, uint64_t seed, uint64_t off, size_t len)
{
	unsigned char *buf = malloc(POSIX_CHUNK);

	assert_non_null(buf);
	for (size_t done = 0; done < len;) {
		size_t n = len - done < POSIX_CHUNK ? len - done : POSIX_CHUNK;
		posix_fill(buf, n, seed, off + done);
		posix_pwrite_full(fd, buf, n, off + done);
		done += n;
	}
	free(buf);
}

/* Compare [off, off+len) of fd with want(i) chunk by chunk; report the first
 * bad offset. */
static void posix_expect_bytes(int fd, uint64_t seed, uint64_t off, size_t len, int zero)
{
	unsigned char *got = malloc(POSIX_CHUNK), *want = malloc(POSIX_CHUNK);

	assert_non_null(got);
	assert_non_null(want);
	for (size_t done = 0; done < len;) {
		size_t n = len - done < POSIX_CHUNK ? len - done : POSIX_CHUNK;
		size_t r = posix_pread_full(fd, got, n, off + done);
		if (r != n)
			fail_msg("short read at %ju: %zu of %zu bytes (file too small)",
				 (uintmax_t)(off + done), r, n);
		if (zero)
			memset(want, 0, n);
		else
			posix_fill(want, n, seed, off + done);
		if (memcmp(got, want, n)) {
			size_t i = 0;
			while (got[i] == want[i])
				i++;
			fail_msg("byte %ju: expected 0x%02x (%s), got 0x%02x",
				 (uintmax_t)(off + done + i), want[i], zero ? "hole" : "pattern",
				 got[i]);
		}
		done += n;
	}
	free(got);
	free(want);
}

void posix_expect_pattern(int fd, uint64_t seed, uint64_t off, size_t len)
{
	posix_expect_bytes(fd, seed, off, len, 0);
}

void posix_expect_zero(int fd, uint64_t off, size_t len)
{
	posix_expect_bytes(fd, 0, off, len, 1);
}

void posix_expect_same_content(int fd_a, int fd_b)
{
	struct stat sa, sb;

	assert_ok(fstat(fd_a, &sa));
	assert_ok(fstat(fd_b, &sb));
	assert_int_equal(sa.st_size, sb.st_size);
	unsigned char *a = malloc(POSIX_CHUNK), *b = malloc(POSIX_CHUNK);
	assert_non_null(a);
	assert_non_null(b);
	for (uint64_t off = 0; off < (uint64_t)sa.st_size; off += POSIX_CHUNK) {
		size_t na = posix_pread_full(fd_a, a, POSIX_CHUNK, off);
		size_t nb = posix_pread_full(fd_b, b, POSIX_CHUNK, off);
		assert_int_equal(na, nb);
		if (memcmp(a, b, na)) {
			size_t i = 0;
			while (a[i] == b[i])
				i++;
			fail_msg("contents differ at byte %ju: 0x%02x vs 0x%02x",
				 (uintmax_t)(off + i), a[i], b[i]);
		}
	}
	free(a);
	free(b);
}

/* ---- the backing directory ---- */

int posix_on_mount(void)
{
	return strcmp(posix_root, posix_backing_root) != 0;
}

int posix_backing_open(const struct posix_ctx *ctx, const char *name, int flags)
{
	char path[8192];

	snprintf(path, sizeof(path), "%s/%s", ctx->backing, name);
	return open(path, flags);
}

void posix_expect_backing_equals(const struct posix_ctx *ctx, const char *name, int fd)
{
	int bfd = posix_backing_open(ctx, name, O_RDONLY);

	if (bfd < 0)
		fail_msg("backing file %s/%s: %s", ctx->backing, name, strerror(errno));
	posix_expect_same_content(fd, bfd);
	close(bfd);
}

int posix_cache_drop(void)
{
	char path[4200];

	if (!posix_ctl)
		return 0;
	snprintf(path, sizeof(path), "%s/drop_caches", posix_ctl);
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	int rc = write(fd, "1\n", 2) == 2 ? 0 : -errno;
	close(fd);
	return rc;
}

int posix_cache_sync(void)
{
	char path[4200];

	if (!posix_ctl) {
		int dfd = open(".", O_RDONLY | O_DIRECTORY);
		if (dfd < 0)
			return -errno;
		int rc = syncfs(dfd) ? -errno : 0;
		close(dfd);
		return rc;
	}
	snprintf(path, sizeof(path), "%s/sync", posix_ctl);
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	int rc = write(fd, "1\n", 2) == 2 ? 0 : -errno;
	close(fd);
	return rc;
}

long posix_ctl_read(const char *name, char *buf, size_t len)
{
	char path[4200];
	size_t used = 0;

	if (!posix_ctl)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/%s", posix_ctl, name);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	while (used + 1 < len) {
		ssize_t n = read(fd, buf + used, len - 1 - used);
		if (n < 0) {
			int err = errno;
			close(fd);
			return -err;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = 0;
	close(fd);
	return (long)used;
}

static int posix_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void posix_list_dir(const char *dir, char *buf, size_t len)
{
	char *names[256];
	size_t count = 0, used = 0;
	DIR *d = opendir(dir);

	assert_non_null(d);
	buf[0] = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		assert_true(count < 256);
		names[count] = strdup(e->d_name);
		assert_non_null(names[count]);
		count++;
	}
	closedir(d);
	qsort(names, count, sizeof(names[0]), posix_name_cmp);
	for (size_t i = 0; i < count; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? "/" : "", names[i]);
		assert_true(n >= 0 && (size_t)n < len - used);
		used += (size_t)n;
		free(names[i]);
	}
}

/* ---- other users ---- */

void posix_other_user(uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam("nobody");

	*uid = pw ? pw->pw_uid : 65534;
	*gid = pw ? pw->pw_gid : 65534;
}

void posix_require_root(void)
{
	if (geteuid() != 0) {
		print_message("needs root to act as another user: skipped\n");
		skip();
	}
}

int posix_as_user(uid_t uid, gid_t gid, int (*fn)(void *arg), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(POSIX_CHILD_ALARM_S);
		if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid)) {
			fprintf(stderr, "posix: cannot become %u:%u: %s\n", (unsigned)uid,
				(unsigned)gid, strerror(errno));
			_exit(254);
		}
		_exit(fn(arg) & 0xff);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		assert_int_equal(errno, EINTR);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	fprintf(stderr, "posix: child as %u:%u died with signal %d\n", (unsigned)uid, (unsigned)gid,
		WTERMSIG(status));
	return -1;
}
