/*
 * fs/killpriv.c on real files in a temp dir (no mount): what a flagged
 * write clears, that a known-clear inode costs no syscall (a bit set behind
 * the daemon's back stays until something invalidates the inode), and that
 * the kernel's cached attributes are dropped exactly when the mode changed.
 * libfuse's notify call is replaced by a counter.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon_i.h"
#include "ops/ops.h"

static unsigned notify_calls;
static fuse_ino_t notify_last_ino;

/* Stands in for libfuse's: count what the daemon asks the kernel to drop. */
int fuse_lowlevel_notify_inval_inode(struct fuse_session *se, fuse_ino_t ino, off_t off, off_t len)
{
	(void)se;
	(void)off;
	(void)len;
	notify_calls++;
	notify_last_ino = ino;
	return 0;
}

/* Stands in for fs/inode.c's. */
void pfs_inode_proc_path(const struct pfs_inode *inode, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", inode->fd);
}

struct kp_fixture {
	char dir[64];
	char path[128];
	struct pfs fs;
	struct pfs_inode inode;
};

static int kp_setup(void **state)
{
	struct kp_fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/pfs-test-killpriv.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/f", f->dir);
	notify_calls = 0;
	*state = f;
	return 0;
}

static int kp_teardown(void **state)
{
	struct kp_fixture *f = *state;

	if (f->inode.data_fd >= 0 && f->inode.data_fd != f->inode.fd)
		close(f->inode.data_fd);
	if (f->inode.fd > 0)
		close(f->inode.fd);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A regular file with mode, as the inode table would hold it. */
static void kp_file_make(struct kp_fixture *f, mode_t mode)
{
	int fd = open(f->path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	f->inode.fd = open(f->path, O_PATH | O_CLOEXEC);
	assert_true(f->inode.fd >= 0);
	f->inode.data_fd = fd;
	f->inode.type = S_IFREG;
}

static mode_t kp_mode(struct kp_fixture *f)
{
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	return st.st_mode & 07777;
}

static void test_privs_kill_clears_setuid_and_setgid(void **state)
{
	struct kp_fixture *f = *state;

	kp_file_make(f, 06775);
	assert_int_equal(pfs_privs_kill(&f->fs, &f->inode), 0);
	assert_int_equal(kp_mode(f), 0775);
	assert_int_equal(notify_calls, 1);
	assert_int_equal(notify_last_ino, (fuse_ino_t)(uintptr_t)&f->inode);
}

static void test_privs_kill_clears_setgid_without_group_exec(void **state)
{
	struct kp_fixture *f = *state;

	kp_file_make(f, 02644);
	assert_int_equal(pfs_privs_kill(&f->fs, &f->inode), 0);
	assert_int_equal(kp_mode(f), 0644);
}

static void test_privs_kill_plain_file_changes_nothing_and_notifies_nothing(void **state)
{
	struct kp_fixture *f = *state;

	kp_file_make(f, 0755);
	assert_int_equal(pfs_privs_kill(&f->fs, &f->inode), 0);
	assert_int_equal(kp_mode(f), 0755);
	assert_int_equal(notify_calls, 0);
}

/* Once clear, the check is skipped: a bit set behind the daemon's back
 * survives until invalidate, then the next kill takes it. */
static void test_privs_kill_skips_known_clear_inode_until_invalidated(void **state)
{
	struct kp_fixture *f = *state;

	kp_file_make(f, 0755);
	assert_int_equal(pfs_privs_kill(&f->fs, &f->inode), 0);
	assert_int_equal(chmod(f->path, 04755), 0);
	assert_int_equal(pfs_privs_kill(&f->fs, &f->inode), 0);
	assert_int_equal(kp_mode(f), 04755);
	pfs_privs_invalidate(&f->inode);
	assert_int_equal(pfs_privs_kill(&f->fs, &f->inode), 0);
	assert_int_equal(kp_mode(f), 0755);
	assert_int_equal(notify_calls, 1);
}

/* A check that began before an invalidation must not mark the inode clear:
 * the generation it read is gone. */
static void test_privs_invalidate_moves_to_a_new_even_generation(void **state)
{
	struct kp_fixture *f = *state;
	unsigned before;

	kp_file_make(f, 0644);
	assert_int_equal(pfs_privs_kill(&f->fs, &f->inode), 0);
	before = f->inode.privs_gen;
	assert_int_equal(before & 1u, 1u);
	pfs_privs_invalidate(&f->inode);
	assert_int_equal(f->inode.privs_gen & 1u, 0u);
	assert_true(f->inode.privs_gen > before);
	before = f->inode.privs_gen;
	pfs_privs_invalidate(&f->inode);
	assert_true(f->inode.privs_gen > before);
	assert_int_equal(f->inode.privs_gen & 1u, 0u);
}

static void test_privs_kill_removes_security_capability(void **state)
{
	/* v2: effective, CAP_NET_RAW permitted */
	static const unsigned char caps[20] = {0x01, 0, 0, 0x02, 0, 0x20};
	struct kp_fixture *f = *state;

	kp_file_make(f, 0755);
	if (setxattr(f->path, "security.capability", caps, sizeof(caps), 0) < 0) {
		if (errno == EPERM || errno == ENOTSUP)
			skip(); /* not root, or no xattrs on this fs */
		fail_msg("setxattr: %s", strerror(errno));
	}
	assert_int_equal(pfs_privs_kill(&f->fs, &f->inode), 0);
	assert_int_equal(getxattr(f->path, "security.capability", NULL, 0), -1);
	assert_int_equal(errno, ENODATA);
	assert_int_equal(kp_mode(f), 0755);
}

static void test_privs_kill_leaves_directories_alone(void **state)
{
	struct kp_fixture *f = *state;
	struct stat st;

	assert_int_equal(chmod(f->dir, 02755), 0);
	f->inode.fd = open(f->dir, O_PATH | O_CLOEXEC);
	assert_true(f->inode.fd >= 0);
	f->inode.data_fd = -1;
	f->inode.type = S_IFDIR;
	assert_int_equal(pfs_privs_kill(&f->fs, &f->inode), 0);
	assert_int_equal(stat(f->dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 02755);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_privs_kill_clears_setuid_and_setgid, kp_setup,
						kp_teardown),
		cmocka_unit_test_setup_teardown(test_privs_kill_clears_setgid_without_group_exec,
						kp_setup, kp_teardown),
		cmocka_unit_test_setup_teardown(
			test_privs_kill_plain_file_changes_nothing_and_notifies_nothing, kp_setup,
			kp_teardown),
		cmocka_unit_test_setup_teardown(
			test_privs_kill_skips_known_clear_inode_until_invalidated, kp_setup,
			kp_teardown),
		cmocka_unit_test_setup_teardown(
			test_privs_invalidate_moves_to_a_new_even_generation, kp_setup,
			kp_teardown),
		cmocka_unit_test_setup_teardown(test_privs_kill_removes_security_capability,
						kp_setup, kp_teardown),
		cmocka_unit_test_setup_teardown(test_privs_kill_leaves_directories_alone, kp_setup,
						kp_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
