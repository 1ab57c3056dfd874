/*
 * tests/harness/oom_loop.c: the fail-the-Nth loop over a toy operation (a
 * linked list of 10 nodes built through the allocator, freed on failure),
 * under FAIL, RETRY, LOOP and ABORT policy tables written here.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "oom_loop.h"

enum { NODES = 10 };

struct node {
	struct node *next;
	unsigned value;
};

struct toy {
	struct node *head;
	bool use_try; /* build with alloc_try + alloc_retry_wait */
	bool leak;    /* forget one node on failure (the harness must notice) */
};

static int toy_setup(void *ctx, struct alloc *a)
{
	struct toy *t = ctx;

	t->head = NULL;
	return 0;
}

static void toy_free_all(struct toy *t, struct alloc *a)
{
	while (t->head) {
		struct node *next = t->head->next;

		alloc_free(a, t->head);
		t->head = next;
	}
}

static struct node *node_new(struct toy *t, struct alloc *a)
{
	struct alloc_retry retry = ALLOC_RETRY_INIT;
	struct node *n;
	int err;

	if (!t->use_try)
		return alloc_malloc(a, ALLOC_SITE_INODE, sizeof(*n), 0);
	for (;;) {
		n = alloc_try(a, ALLOC_SITE_INODE, sizeof(*n), ALLOC_NOFS, &retry, &err);
		if (n || err != -EAGAIN)
			return n;
		/* (a real caller drops its locks here) */
		if (alloc_retry_wait(a, &retry))
			return NULL;
	}
}

static int toy_run(void *ctx, struct alloc *a)
{
	struct toy *t = ctx;

	for (unsigned i = 0; i < NODES; i++) {
		struct node *n = node_new(t, a);

		if (!n) {
			if (t->leak && t->head)
				t->head = t->head->next;
			toy_free_all(t, a);
			return -ENOMEM;
		}
		n->value = i;
		n->next = t->head;
		t->head = n;
	}
	return 0;
}

static void toy_check(void *ctx, struct alloc *a, int rc)
{
	struct toy *t = ctx;
	unsigned count = 0;

	for (struct node *n = t->head; n; n = n->next) {
		assert_int_equal(n->value, NODES - 1 - count);
		count++;
	}
	/* All or nothing, and the allocator agrees. */
	assert_int_equal(count, rc == 0 ? NODES : 0);
	assert_int_equal(alloc_live(a), count * sizeof(struct node));
}

static void toy_teardown(void *ctx, struct alloc *a)
{
	toy_free_all(ctx, a);
}

static struct oom_case toy_case(struct toy *t)
{
	return (struct oom_case){
		.name = "toy list",
		.setup = toy_setup,
		.run = toy_run,
		.check = toy_check,
		.teardown = toy_teardown,
		.ctx = t,
	};
}

/* ---- policy tables ---- */

static struct pfs_decision decide_fail(void *st, const struct pfs_failure *f)
{
	return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
}

static struct pfs_decision decide_loop(void *st, const struct pfs_failure *f)
{
	return (struct pfs_decision){.verdict = PFS_VERDICT_LOOP, .wait_ns = 10000};
}

/* Retry twice, then fail. */
static struct pfs_decision decide_retry(void *st, const struct pfs_failure *f)
{
	if (f->attempt >= 2)
		return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
	return (struct pfs_decision){.verdict = PFS_VERDICT_RETRY, .wait_ns = 10000};
}

static struct pfs_decision decide_abort(void *st, const struct pfs_failure *f)
{
	return (struct pfs_decision){.verdict = PFS_VERDICT_ABORT};
}

#define POLICY(var, policy_name, fn)                                                               \
	static const struct pfs_policy var = {                                                     \
		.abi_version = PFS_POLICY_ABI_VERSION,                                             \
		.struct_size = sizeof(struct pfs_policy),                                          \
		.name = policy_name,                                                               \
		.decide = fn,                                                                      \
	}

POLICY(policy_fail, "testfail", decide_fail);
POLICY(policy_loop, "testloop", decide_loop);
POLICY(policy_retry, "testretry", decide_retry);
POLICY(policy_abort, "testabort", decide_abort);

/* ---- the loop under each policy ---- */

static void test_oom_loop_fail_policy_transient_fails_each_node_once(void **state)
{
	struct toy t = {0};
	struct oom_case c = toy_case(&t);
	struct oom_report r;

	oom_loop_run(&c, &policy_fail, NULL, false, 100, &r);
	assert_int_equal(r.kind, OOM_KIND_FAIL);
	/* n = 1..10 hit a node; n = 11 is never reached and ends the loop. */
	assert_int_equal(r.runs, NODES + 1);
	assert_int_equal(r.enomem_seen, NODES);
	assert_int_equal(r.succeeded, 1);
	assert_int_equal(r.failures_injected, NODES);
}

static void test_oom_loop_fail_policy_persistent(void **state)
{
	struct toy t = {0};
	struct oom_case c = toy_case(&t);
	struct oom_report r;

	oom_loop_run(&c, &policy_fail, NULL, true, 100, &r);
	assert_int_equal(r.runs, NODES + 1);
	assert_int_equal(r.enomem_seen, NODES);
	assert_int_equal(r.succeeded, 1);
}

static void test_oom_loop_no_policy_is_fail(void **state)
{
	struct toy t = {0};
	struct oom_case c = toy_case(&t);
	struct oom_report r;

	oom_loop_run(&c, NULL, NULL, false, 100, &r);
	assert_int_equal(r.kind, OOM_KIND_FAIL);
	assert_int_equal(r.enomem_seen, NODES);
}

static void test_oom_loop_retry_policy_transient_recovers(void **state)
{
	struct toy t = {.use_try = true};
	struct oom_case c = toy_case(&t);
	struct oom_report r;

	oom_loop_run(&c, &policy_retry, NULL, false, 100, &r);
	assert_int_equal(r.kind, OOM_KIND_RETRY);
	assert_int_equal(r.runs, NODES + 1);
	assert_int_equal(r.succeeded, NODES + 1);
	assert_int_equal(r.enomem_seen, 0);
	assert_int_equal(r.caller_retries, NODES);
}

static void test_oom_loop_retry_policy_persistent_gives_up(void **state)
{
	struct toy t = {.use_try = true};
	struct oom_case c = toy_case(&t);
	struct oom_report r;

	oom_loop_run(&c, &policy_retry, NULL, true, 100, &r);
	assert_int_equal(r.enomem_seen, NODES);
	assert_int_equal(r.succeeded, 1);
	/* Two retries per failing run, then FAIL. */
	assert_int_equal(r.caller_retries, 2 * NODES);
	assert_int_equal(r.failures_injected, 3 * NODES);
}

static void test_oom_loop_retry_policy_inline_without_cursor(void **state)
{
	struct toy t = {.use_try = false};
	struct oom_case c = toy_case(&t);
	struct oom_report r;

	oom_loop_run(&c, &policy_retry, NULL, false, 100, &r);
	assert_int_equal(r.succeeded, NODES + 1);
	assert_int_equal(r.caller_retries, NODES);
}

static void test_oom_loop_loop_policy_transient_never_fails(void **state)
{
	struct toy t = {0};
	struct oom_case c = toy_case(&t);
	struct oom_report r;

	oom_loop_run(&c, &policy_loop, NULL, false, 100, &r);
	assert_int_equal(r.kind, OOM_KIND_LOOP);
	assert_int_equal(r.succeeded, NODES + 1);
	assert_int_equal(r.enomem_seen, 0);
	assert_int_equal(r.loops, NODES);
}

static void test_oom_loop_loop_policy_persistent_loops_64_more(void **state)
{
	struct toy t = {0};
	struct oom_case c = toy_case(&t);
	struct oom_report r;

	oom_loop_run(&c, &policy_loop, NULL, true, 100, &r);
	assert_int_equal(r.succeeded, NODES + 1);
	assert_int_equal(r.loops, NODES * (OOM_LOOP_PERSISTENT_MORE + 1));
}

static void test_oom_loop_abort_policy_kills_each_child(void **state)
{
	struct toy t = {0};
	struct oom_case c = toy_case(&t);
	struct oom_report r;

	oom_loop_run(&c, &policy_abort, NULL, false, 100, &r);
	assert_int_equal(r.kind, OOM_KIND_ABORT);
	assert_int_equal(r.runs, NODES + 1);
	assert_int_equal(r.aborted, NODES);
	assert_int_equal(r.succeeded, 1);
}

static void test_oom_loop_kind_can_be_forced(void **state)
{
	struct toy t = {0};
	struct oom_case c = toy_case(&t);
	struct oom_report r;

	c.kind = OOM_KIND_FAIL;
	oom_loop_run(&c, &policy_fail, NULL, false, 100, &r);
	assert_int_equal(r.kind, OOM_KIND_FAIL);
	assert_string_equal(oom_kind_name(OOM_KIND_LOOP), "loop");
}

/* ---- the harness must fail what is broken ---- */

static void leaky_loop(void **state)
{
	struct toy t = {.leak = true};
	struct oom_case c = toy_case(&t);

	c.check = NULL; /* let the leak reach the harness's own check */
	oom_loop_run(&c, &policy_fail, NULL, false, 100, NULL);
}

static void endless_loop(void **state)
{
	struct toy t = {0};
	struct oom_case c = toy_case(&t);

	/* max_n 5 < 10 allocations: the countdown still fires at n = 5. */
	oom_loop_run(&c, &policy_fail, NULL, false, 5, NULL);
}

/* Run one test body in a child with its own cmocka group; return its result. */
static int run_in_child(void (*body)(void **state))
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(body)};
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
			_exit(2);
		_exit(cmocka_run_group_tests(tests, NULL, NULL) ? 1 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* The child's group fails (exit 1; a leak checker such as valgrind may
 * turn that into its own non-zero status). */
static void test_oom_loop_catches_a_leak(void **state)
{
	assert_int_not_equal(run_in_child(leaky_loop), 0);
}

static void test_oom_loop_fails_when_max_n_is_reached(void **state)
{
	assert_int_not_equal(run_in_child(endless_loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oom_loop_fail_policy_transient_fails_each_node_once),
		cmocka_unit_test(test_oom_loop_fail_policy_persistent),
		cmocka_unit_test(test_oom_loop_no_policy_is_fail),
		cmocka_unit_test(test_oom_loop_retry_policy_transient_recovers),
		cmocka_unit_test(test_oom_loop_retry_policy_persistent_gives_up),
		cmocka_unit_test(test_oom_loop_retry_policy_inline_without_cursor),
		cmocka_unit_test(test_oom_loop_loop_policy_transient_never_fails),
		cmocka_unit_test(test_oom_loop_loop_policy_persistent_loops_64_more),
		cmocka_unit_test(test_oom_loop_abort_policy_kills_each_child),
		cmocka_unit_test(test_oom_loop_kind_can_be_forced),
		cmocka_unit_test(test_oom_loop_catches_a_leak),
		cmocka_unit_test(test_oom_loop_fails_when_max_n_is_reached),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
