/*
 * POSIX conformance: ownership and permission checks when the caller is not
 * the daemon. The daemon runs as root; what another user creates must still
 * be that user's (and group's, or the setgid directory's group), and what
 * that user may not touch gives EACCES or EPERM (the mount uses
 * default_permissions). The other user is nobody/nogroup, in a child made
 * with setresuid; every test needs root.
 */
#include "posix_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <dirent.h>
#include <unistd.h>

#define OTHER_GROUP 4242 /* a group nobody is not a member of */

/* In the child: one expectation per line, the failures printed; the child
 * returns how many failed. */
struct owner_checks {
	int failures;
};

static void owner_expect(struct owner_checks *c, const char *what, long rc, int err)
{
	int got = rc == -1 ? errno : 0;

	if ((err == 0 && rc >= 0) || (err != 0 && rc == -1 && got == err))
		return;
	fprintf(stderr, "  as nobody: %s: expected %s, got %s\n", what,
		err ? posix_errno_name(err) : "success",
		rc == -1 ? posix_errno_name(got) : "success");
	c->failures++;
}

#define OWNER_EXPECT(c, call, err) owner_expect((c), #call, (long)(call), (err))

static int owner_close(int fd)
{
	return fd < 0 ? -1 : close(fd);
}

static int owner_can_search_cwd(void *arg)
{
	return access(".", X_OK) ? 1 : 0;
}

static void owner_as_nobody(int (*fn)(void *), void *arg)
{
	uid_t uid;
	gid_t gid;

	posix_other_user(&uid, &gid);
	if (posix_as_user(uid, gid, owner_can_search_cwd, NULL) != 0) {
		print_message("nobody cannot reach the test directory (a 0700 parent such as "
			      "$TMPDIR?): skipped\n");
		skip();
	}
	int rc = posix_as_user(uid, gid, fn, arg);
	if (rc != 0)
		fail_msg("the child acting as nobody reported %d failed check(s) (see above)", rc);
}

static void owner_expect_ids(const char *name, uid_t uid, gid_t gid)
{
	struct stat st;

	assert_ok(lstat(name, &st));
	if (st.st_uid != uid || st.st_gid != gid)
		fail_msg("%s: owner %u:%u, expected %u:%u", name, (unsigned)st.st_uid,
			 (unsigned)st.st_gid, (unsigned)uid, (unsigned)gid);
}

static void owner_expect_backing_ids(const struct posix_ctx *ctx, const char *name, uid_t uid,
				     gid_t gid)
{
	char path[8192];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", ctx->backing, name);
	assert_ok(lstat(path, &st));
	if (st.st_uid != uid || st.st_gid != gid)
		fail_msg("backing %s: owner %u:%u, expected %u:%u", name, (unsigned)st.st_uid,
			 (unsigned)st.st_gid, (unsigned)uid, (unsigned)gid);
}

static int owner_create_nodes(void *arg)
{
	const char *prefix = arg;
	struct owner_checks c = {0};
	char name[64];

	umask(022);
	snprintf(name, sizeof(name), "%sf", prefix);
	int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0640);
	OWNER_EXPECT(&c, fd, 0);
	OWNER_EXPECT(&c, write(fd, "mine", 4), 0);
	OWNER_EXPECT(&c, owner_close(fd), 0);
	snprintf(name, sizeof(name), "%sd", prefix);
	OWNER_EXPECT(&c, mkdir(name, 0750), 0);
	snprintf(name, sizeof(name), "%sl", prefix);
	OWNER_EXPECT(&c, symlink("f", name), 0);
	snprintf(name, sizeof(name), "%sp", prefix);
	OWNER_EXPECT(&c, mknod(name, S_IFIFO | 0600, 0), 0);
	snprintf(name, sizeof(name), "%ss", prefix);
	OWNER_EXPECT(&c, mknod(name, S_IFSOCK | 0600, 0), 0);
	/* The creator can use what it made. */
	snprintf(name, sizeof(name), "%sf", prefix);
	OWNER_EXPECT(&c, owner_close(open(name, O_RDWR)), 0);
	snprintf(name, sizeof(name), "%sd/sub", prefix);
	OWNER_EXPECT(&c, mkdir(name, 0700), 0);
	return c.failures;
}

/* nobody creates the nodes of owner_create_nodes under PREFIX; each is
 * owned by uid:gid through the mount and in the backing dir. */
static void owner_nodes_by_nobody_owned(const struct posix_ctx *ctx, const char *prefix, uid_t uid,
					gid_t gid)
{
	static const char *const names[] = {"f", "d", "l", "p", "s", "d/sub"};
	char name[64];

	owner_as_nobody(owner_create_nodes, (void *)prefix);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", prefix, names[i]);
		owner_expect_ids(name, uid, gid);
		owner_expect_backing_ids(ctx, name, uid, gid);
	}
}

/* A file, directory, symlink, FIFO and socket node created by nobody belong
 * to nobody:nogroup, with the modes asked for (minus the umask), through
 * the mount and in the backing dir. */
static void test_owner_file_dir_symlink_nodes_belong_to_creator(void **state)
{
	struct posix_ctx *ctx = *state;
	struct stat st;
	uid_t uid;
	gid_t gid;

	posix_require_root();
	posix_other_user(&uid, &gid);
	assert_ok(chmod(".", 0777));
	owner_nodes_by_nobody_owned(ctx, "", uid, gid);
	assert_ok(lstat("f", &st));
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	assert_int_equal(st.st_size, 4);
	assert_ok(lstat("d", &st));
	assert_int_equal(st.st_mode, S_IFDIR | 0750);
	assert_ok(lstat("l", &st));
	assert_true(S_ISLNK(st.st_mode));
	assert_ok(lstat("p", &st));
	assert_int_equal(st.st_mode, S_IFIFO | 0600);
	assert_ok(lstat("s", &st));
	assert_int_equal(st.st_mode, S_IFSOCK | 0600);
}

/* In a set-group-ID directory, everything nobody creates gets the
 * directory's group (not nobody's), and new directories keep the bit. */
static void test_owner_setgid_dir_passes_its_group_on(void **state)
{
	struct posix_ctx *ctx = *state;
	struct stat st;
	uid_t uid;
	gid_t gid;

	posix_require_root();
	posix_other_user(&uid, &gid);
	assert_ok(mkdir("sg", 0755));
	assert_ok(chown("sg", 0, OTHER_GROUP));
	assert_ok(chmod("sg", 02777));
	owner_nodes_by_nobody_owned(ctx, "sg/", uid, OTHER_GROUP);
	assert_ok(stat("sg/d", &st));
	assert_true(st.st_mode & S_ISGID);
	assert_ok(stat("sg/d/sub", &st));
	assert_true(st.st_mode & S_ISGID);

	/* Root's files there get the group too. */
	int fd = open("sg/root", O_WRONLY | O_CREAT, 0644);
	assert_ok(fd);
	close(fd);
	owner_expect_ids("sg/root", 0, OTHER_GROUP);
}

static int owner_create_sgid_file(void *arg)
{
	struct owner_checks c = {0};

	umask(0);
	OWNER_EXPECT(&c, owner_close(open("sg/x", O_WRONLY | O_CREAT | O_EXCL, 02755)), 0);
	return c.failures;
}

/* A file nobody creates with mode 02755 in a setgid directory of a group it
 * is not in does not get the set-group-ID bit. */
static void test_owner_setgid_bit_stripped_for_non_member(void **state)
{
	struct stat st;

	posix_require_root();
	assert_ok(mkdir("sg", 0755));
	assert_ok(chown("sg", 0, OTHER_GROUP));
	assert_ok(chmod("sg", 02777));
	owner_as_nobody(owner_create_sgid_file, NULL);
	assert_ok(stat("sg/x", &st));
	assert_int_equal(st.st_gid, OTHER_GROUP);
	assert_int_equal(st.st_mode & 07777, 0755);
}

static int owner_try_forbidden(void *arg)
{
	struct owner_checks c = {0};
	struct stat st;
	char buf[16];

	OWNER_EXPECT(&c, open("secret", O_RDONLY), EACCES);
	OWNER_EXPECT(&c, open("ro", O_WRONLY), EACCES);
	OWNER_EXPECT(&c, open("ro", O_RDWR | O_TRUNC), EACCES);
	OWNER_EXPECT(&c, truncate("ro", 0), EACCES);
	int fd = open("ro", O_RDONLY);
	OWNER_EXPECT(&c, fd, 0);
	OWNER_EXPECT(&c, read(fd, buf, sizeof(buf)), 0);
	OWNER_EXPECT(&c, owner_close(fd), 0);
	OWNER_EXPECT(&c, access("ro", W_OK), EACCES);
	OWNER_EXPECT(&c, access("ro", R_OK), 0);
	OWNER_EXPECT(&c, access("secret", R_OK), EACCES);

	OWNER_EXPECT(&c, open("closed/new", O_WRONLY | O_CREAT, 0644), EACCES);
	OWNER_EXPECT(&c, mkdir("closed/d", 0755), EACCES);
	OWNER_EXPECT(&c, symlink("x", "closed/l"), EACCES);
	OWNER_EXPECT(&c, mknod("closed/p", S_IFIFO | 0644, 0), EACCES);
	OWNER_EXPECT(&c, unlink("closed/f"), EACCES);
	OWNER_EXPECT(&c, rename("closed/f", "closed/g"), EACCES);
	OWNER_EXPECT(&c, rmdir("closed/sub"), EACCES);

	OWNER_EXPECT(&c, stat("private/f", &st), EACCES);
	OWNER_EXPECT(&c, open("private/f", O_RDONLY), EACCES);
	DIR *d = opendir("private");
	OWNER_EXPECT(&c, d ? 0 : -1, EACCES);
	if (d)
		closedir(d);
	OWNER_EXPECT(&c, chdir("private"), EACCES);
	OWNER_EXPECT(&c, stat("listonly/f", &st), EACCES);

	/* Sticky: nobody may not remove or rename root's file, may remove its own. */
	OWNER_EXPECT(&c, unlink("sticky/rootfile"), EPERM);
	OWNER_EXPECT(&c, rename("sticky/rootfile", "sticky/moved"), EPERM);
	OWNER_EXPECT(&c, owner_close(open("sticky/mine", O_WRONLY | O_CREAT, 0644)), 0);
	/* (linking its own file: root's would be EPERM under protected_hardlinks) */
	OWNER_EXPECT(&c, link("sticky/mine", "closed/hl"), EACCES);
	OWNER_EXPECT(&c, unlink("sticky/mine"), 0);
	return c.failures;
}

/* Under default_permissions, another user gets EACCES for what the mode
 * bits forbid (read, write, create, remove, search) and EPERM where a
 * sticky directory protects root's file. */
static void test_perm_other_user_gets_eacces(void **state)
{
	int fd;
	struct stat st;

	posix_require_root();
	fd = open("secret", O_WRONLY | O_CREAT, 0600);
	assert_ok(fd);
	assert_int_equal(write(fd, "secret", 6), 6);
	close(fd);
	fd = open("ro", O_WRONLY | O_CREAT, 0644);
	assert_ok(fd);
	assert_int_equal(write(fd, "readable", 8), 8);
	close(fd);
	assert_ok(mkdir("closed", 0755));
	close(open("closed/f", O_WRONLY | O_CREAT, 0666));
	assert_ok(mkdir("closed/sub", 0777));
	assert_ok(mkdir("private", 0700));
	close(open("private/f", O_WRONLY | O_CREAT, 0644));
	assert_ok(mkdir("listonly", 0744));
	close(open("listonly/f", O_WRONLY | O_CREAT, 0644));
	assert_ok(mkdir("sticky", 01777));
	assert_ok(chmod("sticky", 01777));
	close(open("sticky/rootfile", O_WRONLY | O_CREAT, 0666));

	owner_as_nobody(owner_try_forbidden, NULL);
	/* Nothing changed. */
	assert_ok(stat("ro", &st));
	assert_int_equal(st.st_size, 8);
	assert_ok(stat("closed/f", &st));
	assert_ok(stat("sticky/rootfile", &st));
	assert_errno(stat("closed/new", &st), ENOENT);
}

static int owner_try_attr_changes(void *arg)
{
	struct owner_checks c = {0};
	struct timespec explicit_times[2] = {{1000000000, 0}, {1000000000, 0}};
	struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
	struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
	uid_t uid = getuid();
	gid_t gid = getgid();

	/* Root's world-writable file: write permission is not ownership. */
	OWNER_EXPECT(&c, chmod("rootfile", 0600), EPERM);
	OWNER_EXPECT(&c, chown("rootfile", uid, (gid_t)-1), EPERM);
	OWNER_EXPECT(&c, chown("rootfile", (uid_t)-1, gid), EPERM);
	OWNER_EXPECT(&c, utimensat(AT_FDCWD, "rootfile", explicit_times, 0), EPERM);
	OWNER_EXPECT(&c, utimensat(AT_FDCWD, "rootfile", NULL, 0), 0);
	OWNER_EXPECT(&c, utimensat(AT_FDCWD, "rootfile", now, 0), 0);
	/* Root's read-only file: not even "now". */
	OWNER_EXPECT(&c, utimensat(AT_FDCWD, "rootro", NULL, 0), EACCES);
	OWNER_EXPECT(&c, utimensat(AT_FDCWD, "rootro", now, 0), EACCES);
	OWNER_EXPECT(&c, utimensat(AT_FDCWD, "rootro", omit, 0), 0);

	/* Its own file: anything but giving it away or to a foreign group. */
	OWNER_EXPECT(&c, owner_close(open("mine", O_WRONLY | O_CREAT, 0644)), 0);
	OWNER_EXPECT(&c, chmod("mine", 04750), 0);
	OWNER_EXPECT(&c, utimensat(AT_FDCWD, "mine", explicit_times, 0), 0);
	OWNER_EXPECT(&c, chown("mine", (uid_t)-1, (gid_t)-1), 0);
	/* POSIX: a successful chown by an unprivileged caller clears set-user-ID. */
	struct stat st;
	OWNER_EXPECT(&c, stat("mine", &st), 0);
	if (st.st_mode & S_ISUID) {
		fprintf(stderr, "  as nobody: chown(\"mine\", -1, -1) left mode 0%o\n",
			(unsigned)(st.st_mode & 07777));
		c.failures++;
	}
	OWNER_EXPECT(&c, chmod("mine", 04750), 0);
	OWNER_EXPECT(&c, chown("mine", uid, gid), 0);
	OWNER_EXPECT(&c, stat("mine", &st), 0);
	if (st.st_mode & S_ISUID) {
		fprintf(stderr, "  as nobody: chown(\"mine\", own uid, own gid) left mode 0%o\n",
			(unsigned)(st.st_mode & 07777));
		c.failures++;
	}
	OWNER_EXPECT(&c, chown("mine", 0, (gid_t)-1), EPERM);
	OWNER_EXPECT(&c, chown("mine", (uid_t)-1, OTHER_GROUP), EPERM);
	return c.failures;
}

/* Only the owner changes mode, times (other than to "now" with write
 * permission) and group; nobody gives a file away: EPERM, or EACCES for
 * "now" without write permission. The owner's chown clears set-user-ID. */
static void test_perm_chmod_chown_utimensat_by_non_owner(void **state)
{
	struct stat st;
	uid_t uid;
	gid_t gid;

	posix_require_root();
	posix_other_user(&uid, &gid);
	assert_ok(chmod(".", 0777));
	close(open("rootfile", O_WRONLY | O_CREAT, 0666));
	assert_ok(chmod("rootfile", 0666));
	close(open("rootro", O_WRONLY | O_CREAT, 0644));

	owner_as_nobody(owner_try_attr_changes, NULL);
	assert_ok(stat("rootfile", &st));
	assert_int_equal(st.st_mode & 07777, 0666);
	assert_int_equal(st.st_uid, 0);
	assert_ok(stat("mine", &st));
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(st.st_mtim.tv_sec, 1000000000);
	owner_expect_ids("mine", uid, gid);
}

static int owner_write_readonly_created(void *arg)
{
	struct owner_checks c = {0};

	/* git and others create read-only files and write them through the
	 * descriptor open returned. */
	int fd = open("ro_new", O_WRONLY | O_CREAT | O_EXCL, 0444);
	OWNER_EXPECT(&c, fd, 0);
	OWNER_EXPECT(&c, write(fd, "0123456789", 10), 0);
	OWNER_EXPECT(&c, fsync(fd), 0);
	OWNER_EXPECT(&c, owner_close(fd), 0);
	/* Permission is checked at open: chmod 0 later does not stop a write. */
	fd = open("later", O_RDWR | O_CREAT | O_EXCL, 0644);
	OWNER_EXPECT(&c, fd, 0);
	OWNER_EXPECT(&c, fchmod(fd, 0), 0);
	OWNER_EXPECT(&c, write(fd, "abcdef", 6), 0);
	OWNER_EXPECT(&c, pwrite(fd, "XY", 2, 100000), 0);
	OWNER_EXPECT(&c, fsync(fd), 0);
	OWNER_EXPECT(&c, owner_close(fd), 0);
	OWNER_EXPECT(&c, open("later", O_RDONLY), EACCES);
	OWNER_EXPECT(&c, open("ro_new", O_WRONLY), EACCES);
	return c.failures;
}

/* A file nobody creates read-only is still written through the descriptor
 * open returned, and one made unreadable after open stays writable through
 * it; both reach the backing file. */
static void test_perm_checked_at_open_not_at_write(void **state)
{
	struct posix_ctx *ctx = *state;
	struct stat st;

	posix_require_root();
	assert_ok(chmod(".", 0777));
	owner_as_nobody(owner_write_readonly_created, NULL);
	assert_ok(stat("ro_new", &st));
	assert_int_equal(st.st_mode & 07777, 0444);
	assert_int_equal(st.st_size, 10);
	assert_ok(stat("later", &st));
	assert_int_equal(st.st_mode & 07777, 0);
	assert_int_equal(st.st_size, 100002);
	int fd = open("ro_new", O_RDONLY);
	assert_ok(fd);
	posix_expect_backing_equals(ctx, "ro_new", fd);
	close(fd);
	fd = open("later", O_RDONLY);
	assert_ok(fd);
	posix_expect_backing_equals(ctx, "later", fd);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		POSIX_TEST(test_owner_file_dir_symlink_nodes_belong_to_creator),
		POSIX_TEST(test_owner_setgid_dir_passes_its_group_on),
		POSIX_TEST(test_owner_setgid_bit_stripped_for_non_member),
		POSIX_TEST(test_perm_other_user_gets_eacces),
		POSIX_TEST(test_perm_chmod_chown_utimensat_by_non_owner),
		POSIX_TEST(test_perm_checked_at_open_not_at_write),
	};

	return posix_run_group("posix_owner", tests, sizeof(tests) / sizeof(tests[0]));
}
