/* The pfs-stress command line, run as a user would: every bad flag is one
 * "pfs-stress: ..." line on stderr and status 2; --help is status 0.
 * argv[1] is the path of the pfs-stress executable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "stress_fixture.h"

static const char *exe_path;

struct cli_result {
	int status;
	char out[16384];
	char err[4096];
};

static void fd_slurp(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len < cap - 1 &&
	       ((n = read(fd, buf + len, cap - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	buf[len] = '\0';
}

/* Runs the executable with args (NULL-terminated); bounded to 20 s. */
static void cli_run(struct cli_result *r, const char *const *args)
{
	char *argv[32] = {(char *)exe_path};
	char outp[] = "/tmp/pfs-stress-cli-out-XXXXXX", errp[] = "/tmp/pfs-stress-cli-err-XXXXXX";
	int out = mkstemp(outp), err = mkstemp(errp);
	int argc = 1, status = 0;
	pid_t pid;

	assert_true(out >= 0 && err >= 0);
	for (; args[argc - 1] && argc < 31; argc++)
		argv[argc] = (char *)args[argc - 1];
	argv[argc] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(out, STDOUT_FILENO);
		dup2(err, STDERR_FILENO);
		execv(exe_path, argv);
		_exit(127);
	}
	for (int i = 0; i < 4000 && waitpid(pid, &status, WNOHANG) != pid; i++)
		usleep(5000);
	if (!WIFEXITED(status)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	assert_true(WIFEXITED(status));
	r->status = WEXITSTATUS(status);
	lseek(out, 0, SEEK_SET);
	lseek(err, 0, SEEK_SET);
	fd_slurp(out, r->out, sizeof(r->out));
	fd_slurp(err, r->err, sizeof(r->err));
	close(out);
	close(err);
	unlink(outp);
	unlink(errp);
}

/* Status 2, nothing on stdout, one line on stderr naming the problem. */
static void assert_usage_error(const char *const *args, const char *needle)
{
	struct cli_result *r = calloc(1, sizeof(*r));
	char *nl;

	cli_run(r, args);
	if (r->status != 2 || !strstr(r->err, needle))
		fail_msg("args[0..] '%s' '%s': status %d, stderr '%s' (wanted '%s')", args[0],
			 args[1] ? args[1] : "", r->status, r->err, needle);
	assert_int_equal(strncmp(r->err, "pfs-stress: ", 12), 0);
	nl = strchr(r->err, '\n');
	assert_non_null(nl);
	assert_int_equal(nl[1], '\0');
	assert_string_equal(r->out, "");
	free(r);
}

#define RUN(...)                                                                                   \
	((const char *const[]){"run", "--dir", "/nonexistent-pfs-stress", "--journal",             \
			       "/tmp/pfs-stress-cli-never-created", __VA_ARGS__, NULL})

static void test_cli_help_exits_0_and_documents_classes(void **state)
{
	static const char *const variants[][3] = {
		{"--help", NULL},
		{"run", "--help", NULL},
		{"verify", "--help", NULL},
	};
	struct cli_result *r = calloc(1, sizeof(*r));

	(void)state;
	for (unsigned i = 0; i < 3; i++) {
		cli_run(r, variants[i]);
		assert_int_equal(r->status, 0);
		assert_non_null(strstr(r->out, "usage: pfs-stress run"));
		assert_non_null(strstr(r->out, "lost_after_fsync"));
		assert_non_null(strstr(r->out, "--on-error"));
		assert_string_equal(r->err, "");
	}
	free(r);
}

static void test_cli_bad_command_exits_2_with_one_line(void **state)
{
	(void)state;
	assert_usage_error((const char *const[]){NULL}, "missing command");
	assert_usage_error((const char *const[]){"walk", NULL}, "unknown command 'walk'");
}

static void test_cli_every_bad_run_flag_exits_2_with_one_line(void **state)
{
	(void)state;
	assert_usage_error(RUN("--threads", "0"), "--threads '0'");
	assert_usage_error(RUN("--threads", "x"), "--threads 'x'");
	assert_usage_error(RUN("--threads", "9", "--files", "8"), "must not exceed --files");
	assert_usage_error(RUN("--files", "-1"), "--files '-1'");
	assert_usage_error(RUN("--file-size", "4Q"), "--file-size '4Q'");
	assert_usage_error(RUN("--file-size", "0"), "--file-size '0'");
	assert_usage_error(RUN("--file-size", "6K", "--block", "4K"), "multiple of");
	assert_usage_error(RUN("--block", "1000"), "--block '1000'");
	assert_usage_error(RUN("--block", "32M"), "--block '32M'");
	assert_usage_error(RUN("--duration", "0"), "--duration '0'");
	assert_usage_error(RUN("--duration", "1.5"), "--duration '1.5'");
	assert_usage_error(RUN("--fsync-every", "sometimes"), "'never'");
	assert_usage_error(RUN("--fsync-every", "0"), "--fsync-every '0'");
	assert_usage_error(RUN("--on-error", "panic"), "retry, skip or exit");
	assert_usage_error(RUN("--seed", "-3"), "--seed '-3'");
	assert_usage_error(RUN("--seed", "18446744073709551616"), "--seed");
	assert_usage_error(RUN("--overwrite-pct", "101"), "--overwrite-pct '101'");
	assert_usage_error(RUN("--stall-secs", "0"), "--stall-secs '0'");
	assert_usage_error(RUN("--bogus"), "unknown option '--bogus'");
	assert_usage_error(RUN("-x"), "unknown option '-x'");
	assert_usage_error(RUN("extra"), "unexpected argument 'extra'");
	assert_usage_error(RUN("--threads"), "'--threads' needs a value");
	assert_usage_error((const char *const[]){"run", "--dir", "/tmp", "--journal",
						 "/tmp/./pfs-stress-cli-j", NULL},
			   "must live outside --dir");
	assert_usage_error((const char *const[]){"run", "--journal", "/tmp/x", NULL},
			   "--dir DIR is required");
	assert_usage_error((const char *const[]){"run", "--dir", "/tmp", NULL},
			   "--journal FILE is required");
	/* None of them may have started a run. */
	assert_int_equal(access("/tmp/pfs-stress-cli-never-created", F_OK), -1);
}

static void test_cli_every_bad_verify_flag_exits_2_with_one_line(void **state)
{
	(void)state;
	assert_usage_error((const char *const[]){"verify", "--journal", "/tmp/j", NULL},
			   "--dir BACKING_DIR is required");
	assert_usage_error((const char *const[]){"verify", "--dir", "/tmp", NULL},
			   "--journal FILE is required");
	assert_usage_error((const char *const[]){"verify", "--dir", "/tmp", "--journal", "/tmp/j",
						 "--table", NULL},
			   "unknown option '--table'");
	assert_usage_error((const char *const[]){"verify", "--dir", "/tmp", "--journal",
						 "/nonexistent/journal", NULL},
			   "cannot read journal");
}

static void test_cli_verify_exit_status_follows_the_invariant(void **state)
{
	struct stress_fixture *fx = fixture_new();
	struct cli_result *r = calloc(1, sizeof(*r));

	(void)state;
	assert_non_null(fx);
	fixture_journal_start(fx, 1, 2);
	fixture_journal(fx, "W 0 0 1 4096 0 1 1\nW 0 1 1 4096 0 1 1\nF 0 0 0 2 1\n");
	fixture_block(fx, 0, 0, 1);
	fixture_block(fx, 0, 1, 1);
	cli_run(r,
		(const char *const[]){"verify", "--dir", fx->dir, "--journal", fx->journal, NULL});
	assert_int_equal(r->status, 0);
	assert_non_null(strstr(r->out, "invariant: OK"));
	fixture_block(fx, 0, 1, 0); /* an fsynced block vanishes */
	cli_run(r, (const char *const[]){"verify", "--dir", fx->dir, "--journal", fx->journal,
					 "--json", NULL});
	assert_int_equal(r->status, 1);
	assert_non_null(strstr(r->out, "\"lost_after_fsync_blocks\": 1"));
	assert_non_null(strstr(r->out, "\"invariant_ok\": false"));
	free(r);
	fixture_free(fx);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_help_exits_0_and_documents_classes),
		cmocka_unit_test(test_cli_bad_command_exits_2_with_one_line),
		cmocka_unit_test(test_cli_every_bad_run_flag_exits_2_with_one_line),
		cmocka_unit_test(test_cli_every_bad_verify_flag_exits_2_with_one_line),
		cmocka_unit_test(test_cli_verify_exit_status_follows_the_invariant),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-pfs-stress\n", argv[0]);
		return 2;
	}
	exe_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
