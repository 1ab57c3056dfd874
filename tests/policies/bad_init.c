/* A plugin whose init() fails: the loader reports it and unloads the plugin. */
#include <errno.h>

#include <pressurefs/policy.h>

static int bad_init_init(void **state, const long long *values, const char *const *strings,
			 const struct pfs_policy_host *host, char *err, size_t errlen)
{
	return -EINVAL;
}

static struct pfs_decision bad_init_decide(void *state, const struct pfs_failure *f)
{
	return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
}

const struct pfs_policy pfs_policy_v1 = {
	.abi_version = PFS_POLICY_ABI_VERSION,
	.struct_size = sizeof(struct pfs_policy),
	.name = "bad_init",
	.summary = "init() fails",
	.init = bad_init_init,
	.decide = bad_init_decide,
};
