/* pfs-stress run against a mount that misbehaves, simulated by wrapping
 * pwrite and fsync (-Wl,--wrap): a call that stalls is counted, a call that
 * never returns ends the run as hung (status 4, never waiting forever),
 * ENOTCONN stops the writers instead of looping on a dead mount, and a
 * failed fsync is retried and journaled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdatomic.h>

#include "stress_fixture.h"

enum wrap_mode {
	WRAP_NONE,
	WRAP_HANG_FIRST,
	WRAP_STALL_FIFTH,
	WRAP_ENOTCONN_AFTER_100,
	WRAP_FSYNC_EIO_ONCE,
};

static enum wrap_mode wrap_mode;
static atomic_uint wrap_calls;

int __real_fsync(int fd);
int __wrap_fsync(int fd);
ssize_t __real_pwrite64(int fd, const void *buf, size_t n, off_t off);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t n, off_t off);

ssize_t __wrap_pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	unsigned call = atomic_fetch_add(&wrap_calls, 1) + 1;

	switch (wrap_mode) {
	case WRAP_HANG_FIRST:
		for (;;)
			pause();
	case WRAP_STALL_FIFTH:
		if (call == 5)
			usleep(1500000);
		break;
	case WRAP_ENOTCONN_AFTER_100:
		if (call > 100) {
			errno = ENOTCONN;
			return -1;
		}
		break;
	case WRAP_NONE:
	case WRAP_FSYNC_EIO_ONCE:
		break;
	}
	return __real_pwrite64(fd, buf, n, off);
}

static atomic_uint fsync_calls;

int __wrap_fsync(int fd)
{
	if (wrap_mode == WRAP_FSYNC_EIO_ONCE && atomic_fetch_add(&fsync_calls, 1) == 0) {
		errno = EIO;
		return -1;
	}
	return __real_fsync(fd);
}

/* Runs pfs-stress on 2 files of 64K with the wrapper in mode; its status. */
static int run_stress(struct stress_fixture *fx, enum wrap_mode mode, const char *duration,
		      const char *threads)
{
	char *argv[] = {"pfs-stress",
			"run",
			"--dir",
			fx->dir,
			"--journal",
			fx->journal,
			"--quiet",
			"--stall-secs",
			"1",
			"--fsync-every",
			mode == WRAP_FSYNC_EIO_ONCE ? "4" : "never",
			"--duration",
			(char *)duration,
			"--threads",
			(char *)threads,
			"--files",
			"2",
			"--file-size",
			"64K",
			"--summary",
			fx->summary,
			NULL};
	pid_t pid = fixture_fork();

	if (pid == 0) {
		wrap_mode = mode;
		_exit(stress_main((int)(sizeof(argv) / sizeof(argv[0])) - 1, argv));
	}
	return fixture_wait(pid);
}

static void test_watchdog_hung_call_ends_run_with_status_4(void **state)
{
	struct stress_fixture *fx = *state;
	char *text;

	assert_int_equal(run_stress(fx, WRAP_HANG_FIRST, "1", "1"), 4);
	text = fixture_read(fx->summary);
	assert_non_null(strstr(text, "\"hung\": true"));
	assert_non_null(strstr(text, "\"exit_reason\": \"hung\""));
	assert_non_null(strstr(text, "\"stalls\": 1,"));
	free(text);
	text = fixture_read(fx->journal);
	assert_non_null(strstr(text, "E end reason=hung"));
	assert_non_null(strstr(text, "\nI 0 0 1 ")); /* the write it died in */
	assert_null(strstr(text, "\nW "));
	free(text);
}

static void test_watchdog_counts_a_stalled_call_once(void **state)
{
	struct stress_fixture *fx = *state;
	char *text, *p;

	assert_int_equal(run_stress(fx, WRAP_STALL_FIFTH, "2", "1"), 0);
	text = fixture_read(fx->summary);
	assert_non_null(strstr(text, "\"stalls\": 1,"));
	assert_non_null(strstr(text, "\"hung\": false"));
	p = strstr(text, "\"longest_stall_ms\": ");
	assert_non_null(p);
	assert_true(strtoul(p + 20, NULL, 10) >= 1500);
	free(text);
}

static void test_watchdog_dead_mount_stops_writers_without_retrying(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;
	char *text;

	/* retry is the default: ENOTCONN must still stop each thread. */
	assert_int_equal(run_stress(fx, WRAP_ENOTCONN_AFTER_100, "30", "2"), 0);
	text = fixture_read(fx->summary);
	assert_non_null(strstr(text, "\"enotconn\": 2,"));
	assert_non_null(strstr(text, "\"ENOTCONN\": 2"));
	assert_non_null(strstr(text, "\"retries\": 0,"));
	assert_non_null(strstr(text, "\"writes_ok\": 100,"));
	assert_non_null(strstr(text, "\"exit_reason\": \"dead_mount\""));
	free(text);
	res = fixture_verify(fx);
	/* How the 100 writes split between the threads is timing; what holds
	 * is: each thread's last attempt (on its own file) was refused and
	 * every other block mentioned holds its latest acknowledged data. */
	assert_true(res->blocks > 2 && res->blocks <= 32);
	assert_int_equal(res->count[STRESS_CLASS_REFUSED], 2);
	assert_int_equal(res->count[STRESS_CLASS_INTACT], res->blocks - 2);
	assert_true(stress_verify_invariant_holds(res));
	free(res);
}

static void test_watchdog_failed_fsync_is_journaled_and_retried(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;
	char *text;

	assert_int_equal(run_stress(fx, WRAP_FSYNC_EIO_ONCE, "1", "1"), 0);
	text = fixture_read(fx->summary);
	assert_non_null(strstr(text, "\"fsync_errors\": {\"EIO\": 1}"));
	assert_non_null(strstr(text, "\"retries\": 1,"));
	free(text);
	text = fixture_read(fx->journal);
	/* The first fsync (after 4 writes to file 0) failed, the retry worked. */
	assert_non_null(strstr(text, "\nF 0 -1 5 "));
	assert_non_null(strstr(text, "\nF 0 0 0 "));
	free(text);
	/* The data is all there, so the poisoned acknowledgements are intact. */
	res = fixture_verify(fx);
	assert_int_equal(res->count[STRESS_CLASS_INTACT], res->blocks);
	assert_true(stress_verify_invariant_holds(res));
	free(res);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_watchdog_hung_call_ends_run_with_status_4),
		T(test_watchdog_counts_a_stalled_call_once),
		T(test_watchdog_dead_mount_stops_writers_without_retrying),
		T(test_watchdog_failed_fsync_is_journaled_and_retried),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
