/* A plugin with the right ABI but no decide(): refused, not called. */
#include <pressurefs/policy.h>

const struct pfs_policy pfs_policy_v1 = {
	.abi_version = PFS_POLICY_ABI_VERSION,
	.struct_size = sizeof(struct pfs_policy),
	.name = "bad_nodecide",
	.summary = "no decide function",
	.decide = NULL,
};
