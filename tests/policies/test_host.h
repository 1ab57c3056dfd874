/*
 * Test helpers shared by the policy tests: loading a policy, a
 * pfs_policy_host that captures what a policy logs, stderr capture, and a
 * failure record to fill in.
 */
#ifndef PFS_TEST_POLICY_HOST_H
#define PFS_TEST_POLICY_HOST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "loader.h"

/* policy_load(), or fail the test with the loader's message. */
static inline struct policy_handle *test_policy_load(const char *spec, const char *const *keys,
						     const char *const *values, unsigned nargs,
						     const struct pfs_policy_host *host)
{
	char err[512];
	struct policy_handle *h = policy_load(spec, keys, values, nargs, host, err, sizeof(err));

	if (!h)
		fail_msg("%s", err);
	return h;
}

struct test_log {
	char text[16384]; /* every line logged, each ending in '\n' */
	size_t used;
	unsigned lines;
	enum pfs_log_level last_level;
};

__attribute__((format(printf, 3, 4))) static inline void
test_log_append(void *data, enum pfs_log_level level, const char *fmt, ...)
{
	struct test_log *log = data;
	va_list ap;
	int n;

	log->lines++;
	log->last_level = level;
	if (log->used >= sizeof(log->text) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(log->text + log->used, sizeof(log->text) - log->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		log->used += (size_t)n;
	if (log->used < sizeof(log->text) - 1)
		log->text[log->used++] = '\n';
	log->text[log->used < sizeof(log->text) ? log->used : sizeof(log->text) - 1] = '\0';
}

static inline struct pfs_policy_host test_host_make(struct test_log *log)
{
	memset(log, 0, sizeof(*log));
	return (struct pfs_policy_host){.log = test_log_append, .host_data = log};
}

/* A failed attempt as the allocator would describe it. */
static inline struct pfs_failure test_failure_make(void)
{
	return (struct pfs_failure){
		.site = "cache_page",
		.site_id = 0,
		.size = 65536,
		.flags = PFS_ALLOC_NOFS,
		.cause = PFS_CAUSE_BUDGET,
		.attempt = 0,
		.caller_can_retry = 1,
		.mem_limit = 1048576,
		.balloon = 4096,
		.live = 1044480,
	};
}

/* Redirect fd 2 into a temporary file until test_stderr_end(). */
struct test_stderr {
	FILE *file;
	int saved;
};

static inline void test_stderr_begin(struct test_stderr *cap)
{
	fflush(stderr);
	cap->file = tmpfile();
	cap->saved = dup(STDERR_FILENO);
	if (cap->file && cap->saved >= 0)
		dup2(fileno(cap->file), STDERR_FILENO);
}

/* Restore stderr; copy what was written into buf. */
static inline void test_stderr_end(struct test_stderr *cap, char *buf, size_t len)
{
	size_t n = 0;

	fflush(stderr);
	if (cap->saved >= 0) {
		dup2(cap->saved, STDERR_FILENO);
		close(cap->saved);
	}
	if (cap->file) {
		rewind(cap->file);
		n = fread(buf, 1, len - 1, cap->file);
		fclose(cap->file);
	}
	buf[n] = '\0';
}

#endif /* PFS_TEST_POLICY_HOST_H */
