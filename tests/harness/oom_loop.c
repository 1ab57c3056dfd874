/*
 * The fail-the-Nth-allocation loop: see oom_loop.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "oom_loop.h"

/* Child exit codes under an ABORT policy. */
enum {
	CHILD_CLEAN = 0,    /* countdown never fired, rc 0, no leak */
	CHILD_SURVIVED = 3, /* countdown fired but no abort */
	CHILD_BAD_RC = 4,
	CHILD_LEAKED = 5,
	CHILD_SETUP = 6,
};

const char *oom_kind_name(enum oom_kind kind)
{
	switch (kind) {
	case OOM_KIND_PROBE:
		return "probe";
	case OOM_KIND_FAIL:
		return "fail";
	case OOM_KIND_LOOP:
		return "loop";
	case OOM_KIND_RETRY:
		return "retry";
	case OOM_KIND_ABORT:
		return "abort";
	}
	return "?";
}

static enum oom_kind kind_probe(const struct pfs_policy *ops, void *state)
{
	struct pfs_failure f = {
		.site = alloc_site_name(ALLOC_SITE_OTHER),
		.site_id = ALLOC_SITE_OTHER,
		.size = 1,
		.cause = PFS_CAUSE_INJECTED,
	};

	if (!ops || !ops->decide)
		return OOM_KIND_FAIL;
	switch (ops->decide(state, &f).verdict) {
	case PFS_VERDICT_LOOP:
		return OOM_KIND_LOOP;
	case PFS_VERDICT_RETRY:
		return OOM_KIND_RETRY;
	case PFS_VERDICT_ABORT:
		return OOM_KIND_ABORT;
	case PFS_VERDICT_FAIL:
	default:
		return OOM_KIND_FAIL;
	}
}

/* The allocator of the run in progress, for oom_loop_host()'s services. */
static struct alloc *oom_current;
static unsigned oom_shutdowns;

static struct pfs_reserve *oom_host_reserve_create(void *data, size_t elem_size, unsigned count)
{
	return oom_current ? alloc_reserve_create(oom_current, elem_size, count) : NULL;
}

static void oom_host_reserve_destroy(void *data, struct pfs_reserve *r)
{
	if (oom_current)
		alloc_reserve_destroy(oom_current, r);
}

static size_t oom_host_reclaim(void *data, size_t want, unsigned flags)
{
	return oom_current ? alloc_reclaim(oom_current, want, flags) : 0;
}

static int oom_host_wait(void *data, uint64_t timeout_ns)
{
	return oom_current ? alloc_wait_for_memory(oom_current, timeout_ns) : -ETIMEDOUT;
}

static uint64_t oom_host_dirty(void *data)
{
	return 1;
}

static void oom_host_shutdown(void *data, const char *why)
{
	oom_shutdowns++;
}

static const struct pfs_policy_host oom_host = {
	.reserve_create = oom_host_reserve_create,
	.reserve_destroy = oom_host_reserve_destroy,
	.reclaim = oom_host_reclaim,
	.wait_for_memory = oom_host_wait,
	.dirty_bytes = oom_host_dirty,
	.shutdown = oom_host_shutdown,
};

const struct pfs_policy_host *oom_loop_host(void)
{
	return &oom_host;
}

unsigned oom_loop_shutdowns(void)
{
	return oom_shutdowns;
}

static struct alloc *fresh_alloc(const struct oom_case *c, const struct pfs_policy *ops,
				 void *state)
{
	struct alloc_config defaults = {.stock_bytes = ALLOC_DEFAULT_STOCK_BYTES};
	struct alloc *a = alloc_create(c->config ? c->config : &defaults);

	assert_non_null(a);
	oom_current = a;
	if (ops && ops->install)
		assert_int_equal(ops->install(state), 0);
	alloc_set_policy(a, ops, state);
	return a;
}

/* Uninstall, check that the reserve came back, destroy. */
static void spent_alloc(struct alloc *a, const struct pfs_policy *ops, void *state)
{
	if (ops && ops->uninstall)
		ops->uninstall(state);
	assert_int_equal(alloc_charged(a) - alloc_live(a) <= 2ull * ALLOC_DEFAULT_STOCK_BYTES, 1);
	oom_current = NULL;
	alloc_destroy(a);
}

/* One n under an ABORT policy: the operation runs in a child. Returns
 * whether the countdown fired (the child died by SIGABRT). */
static bool run_n_forked(const struct oom_case *c, struct alloc *a, uint64_t n, uint64_t more,
			 uint64_t live0)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		int rc;

		if (null >= 0)
			dup2(null, STDERR_FILENO);
		alloc_fail_nth(a, n, more);
		rc = c->run(c->ctx, a);
		if (alloc_fail_nth_fired(a))
			_exit(CHILD_SURVIVED);
		alloc_fail_nth(a, 0, 0);
		if (rc != 0)
			_exit(CHILD_BAD_RC);
		if (c->teardown)
			c->teardown(c->ctx, a);
		_exit(alloc_live(a) == live0 ? CHILD_CLEAN : CHILD_LEAKED);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status)) {
		if (WTERMSIG(status) != SIGABRT)
			fail_msg("%s: n=%llu: child died by signal %d, not SIGABRT", c->name,
				 (unsigned long long)n, WTERMSIG(status));
		return true;
	}
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != CHILD_CLEAN)
		fail_msg("%s: n=%llu: child exited with %d (3 fired without abort, 4 bad rc, "
			 "5 leak)",
			 c->name, (unsigned long long)n, WEXITSTATUS(status));
	return false;
}

void oom_loop_run(const struct oom_case *c, const struct pfs_policy *ops, void *state,
		  bool persistent, unsigned max_n, struct oom_report *report)
{
	struct oom_report local = {0};
	struct oom_report *r = report ? report : &local;
	enum oom_kind kind = c->kind != OOM_KIND_PROBE ? c->kind : kind_probe(ops, state);
	uint64_t more = !persistent		? 0
			: kind == OOM_KIND_LOOP ? OOM_LOOP_PERSISTENT_MORE
						: UINT64_MAX;

	*r = (struct oom_report){.kind = kind};
	if (max_n == 0)
		max_n = 10000;
	assert_non_null(c->run);

	for (uint64_t n = 1; n <= max_n; n++) {
		struct alloc *a = fresh_alloc(c, ops, state);
		uint64_t live0 = alloc_live(a);
		struct alloc_stats st;
		bool fired;
		int rc = 0;

		if (c->setup) {
			rc = c->setup(c->ctx, a);
			if (rc)
				fail_msg("%s: setup failed with %d at n=%llu", c->name, rc,
					 (unsigned long long)n);
		}
		r->runs++;
		if (kind == OOM_KIND_ABORT) {
			fired = run_n_forked(c, a, n, more, live0);
			if (fired) {
				r->aborted++;
				if (c->teardown)
					c->teardown(c->ctx, a);
			} else {
				/* The child ran it; undo setup here. */
				if (c->teardown)
					c->teardown(c->ctx, a);
				r->succeeded++;
			}
			assert_int_equal(alloc_live(a), live0);
			spent_alloc(a, ops, state);
			if (!fired)
				return;
			continue;
		}

		alloc_fail_nth(a, n, more);
		rc = c->run(c->ctx, a);
		fired = alloc_fail_nth_fired(a);
		alloc_fail_nth(a, 0, 0);
		if (rc != 0 && rc != -ENOMEM)
			fail_msg("%s: n=%llu (%s, %s): run returned %d, not 0 or -ENOMEM", c->name,
				 (unsigned long long)n, oom_kind_name(kind),
				 persistent ? "persistent" : "transient", rc);
		if (c->check)
			c->check(c->ctx, a, rc);
		if (c->teardown)
			c->teardown(c->ctx, a);
		if (alloc_live(a) != live0)
			fail_msg("%s: n=%llu (%s, %s): %llu bytes leaked", c->name,
				 (unsigned long long)n, oom_kind_name(kind),
				 persistent ? "persistent" : "transient",
				 (unsigned long long)(alloc_live(a) - live0));

		alloc_stats_read(a, &st);
		r->failures_injected += (unsigned)st.total[ALLOC_STAT_injected_failures];
		r->loops += st.total[ALLOC_STAT_loops];
		r->caller_retries += st.total[ALLOC_STAT_caller_retries];
		if (rc == 0)
			r->succeeded++;
		else
			r->enomem_seen++;
		/* A LOOP policy must have kept the operation inside the allocator. */
		if (fired && kind == OOM_KIND_LOOP) {
			assert_true(st.total[ALLOC_STAT_loops] > 0);
			assert_int_equal(rc, 0);
		}
		spent_alloc(a, ops, state);
		if (!fired)
			return;
	}
	fail_msg("%s: the countdown still fired at n=%u: raise max_n or the operation never "
		 "stops allocating",
		 c->name, max_n);
}
