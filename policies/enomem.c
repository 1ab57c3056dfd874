/*
 * enomem: fail at once.
 *
 * What the allocator does: nothing more; the failed attempt is the answer.
 *	No reclaim, no wait, no retry.
 * Can it fail: yes, on the first failed attempt.
 * What the caller owes: a clean ENOMEM path on every allocation. At the
 *	FUSE boundary that is write() returning ENOMEM, or a short count when
 *	part of the write was already cached.
 * When NOT to use it: when the callers cannot recover (the writeback of
 *	data already acknowledged to an application), or when the applications
 *	above do not expect write() to fail with ENOMEM: Ted Ts'o's point that
 *	"something bad is going to happen" then happens in the application.
 */
#include <pressurefs/policy.h>

static struct pfs_decision enomem_decide(void *state, const struct pfs_failure *f)
{
	return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
}

__attribute__((visibility("default"))) const struct pfs_policy pfs_policy_v1 = {
	.abi_version = PFS_POLICY_ABI_VERSION,
	.struct_size = sizeof(struct pfs_policy),
	.name = "enomem",
	.summary = "fail at once: the caller gets ENOMEM",
	.params = NULL,
	.init = NULL,
	.fini = NULL,
	.decide = enomem_decide,
};
