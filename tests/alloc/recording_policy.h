/*
 * Test policies that record what they were asked (tests/alloc only):
 * testfail, testloop and testretry (RETRY until attempt reaches
 * retry_limit, then FAIL). Include after alloc_test.h, in one test file
 * each: the state is per test executable.
 */
#ifndef PFS_TEST_RECORDING_POLICY_H
#define PFS_TEST_RECORDING_POLICY_H

#include <limits.h>

static struct pfs_failure last_failure; /* the last failure a policy saw */
static unsigned decisions;		/* how many times a policy was asked */
static unsigned retry_limit = UINT_MAX; /* testretry's attempts before FAIL */

static struct pfs_decision decide_fail(void *st, const struct pfs_failure *f)
{
	last_failure = *f;
	decisions++;
	return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
}

static struct pfs_decision decide_loop(void *st, const struct pfs_failure *f)
{
	last_failure = *f;
	decisions++;
	return (struct pfs_decision){.verdict = PFS_VERDICT_LOOP, .wait_ns = 1000000};
}

static struct pfs_decision decide_retry(void *st, const struct pfs_failure *f)
{
	last_failure = *f;
	decisions++;
	if (f->attempt >= retry_limit)
		return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
	return (struct pfs_decision){.verdict = PFS_VERDICT_RETRY, .wait_ns = 1000000};
}

TEST_POLICY(policy_fail, "testfail", decide_fail);
TEST_POLICY(policy_loop, "testloop", decide_loop);
TEST_POLICY(policy_retry, "testretry", decide_retry);

#endif
