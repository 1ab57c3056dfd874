/* Test fixture shared by the pfs-stress tests: a temporary directory with a
 * data dir (d/) and a journal (j) built by hand, block by block, and the
 * helpers the tests that run pfs-stress share. Uses cmocka's assertions:
 * include <cmocka.h> first. */
#ifndef PFS_STRESS_FIXTURE_H
#define PFS_STRESS_FIXTURE_H

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stress_i.h"

struct stress_fixture {
	char root[64];
	char dir[96];
	char journal[96];
	char summary[96]; /* root/summary.json, for --summary */
	uint32_t block_size;
	uint64_t seed;
};

static inline int fixture_unlink_one(const char *path, const struct stat *st, int flag,
				     struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void fixture_remove_tree(const char *root)
{
	nftw(root, fixture_unlink_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Creates root/d and an empty journal root/j. */
static inline struct stress_fixture *fixture_new(void)
{
	struct stress_fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return NULL;
	strcpy(fx->root, "/tmp/pfs-stress-test-XXXXXX");
	if (!mkdtemp(fx->root)) {
		free(fx);
		return NULL;
	}
	snprintf(fx->dir, sizeof(fx->dir), "%s/d", fx->root);
	snprintf(fx->journal, sizeof(fx->journal), "%s/j", fx->root);
	snprintf(fx->summary, sizeof(fx->summary), "%s/summary.json", fx->root);
	mkdir(fx->dir, 0755);
	fx->block_size = 4096;
	fx->seed = 7;
	return fx;
}

static inline void fixture_free(struct stress_fixture *fx)
{
	if (!fx)
		return;
	fixture_remove_tree(fx->root);
	free(fx);
}

/* cmocka setup and teardown: a fresh fixture in *state. */
static inline int fixture_setup(void **state)
{
	*state = fixture_new();
	return *state ? 0 : -1;
}

static inline int fixture_teardown(void **state)
{
	fixture_free(*state);
	return 0;
}

/* The whole (non-empty) file as a string; the caller frees it. */
static inline char *fixture_read(const char *path)
{
	FILE *f = fopen(path, "r");
	struct stat st;
	char *text;

	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	assert_true(st.st_size > 0);
	text = malloc((size_t)st.st_size + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)st.st_size, f), st.st_size);
	text[st.st_size] = '\0';
	fclose(f);
	return text;
}

/* Verifies fx's data dir against its journal; the caller frees the result. */
static inline struct stress_verify_result *fixture_verify(struct stress_fixture *fx)
{
	struct stress_verify_result *res = calloc(1, sizeof(*res));
	char why[256] = "";

	assert_non_null(res);
	assert_int_equal(stress_verify_run(fx->dir, fx->journal, NULL, res, why, sizeof(why)), 0);
	return res;
}

#define FIXTURE_CHILD_TIMEOUT_S 60

/* fork() for an in-process pfs-stress run: in the child (0 returned) stdout,
 * where the JSON summary goes, is /dev/null. */
static inline pid_t fixture_fork(void)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDOUT_FILENO);
	}
	return pid;
}

/* The child's exit status (128 + signal if killed). Bounded: a child alive
 * after FIXTURE_CHILD_TIMEOUT_S is killed and the test fails. */
static inline int fixture_wait(pid_t pid)
{
	int status = -1;

	for (int waited = 0; waited < FIXTURE_CHILD_TIMEOUT_S * 10; waited++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fail_msg("pfs-stress run did not finish within %d s", FIXTURE_CHILD_TIMEOUT_S);
	return -1;
}

/* Appends raw text to the journal. */
static inline void fixture_journal_raw(struct stress_fixture *fx, const char *text)
{
	FILE *f = fopen(fx->journal, "a");

	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static inline void fixture_journal(struct stress_fixture *fx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline void fixture_journal(struct stress_fixture *fx, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fixture_journal_raw(fx, line);
}

/* The start record of a journal for `files` files of `blocks` blocks. */
static inline void fixture_journal_start(struct stress_fixture *fx, unsigned files, unsigned blocks)
{
	fixture_journal(fx,
			"S start v=1 seed=%" PRIu64 " threads=1 files=%u file_size=%u "
			"block=%u fsync_every=0 on_error=skip overwrite_pct=0 t_us=1\n",
			fx->seed, files, blocks * fx->block_size, fx->block_size);
}

static inline void fixture_image(const struct stress_fixture *fx, uint8_t *buf, unsigned file,
				 uint64_t block, uint64_t gen)
{
	struct stress_block_id id = {.seed = fx->seed,
				     .file = file,
				     .block_size = fx->block_size,
				     .block = block,
				     .gen = gen};

	if (gen)
		stress_block_fill(buf, &id);
	else
		memset(buf, 0, fx->block_size);
}

/* Stores at (file, block) the first `split` bytes of generation gen_head and
 * the rest of generation gen_tail (generation 0 = zeros). */
static inline void fixture_block_mix(struct stress_fixture *fx, unsigned file, uint64_t block,
				     uint64_t gen_head, uint64_t gen_tail, uint32_t split)
{
	uint8_t *head = malloc(fx->block_size), *tail = malloc(fx->block_size);
	char path[160];
	int fd;

	if (!head || !tail)
		abort();
	fixture_image(fx, head, file, block, gen_head);
	fixture_image(fx, tail, file, block, gen_tail);
	memcpy(tail, head, split);
	snprintf(path, sizeof(path), "%s/f%04u.dat", fx->dir, file);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || pwrite(fd, tail, fx->block_size, (off_t)(block * fx->block_size)) !=
			      (ssize_t)fx->block_size)
		abort();
	close(fd);
	free(head);
	free(tail);
}

static inline void fixture_block(struct stress_fixture *fx, unsigned file, uint64_t block,
				 uint64_t gen)
{
	fixture_block_mix(fx, file, block, gen, gen, 0);
}

#endif /* PFS_STRESS_FIXTURE_H */
