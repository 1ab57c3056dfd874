/* A plugin built for another policy ABI: the loader must refuse it. */
#include <pressurefs/policy.h>

static struct pfs_decision bad_abi_decide(void *state, const struct pfs_failure *f)
{
	return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
}

const struct pfs_policy pfs_policy_v1 = {
	.abi_version = 0,
	.struct_size = sizeof(struct pfs_policy),
	.name = "bad_abi",
	.summary = "claims policy ABI 0",
	.decide = bad_abi_decide,
};
