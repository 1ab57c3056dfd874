/*
 * Helpers shared by the allocator's unit tests: a log host that captures
 * lines, tiny policy tables, and a bounded poll.
 */
#ifndef PFS_ALLOC_TEST_H
#define PFS_ALLOC_TEST_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc_i.h"

/* Captured log lines, appended one per call. */
struct test_log {
	char text[16384];
	size_t used;
	unsigned lines;
};

static inline void test_log_fn(void *data, enum pfs_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void test_log_fn(void *data, enum pfs_log_level level, const char *fmt, ...)
{
	struct test_log *log = data;
	va_list ap;
	int n;

	(void)level;
	va_start(ap, fmt);
	n = vsnprintf(log->text + log->used, sizeof(log->text) - log->used, fmt, ap);
	va_end(ap);
	if (n > 0 && log->used + (size_t)n + 1 < sizeof(log->text)) {
		log->used += (size_t)n;
		log->text[log->used++] = '\n';
		log->text[log->used] = '\0';
	}
	log->lines++;
}

/* Count how often needle occurs in haystack. */
static inline unsigned test_count_substr(const char *haystack, const char *needle)
{
	unsigned n = 0;

	for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static inline void test_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Wait (at most ~10 s) until someone sleeps in alloc_wait_for_memory(). */
static inline int test_wait_for_waiter(struct alloc *a)
{
	for (unsigned i = 0; i < 10000; i++) {
		if (_alloc_waiters(a) > 0)
			return 0;
		test_sleep_ms(1);
	}
	return -1;
}

static inline uint64_t test_stat(struct alloc *a, int site, enum alloc_stat stat)
{
	struct alloc_stats st;

	alloc_stats_read(a, &st);
	return site < 0 ? st.total[stat] : st.site[site][stat];
}

#define TEST_POLICY(var, policy_name, decide_fn)                                                   \
	static const struct pfs_policy var = {                                                     \
		.abi_version = PFS_POLICY_ABI_VERSION,                                             \
		.struct_size = sizeof(struct pfs_policy),                                          \
		.name = policy_name,                                                               \
		.summary = "test policy",                                                          \
		.decide = decide_fn,                                                               \
	}

#endif /* PFS_ALLOC_TEST_H */
