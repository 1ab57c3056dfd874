/*
 * The fail-the-Nth-allocation loop (SQLite's OOM test, test/malloc_common.tcl)
 * for any operation that allocates through the pressurefs allocator.
 *
 * For n = 1, 2, 3, ...:
 *	a = a fresh allocator (c->config, NULL = defaults) with the policy set;
 *	live0 = alloc_live(a); setup(ctx, a) must return 0;
 *	arm the countdown: the nth allocation attempt from now fails, and
 *	    transient:  only that one;
 *	    persistent: every later one too (UINT64_MAX further failures),
 *	        except under a LOOP-type policy, where an operation could then
 *	        never finish (that is nofail's nature): there `more` is 64, so
 *	        the operation must survive 65 failed attempts in a row, and the
 *	        harness checks that the allocator counted loops;
 *	rc = run(ctx, a); disarm;
 *	assert rc == 0 or rc == -ENOMEM (a clean failure; short counts are
 *	    the operation's business: return 0 and let check() judge them);
 *	check(ctx, a, rc): the operation's own consistency assertions;
 *	teardown(ctx, a); assert alloc_live(a) == live0: nothing leaked;
 *	stop at the first n whose countdown never fired: every allocation
 *	    the operation makes has been failed once.
 * Reaching max_n without such an n fails the test (cmocka fail()).
 *
 * Under an ABORT-type policy run() is called in a forked child (stderr to
 * /dev/null); the harness asserts that the child died by SIGABRT when the
 * countdown fired, and exited cleanly (rc 0, no leak) when it did not.
 * check() is not called there: the child has nothing left to check.
 *
 * The policy's type (FAIL, LOOP, RETRY, ABORT) is found by asking its
 * decide() once about a made-up first failure (cause "injected", attempt 0,
 * stalled 0) before the loop starts; c->kind overrides that guess.
 *
 * cmocka assertions are used throughout: call it from inside a cmocka test.
 */
#ifndef PFS_OOM_LOOP_H
#define PFS_OOM_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"

enum oom_kind {
	OOM_KIND_PROBE = 0, /* ask the policy (default) */
	OOM_KIND_FAIL,
	OOM_KIND_LOOP,
	OOM_KIND_RETRY,
	OOM_KIND_ABORT,
};

struct oom_case {
	const char *name; /* for messages */
	/* Make fresh state over a (may register a reclaimer). 0 or -errno. May be NULL. */
	int (*setup)(void *ctx, struct alloc *a);
	/* The operation under test: 0 (done, possibly short) or -ENOMEM. */
	int (*run)(void *ctx, struct alloc *a);
	/* Assert consistency after run (cmocka asserts). May be NULL. */
	void (*check)(void *ctx, struct alloc *a, int rc);
	/* Free everything setup and run left. May be NULL. */
	void (*teardown)(void *ctx, struct alloc *a);
	void *ctx;
	const struct alloc_config *config; /* NULL: no limit, default stock */
	enum oom_kind kind;		   /* OOM_KIND_PROBE: ask the policy */
};

struct oom_report {
	unsigned runs;		    /* values of n tried */
	unsigned failures_injected; /* injected failures, summed over runs */
	unsigned enomem_seen;	    /* runs where run() returned -ENOMEM */
	unsigned succeeded;	    /* runs where run() returned 0 */
	unsigned aborted;	    /* ABORT: children that died by SIGABRT */
	uint64_t loops;		    /* LOOP verdicts carried out, summed */
	uint64_t caller_retries;    /* RETRY verdicts carried out, summed */
	enum oom_kind kind;	    /* the kind the loop used */
};

/* More failures after the nth under a LOOP policy in persistent mode. */
#define OOM_LOOP_PERSISTENT_MORE 64

/*
 * Run the loop. ops NULL = the allocator's built-in fail-at-once; state is
 * what ops->init made (may be NULL). max_n 0 means 10,000. report may be
 * NULL.
 */
void oom_loop_run(const struct oom_case *c, const struct pfs_policy *ops, void *state,
		  bool persistent, unsigned max_n, struct oom_report *report);

/*
 * A policy host whose services act on the allocator of the run in progress
 * (reserves, reclaim, waiting); dirty_bytes() says "dirty" and shutdown()
 * is counted (oom_loop_shutdowns), so a shutdown policy meets its harshest
 * case at every failure. Load policies with it; oom_loop_run() calls the
 * policy's install() on each fresh allocator and uninstall() before it is
 * destroyed, and asserts that every reserve came back.
 */
const struct pfs_policy_host *oom_loop_host(void);
unsigned oom_loop_shutdowns(void);

/* "fail", "loop", "retry", "abort" ("probe" for OOM_KIND_PROBE). */
const char *oom_kind_name(enum oom_kind kind);

#endif /* PFS_OOM_LOOP_H */
