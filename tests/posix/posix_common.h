/*
 * Shared fixture of the POSIX conformance tests (tests/posix/posix_*.c).
 *
 * The tests run in a directory named by the environment, so the same
 * executable checks a plain directory (is the test right? it must pass on
 * ext4) and a pressurefs mount (is the daemon right?):
 *
 *   PFS_POSIX_DIR      where the tests make their files (default: a new temp
 *                      dir under $TMPDIR or /tmp, removed afterwards)
 *   PFS_POSIX_BACKING  the same directory seen in the backing dir, for the
 *                      checks of what an fsync put there (default: PFS_POSIX_DIR)
 *   PFS_POSIX_CTL      the mount's control directory (.pressurefs); when set,
 *                      drop_caches is written where a test wants cold caches
 *   PFS_POSIX_KEEP     leave each test's directory behind
 *
 * Each test runs in its own fresh directory PFS_POSIX_DIR/<test name>, which
 * is the working directory while it runs, so names in the tests are
 * relative. Tests that act as another user need root (they are skipped
 * otherwise) and use nobody/nogroup.
 */
#ifndef PFS_POSIX_COMMON_H
#define PFS_POSIX_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>

struct posix_ctx {
	const char *name;   /* the test's name, also its directory's */
	char dir[4096];	    /* absolute path of the test directory */
	char backing[4096]; /* the same directory in the backing dir */
};

/* Register a test with its own directory. */
#define POSIX_TEST(f)                                                                              \
	cmocka_unit_test_prestate_setup_teardown(f, posix_setup, posix_teardown, (void *)#f)

int posix_setup(void **state);
int posix_teardown(void **state);

/* Run the group; prints where it ran. Returns the cmocka status. */
int posix_run_group(const char *group, const struct CMUnitTest *tests, size_t count);

/* ---- data ---- */

/* Fill buf with the pattern of a (seed, offset): never zero. */
void posix_fill(unsigned char *buf, size_t len, uint64_t seed, uint64_t off);

/* Write len bytes of pattern (seed, off) at off; asserts a full write. */
void posix_write_pattern(int fd, uint64_t seed, uint64_t off, size_t len);

/* Assert [off, off+len) of fd holds pattern (seed, off). */
void posix_expect_pattern(int fd, uint64_t seed, uint64_t off, size_t len);

/* Assert [off, off+len) of fd reads as zeros. */
void posix_expect_zero(int fd, uint64_t off, size_t len);

/* pread until len or EOF; returns bytes read, asserts no error. */
size_t posix_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* pwrite all of buf at off; asserts a full write. */
void posix_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* Assert two open files hold the same bytes and size. */
void posix_expect_same_content(int fd_a, int fd_b);

/* ---- the backing directory ---- */

/* Open name (relative to the test dir) in the backing dir; -1 with errno. */
int posix_backing_open(const struct posix_ctx *ctx, const char *name, int flags);

/* Assert the backing file holds the same bytes and size as fd through the
 * mount: what an fsync must have put there. */
void posix_expect_backing_equals(const struct posix_ctx *ctx, const char *name, int fd);

/* Whether the tests run on a mount with a separate backing dir. */
int posix_on_mount(void);

/* Ask the daemon to drop its clean cached pages (no-op on a plain dir).
 * Returns 0, or -errno from the control file. */
int posix_cache_drop(void);

/* Write back everything the daemon holds dirty (the control dir's sync;
 * syncfs on a plain dir). Returns 0 or -errno. */
int posix_cache_sync(void);

/* Read a control file into buf (NUL-terminated); returns its length,
 * -ENOENT on a plain dir, or -errno. */
long posix_ctl_read(const char *name, char *buf, size_t len);

/* Names in the working directory, sorted, joined by '/' into buf (for
 * comparing whole listings in one assertion). */
void posix_list_dir(const char *dir, char *buf, size_t len);

/* ---- other users ---- */

/* The unprivileged user and group the ownership tests act as. */
void posix_other_user(uid_t *uid, gid_t *gid);

/* Skip the calling test unless running as root. */
void posix_require_root(void);

/* Run fn(arg) in a child with uid/gid (no supplementary groups) and the
 * test directory as its working directory; returns fn's result (0..255),
 * or -1 if the child died. The child is bounded by an alarm. */
int posix_as_user(uid_t uid, gid_t gid, int (*fn)(void *arg), void *arg);

/* ---- checks with errno ---- */

/* Assert rc == -1 and errno == err (with the errno names in the message). */
#define assert_errno(rc, err) posix_assert_errno((long)(rc), (err), #rc, __FILE__, __LINE__)
void posix_assert_errno(long rc, int err, const char *what, const char *file, int line);

/* Assert rc == 0 (or, for calls that return a count or fd, >= 0), with
 * strerror(errno) in the message. */
#define assert_ok(rc) posix_assert_ok((long)(rc), #rc, __FILE__, __LINE__)
void posix_assert_ok(long rc, const char *what, const char *file, int line);

const char *posix_errno_name(int err);

/* In a test: fail and return when an allocation failed (cmocka's fail is
 * not marked noreturn, so the compiler needs the return). */
#define posix_require_alloc(p)                                                                     \
	do {                                                                                       \
		if (!(p)) {                                                                        \
			fail_msg("out of memory");                                                 \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#endif
