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
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "stress_fixture.h"

#define CHILD_TIMEOUT_S 60

enum wrap_mode {
	WRAP_NONE, WRAP_HANG_FIRST, WRAP_STALL_FIFTH, WRAP_ENOTCONN_AFTER_100, WRAP_FSYNC_EIO_ONCE,
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

static int run_stress(struct stress_fixture *fx, enum wrap_mode mode, const char *summary,
		      const char *duration, const char *threads)
{
	char *argv[] = { "pfs-stress", "run", "--dir", fx->dir, "--journal", fx->journal,
			 "--quiet", "--stall-secs", "1", "--fsync-every",
			 mode == WRAP_FSYNC_EIO_ONCE ? "4" : "never",
			 "--duration", (char *)duration,
			 "--threads", (char *)threads, "--files", "2", "--file-size", "64K",
			 "--summary", (char *)summary, NULL };
	int status = 0;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDOUT_FILENO);
		wrap_mode = mode;
		_exit(stress_main((int)(sizeof(argv) / sizeof(argv[0])) - 1, argv));
	}
	for (int i = 0; i < CHILD_TIMEOUT_S * 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fail_msg("pfs-stress did not end within %d s", CHILD_TIMEOUT_S);
	return -1;
}

static char *file_read(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t cap = 0;

	assert_non_null(f);
	assert_true(getdelim(&text, &cap, '\0', f) > 0);
	fclose(f);
	return text;
}

static int setup(void **state)
{
	*state = fixture_new();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	fixture_free(*state);
	return 0;
}

static void test_watchdog_hung_call_ends_run_with_status_4(void **state)
{
	struct stress_fixture *fx = *state;
	char summary[128];
	char *text;

	snprintf(summary, sizeof(summary), "%s/summary.json", fx->root);
	assert_int_equal(run_stress(fx, WRAP_HANG_FIRST, summary, "1", "1"), 4);
	text = file_read(summary);
	assert_non_null(strstr(text, "\"hung\": true"));
	assert_non_null(strstr(text, "\"exit_reason\": \"hung\""));
	assert_non_null(strstr(text, "\"stalls\": 1,"));
	free(text);
	text = file_read(fx->journal);
	assert_non_null(strstr(text, "E end reason=hung"));
	assert_non_null(strstr(text, "\nI 0 0 1 ")); /* the write it died in */
	assert_null(strstr(text, "\nW "));
	free(text);
}

static void test_watchdog_counts_a_stalled_call_once(void **state)
{
	struct stress_fixture *fx = *state;
	char summary[128];
	char *text, *p;

	snprintf(summary, sizeof(summary), "%s/summary.json", fx->root);
	assert_int_equal(run_stress(fx, WRAP_STALL_FIFTH, summary, "2", "1"), 0);
	text = file_read(summary);
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
	struct stress_verify_result *res = calloc(1, sizeof(*res));
	char summary[128], why[256];
	char *text;

	snprintf(summary, sizeof(summary), "%s/summary.json", fx->root);
	/* retry is the default: ENOTCONN must still stop each thread. */
	assert_int_equal(run_stress(fx, WRAP_ENOTCONN_AFTER_100, summary, "30", "2"), 0);
	text = file_read(summary);
	assert_non_null(strstr(text, "\"enotconn\": 2,"));
	assert_non_null(strstr(text, "\"ENOTCONN\": 2"));
	assert_non_null(strstr(text, "\"retries\": 0,"));
	assert_non_null(strstr(text, "\"writes_ok\": 100,"));
	assert_non_null(strstr(text, "\"exit_reason\": \"dead_mount\""));
	free(text);
	assert_int_equal(stress_verify_run(fx->dir, fx->journal, NULL, res, why, sizeof(why)), 0);
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
	struct stress_verify_result *res = calloc(1, sizeof(*res));
	char summary[128], why[256];
	char *text;

	snprintf(summary, sizeof(summary), "%s/summary.json", fx->root);
	assert_int_equal(run_stress(fx, WRAP_FSYNC_EIO_ONCE, summary, "1", "1"), 0);
	text = file_read(summary);
	assert_non_null(strstr(text, "\"fsync_errors\": {\"EIO\": 1}"));
	assert_non_null(strstr(text, "\"retries\": 1,"));
	free(text);
	text = file_read(fx->journal);
	/* The first fsync (after 4 writes to file 0) failed, the retry worked. */
	assert_non_null(strstr(text, "\nF 0 -1 5 "));
	assert_non_null(strstr(text, "\nF 0 0 0 "));
	free(text);
	/* The data is all there, so the poisoned acknowledgements are intact. */
	assert_int_equal(stress_verify_run(fx->dir, fx->journal, NULL, res, why, sizeof(why)), 0);
	assert_int_equal(res->count[STRESS_CLASS_INTACT], res->blocks);
	assert_true(stress_verify_invariant_holds(res));
	free(res);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

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
