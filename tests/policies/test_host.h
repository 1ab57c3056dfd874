/*
 * Test helpers shared by the policy tests: loading a policy, a
 * pfs_policy_host that captures what a policy logs, stderr capture, and a
 * failure record to fill in.
 */
#ifndef PFS_TEST_POLICY_HOST_H
#define PFS_TEST_POLICY_HOST_H

#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdbool.h>
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

/*
 * A host with every ABI 4 service, backed by counters a test sets and
 * reads: a budget of `room` bytes for reserves, a reclaimer that records
 * its calls, a dirty-byte count, a page size and a shutdown flag.
 */
/* A reserve as this host makes it: bytes only, no elements to hand out
 * (the allocator's own tests take elements). */
struct pfs_reserve {
	size_t elem_size;
	unsigned count;
	bool live;
};

#define TEST_RESERVES 8

struct test_services {
	struct test_log log;
	uint64_t room;	  /* reserve bytes that fit */
	uint64_t charged; /* reserve bytes charged now */
	unsigned charges, uncharges;
	struct pfs_reserve reserves[TEST_RESERVES]; /* in the order made */
	unsigned nreserves;
	unsigned reclaims;
	size_t reclaim_want;
	unsigned reclaim_flags;
	unsigned waits;
	uint64_t dirty;
	uint64_t page_size;
	unsigned shutdowns;
	char why[256];
};

static inline struct test_services *test_services_of(void *data)
{
	return (struct test_services *)data;
}

static inline struct pfs_reserve *test_svc_reserve_create(void *data, size_t elem_size,
							  unsigned count)
{
	struct test_services *t = test_services_of(data);
	uint64_t bytes = (uint64_t)elem_size * count;
	struct pfs_reserve *r;

	t->charges++;
	assert_true(elem_size > 0 && count > 0);
	if (bytes > t->room - t->charged || t->nreserves == TEST_RESERVES)
		return NULL;
	t->charged += bytes;
	r = &t->reserves[t->nreserves++];
	*r = (struct pfs_reserve){.elem_size = elem_size, .count = count, .live = true};
	return r;
}

static inline void test_svc_reserve_destroy(void *data, struct pfs_reserve *r)
{
	struct test_services *t = test_services_of(data);
	uint64_t bytes = (uint64_t)r->elem_size * r->count;

	t->uncharges++;
	assert_true(r->live);
	assert_true(bytes <= t->charged);
	r->live = false;
	t->charged -= bytes;
}

static inline size_t test_svc_reclaim(void *data, size_t want, unsigned flags)
{
	struct test_services *t = test_services_of(data);

	t->reclaims++;
	t->reclaim_want = want;
	t->reclaim_flags = flags;
	return 0;
}

static inline int test_svc_wait(void *data, uint64_t timeout_ns)
{
	test_services_of(data)->waits++;
	return -ETIMEDOUT;
}

static inline uint64_t test_svc_dirty(void *data)
{
	return test_services_of(data)->dirty;
}

static inline uint64_t test_svc_page_size(void *data)
{
	return test_services_of(data)->page_size;
}

static inline void test_svc_shutdown(void *data, const char *why)
{
	struct test_services *t = test_services_of(data);

	if (t->shutdowns++ == 0)
		snprintf(t->why, sizeof(t->why), "%s", why);
}

/* The log goes to t->log (struct test_log is its first member). */
static inline struct pfs_policy_host test_services_host(struct test_services *t)
{
	memset(t, 0, sizeof(*t));
	return (struct pfs_policy_host){
		.log = test_log_append,
		.host_data = t,
		.reserve_create = test_svc_reserve_create,
		.reserve_destroy = test_svc_reserve_destroy,
		.reclaim = test_svc_reclaim,
		.wait_for_memory = test_svc_wait,
		.dirty_bytes = test_svc_dirty,
		.page_size = test_svc_page_size,
		.shutdown = test_svc_shutdown,
	};
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

/* A reserve-taking policy (mempool, write_through) loaded with reserve=
 * and wait_ms=3, or with its defaults when reserve is NULL. */
static inline struct policy_handle *test_reserve_policy_load(const char *spec, const char *reserve,
							     const struct pfs_policy_host *host)
{
	const char *keys[] = {"reserve", "wait_ms"};
	const char *values[] = {reserve, "3"};

	return test_policy_load(spec, keys, values, reserve ? 2 : 0, host);
}

/* The policy's verdict on a failed attempt of size bytes at site. */
static inline struct pfs_decision test_policy_ask(struct policy_handle *h, const char *site,
						  size_t size)
{
	struct pfs_failure f = test_failure_make();

	f.site = site;
	f.size = size;
	return h->ops->decide(h->state, &f);
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
