/*
 * shutdown: the first allocation failure while the filesystem holds dirty
 * data shuts the mount down until it is unmounted.
 *
 * What the allocator does: the failed call gets ENOMEM, as under enomem;
 *	and if any acknowledged data is still waiting for writeback then, the
 *	policy asks the host to shut the mount down: from then on every write,
 *	create and metadata change fails with EIO, with one log line saying
 *	why. This is XFS's answer (Dave Chinner, 2024): an allocation that
 *	fails inside a dirty transaction cannot be unwound, so the filesystem
 *	stops taking changes rather than guess. Nothing acknowledged is
 *	dropped: writeback goes on (its own failures leave pages dirty, to be
 *	tried again), reads and fsync go on, and fsync reports EIO only for a
 *	file whose acknowledged data could not be written back. A failure
 *	with nothing dirty (a lookup, an inode record on an idle mount) only
 *	fails that call.
 * Can it fail: yes, at once; and after the shutdown every change fails.
 * What the caller owes: a clean ENOMEM path; the user owes an unmount and
 *	a remount to get a writable filesystem back.
 * When NOT to use it: where availability matters more than a clear stop
 *	(one transient failure ends all writing until the next mount), and
 *	with fault injection or tiny budgets that fail allocations routinely.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <pressurefs/policy.h>

struct shutdown_state {
	struct pfs_policy_host host;
};

static int shutdown_init(void **state, const long long *values, const char *const *strings,
			 const struct pfs_policy_host *host, char *err, size_t errlen)
{
	struct shutdown_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	if (host)
		s->host = *host;
	*state = s;
	return 0;
}

static void shutdown_fini(void *state)
{
	free(state);
}

/* Without a shutdown service there is nothing to stop: say so once, at
 * the switch, rather than fail like enomem in silence. */
static int shutdown_install(void *state)
{
	const struct shutdown_state *s = state;

	return s->host.shutdown ? 0 : -EOPNOTSUPP;
}

static struct pfs_decision shutdown_decide(void *state, const struct pfs_failure *f)
{
	const struct shutdown_state *s = state;
	/* Unknown counts as dirty: stopping is the safe guess. */
	uint64_t dirty = s->host.dirty_bytes ? s->host.dirty_bytes(s->host.host_data) : 1;
	char why[256];

	if (dirty && s->host.shutdown) {
		snprintf(why, sizeof(why),
			 "policy shutdown: %zu bytes at site %s failed (%s) while %llu bytes of "
			 "acknowledged data were dirty",
			 f->size, f->site, pfs_cause_name(f->cause), (unsigned long long)dirty);
		s->host.shutdown(s->host.host_data, why);
	}
	return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
}

__attribute__((visibility("default"))) const struct pfs_policy pfs_policy_v1 = {
	.abi_version = PFS_POLICY_ABI_VERSION,
	.struct_size = sizeof(struct pfs_policy),
	.name = "shutdown",
	.summary = "fail; the first failure while data is dirty shuts the mount down (EIO for "
		   "every later change) until unmount",
	.params = NULL,
	.init = shutdown_init,
	.fini = shutdown_fini,
	.install = shutdown_install,
	.decide = shutdown_decide,
};
