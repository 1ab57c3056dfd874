/* A plugin built for another policy ABI: the loader must refuse it. */
#include <pressurefs/policy.h>

static struct pfs_decision bad_abi_decide(void *state, const struct pfs_failure *f)
{
	return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
}

const struct pfs_policy pfs_policy_v1 = {
	/* The ABI before this one: the stale plugin a user would have. */
	.abi_version = PFS_POLICY_ABI_VERSION - 1,
	.struct_size = sizeof(struct pfs_policy),
	.name = "bad_abi",
	.summary = "claims the previous policy ABI",
	.decide = bad_abi_decide,
};
