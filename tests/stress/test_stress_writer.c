/* pfs-stress run end to end on a plain temporary directory: the journal it
 * leaves, what verify makes of it, the same seed giving the same intended
 * writes, and the --on-error modes against real refusals (RLIMIT_FSIZE
 * makes the kernel return short counts and EFBIG). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <sys/resource.h>

#include "stress_fixture.h"

struct run_opts {
	rlim_t fsize_limit;    /* 0: none */
	bool journal_via_pipe; /* the limit must not apply to the journal */
};

/* Copies the pipe into path until EOF. */
static void pipe_drain(int fd, const char *path)
{
	FILE *out = fopen(path, "w");
	char buf[65536];
	ssize_t n;

	assert_non_null(out);
	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			fwrite(buf, 1, (size_t)n, out);
	fclose(out);
}

/* Runs "pfs-stress run --dir D --journal J --quiet ARGS..." in a child;
 * returns its exit status (bounded, see fixture_wait). */
static int run_stress(struct stress_fixture *fx, const struct run_opts *ro, ...)
{
	char *argv[40] = {"pfs-stress", "run",	     "--dir",  fx->dir,
			  "--journal",	fx->journal, "--quiet"};
	char pipe_path[32];
	int argc = 7, p[2] = {-1, -1};
	pid_t pid;
	va_list ap;

	va_start(ap, ro);
	while (argc < 39 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	if (ro && ro->journal_via_pipe) {
		assert_int_equal(pipe(p), 0);
		snprintf(pipe_path, sizeof(pipe_path), "/dev/fd/%d", p[1]);
		argv[5] = pipe_path;
	}
	pid = fixture_fork();
	if (pid == 0) {
		if (p[0] >= 0)
			close(p[0]);
		if (ro && ro->fsize_limit) {
			struct rlimit rl = {ro->fsize_limit, ro->fsize_limit};

			signal(SIGXFSZ, SIG_IGN);
			setrlimit(RLIMIT_FSIZE, &rl);
		}
		_exit(stress_main(argc, argv));
	}
	if (p[0] >= 0) {
		close(p[1]);
		pipe_drain(p[0], fx->journal);
		close(p[0]);
	}
	return fixture_wait(pid);
}

static void test_run_then_verify_finds_every_block_intact(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;
	char *text;

	assert_int_equal(run_stress(fx, NULL, "--duration", "1", "--threads", "2", "--files", "4",
				    "--file-size", "64K", "--fsync-every", "8", "--seed", "5",
				    "--summary", fx->summary, NULL),
			 0);
	res = fixture_verify(fx);
	assert_int_equal(res->blocks, 4 * 16);
	assert_int_equal(res->count[STRESS_CLASS_INTACT], 4 * 16);
	assert_int_equal(res->bytes[STRESS_CLASS_INTACT], 4 * 64 * 1024);
	assert_true(res->journal_ended);
	assert_false(res->journal_partial_tail);
	assert_int_equal(res->journal_bad_lines, 0);
	assert_true(stress_verify_invariant_holds(res));
	text = fixture_read(fx->summary);
	assert_non_null(strstr(text, "\"exit_reason\": \"duration\""));
	assert_non_null(strstr(text, "\"hung\": false"));
	assert_non_null(strstr(text, "\"write_errors_total\": 0"));
	assert_null(strstr(text, "\"fsyncs_ok\": 0,"));
	free(text);
	free(res);
}

/* The (file, block, gen) intents of thread t, in order. */
static size_t intents_of_thread(const char *journal, unsigned threads, unsigned t,
				uint64_t (*out)[3], size_t max)
{
	FILE *f = fopen(journal, "r");
	char line[256];
	size_t n = 0;

	assert_non_null(f);
	while (n < max && fgets(line, sizeof(line), f)) {
		struct stress_record rec;
		size_t len = strcspn(line, "\n");

		if (line[0] != 'I' || stress_record_parse(line, len, &rec) ||
		    rec.file % threads != t)
			continue;
		out[n][0] = rec.file;
		out[n][1] = rec.block;
		out[n][2] = rec.gen;
		n++;
	}
	fclose(f);
	return n;
}

#define SEQ_MAX 20000

/* Two threads on 4 files of 16 blocks, no fsync, for 1 s. */
static int run_seeded(struct stress_fixture *fx, const char *seed)
{
	return run_stress(fx, NULL, "--duration", "1", "--threads", "2", "--files", "4",
			  "--file-size", "64K", "--fsync-every", "never", "--seed", seed, NULL);
}

static void test_run_same_seed_gives_same_intended_writes(void **state)
{
	struct stress_fixture *fx = *state;
	uint64_t(*a)[3] = calloc(SEQ_MAX, sizeof(*a));
	uint64_t(*b)[3] = calloc(SEQ_MAX, sizeof(*b));
	const size_t first_pass = 4 / 2 * 16; /* blocks per thread */
	char first[128], second[128];

	snprintf(first, sizeof(first), "%s/first", fx->root);
	snprintf(second, sizeof(second), "%s/second", fx->root);
	assert_int_equal(run_seeded(fx, "9"), 0);
	assert_int_equal(rename(fx->journal, first), 0);
	assert_int_equal(run_seeded(fx, "9"), 0);
	assert_int_equal(rename(fx->journal, second), 0);
	assert_int_equal(run_seeded(fx, "10"), 0);
	for (unsigned t = 0; t < 2; t++) {
		size_t na = intents_of_thread(first, 2, t, a, SEQ_MAX);
		size_t nb = intents_of_thread(second, 2, t, b, SEQ_MAX);
		size_t common = na < nb ? na : nb;

		/* Timing decides only how far each run got. */
		assert_true(common > first_pass + 100);
		assert_memory_equal(a, b, common * sizeof(*a));
		/* The seed decides the rest; the first pass is the same. */
		nb = intents_of_thread(fx->journal, 2, t, b, SEQ_MAX);
		common = na < nb ? na : nb;
		assert_true(common > first_pass + 100);
		assert_memory_equal(a, b, first_pass * sizeof(*a));
		assert_memory_not_equal(a + first_pass, b + first_pass, 100 * sizeof(*a));
	}
	free(a);
	free(b);
}

/* 3.5 blocks of 4K per file: block 3 gets a short count, later ones EFBIG. */
static int run_fsize_limited(struct stress_fixture *fx, const char *on_error, const char *duration)
{
	static const struct run_opts fsize_limited = {.fsize_limit = 14336,
						      .journal_via_pipe = true};

	return run_stress(fx, &fsize_limited, "--duration", duration, "--threads", "1", "--files",
			  "1", "--file-size", "24K", "--on-error", on_error, "--summary",
			  fx->summary, NULL);
}

static void test_run_skip_drops_refused_data_and_verify_calls_it_refused(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;
	char *text;

	assert_int_equal(run_fsize_limited(fx, "skip", "1"), 0);
	res = fixture_verify(fx);
	assert_int_equal(res->blocks, 6);
	assert_int_equal(res->count[STRESS_CLASS_INTACT], 3);
	assert_int_equal(res->count[STRESS_CLASS_REFUSED], 3); /* the short one too */
	assert_int_equal(res->count[STRESS_CLASS_TORN_OR_CORRUPT], 0);
	assert_int_equal(res->count[STRESS_CLASS_LOST_AFTER_WRITE], 0);
	assert_true(stress_verify_invariant_holds(res));
	text = fixture_read(fx->summary);
	assert_non_null(strstr(text, "\"EFBIG\""));
	assert_null(strstr(text, "\"short_writes\": 0,"));
	assert_null(strstr(text, "\"bytes_refused\": 0,"));
	assert_non_null(strstr(text, "\"retries\": 0,"));
	free(text);
	free(res);
}

static void test_run_retry_backs_off_and_retries_until_duration(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;
	char *text;

	assert_int_equal(run_fsize_limited(fx, "retry", "1"), 0);
	res = fixture_verify(fx);
	/* The thread never gets past block 3: it is still retrying it. */
	assert_int_equal(res->blocks, 4);
	assert_int_equal(res->count[STRESS_CLASS_INTACT], 3);
	assert_int_equal(res->count[STRESS_CLASS_REFUSED], 1);
	text = fixture_read(fx->summary);
	assert_null(strstr(text, "\"retries\": 0,"));
	assert_non_null(strstr(text, "\"exit_reason\": \"duration\""));
	free(text);
	free(res);
}

static void test_run_on_error_exit_stops_with_status_3(void **state)
{
	struct stress_fixture *fx = *state;
	char *text;

	assert_int_equal(run_fsize_limited(fx, "exit", "30"), 3);
	text = fixture_read(fx->summary);
	assert_non_null(strstr(text, "\"exit_reason\": \"on_error_exit\""));
	free(text);
}

static void test_run_unopenable_file_is_an_error_not_a_crash(void **state)
{
	struct stress_fixture *fx = *state;
	struct stress_verify_result *res;
	char path[160];

	snprintf(path, sizeof(path), "%s/f0000.dat", fx->dir);
	assert_int_equal(mkdir(path, 0755), 0); /* open() fails with EISDIR */
	assert_int_equal(run_stress(fx, NULL, "--duration", "1", "--threads", "2", "--files", "2",
				    "--file-size", "16K", "--on-error", "skip", NULL),
			 0);
	res = fixture_verify(fx);
	assert_int_equal(res->blocks, 4); /* file 1 only */
	assert_int_equal(res->count[STRESS_CLASS_INTACT], 4);
	free(res);
}

static void test_run_missing_dir_is_a_setup_failure(void **state)
{
	struct stress_fixture *fx = *state;

	strcat(fx->dir, "/nope");
	assert_int_equal(run_stress(fx, NULL, "--duration", "1", NULL), 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_run_then_verify_finds_every_block_intact),
		T(test_run_same_seed_gives_same_intended_writes),
		T(test_run_skip_drops_refused_data_and_verify_calls_it_refused),
		T(test_run_retry_backs_off_and_retries_until_duration),
		T(test_run_on_error_exit_stops_with_status_3),
		T(test_run_unopenable_file_is_an_error_not_a_crash),
		T(test_run_missing_dir_is_a_setup_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
