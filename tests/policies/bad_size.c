/* A plugin whose struct pfs_policy is shorter than this pressurefs's: refused. */
#include <stddef.h>

#include <pressurefs/policy.h>

static struct pfs_decision bad_size_decide(void *state, const struct pfs_failure *f)
{
	return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
}

const struct pfs_policy pfs_policy_v1 = {
	.abi_version = PFS_POLICY_ABI_VERSION,
	.struct_size = offsetof(struct pfs_policy, decide),
	.name = "bad_size",
	.summary = "struct_size too small",
	.decide = bad_size_decide,
};
