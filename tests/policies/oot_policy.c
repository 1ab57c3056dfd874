/*
 * A policy built out of tree, against the installed <pressurefs/policy.h>
 * only (tests/policies/out_of_tree.sh): loop once, then fail.
 */
#include <pressurefs/policy.h>

static struct pfs_decision oot_decide(void *state, const struct pfs_failure *f)
{
	struct pfs_decision d = {PFS_VERDICT_LOOP, 1000000};

	if (f->attempt > 0)
		d.verdict = PFS_VERDICT_FAIL;
	return d;
}

__attribute__((visibility("default"))) const struct pfs_policy pfs_policy_v1 = {
	.abi_version = PFS_POLICY_ABI_VERSION,
	.struct_size = sizeof(struct pfs_policy),
	.name = "oot",
	.summary = "an out-of-tree test policy: loop once, then fail",
	.params = 0,
	.decide = oot_decide,
};
